"""The comparison table: measured (mean, std over seeds) beside the papers' numbers and protocols.

One row per method x dataset x metric x paper source. Status:
  reproduced       |measured - paper| <= tolerance x paper (the paper number's own tolerance)
  better / gap     outside that band, in the good / bad direction of the metric; each of the three
                   ends in "(unverified paper number)" where the number or its scale is unconfirmed
  no paper number  nothing published for this method on this dataset (e.g. digits)
  paper only       a published number for a method or dataset this run did not train
  reference        the uniform-noise baseline (what a method must beat)
  diverged         training diverged; no number is reported
  unavailable (..) the metric could not be computed for a seed (e.g. too few images); the reason
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, read_json
from ..registry import get_method, method_ids
from .paper_numbers import load as load_paper_numbers
from .paper_tables import write_paper_tables
from .verdicts import VERDICT_COLUMNS, verdict_fields

METRICS = ("fid", "is", "kid", "precision", "recall", "mse")
LOWER_IS_BETTER = {"fid": True, "kid": True, "mse": True, "is": False, "precision": False, "recall": False}
COLUMNS = [
    "method",
    "ablates",
    "dataset",
    "metric",
    "measured",
    "std",
    "n_seeds",
    "n_generated",
    "n_reference",
    "extractor",
    "paper",
    "paper_method",
    "paper_protocol",
    "paper_source",
    "paper_verified",
    "paper_tolerance",
    "difference",
    "status",
]
COLUMNS += VERDICT_COLUMNS  # the interval over seeds and samples, and the verdict (ebmbench.evaluate.verdicts)
COLUMNS += ["image"]  # the image tag(s) the group's numbers came from, or "local" (ebmbench.provenance)


def all_paper_numbers():
    """Every published number, from methods/paper_numbers.csv (validated on load)."""
    return load_paper_numbers()


def _status(metric, measured, paper, tolerance) -> str:
    if abs(measured - paper) <= tolerance * abs(paper):
        return "reproduced"
    better = measured < paper if LOWER_IS_BETTER[metric] else measured > paper
    return "better" if better else "gap"


def _paper_fields(p) -> dict:
    return {
        "paper": p.value,
        "paper_method": p.method,
        "paper_protocol": p.protocol,
        "paper_source": p.source,
        "paper_verified": p.verified,
        "paper_tolerance": p.tolerance,
    }


def build_table(metric_files, datasets=(), out=None) -> pd.DataFrame:
    runs = [read_json(f) for f in metric_files]
    paper = all_paper_numbers()
    rows, measured_keys = [], set()
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["dataset"]), []).append(r)
    for (method, dataset), rs in sorted(groups.items(), key=lambda kv: (beside(kv[0][0]), kv[0][1])):
        ok = [r for r in rs if r.get("status", "ok") == "ok"]
        for metric in METRICS:
            matches = [p for p in paper if p.suite_id == method and p.dataset == dataset and p.metric == metric]
            if not any(metric in r for r in ok) and not matches and len(ok) == len(rs):
                continue
            base = {
                "method": method,
                "ablates": " ".join(ablates(method)),
                "dataset": dataset,
                "metric": metric,
                "n_seeds": len(ok),
            }
            base["image"] = " ".join(sorted({r["provenance"]["image"] for r in rs if "provenance" in r}))
            vals = [r[metric] for r in ok if metric in r]
            # score records why a metric could not be computed; a seed scored without a metric the others
            # have (e.g. --no-precision-recall on one) would leave a mean over fewer seeds passing for all
            absent = (
                [
                    f"seed {r.get('seed')}: {r.get(metric + '_unavailable', 'not computed')}"
                    for r in ok
                    if r.get(metric) is None
                ]
                if any(metric in r for r in ok)
                else []
            )
            if len(ok) < len(rs):  # any diverged seed: the group reports no number
                base.update(status="diverged", n_seeds=len(rs))
            elif absent:  # a mean over the other seeds would pass for the whole group's
                base.update(status=f"unavailable ({'; '.join(absent)})")
            elif vals:
                ref = ok[0]
                base.update(
                    measured=float(np.mean(vals)),
                    std=float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan,
                    n_generated=ref.get("mse_n") if metric == "mse" else ref["n_generated"],
                    n_reference=np.nan if metric == "mse" else ref["n_reference"],
                    extractor=ref.get("mse_scale") if metric == "mse" else ref["extractor"],
                )
                base["status"] = "reference" if method == "uniform_noise" else "no paper number"
            else:
                continue
            measured_keys.add((method, dataset, metric))
            for p in matches or [None]:
                row = dict(base)
                if p is not None:
                    row.update(_paper_fields(p))
                    if "measured" in row:
                        row["difference"] = row["measured"] - p.value
                        row["status"] = _status(metric, row["measured"], p.value, p.tolerance)
                        if not p.verified:  # e.g. an MSE whose pixel scale may be 4x off: say so in the status
                            row["status"] += " (unverified paper number)"
                row.update(verdict_fields(ok, len(rs), metric, p, LOWER_IS_BETTER[metric]))
                rows.append(row)
    for p in paper:
        if p.dataset in datasets and (p.suite_id, p.dataset, p.metric) not in measured_keys:
            rows.append(
                {
                    "method": p.suite_id or p.method,
                    "ablates": " ".join(ablates(p.suite_id)),
                    "dataset": p.dataset,
                    "metric": p.metric,
                    "n_seeds": 0,
                    "status": "paper only",
                    **_paper_fields(p),
                    **verdict_fields([], 0, p.metric, p, True),
                }
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
        write_paper_tables(df, paper, Path(out).parent / "paper_tables")  # each source table as printed
    return df


# -- baselines beside their methods, and the orderings the papers print between them ------------


def ablates(method) -> tuple[str, ...]:
    """The methods a baseline is the ablation of (its class's ABLATES); () for a method or a row
    that is not a registered model (uniform noise, a paper-only row)."""
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
    for p in paper if paper is not None else all_paper_numbers():
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
    paper = all_paper_numbers() if paper is None else paper
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
