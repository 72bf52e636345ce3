"""The claims ledger: every comparison a seed paper states, measured over seeds with a 95 % interval
of the difference and a verdict. Written to results/claims.csv by `ebmbench table --claims`.

Claims are data: methods/claims.csv, one row per claim, beside methods/paper_numbers.csv. Columns:
  id                 a short name ([a-z0-9_]+), unique
  claim, source      the claim in words; the paper and its table, section or figure
  method_a, metric_a side A: a method id (a sampling variant is `<method>@<variant>`), or `*`: every
                     model that ran on the dataset, one row each (only against a bound)
  claimed            `<` (A lower than B) or `>` (A higher than B)
  method_b, metric_b side B: a method id and a metric (empty metric_b: metric_a, so a claim may also
                     compare two metrics of one method)
  bound, bound_reason  instead of side B: a fixed number, and why that number
Checked on load; a bad row stops with the file, its line and what to fix. Beside these, each
ordering a source table prints between a baseline and the method it ablates (from the paper numbers,
ebmbench.evaluate.orderings) is a claim of its own, on the datasets its table reports and on every
dataset no paper reports (digits, a user's folder).

Each claim is measured on every dataset of the run from the per-seed metrics records (never the
table's means): the difference A - B over the seeds both sides ran, paired by seed (a t-interval
over the paired differences, ebmbench.evaluate.intervals.combine), else a Welch interval of the two
means; against a bound, the t-interval of A's mean. Verdict: `holds` (the interval lies on the
claimed side of 0), `reversed` (on the other side), `inconclusive` (it spans 0; one seed gives no
interval), or `not measured (<why>)`.
"""

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..io import SuiteError, atomic_path
from .intervals import LEVEL, combine
from .orderings import paper_orderings
from .paper_numbers import csv_rows
from .paper_numbers import load_all as load_paper_numbers
from .scoring import LOWER_IS_BETTER, METRICS

PATH = Path(str(resources.files("ebmbench.methods") / "claims.csv"))
FIELDS = ["id", "claim", "source", "method_a", "metric_a", "claimed", "method_b", "metric_b", "bound", "bound_reason"]
COLUMNS = ["dataset", "id", "claim", "source", "method_a", "metric_a", "claimed", "method_b", "metric_b", "bound"]
COLUMNS += ["mean_a", "mean_b", "difference", "lo", "hi", "n_seeds", "interval", "verdict"]


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    method_a: str
    metric_a: str
    claimed: str  # "<": A's value is lower than B's; ">": higher
    method_b: str | None
    metric_b: str
    bound: float | None = None
    paper_datasets: frozenset | None = None  # a printed ordering: the datasets its source table reports


def known_methods() -> set:
    from ..registry import method_ids

    return set(method_ids()) | {"uniform_noise"}


def method_known(name: str, known: set) -> bool:
    """A suite method id, or one of a method's sampling variants (its VARIANTS): `<method>@<variant>`."""
    from ..registry import get_method

    base, at, variant = name.partition("@")
    return base in known and (not at or (base != "uniform_noise" and variant in get_method(base).VARIANTS))


def _row(raw: dict, where: str, known: set) -> Claim:
    def bad(field, why):
        return SuiteError(
            f"{where}, column '{field}' = {raw.get(field)!r}: {why}. Fix that row of the claims file "
            f"(columns: {', '.join(FIELDS)})."
        )

    for f in ("id", "claim", "source", "method_a", "metric_a", "claimed"):
        if not raw[f].strip():
            raise bad(f, "empty")
    if not re.fullmatch(r"[a-z0-9_]+", raw["id"]):
        raise bad("id", "use lower-case letters, digits and _ only")
    for f in ("metric_a", "metric_b"):
        if raw[f] and raw[f] not in METRICS:  # the scored ones, the memorised share, the methods' own
            raise bad(f, f"not a metric of this suite ({', '.join(sorted(METRICS))})")
    variants = "; a sampling variant is <method>@<variant>, one of the method's VARIANTS"
    if raw["method_a"] != "*" and not method_known(raw["method_a"], known):
        raise bad(
            "method_a", f"not a method of this suite ({', '.join(sorted(known))}, or * for every model){variants}"
        )
    if raw["claimed"] not in ("<", ">"):
        raise bad("claimed", "must be < (side A lower than side B) or > (higher)")
    bound = None
    if raw["bound"]:
        if raw["method_b"] or raw["metric_b"]:
            raise bad("bound", "a claim has either side B (method_b, metric_b) or a bound, not both")
        try:
            bound = float(raw["bound"])
        except ValueError:
            raise bad("bound", "not a number") from None
        if not math.isfinite(bound):
            raise bad("bound", "must be finite")
        if not raw["bound_reason"].strip():
            raise bad("bound_reason", "a bound needs its reason (why that number)")
    elif not method_known(raw["method_b"], known):
        raise bad("method_b", f"not a method of this suite ({', '.join(sorted(known))}){variants}; or give a bound")
    elif raw["method_a"] == "*":
        raise bad("method_a", "* (every model) compares with a bound only")
    elif (raw["method_b"], raw["metric_b"] or raw["metric_a"]) == (raw["method_a"], raw["metric_a"]):
        raise bad("method_b", "side B is side A itself: name another method or another metric")
    return Claim(
        raw["id"],
        raw["claim"],
        raw["source"],
        raw["method_a"],
        raw["metric_a"],
        raw["claimed"],
        raw["method_b"] or None,
        raw["metric_b"] or raw["metric_a"],
        bound,
    )


