"""The checks the commands run before any work starts (the building blocks; each command in
ebmbench.cli says which it runs).

Each check fails with one SuiteError paragraph naming the offending value or path and the remedy,
so that a mistake costs seconds, not a training run, and nothing is written before it is found:
inputs exist and have the right kind, outputs are writable and are folders where folders are meant,
device strings are valid and available, weights files are what they claim to be, and the
dataset spec obeys config/schema.yaml as the workflow's config does.
"""

import json
import os
import re
from pathlib import Path

from .io import SuiteError

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
DEVICE = re.compile(r"^(cpu|auto|cuda(:[0-9]+)?)$")  # the schema's `device` pattern


# ----------------------------------------------------------------------------
# Building blocks


def device(name: str) -> None:
    if not DEVICE.match(name):
        raise SuiteError(f"--device '{name}' is not a device; use cpu, auto, cuda or cuda:N.")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SuiteError(f"--device '{name}' requested but no CUDA GPU is visible; use cpu or auto.")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise SuiteError(
                f"--device '{name}': only {torch.cuda.device_count()} CUDA device(s) are visible "
                f"(cuda:0 .. cuda:{torch.cuda.device_count() - 1})."
            )


def at_least(option: str, value, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise SuiteError(f"{option} must be at least {minimum}, got {value}.")


def seed(option: str, value, bits: int = 63) -> None:
    """A seed the random generators take: 0 <= seed < 2**bits (torch's 64-bit, NumPy's RandomState 32-bit)."""
    if value is not None and not 0 <= value < 2**bits:
        raise SuiteError(f"{option} {value} is out of range: a seed is a whole number from 0 to 2**{bits} - 1.")


def fits(option: str, what: str, memory: int, disk: int, folder) -> None:
    """Refuse, before anything is touched, a size that cannot fit the memory available now or the
    free space of the disk that will hold the output (MemAvailable from /proc/meminfo)."""
    import shutil

    try:
        avail = next(int(x.split()[1]) * 1024 for x in open("/proc/meminfo") if x.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    anc = Path(folder)
    while not anc.exists():
        anc = anc.parent
    free = shutil.disk_usage(anc).free
    disk_full = f"of disk space in {anc}, where the disk holding it is full or too small"
    for need, have, where in ((memory, avail, "of memory"), (disk, free, disk_full)):
        if need > have:
            raise SuiteError(
                f"{option}: {what} need {need / 1e9:.3g} GB {where}: {have / 1e9:.3g} GB is available. "
                f"Lower {option} or run where more is available (nothing was written)."
            )


def apart(outputs: dict, inputs: dict) -> None:
    """No output may be one of the command's inputs, lie inside an input folder or hold an input, or
    be another output (options -> paths; None skipped): an output that replaced an input would lose it."""
    outs = {o: Path(p).resolve() for o, p in outputs.items() if p is not None}
    ins = {o: Path(p).resolve() for o, p in inputs.items() if p is not None}
    for o, out in outs.items():
        for i, src in ins.items():
            if out == src or src in out.parents or out in src.parents:
                where = "is" if out == src else "lies inside" if src in out.parents else "holds"
                raise SuiteError(
                    f"{o} {out} {where} the input {i} {src}; writing there would replace what the command "
                    f"reads. Choose an output path outside the inputs."
                )
        for o2, out2 in outs.items():
            if o2 != o and out == out2:
                raise SuiteError(f"{o} and {o2} are the same path {out}; give each output its own path.")


def input_file(path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"{what} {path} does not exist.")
    if not path.is_file():
        raise SuiteError(f"{what} {path} is not a file (a folder?); give the path of the file itself.")
    if not os.access(path, os.R_OK):
        raise SuiteError(f"{what} {path} is not readable by this user; fix its permissions (chmod).")
    return path


def input_dir(path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise SuiteError(f"{what} {path} does not exist.")
    if not path.is_dir():
        raise SuiteError(f"{what} {path} is a file where a folder is meant.")
    return path


def _writable_ancestor(path: Path, option: str) -> None:
    """The nearest existing ancestor must be a folder this user may create entries in."""
    anc = path.parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise SuiteError(f"{option} {path}: {anc} is a file where a folder is meant; remove it or choose another path.")
    if os.statvfs(anc).f_flag & os.ST_RDONLY:
        raise SuiteError(
            f"{option} {path}: the file system holding {anc} is read-only; write the outputs to a writable location."
        )
    if not os.access(anc, os.W_OK | os.X_OK):
        raise SuiteError(
            f"{option} {path}: permission denied in {anc}; make it writable for this user (chmod/chown) or write elsewhere."
        )


def out_folder(path, option: str = "--out") -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SuiteError(
            f"{option} {path} is an existing file, but a folder is meant; remove it or choose another path."
        )
    _writable_ancestor(path / "x", option)
    return path


def out_file(path, option: str = "--out") -> Path:
    path = Path(path)
    if path.is_dir():
        raise SuiteError(
            f"{option} {path} is an existing folder, but a file is meant; give a file path such as {path / 'out'}."
        )
    _writable_ancestor(path, option)
    return path


def prepared(folder, option: str = "--data") -> dict:
    """A folder written by `ebmbench prepare`, read by the loader the work uses (data.dataset_info)."""
    from .data import dataset_info

    return dataset_info(folder, f"{option} (prepared dataset folder)")


def dataset_spec(name: str, text: str) -> dict:
    """--spec: the dataset's config entry as JSON, checked against the schema's dataset entry
    (sizes, fractions, kinds), as Snakemake checks the workflow's config."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as err:
        raise SuiteError(
            f"--spec {text!r} is not JSON ({err.msg} at character {err.pos}); "
            f'give the dataset\'s config entry, e.g. \'{{"kind": "folder", "path": "/data/x"}}\'.'
        ) from None
    if not isinstance(spec, dict):
        raise SuiteError(
            f"--spec {text!r} must be a JSON object (the dataset's config entry), not {type(spec).__name__}."
        )
    import jsonschema
    import yaml

    entry = yaml.safe_load(SCHEMA.read_text())["properties"]["dataset_options"]["additionalProperties"]
    spec = {"kind": name, **spec}
    errors = sorted(jsonschema.Draft202012Validator(entry).iter_errors(spec), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.path) or "(entry)"
        raise SuiteError(f"--spec for dataset '{name}': {key}: {err.message} (rules: {SCHEMA.name}, dataset_options).")
    if spec["kind"] == "folder" and "path" not in spec:
        raise SuiteError(f"--spec for dataset '{name}': kind 'folder' needs a 'path' to the image folder.")
    return spec


def parse_sets(items: list[str] | None) -> dict:
    """--set key=value pairs; values are YAML (numbers, lists, booleans), as in the config file."""
    import yaml

    out = {}
    for item in items or []:
        if "=" not in item:
            raise SuiteError(f"--set expects key=value, got '{item}'.")
        k, v = item.split("=", 1)
        try:
            out[k] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise SuiteError(f"--set {item}: the value {v!r} is not a valid YAML value; quote or fix it.") from None
    return out
