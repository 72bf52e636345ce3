"""The comparison table: measured (mean, std over seeds) beside the papers' numbers and protocols.

One row per method x dataset x metric x paper source. Each run is read through the metrics.json
contract (`metrics_record`), so the table takes exactly what the check before it accepted.

`status` says what ran, nothing more:
  done             a measured row: the mean and std over the group's seeds
  diverged         training diverged for a seed of the group; no number is reported
  not run          a paper number for a method or dataset this run did not train
  reference        the uniform-noise baseline (what a method must beat)
  unavailable (..) the metric could not be computed for a seed (e.g. too few images); the reason
The comparison with the paper is the `verdict` column alone (ebmbench.evaluate.verdicts), with the
interval it rests on; `difference` (measured - paper) and `paper_tolerance` are data beside it.
"""

import json

import numpy as np
import pandas as pd

from ..io import SuiteError, atomic_path
from .orderings import ablates, beside
from .paper_numbers import load_all as load_paper_numbers
from .paper_tables import write_paper_tables, write_verdicts_html
from .scoring import LOWER_IS_BETTER, METRICS, metrics_record
from .verdicts import VERDICT_COLUMNS, verdict_fields

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


def _paper_fields(p) -> dict:
    return {
        "paper": p.value,
        "paper_method": p.method,
        "paper_protocol": p.protocol,
        "paper_source": p.source,
        "paper_verified": p.verified,
        "paper_tolerance": p.tolerance,
    }


# What the seeds of one row must share to be averaged: the same extractor and reference statistics,
# the same number of images, the same data and protocol (a mean over two scales is no number).
COMBINABLE = (
    "extractor",
    "reference",
    "n_generated",
    "n_reference",
    "mse_n",
    "mse_scale",
    "prc_protocol",
    "preset",
    "preset_changes",
    "data_kind",
    "data_sha256",
)


def read_runs(metric_files) -> list[dict]:
    """Each metrics.json through its contract, each run once, and the seeds of each (method, dataset)
    combinable: else one paragraph naming the files and the field where they differ."""
    runs, seen, groups = [], {}, {}
    for f in metric_files:
        r = metrics_record(f)
        key = (r["method"], r["dataset"], r.get("seed"))
        if key in seen:  # counted twice it would pass for two seeds with std 0
            raise SuiteError(
                f"{f} and {seen[key]} are both method {key[0]}, dataset {key[1]}, seed {key[2]}; "
                f"give each run once (is a seed, dataset or method listed twice in the config?)."
            )
        seen[key] = f
        runs.append(r)
        if r["status"] == "ok":
            groups.setdefault(key[:2], []).append((f, r))
    for (method, dataset), members in groups.items():
        for field in COMBINABLE:
            values = {json.dumps(r.get(field), sort_keys=True): f for f, r in members}
            if len(values) > 1:
                listed = "; ".join(f"{f}: {v}" for v, f in values.items())
                raise SuiteError(
                    f"the seeds of {method} on {dataset} cannot be averaged: they differ in '{field}' ({listed}). "
                    f"Score every seed the same way (same extractor, sample count, data and preset), or "
                    f"leave out the runs that differ."
                )
    return runs


def build_table(
    metric_files, datasets=(), out=None, verdicts_html=None, paper_tables=None, compare_changed=False
) -> pd.DataFrame:
    """The table of the runs in `metric_files` (and the paper numbers of `datasets` with no run here),
    written as CSV to `out`; `verdicts_html`: also the rows coloured by verdict; `paper_tables`: also
    each source table in its paper's shape, into that folder (ebmbench.evaluate.paper_tables);
    `compare_changed`: give verdicts for runs of a changed paper preset too (named in the verdict)."""
    runs = read_runs(metric_files)
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
                base["status"] = "reference" if method == "uniform_noise" else "done"
            else:
                continue
            measured_keys.add((method, dataset, metric))
            for p in matches or [None]:
                row = dict(base)
                if p is not None:
                    row.update(_paper_fields(p))
                    if "measured" in row:
                        row["difference"] = row["measured"] - p.value
                row.update(verdict_fields(ok, len(rs), metric, p, LOWER_IS_BETTER[metric], compare_changed))
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
                    "status": "not run",
                    **_paper_fields(p),
                    **verdict_fields([], 0, p.metric, p, True),
                }
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    if verdicts_html is not None:
        write_verdicts_html(df, verdicts_html)
    if paper_tables is not None:
        write_paper_tables(df, paper, paper_tables)  # each source table as printed
    return df
