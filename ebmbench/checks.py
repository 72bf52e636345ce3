"""The checks the commands run before any work starts (the building blocks; each command in
ebmbench.cli says which it runs).

Each check fails with one SuiteError paragraph naming the offending value or path and the remedy,
so that a mistake costs seconds, not a training run, and nothing is written before it is found:
inputs exist and have the right kind, outputs are writable and are folders where folders are meant,
device strings are valid and available, weights files are what they claim to be, and the
dataset spec obeys config/schema.yaml as the workflow's config does.
"""

import json
import math
import os
import re
import zipfile
from pathlib import Path

from .io import SuiteError, read_json

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
    """A folder written by `ebmbench prepare`: info.json with its fields, both splits present."""
    folder = input_dir(folder, f"{option} (prepared dataset folder)")
    info = read_json(folder / "info.json")
    missing = [k for k in ("name", "kind", "n_train", "n_test", "image_shape", "sha256") if k not in info]
    if missing:
        raise SuiteError(f"{folder / 'info.json'} lacks {', '.join(missing)}; delete {folder} and rerun prepare.")
    for split in ("train", "test"):
        if not (folder / f"{split}.npy").is_file():
            raise SuiteError(f"prepared dataset {folder} has no {split}.npy; delete {folder} and rerun prepare.")
    return info


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


def samples_match_data(samples: Path, info: dict) -> None:
    """score: the samples' run must have been trained on the dataset it is scored against."""
    labels_path = samples.with_name("samples.json")
    if not labels_path.exists():
        return  # samples made outside the suite carry no run labels
    labels = read_json(labels_path)
    if (
        labels.get("dataset", info["name"]) != info["name"]
        or labels.get("data_sha256", info["sha256"]) != info["sha256"]
    ):
        what = "dataset" if labels.get("dataset", info["name"]) != info["name"] else "prepared data (content hash)"
        raise SuiteError(
            f"samples {samples} come from a run trained on '{labels.get('dataset')}', another {what} than "
            f"--data '{info['name']}'; score them against the data they were trained on."
        )


def digits_weights(path) -> None:
    """The digits feature extractor's weights: a file written by `ebmbench classifier` (its
    state_dict fits the classifier network of the architecture it names)."""
    from .evaluate.metrics import DigitsClassifier
    from .io import load_torch

    path = input_file(path, "digits classifier weights")
    ckpt = load_torch(path, "digits classifier")
    not_it = SuiteError(
        f"--weights {path} is not a digits classifier (a file written by `ebmbench classifier`); "
        f"pass resources/digits_classifier.pt or retrain it with `ebmbench classifier`."
    )
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise not_it
    try:
        net = DigitsClassifier(ckpt["arch"]) if "arch" in ckpt else DigitsClassifier()
        net.load_state_dict(ckpt["state_dict"])
    except (SuiteError, RuntimeError, KeyError, TypeError, ValueError):  # unknown arch; keys or shapes do not fit
        raise not_it from None


def cache_entries(cache_dir, prefix: str) -> None:
    """Cached reference statistics are zip archives (torch.save); a truncated one would fail deep in
    torch-fidelity. Checked without unpickling (zip CRCs)."""
    if cache_dir is None or not Path(cache_dir).is_dir():
        if cache_dir is not None and Path(cache_dir).exists():
            raise SuiteError(f"--cache {cache_dir} is a file where a folder is meant.")
        return
    for p in sorted(Path(cache_dir).glob(prefix + "*.pt")):
        try:
            with zipfile.ZipFile(p) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            bad = "archive"
        if bad is not None:
            raise SuiteError(
                f"cached reference statistics {p} are truncated or corrupt; delete the file "
                f"(it is recomputed on the next score)."
            )


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


def metrics_record(path) -> dict:
    """A metrics.json as `score` writes it: the run's labels, and when ok the counts, the extractor
    and finite numbers (an absent metric is null with its reason)."""
    from .evaluate.table import METRICS

    m = read_json(input_file(path, "metrics file"))
    if not isinstance(m, dict):
        raise SuiteError(f"metrics file {path} is not a JSON object; rerun the score step that writes it.")
    need = ["method", "dataset", "status"]
    if m.get("status") == "ok":
        need += ["n_generated", "n_reference", "extractor"] + (["mse_n", "mse_scale"] if "mse" in m else [])
    missing = [k for k in need if k not in m]
    if missing:
        raise SuiteError(
            f"metrics file {path} lacks {', '.join(missing)}; it was not written by `ebmbench score` "
            f"(or by an older version): rerun the score step."
        )
    for k in METRICS:
        v = m.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise SuiteError(
                f"metrics file {path}: {k} = {v!r} is not a finite number; rerun the score step "
                f"(a metric that cannot be computed is written as null with its reason)."
            )
    return m


def finite_or_absent(out: dict, metrics, reason: str) -> dict:
    """Replace a NaN/Inf metric by None plus `<metric>_unavailable` with the reason: a number that
    cannot be computed is absent, never a NaN in metrics.json or the table."""
    for k in metrics:
        v = out.get(k)
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
            out[f"{k}_unavailable"] = f"{reason} ({v})"
    return out
