"""Files between stages: atomic writes, checkpoints (state_dicts + JSON sidecar), JSONL logs,
the run-folder lock, and OS faults turned into one paragraph naming the path and the fix."""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import torch


class SuiteError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""


# What the user can do about each OS fault (errno) met while writing.
_REMEDY = {
    errno.ENOSPC: "the disk holding it is full: free space there or write the outputs to another disk, then rerun",
    errno.EDQUOT: "the disk quota is exhausted: free space within the quota or write elsewhere, then rerun",
    errno.EROFS: "its file system is mounted read-only: write the outputs to a writable location",
    errno.EACCES: "permission denied: make the folder writable for this user (chmod/chown) or write elsewhere",
    errno.EPERM: "the operation is not permitted there: make the folder writable for this user or write elsewhere",
    errno.EEXIST: "something of that name is in the way: remove it or choose another output path",
    errno.EISDIR: "it is a directory where a file is meant: remove it or choose another output path",
    errno.ENOTDIR: "a part of the path is a file where a folder is meant: remove it or choose another output path",
    errno.ENAMETOOLONG: "the path is too long for the file system: choose a shorter output path",
}


def os_fault(err: OSError, path=None, action: str = "write") -> SuiteError:
    """One paragraph for an OS error: the path, what failed, and the fix."""
    where = err.filename or path
    code = err.errno
    if code is None and where is not None and _free_bytes(Path(where)) < 1 << 20:
        code = errno.ENOSPC  # numpy reports a short write on a full disk without an errno
    remedy = _REMEDY.get(code, "check the path and the disk, then rerun")
    if isinstance(err, urllib.error.URLError):  # a download: torch-fidelity's Inception weights, a dataset
        return SuiteError(
            f"a download failed ({err.reason}): this machine is offline or the server is unreachable. "
            f"Give local files instead (Inception: --weights / metrics.inception_weights with a copy "
            f"of pt_inception-2015-12-05; datasets: unpack them under the data root)."
        )
    return SuiteError(f"cannot {action} {where if where is not None else 'a file'} ({err.strerror or err}): {remedy}.")


def _free_bytes(path: Path) -> int:
    anc = path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    try:
        return shutil.disk_usage(anc).free
    except OSError:
        return 1 << 62


def _umask() -> int:
    # read-only query: os.umask sets and returns the old value, so set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` only if the block succeeds.

    A reader never sees a half-written file, and a failure (disk full, kill) leaves any
    previous version of `path` untouched. The file gets the permissions of the user's umask
    (mkstemp creates 0600, which collaborators on a shared cluster could not read). OS faults
    become one SuiteError naming the path.
    """
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise os_fault(err, path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path} does not exist.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SuiteError(f"{path} is not valid JSON ({err}); delete it and rerun the step that makes it.") from None


def save_torch(path, obj) -> None:
    with atomic_path(path) as tmp:
        # through a file object: torch.save(path) turns a full disk into an opaque RuntimeError
        # ("unexpected pos"), a file object passes the OSError (ENOSPC) through
        with open(tmp, "wb") as f:
            torch.save(obj, f)


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
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as err:
        raise os_fault(err, path) from None


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


def sha256_bytes(*chunks: bytes | memoryview) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def sha256_file(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] NCHW float -> uint8 NHWC, the suite's image interchange format."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_float(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> [-1, 1] NCHW float."""
    x = torch.as_tensor(np.array(x))  # a copy: prepared data is memory-mapped read-only
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1


LOCK = ".ebmbench.lock"


@contextlib.contextmanager
def folder_lock(folder):
    """Hold an exclusive lock on an output folder: one writer at a time, so two runs never
    interleave their logs and checkpoints. A second writer fails at once naming the holder's PID.
    flock is released by the kernel when the holder dies, so a killed run never leaves a stale lock."""
    folder = Path(folder)
    path = folder / LOCK
    created = [d for d in (folder, *folder.parents) if not d.exists()]  # removed again if the step fails empty
    fd = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(fd)
                os.close(fd)
                raise SuiteError(
                    f"output folder {folder} is being written by another process (PID {holder}, lock file {path}). "
                    f"Wait for it to finish or stop it (kill {holder}), or write to another folder."
                ) from None
            # the previous holder may have unlinked the file between our open and our lock: retry on the new one
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
            os.close(fd)
            fd = None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError as err:
        _release(fd, path, created)
        raise os_fault(err, path) from None
    try:
        yield
    except BaseException:
        _release(fd, path, created)
        raise
    _release(fd, path, [])


def _lock_holder(fd) -> str:
    """The PID in a held lock file. The holder writes it just after taking the lock, so a reader
    that comes in between sees an empty file: wait a moment for the PID rather than say "unknown"."""
    for _ in range(200):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.005)
    return "unknown"


def _release(fd, path: Path, created: list) -> None:
    """Unlock and remove the lock file; folders this step created are removed if still empty."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    if fd is not None:
        os.close(fd)
    for d in created:  # innermost first; a folder holding anything stays
        with contextlib.suppress(OSError):
            d.rmdir()


def remove_outputs(folder, names) -> None:
    """Remove the outputs a step is about to rewrite, so an interrupted rerun never leaves its new
    files beside the previous run's (a mixture of two runs)."""
    for name in names:
        p = Path(folder) / name
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        except OSError as err:
            raise os_fault(err, p, "remove") from None
