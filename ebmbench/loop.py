"""The generic training loop: seeding, data order, logging, checkpoints, resume, divergence.

Determinism by design: iteration i draws every random number from a generator seeded with
(seed, i), and epoch e's data order from (seed, e). A resumed run therefore needs only the
iteration counter and the state_dicts to continue exactly where an uninterrupted run would be.
"""
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import dataset_info, load_prepared
from .io import SuiteError, append_jsonl, load_torch, read_json, read_jsonl, save_torch, to_float, write_json
from .registry import get_method, resolve_config

CHECKPOINT = "state-latest.pt"  # undeclared to Snakemake, so it survives a failed job and is resumed
FINAL = "model.pt"


class DivergenceError(SuiteError):
    pass


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SuiteError(f"device '{device}' requested but no CUDA GPU is visible; use device: cpu or auto.")
    return torch.device(device)


def iteration_generator(seed: int, i: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed << 32) + i)
    return g


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed((seed << 32) + (1 << 31) + epoch)
    return torch.randperm(n, generator=g)


def run_identity(method: str, preset: str, seed: int, cfg, data_info: dict) -> dict:
    """What a checkpoint must match to be resumed or sampled as this run."""
    return {
        "method": method,
        "preset": preset,
        "seed": seed,
        "dataset": data_info["name"],
        "data_sha256": data_info["sha256"],
        "image_shape": list(data_info["image_shape"]),  # H, W, C
        "config": dataclasses.asdict(cfg),
    }


def build(identity: dict, device):
    cls = get_method(identity["method"])
    cfg = cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in identity["config"].items()})
    h, w, c = identity["image_shape"]
    return cls(cfg, (c, h, w), device)


def load_checkpoint(path, identity: dict | None = None) -> dict:
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or "identity" not in ckpt or "method_state" not in ckpt:
        raise SuiteError(f"{path} is not a checkpoint written by this suite.")
    if identity is not None and ckpt["identity"] != identity:
        diff = sorted(k for k in identity if ckpt["identity"].get(k) != identity[k])
        raise SuiteError(
            f"checkpoint {path} belongs to another run (differs in: {', '.join(diff)}). "
            f"Delete {Path(path).parent} to start this run afresh, or restore the config it was made with."
        )
    return ckpt


def check_finite(i: int, stats: dict) -> None:
    for k, v in stats.items():
        if not math.isfinite(v):
            raise DivergenceError(f"training diverged at iteration {i}: {k} = {v}.")


def train(method: str, data_dir, out_dir, seed: int = 0, preset: str | None = None, overrides: dict | None = None,
          device: str = "auto", progress: bool = True) -> dict:
    out_dir, dev = Path(out_dir), pick_device(device)
    info = dataset_info(data_dir)
    preset = preset or info["name"]
    cfg = resolve_config(method, preset, overrides)
    identity = run_identity(method, preset, seed, cfg, info)
    images = load_prepared(data_dir, "train")
    n, bs = len(images), cfg.batch_size
    if bs > n:
        raise SuiteError(f"batch_size {bs} is larger than the {n} training images of '{info['name']}'.")
    iters_per_epoch = n // bs  # drop_last, as the released codes do

    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(seed)  # network initialisation
    model = build(identity, dev)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = 0
    if (out_dir / CHECKPOINT).exists():
        ckpt = load_checkpoint(out_dir / CHECKPOINT, identity)
        model.load_state_dict(ckpt["method_state"])
        start = ckpt["iter"]
        # drop log lines written after the checkpoint: they will be recomputed identically
        kept = [r for r in read_jsonl(out_dir / "log.jsonl") if r["iter"] < start]
        (out_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    else:
        (out_dir / "log.jsonl").write_text("")
    write_json(out_dir / "config.json", identity)

    model.train()
    t0, perm, bar = time.time(), None, tqdm(total=cfg.n_iters, initial=start, desc=f"{method}/{info['name']}/seed{seed}",
                                             unit="it", disable=not progress, dynamic_ncols=True)
    for i in range(start, cfg.n_iters):
        epoch, pos = divmod(i, iters_per_epoch)
        if perm is None or pos == 0:
            perm = epoch_order(seed, epoch, n)
        idx = np.sort(perm[pos * bs:(pos + 1) * bs].numpy())
        x = to_float(images[idx]).to(dev)
        torch.manual_seed((seed << 32) + i)  # any stray use of the global RNG is reproducible too
        stats = model.train_step(x, iteration_generator(seed, i, dev))
        check_finite(i, stats)
        append_jsonl(out_dir / "log.jsonl", {"iter": i, "epoch": epoch, **stats})
        if pos == iters_per_epoch - 1:
            model.end_epoch()
        if (i + 1) % cfg.checkpoint_every == 0 or i + 1 == cfg.n_iters:
            save_torch(out_dir / CHECKPOINT, {"iter": i + 1, "identity": identity, "method_state": model.state_dict()})
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(stats.items())[:3]})
    bar.close()
    seconds = time.time() - t0
    save_torch(out_dir / FINAL, {"iter": cfg.n_iters, "identity": identity, "method_state": model.state_dict()})
    from .plots import training_curves

    training_curves(read_jsonl(out_dir / "log.jsonl"), out_dir / "curves.png", title=f"{method} on {info['name']} (seed {seed})")
    summary = {"iterations": cfg.n_iters, "resumed_from": start, "seconds": round(seconds, 2),
               "seconds_per_iter": round(seconds / max(1, cfg.n_iters - start), 4), "device": str(dev)}
    write_json(out_dir / "train.json", summary)
    return summary


def load_run(run_dir, device: str = "auto"):
    """Rebuild a trained method from `run_dir/model.pt` (its identity travels inside)."""
    dev = pick_device(device)
    ckpt = load_checkpoint(Path(run_dir) / FINAL)
    model = build(ckpt["identity"], dev)
    model.load_state_dict(ckpt["method_state"])
    model.train(False)
    return model, ckpt["identity"]
