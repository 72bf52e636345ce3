"""Score one training run of a method at several iterations: how a CPU preset's schedule was chosen.

    python benchmarks/preset_sweep.py --method short_run --data resources/data/digits \\
        --weights resources/digits_classifier.pt --seed 0 --at 1000,2000,2500 \\
        [--set lr=8e-4 --set lr_decay_fraction=0.2 ...] [--n 1000] [--out benchmarks/sweeps]

Trains as `ebmbench train` does, with the same epoch order and per-iteration random streams, so at
the last milestone the model is the workflow's when the run had no early warning or divergence
(this sweep has neither rule: it prints the energies every 100 iterations and stops at the first
non-finite loss). n_iters is the last milestone, so a schedule that counts towards n_iters (short_run's
lr decay) is the one a preset with that n_iters would run. At each milestone it draws --n samples from
`sample`'s seeded streams and scores them with `score` (digits classifier: FID, precision, recall).
One line per milestone; <out>/<label>/it<k>/ keeps samples.npz, grid.png and metrics.json.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ebmbench.data import dataset_info, load_prepared
from ebmbench.evaluate.scoring import score
from ebmbench.io import save_npz, to_float
from ebmbench.plots import image_grid
from ebmbench.registry import resolve_config
from ebmbench.runs import build, run_identity
from ebmbench.sampling import draw_samples
from ebmbench.seeding import derive_seed, epoch_order, seeded_generator


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True)
    ap.add_argument("--data", required=True, help="prepared dataset folder (its name is the preset)")
    ap.add_argument("--weights", required=True, help="digits classifier weights (resources/digits_classifier.pt)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--at", required=True, help="milestones, comma-separated iteration counts")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Config override (YAML value)")
    ap.add_argument("--n", type=int, default=1000, help="samples scored at each milestone")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--label", default=None, help="folder name of this sweep (default: method, seed, overrides)")
    ap.add_argument("--out", default="benchmarks/sweeps")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    milestones = sorted(int(m) for m in a.at.split(","))
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    info = dataset_info(a.data)
    cfg = resolve_config(a.method, info["name"], {**overrides, "n_iters": milestones[-1]})
    label = a.label or "_".join([a.method, f"seed{a.seed}", *(s.replace("=", "") for s in a.set)])
    out = Path(a.out) / label
    images = load_prepared(a.data, "train")
    n, bs = len(images), cfg.batch_size
    per_epoch, dev = n // bs, torch.device("cpu")
    torch.manual_seed(a.seed)  # network initialisation, as the loop does
    model = build(run_identity(a.method, info["name"], a.seed, cfg, info), dev)
    t_train, perm = 0.0, None
    for i in range(cfg.n_iters):
        t0 = time.perf_counter()
        model.train()
        epoch, pos = divmod(i, per_epoch)
        if perm is None or pos == 0:
            perm = epoch_order(a.seed, epoch, n)
        x = to_float(images[np.sort(perm[pos * bs : (pos + 1) * bs].numpy())])
        torch.manual_seed(derive_seed(a.seed, "global", i))
        stats = model.train_step(x, seeded_generator(dev, a.seed, "iteration", i))
        if pos == per_epoch - 1:
            model.end_epoch()
        t_train += time.perf_counter() - t0
        if not all(math.isfinite(v) for v in stats.values()):
            sys.exit(f"{label}: non-finite value at iteration {i}: {stats}")
        if i % 100 == 0:
            print(f"{label} it {i}: " + ", ".join(f"{k} {v:.3g}" for k, v in stats.items()), file=sys.stderr)
        if i + 1 in milestones:
            model.train(False)
            samples, _ = draw_samples(model, a.n, a.seed)
            d = out / f"it{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            save_npz(d / "samples.npz", images=samples)
            image_grid(samples[:64], d / "grid.png", nrow=8)
            m = score(d / "samples.npz", a.data, "digits", weights=a.weights, cache_dir=Path(a.out) / "cache")
            row = {"label": label, "iter": i + 1, "train_s": round(t_train, 1)}
            row |= {k: round(m[k], 4) for k in ("fid", "precision", "recall")}
            (d / "metrics.json").write_text(json.dumps(row | {"overrides": overrides}, indent=1))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
