"""Where a number came from, recorded in every metrics.json: the image (or "local"), the code's git
commit and whether the tree was dirty, the torch stack's versions, the device, and a hash of the
run's configuration, so that a table row can be traced to the exact software that made it."""

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from . import __version__
from .container import RECORD_IN_IMAGE, git_state
from .io import read_json


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def device_name(device: str) -> str:
    """The GPU's name for a CUDA device, else the CPU model (from /proc/cpuinfo on Linux)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def config_hash(samples_path) -> str | None:
    """sha256 of the run identity (method, preset, seed, data hash, full Config) in the model.pt
    beside the samples; of samples.json for runs without a model (uniform noise)."""
    from .io import load_torch

    run_dir = Path(samples_path).parent
    if (run_dir / "model.pt").exists():
        identity = load_torch(run_dir / "model.pt")["identity"]
    elif (run_dir / "samples.json").exists():
        identity = read_json(run_dir / "samples.json")
    else:
        return None
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def provenance(samples_path, device: str) -> dict:
    """Inside an image (Docker, or Apptainer's .sif of it) the image's environment names its tag and
    the commit it was built from (it holds no .git), and the record that `docker run` mounts gives
    the image id; a local run asks git directly."""
    tag = os.environ.get("EBMBENCH_IMAGE_TAG")
    if tag:
        record = Path(os.environ.get(RECORD_IN_IMAGE, "/nonexistent"))
        where = {
            "image": tag,
            "image_id": read_json(record)["image_id"] if record.is_file() else None,
            "git_commit": os.environ.get("EBMBENCH_GIT_COMMIT") or None,
            "git_dirty": {"true": True, "false": False}.get(os.environ.get("EBMBENCH_GIT_DIRTY", "")),
        }
    else:
        where = {"image": "local", "image_id": None, **git_state()}
    return {
        **where,
        "ebmbench": __version__,
        "torch": _version("torch"),
        "torchvision": _version("torchvision"),
        "torch_fidelity": _version("torch-fidelity"),
        "device": device_name(device),
        "config_hash": config_hash(samples_path),
    }
