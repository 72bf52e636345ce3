"""Write the regression gate's expected values from default-config runs over several seeds.

    python tests/expected/measure.py results/digits > tests/expected/digits.csv

expected = mean over the seeds that finished; tolerance = max(25 %, 3 x relative std), capped at
100 %. The 25 % floor covers the machine-to-machine spread measured on the same commit (2-13 % on
seed-0 digits FIDs between two x86 CPUs, docs/performance.md); 3 x the seed spread covers a new seed.
"""

import csv
import json
import math
import sys
from pathlib import Path

# deterministic given the seed (not seconds_per_1000; memorised is mostly exactly 0)
METRICS = ("fid", "is", "kid", "mse", "precision", "recon_mse_noise", "z_mse_before_revision", "z_mse_after_revision")
METRICS += ("locality",)


def main(root: str) -> None:
    runs: dict[tuple[str, str], list[tuple[int, dict]]] = {}
    # a model's runs and its sampling variants' (<method>/seed<k>/variants/<name>/metrics.json)
    for f in sorted([*Path(root).glob("*/seed*/metrics.json"), *Path(root).glob("*/seed*/variants/*/metrics.json")]):
        m = json.loads(f.read_text())
        seed = next(int(part[4:]) for part in f.relative_to(root).parts if part.startswith("seed"))
        runs.setdefault((m["method"], m["dataset"]), []).append((seed, m))
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["method", "dataset", "metric", "expected", "tolerance", "reason"])
    for (method, dataset), rs in sorted(runs.items()):
        ok = [(s, m) for s, m in rs if m.get("status", "ok") == "ok"]
        bad = sorted(s for s, m in rs if m.get("status", "ok") != "ok")
        for metric in METRICS:
            vals = [
                (s, m[metric]) for s, m in ok if isinstance(m.get(metric), (int, float)) and math.isfinite(m[metric])
            ]
            if not vals or any(v == 0 for _, v in vals):  # a relative tolerance cannot hold a value of 0
                continue
            xs = [v for _, v in vals]
            mean = sum(xs) / len(xs)
            std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
            rel = std / abs(mean) if mean else 0.0
            tol = min(1.0, max(0.25, 3 * rel))
            seeds = ",".join(str(s) for s, _ in vals)
            reason = (
                f"mean of default-config runs with seeds {seeds} ({', '.join(f'{x:.4g}' for x in xs)}); "
                f"tolerance = max(25%, 3 x relative std {rel:.2f}), capped at 100%"
            )
            if bad:
                reason += f"; seed(s) {','.join(map(str, bad))} diverged and are not in the mean"
            out.writerow([method, dataset, metric, f"{mean:.6g}", f"{math.ceil(tol * 100) / 100:.2f}", reason])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/digits")
