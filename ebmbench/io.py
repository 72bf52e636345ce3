"""Files between stages: atomic writes, checkpoints (state_dicts + JSON sidecar), JSONL logs."""
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch


class SuiteError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds.

    A reader never sees a half-written file, and a failure (disk full, kill) leaves any
    previous version of `path` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path} does not exist.") from None
    except json.JSONDecodeError as err:
        raise SuiteError(f"{path} is not valid JSON ({err}); delete it and rerun the step that makes it.") from None


def save_torch(path, obj) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path, what: str = "checkpoint"):
    """Load a file written by save_torch with weights_only=True (no pickled code is executed)."""
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"{what} {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt zip archives
        raise SuiteError(
            f"{what} {path} is corrupt or truncated ({type(err).__name__}: {err}). "
            f"Delete it and rerun the step that writes it."
        ) from None


def save_npz(path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_images_npz(path, key: str = "images") -> np.ndarray:
    """Load a uint8 NHWC image array (the suite's sample format) and check its shape and dtype."""
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"sample file {path} does not exist.")
    try:
        with np.load(path) as f:
            if key not in f:
                raise SuiteError(f"{path} has no array '{key}' (found {list(f.keys())}).")
            arr = f[key]
    except SuiteError:
        raise
    except Exception as err:
        raise SuiteError(f"{path} is not a readable .npz file ({err}); rerun the step that writes it.") from None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise SuiteError(
            f"{path}:{key} must be uint8 images of shape (N, H, W, 3); got dtype {arr.dtype}, shape {arr.shape}."
        )
    return arr


def append_jsonl(path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: everything after it is unreliable
    return out


def sha256_bytes(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW float -> uint8 NHWC, the suite's image interchange format."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_float(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> [-1, 1] NCHW float."""
    x = torch.as_tensor(np.array(x))  # a copy: prepared data is memory-mapped read-only
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1