def load(path=PATH) -> list[Claim]:
    """The claims of one ledger file, each row checked."""
    path = Path(path)
    rows = csv_rows(path, FIELDS, "claims file")
    out, seen, known = [], {}, known_methods()
    for line, raw in enumerate(rows, start=2):
        where = f"{path} line {line} (claim '{raw.get('id')}')"
        if None in raw or any(v is None for v in raw.values()):
            raise SuiteError(f"{where}: has {len(raw)} columns instead of {len(FIELDS)}; quote fields holding commas.")
        c = _row(raw, where, known)
        if c.id in seen:
            raise SuiteError(f"{where}: the id is already used on line {seen[c.id]}; give each claim its own id.")
        seen[c.id] = line
        out.append(c)
    return out


def printed_orderings(paper=None) -> list[Claim]:
    """Each ordering a source table prints between a method and its baseline, as a claim."""
    out = []
    for (source, metric, better, worse), cells in paper_orderings(paper).items():
        shown = "; ".join(f"{d} {v[0]:g} vs {v[1]:g}" for d, v in cells.items())
        word = "lower" if LOWER_IS_BETTER[metric] else "higher"
        out.append(
            Claim(
                f"{better}_beats_{worse}_{metric}",
                f"{better} beats {worse}, the baseline built from it minus one part: {word} {metric} "
                f"(the paper: {shown})",
                source,
                better,
                metric,
                "<" if LOWER_IS_BETTER[metric] else ">",
                worse,
                metric,
                paper_datasets=frozenset(cells),
            )
        )
    return out


def side_values(records: list[dict], method: str, metric: str) -> tuple[dict, str | None]:
    """{seed: value} of one method's metric on one dataset, or ({}, why not measured)."""
    if not records:
        return {}, f"no run of {method}"
    bad = [r for r in records if r.get("status", "ok") != "ok"]
    if bad:
        return {}, f"{method} {bad[0]['status']} (seed {bad[0].get('seed')})"
    if not any(metric in r for r in records):
        return {}, f"{method} has no {metric}"
    for r in records:
        if r.get(metric) is None:
            return {}, f"{method} seed {r.get('seed')}: {r.get(metric + '_unavailable', 'no ' + metric)}"
    return {r.get("seed"): float(r[metric]) for r in records}, None


def difference(a: dict, b: dict | float) -> dict:
    """A - B with its 95 % interval: paired by seed where the sides share two seeds or more, else Welch;
    against a bound (a float), the t-interval of A's mean."""
    if not isinstance(b, dict):
        iv = combine(list(a.values()))
        mean_a, mean_b, d, h, n, how = iv.mean, b, iv.mean - b, iv.half_width, iv.n_seeds, "t, against the bound"
    elif len(shared := sorted(set(a) & set(b), key=str)) >= 2:
        iv = combine([a[s] - b[s] for s in shared])
        mean_a, mean_b = np.mean([a[s] for s in shared]), np.mean([b[s] for s in shared])
        d, h, n, how = iv.mean, iv.half_width, len(shared), "t over paired differences"
    else:
        va, vb = np.array(list(a.values())), np.array(list(b.values()))
        mean_a, mean_b, n, how = va.mean(), vb.mean(), min(len(va), len(vb)), "Welch t, unpaired"
        d, h = mean_a - mean_b, math.inf
        if len(va) > 1 and len(vb) > 1:
            sa, sb = va.var(ddof=1) / len(va), vb.var(ddof=1) / len(vb)
            df = (sa + sb) ** 2 / (sa**2 / (len(va) - 1) + sb**2 / (len(vb) - 1)) if sa + sb > 0 else 1
            h = stats.t.ppf(0.5 + LEVEL / 2, df) * math.sqrt(sa + sb)
    text = f"{n} seed{'s' * (n != 1)}, " + (how if math.isfinite(h) else "no interval (one seed)")
    return {"mean_a": float(mean_a), "mean_b": float(mean_b), "difference": float(d)} | {
        "lo": float(d - h),
        "hi": float(d + h),
        "n_seeds": n,
        "interval": text,
    }


