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

from .io import atomic_path, read_json
from .registry import get_method, method_ids

METRICS = ("fid", "is", "kid", "mse")
LOWER_IS_BETTER = {"fid": True, "kid": True, "mse": True, "is": False}
COLUMNS = ["method", "dataset", "metric", "measured", "std", "n_seeds", "n_generated", "n_reference", "extractor",
           "paper", "paper_method", "paper_protocol", "paper_source", "paper_verified", "paper_tolerance", "difference",
           "status"]


def all_paper_numbers():
    seen, out = set(), []
    for name in method_ids():
        for p in get_method(name).PAPER:
            key = (p.method, p.suite_id, p.dataset, p.metric, p.value, p.source)
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out


def _status(metric, measured, paper, tolerance) -> str:
    if abs(measured - paper) <= tolerance * abs(paper):
        return "reproduced"
    better = measured < paper if LOWER_IS_BETTER[metric] else measured > paper
    return "better" if better else "gap"


def _paper_fields(p) -> dict:
    return {"paper": p.value, "paper_method": p.method, "paper_protocol": p.protocol, "paper_source": p.source,
            "paper_verified": p.verified, "paper_tolerance": p.tolerance}


def build_table(metric_files, datasets=(), out=None) -> pd.DataFrame:
    runs = [read_json(f) for f in metric_files]
    paper = all_paper_numbers()
    rows, measured_keys = [], set()
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["dataset"]), []).append(r)
    for (method, dataset), rs in sorted(groups.items()):
        ok = [r for r in rs if r.get("status", "ok") == "ok"]
        for metric in METRICS:
            matches = [p for p in paper if p.suite_id == method and p.dataset == dataset and p.metric == metric]
            if not any(metric in r for r in ok) and not matches and len(ok) == len(rs):
                continue
            base = {"method": method, "dataset": dataset, "metric": metric, "n_seeds": len(ok)}
            vals = [r[metric] for r in ok if metric in r]
            absent = [f"seed {r.get('seed')}: {r.get(metric + '_unavailable', 'not computed')}" for r in ok
                      if metric in r and r[metric] is None]  # score records why a metric could not be computed
            if len(ok) < len(rs):  # any diverged seed: the group reports no number
                base.update(status="diverged", n_seeds=len(rs))
            elif absent:  # a mean over the other seeds would pass for the whole group's
                base.update(status=f"unavailable ({'; '.join(absent)})")
            elif vals:
                ref = ok[0]
                base.update(measured=float(np.mean(vals)), std=float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan,
                            n_generated=ref.get("mse_n") if metric == "mse" else ref["n_generated"],
                            n_reference=np.nan if metric == "mse" else ref["n_reference"],
                            extractor=ref.get("mse_scale") if metric == "mse" else ref["extractor"])
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
                rows.append(row)
    for p in paper:
        if p.dataset in datasets and (p.suite_id, p.dataset, p.metric) not in measured_keys:
            rows.append({"method": p.suite_id or p.method, "dataset": p.dataset, "metric": p.metric, "n_seeds": 0,
                         "status": "paper only", **_paper_fields(p)})
    df = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    return df
