"""The orderings the papers print between a baseline and the method it ablates: which model is
better on each metric in the source tables. Each becomes a claim of the ledger, measured over seeds
(ebmbench.evaluate.claims). Also where a baseline's rows go in the table (right after its method).
"""

from ..registry import get_method, method_ids
from .paper_numbers import load_all as load_paper_numbers
from .scoring import LOWER_IS_BETTER


def ablates(method) -> tuple[str, ...]:
    """The methods a baseline is the ablation of (its class's ABLATES); () for a method or a row
    that is not a registered model (uniform noise, a paper number with no run here)."""
    return getattr(get_method(method), "ABLATES", ()) if method in method_ids() else ()


def beside(method) -> tuple:
    """Row order: each baseline right after the (first) method it ablates."""
    parents = ablates(method)
    return (parents[0], 1, method) if parents else (method, 0, "")


def paper_orderings(paper=None) -> dict:
    """Each ordering a source table prints between a baseline and a method it ablates, read from the
    paper numbers: (source, metric, better, worse) -> {dataset: (better's value, worse's value)}."""
    cells: dict[tuple, dict] = {}
    for p in paper if paper is not None else load_paper_numbers():
        if p.suite_id is not None:
            cells.setdefault((p.source, p.dataset, p.metric), {}).setdefault(p.suite_id, p.value)
    claims: dict[tuple, dict] = {}
    for (source, dataset, metric), value in cells.items():
        for baseline in value:
            for method in ablates(baseline):
                if method in value and value[method] != value[baseline]:
                    a, b = value[method], value[baseline]
                    better, worse = (method, baseline) if (a < b) == LOWER_IS_BETTER[metric] else (baseline, method)
                    claims.setdefault((source, metric, better, worse), {})[dataset] = (value[better], value[worse])
    return claims
