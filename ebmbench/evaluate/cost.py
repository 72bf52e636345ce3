"""The cost table: Snakemake's own `benchmark:` records of the train, sample and score jobs, summed per
dataset x method. Nothing here times anything: the records are Snakemake's.

Layout read (written by the rules' `benchmark:` directives):
    <root>/<rule>/<dataset>/<method>/seed<seed>.tsv      train, sample, score of a run
    <root>/score/<dataset>/uniform_noise.tsv             the noise ceiling's score (method uniform_noise)
Each TSV has a header (s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out, mean_load,
cpu_time; newer Snakemake may add columns, which are ignored) and one row per repetition of the job;
repetitions of one job are averaged (peak RSS: their maximum), jobs (seeds) are summed. max_rss is in MB, as Snakemake writes it.
"""

import csv
import math
from pathlib import Path

from ..io import SuiteError

FIELDS = ("s", "max_rss", "cpu_time")
COLUMNS = ("dataset", "method", "rule", "jobs", "seconds", "seconds_per_job", "cpu_seconds", "max_rss_mb")


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):  # Snakemake writes "-" or "NA" where it could not measure
        return math.nan


def read_record(path: Path) -> dict:
    """One job's wall and CPU seconds (mean over its repetitions) and peak RSS in MB (their maximum)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise SuiteError(f"{path} is not a Snakemake benchmark record (expected a header with 's', 'max_rss', ...).")
    out = {}
    for k in FIELDS:
        vals = [x for x in (_number(r.get(k)) for r in rows) if not math.isnan(x)]
        out[k] = math.nan if not vals else max(vals) if k == "max_rss" else sum(vals) / len(vals)
    return out


def records(root) -> list[dict]:
    """Every record under root, keyed by rule, dataset, method and seed (None for uniform noise)."""
    root, found = Path(root), []
    for path in sorted(root.glob("*/*/*/seed*.tsv")):
        rule, dataset, method = path.parts[-4:-1]
        found.append(
            {"rule": rule, "dataset": dataset, "method": method, "seed": int(path.stem[4:]), **read_record(path)}
        )
    for path in sorted(root.glob("score/*/uniform_noise.tsv")):
        found.append(
            {"rule": "score", "dataset": path.parent.name, "method": "uniform_noise", "seed": None, **read_record(path)}
        )
    return found


def _nansum(vals) -> float:
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) if vals else math.nan


def cost_table(root) -> list[dict]:
    """Rows per dataset x method x rule, a 'total' row per dataset x method, and an 'all' total."""
    recs = records(root)
    if not recs:
        raise SuiteError(
            f"no Snakemake benchmark records under {root} (expected <rule>/<dataset>/<method>/seed<k>.tsv); "
            f"run the workflow first."
        )

    def row(dataset, method, rule, group):
        s = _nansum(r["s"] for r in group)
        rss = [r["max_rss"] for r in group if not math.isnan(r["max_rss"])]
        return {
            "dataset": dataset,
            "method": method,
            "rule": rule,
            "jobs": len(group),
            "seconds": s,
            "seconds_per_job": s / len(group),
            "cpu_seconds": _nansum(r["cpu_time"] for r in group),
            "max_rss_mb": max(rss) if rss else math.nan,
        }

    out = []
    for dataset, method in sorted({(r["dataset"], r["method"]) for r in recs}):
        mine = [r for r in recs if (r["dataset"], r["method"]) == (dataset, method)]
        for rule in sorted({r["rule"] for r in mine}):
            out.append(row(dataset, method, rule, [r for r in mine if r["rule"] == rule]))
        out.append(row(dataset, method, "total", mine))
    out.append(row("all", "all", "total", recs))
    return out


def write_cost(rows: list[dict], path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k in COLUMNS} for r in rows
        )


def format_cost(rows: list[dict]) -> str:
    lines = [
        f"{'dataset':<10} {'method':<16} {'rule':<7} {'jobs':>4} {'wall s':>9} {'s/job':>8} {'cpu s':>9} {'max RSS MB':>10}"
    ]
    for r in rows:
        lines.append(
            f"{r['dataset']:<10} {r['method']:<16} {r['rule']:<7} {r['jobs']:>4} {r['seconds']:>9.1f} "
            f"{r['seconds_per_job']:>8.1f} {r['cpu_seconds']:>9.1f} {r['max_rss_mb']:>10.0f}"
        )
    return "\n".join(lines)
