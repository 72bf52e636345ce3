"""The early warning measured on finished runs: for each run folder, when the rule fired, when the
run diverged (the loop's stop: a non-finite value or the energy-gap bound) or ran away (its energy
gap's magnitude first past 1,000, the bound the digits presets were tried with), and when its first
non-finite value came. Replays log.jsonl through ebmbench.health.EarlyWarning with the run's own
config, so a rule changed since the run was trained is measured as it stands now.

    python benchmarks/early_warning.py RUN_DIR [RUN_DIR ...] [--out table.md]

A healthy run's line with a warning is a false alarm.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from ebmbench.health import EarlyWarning, is_health_field

RUNAWAY_GAP = 1000.0


def replay(run: Path) -> dict:
    if not (run / "log.jsonl").is_file() or not (run / "config.json").is_file():
        raise SystemExit(f"{run} is not a run folder (no log.jsonl and config.json): pass folders `train` wrote.")
    identity = json.loads((run / "config.json").read_text())
    cfg = identity["config"]
    rule = EarlyWarning(cfg.get("warn_growth", 2.0), cfg.get("warn_window", 10), cfg.get("warn_after", 100))
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    lines = [r for r in lines if "event" not in r]
    warned = runaway = non_finite = None
    for r in lines:
        i = r["iter"]
        health = {k: v for k, v in r.items() if is_health_field(k)}
        if warned is None and rule.update(i, health) is not None:
            warned = i
        if runaway is None and abs(r.get("energy_gap", 0.0)) > RUNAWAY_GAP:
            runaway = i
        if non_finite is None and any(isinstance(v, float) and not math.isfinite(v) for v in r.values()):
            non_finite = i
    summary = json.loads((run / "train.json").read_text()) if (run / "train.json").exists() else {}
    diverged = summary.get("iter") if summary.get("status") == "diverged" else None
    if diverged is not None and "not finite" in summary.get("message", "") + summary.get("quantity", ""):
        non_finite = diverged
    return {
        "run": run.name,
        "method": identity["method"],
        "iterations": len(lines),
        "warning": warned,
        "diverged": diverged,
        "runaway": runaway,
        "non_finite": non_finite,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    rows = [replay(r) for r in a.runs]
    cols = ["run", "method", "iterations", "warning", "diverged", "runaway", "non_finite"]
    text = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    text += "".join("| " + " | ".join("-" if r[c] is None else str(r[c]) for c in cols) + " |\n" for r in rows)
    print(text, end="")
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
