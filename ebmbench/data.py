"""Prepared datasets: a source (ebmbench.sources) -> uint8 NHWC arrays (`train.npy`, `test.npy`,
`info.json`) in one folder, and the loaders every later stage reads them with.

Every later stage reads the prepared folder, never the raw data, so preprocessing happens once and
its description and content hash travel with the arrays (the hash names the cached reference
statistics of the metrics).
"""

from pathlib import Path

import numpy as np

from . import schemas
from .commit import refuse_unfinished
from .io import SuiteError, atomic_path, read_json, sha256_bytes, write_json
from .sources import (
    BUILTIN,
    DatasetError,
    load_celeba64,
    load_cifar10,
    load_digits,
    load_folder,
    load_svhn,
)


def prepare(name: str, spec: dict, data_root: Path, out_dir: Path) -> dict:
    """Load dataset `name` (its config entry `spec`) and write the prepared folder atomically."""
    data_root, out_dir = Path(data_root), Path(out_dir)
    kind = spec.get("kind", name)
    download = bool(spec.get("download", False))
    if kind == "digits":
        train, test, prep = load_digits(spec)
    elif kind == "cifar10":
        train, test, prep = load_cifar10(data_root, download, spec)
    elif kind == "svhn":
        train, test, prep = load_svhn(data_root, download, spec)
    elif kind == "celeba64":
        train, test, prep = load_celeba64(data_root, download, spec)
    elif kind == "folder":
        train, test, prep = load_folder(Path(spec["path"]), {**spec, "name": name})
    else:
        raise DatasetError(f"unknown dataset kind '{kind}' for dataset '{name}'; known: {', '.join(BUILTIN)}, folder.")
    if spec.get("n_train"):
        if spec["n_train"] > len(train):
            raise DatasetError(
                f"dataset '{name}': n_train {spec['n_train']} is more than its {len(train)} training "
                f"images; lower n_train or remove it (the whole split)."
            )
        train = train[: spec["n_train"]]  # the papers' subsets (e.g. short-run's 40k) take the first n
        prep += f"; first {spec['n_train']} training images"
    if spec.get("variant_of"):  # another paper's protocol of the same data: reported as that dataset
        prep += f"; protocol variant '{name}' of {spec['variant_of']}"
    # C order once (no copy where a loader already returns it): saved as is, and hashed in place
    # through a memoryview, where tobytes() would copy the whole array (~2 GB for CelebA)
    train, test = np.ascontiguousarray(train), np.ascontiguousarray(test)
    for split, arr in (("train", train), ("test", test)):
        with atomic_path(out_dir / f"{split}.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, arr)
    info = {
        "name": spec.get("variant_of", name),  # the dataset the papers' numbers name (ebmbench/run_plan.py)
        "kind": kind,
        "preprocessing": prep,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "image_shape": list(train.shape[1:]),
        "sha256": sha256_bytes(memoryview(train), memoryview(test), prep.encode()),
    }
    if spec.get("variant_of"):
        info["entry"] = name  # the config entry (and resources/data folder) it was prepared from
    schemas.info(info, f"the prepared '{name}' (info.json)")
    write_json(out_dir / "info.json", info)
    return info


def load_prepared(folder, split: str = "train") -> np.ndarray:
    folder = Path(folder)
    info = dataset_info(folder)
    try:
        arr = np.load(folder / f"{split}.npy", mmap_mode="r")
    except (OSError, ValueError) as err:
        raise DatasetError(
            f"prepared split {folder / (split + '.npy')} is unreadable ({err}); delete {folder} and rerun prepare."
        ) from None
    expected = (info[f"n_{split}"], *info["image_shape"])
    if arr.shape != expected or arr.dtype != np.uint8:
        raise DatasetError(
            f"{folder / (split + '.npy')} has shape {arr.shape}, expected {expected}; delete {folder} and rerun prepare."
        )
    return arr


def dataset_info(folder, what: str = "prepared dataset folder") -> dict:
    """info.json of a folder written by `prepare`, with its fields and both splits present: the one
    reader of a prepared folder, for the commands' checks and for the work alike."""
    folder = Path(folder)
    if not folder.exists():
        raise SuiteError(f"{what} {folder} does not exist.")
    if not folder.is_dir():
        raise SuiteError(f"{what} {folder} is a file where a folder is meant.")
    refuse_unfinished(folder, "prepare into it")
    info = schemas.info(read_json(folder / "info.json"), f"{folder / 'info.json'}")
    for split in ("train", "test"):
        if not (folder / f"{split}.npy").is_file():
            raise SuiteError(f"prepared dataset {folder} has no {split}.npy; delete {folder} and rerun prepare.")
    return info