def verdict(claimed: str, lo: float, hi: float) -> str:
    """holds: the interval of A - B lies wholly on the claimed side of 0; reversed: wholly on the other."""
    below, above = hi < 0, lo > 0
    if below or above:
        return "holds" if below == (claimed == "<") else "reversed"
    return "inconclusive"


def measure(c: Claim, dataset: str, runs: dict, method_a: str) -> dict:
    """One claim on one dataset; `runs`: (method, dataset) -> that group's metrics records."""
    row = {"dataset": dataset, "id": c.id, "claim": c.claim, "source": c.source, "method_a": method_a}
    row |= {"metric_a": c.metric_a, "claimed": c.claimed, "method_b": c.method_b or "", "bound": c.bound}
    row["metric_b"] = "" if c.bound is not None else c.metric_b
    a, why_a = side_values(runs.get((method_a, dataset), []), method_a, c.metric_a)
    if c.bound is not None:
        b, why_b = c.bound, None
    else:
        b, why_b = side_values(runs.get((c.method_b, dataset), []), c.method_b, c.metric_b)
    why = "; ".join(dict.fromkeys(w for w in (why_a, why_b) if w))  # two metrics of one method: said once
    if why:
        return row | {"n_seeds": 0, "verdict": f"not measured ({why})"}
    row |= difference(a, b)
    return row | {"verdict": verdict(c.claimed, row["lo"], row["hi"])}


def build_claims(records: list[dict], out=None, claims=None, paper=None) -> pd.DataFrame:
    """The ledger measured on every dataset of `records` (metrics records, `metrics_record`):
    the printed orderings first, then the ledger file's claims; written as CSV to `out`."""
    paper = load_paper_numbers() if paper is None else paper
    claims = printed_orderings(paper) + (load() if claims is None else claims)
    paper_datasets = {p.dataset for p in paper}
    runs: dict[tuple, list] = {}
    for r in records:
        runs.setdefault((r["method"], r["dataset"]), []).append(r)
    rows = []
    for dataset in sorted({d for _, d in runs}):
        models = sorted(m for m, d in runs if d == dataset and m in known_methods() - {"uniform_noise"})
        for c in claims:
            if c.paper_datasets is not None and dataset in paper_datasets - c.paper_datasets:
                continue  # the source table reports this dataset and prints no such ordering on it
            for method_a in (models or ["*"]) if c.method_a == "*" else [c.method_a]:
                if method_a == "*":  # no model ran on this dataset
                    rows.append(measure(c, dataset, runs, "*") | {"verdict": "not measured (no model ran)"})
                else:
                    rows.append(measure(c, dataset, runs, method_a))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        with atomic_path(out) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    return df


def format_claims(df: pd.DataFrame) -> str:
    """The printed summary: one line per claim and dataset."""
    lines = ["Claims of the papers, measured (A vs B: means over seeds, A - B with its 95 % interval):"]
    for r in df.itertuples():
        b = f"bound {r.bound:g}" if pd.notna(r.bound) else f"{r.method_b} {r.metric_b}"
        if pd.isna(r.difference):
            got = ""
        else:
            got = f": {r.mean_a:.4g} vs {r.mean_b:.4g}, A - B {r.difference:+.3g} [{r.lo:+.3g}, {r.hi:+.3g}] ({r.interval})"
        lines.append(f"  {r.dataset} {r.id}: {r.method_a} {r.metric_a} {r.claimed} {b}{got} -> {r.verdict}")
    return "\n".join(lines if len(df) else lines + ["  (none: no runs)"])
