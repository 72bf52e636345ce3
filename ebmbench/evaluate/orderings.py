"""The orderings the papers print between a baseline and the method it ablates, measured here: which
model is better on each metric, in the paper and in this suite's runs. Also where a baseline's rows
go in the table (right after its method).
"""

import pandas as pd

from ..io import atomic_path
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


ORDERING_COLUMNS = [
    "dataset",
    "metric",
    "better",
    "worse",
    "better_measured",
    "better_std",
    "worse_measured",
    "worse_std",
    "n_seeds",
    "holds",
    "paper_source",
    "paper_values",
]


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


def build_orderings(table: pd.DataFrame, out=None, paper=None) -> pd.DataFrame:
    """Each printed ordering with the measured values on every dataset where both models ran: its own
    datasets, and datasets no paper reports (digits, a user's folder), where it is the like-for-like
    stand-in. `holds` says whether the measured means fall the way the paper's numbers do."""
    paper = load_paper_numbers() if paper is None else paper
    paper_datasets = {p.dataset for p in paper}
    measured = {}
    for r in table[table["n_seeds"] > 0].itertuples():
        measured.setdefault((r.method, r.dataset, r.metric), r)
    rows = []
    for (source, metric, better, worse), cells in paper_orderings(paper).items():
        for dataset in sorted({d for (m, d, k) in measured if m == better and k == metric}):
            b, w = measured.get((better, dataset, metric)), measured.get((worse, dataset, metric))
            if w is None or (dataset in paper_datasets and dataset not in cells):
                continue
            shown = {dataset: cells[dataset]} if dataset in cells else cells
            if pd.isna(b.measured) or pd.isna(w.measured):
                holds = "n/a: " + (b.status if pd.isna(b.measured) else w.status)
            else:
                first = b.measured < w.measured if LOWER_IS_BETTER[metric] else b.measured > w.measured
                holds = "yes" if first else "no"
            rows.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "better": better,
                    "worse": worse,
                    "better_measured": b.measured,
                    "better_std": b.std,
                    "worse_measured": w.measured,
                    "worse_std": w.std,
                    "n_seeds": min(b.n_seeds, w.n_seeds),
                    "holds": holds,
                    "paper_source": source,
                    "paper_values": "; ".join(f"{d} {v[0]:g} vs {v[1]:g}" for d, v in shown.items()),
                }
            )
    df = pd.DataFrame(rows, columns=ORDERING_COLUMNS)
    df = df.sort_values(
        ["dataset", "better", "worse", "metric", "paper_source"], key=lambda c: c.map(str), ignore_index=True
    )
    if out is not None:
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    return df


def format_orderings(df: pd.DataFrame) -> str:
    """The printed summary: one line per paper ordering and dataset, measured mean +- std over seeds."""

    def value(m, s):
        return "n/a" if pd.isna(m) else f"{m:.4g}" + ("" if pd.isna(s) else f" +- {s:.2g}")

    lines = [
        "Orderings the papers print between a method and its baseline (better vs worse there), measured here "
        "(mean +- std over seeds):"
    ]
    for r in df.itertuples():
        lines.append(
            f"  {r.dataset} {r.metric}: {r.better} {value(r.better_measured, r.better_std)} vs {r.worse} "
            f"{value(r.worse_measured, r.worse_std)} ({r.n_seeds} seed{'s' * (r.n_seeds != 1)}) -> holds: {r.holds}   "
            f"[{r.paper_source}: {r.paper_values}]"
        )
    return "\n".join(lines if len(df) else lines[:1] + ["  (none: no method and its baseline were both run)"])
