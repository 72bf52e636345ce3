"""A run's identity and its checkpoints: what a checkpoint must match to be resumed or sampled as
a run, the records written to the run folder, and a trained run rebuilt from its model.pt."""

import dataclasses
from pathlib import Path

import torch

from .io import SuiteError, load_torch
from .method_base import on_off
from .registry import get_method

CHECKPOINT = "state-latest.pt"  # undeclared to Snakemake, so it survives a failed job and is resumed
FINAL = "model.pt"
# What a (re)run rewrites in its folder, and what was derived from an earlier model there.
REWRITTEN = (
    FINAL,
    "train.json",
    "curves.png",
    "health.png",
    "samples.npz",
    "samples.json",
    "grid.png",
    "figures",
    "metrics.json",
)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SuiteError(f"device '{device}' requested but no CUDA GPU is visible; use device: cpu or auto.")
    return torch.device(device)


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


# Speed switches that change rounding are part of a run. A checkpoint written before they existed
# ran them all off, so an absent one reads as off; on/off and True/False are the same value.
SWITCHES_BEFORE = {"channels_last": "off", "compile": False, "bf16": "off"}


def build(identity: dict, device):
    cls = get_method(identity["method"])
    config = {**SWITCHES_BEFORE, **identity["config"]}  # a model trained before the switches ran them off
    cfg = cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    h, w, c = identity["image_shape"]
    model = cls(cfg, (c, h, w), device)
    model.speed_up()
    return model


# How often to checkpoint and how often to retry do not change what is computed: a run may be
# resumed with other values.
# freeze_params leaves every number bitwise the same (tests/test_perf.py).
RUN_POLICY = (
    "checkpoint_every",
    "divergence_retries",
    "n_samples",
    "freeze_params",
)  # n_samples: read by `sample` only


def comparable(identity: dict) -> dict:
    config = {**SWITCHES_BEFORE, **identity["config"]}
    return {
        **identity,
        "config": {k: on_off(v) if k in SWITCHES_BEFORE else v for k, v in config.items() if k not in RUN_POLICY},
    }


class OtherRunCheckpoint(SuiteError):
    """A valid checkpoint, but of another run (other config, seed or data)."""


def load_checkpoint(path, identity: dict | None = None) -> dict:
    ckpt = load_torch(path)
    if not isinstance(ckpt, dict) or "identity" not in ckpt or "method_state" not in ckpt:
        raise SuiteError(f"{path} is not a checkpoint written by this suite.")
    if identity is not None and comparable(ckpt["identity"]) != comparable(identity):
        theirs, mine = comparable(ckpt["identity"]), comparable(identity)
        diff = sorted(
            {k for k in mine if theirs.get(k) != mine[k]}
            | {f"config.{k}" for k in mine["config"] if theirs["config"].get(k) != mine["config"][k]}
        )
        raise OtherRunCheckpoint(
            f"checkpoint {path} belongs to another run (differs in: {', '.join(diff)}). "
            f"Delete {Path(path).parent} to start this run afresh, or restore the config it was made with."
        )
    return ckpt


def checkpoint_record(i, identity, model, progress) -> dict:
    return {"iter": i, "identity": identity, "method_state": model.state_dict(), "progress": progress}


def load_run(run_dir, device: str = "auto"):
    """Rebuild a trained method from `run_dir/model.pt` (its identity travels inside)."""
    dev = pick_device(device)
    ckpt = load_checkpoint(Path(run_dir) / FINAL)
    model = build(ckpt["identity"], dev)
    model.load_state_dict(ckpt["method_state"])
    model.train(False)
    return model, ckpt["identity"], ckpt.get("status", {"status": "ok"})
