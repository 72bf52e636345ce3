"""Every published number the suite compares with, from one data file: methods/paper_numbers.csv.

One row per number as its paper printed it, so a reader checks them all against the papers in one
place (the method files keep only their algorithms). Columns:
  method            row label as printed in the source table (e.g. "Ours", "VAE")
  suite_id          this suite's method id the number belongs to; empty: not run here
  dataset, metric   svhn | cifar10 | celeba64 | ...;  fid | is | kid | mse
  value             the number
  source            paper and table ("Pang et al. 2020 Table 1"): one paper table per source
  protocol          FID implementation, #generated vs #reference, reference split, reduction
  n_generated       images the paper scored (empty: not stated); FID is compared at this N
  verified          true | false (false where docs/papers.md marks it UNVERIFIED)
  tolerance         relative band quoted beside the number (data in the table's `paper_tolerance`;
                    the comparison with the paper is the verdict)
  allowance         relative widening of the measured interval before the verdict (protocol gap)
  allowance_reason  why that allowance (required when it is not 0)
Validated on load; a bad row stops with its line number and what to fix. A row the suite compares
with (suite_id set) must state each part of its paper's data protocol (PROTOCOL_PARTS), or that the
paper does not state it (UNVERIFIED): these are where papers' protocols differ (config/paper.yaml
gives each method its paper's own).
"""

import csv
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..io import SuiteError

PATH = Path(str(resources.files("ebmbench.methods") / "paper_numbers.csv"))  # methods/ is installed as ebmbench.methods
FIELDS = [
    "method",
    "suite_id",
    "dataset",
    "metric",
    "value",
    "source",
    "protocol",
    "n_generated",
    "verified",
    "tolerance",
    "allowance",
    "allowance_reason",
]
METRICS = ("fid", "is", "kid", "mse")
# Part of a paper's protocol -> the word its protocol string must use for it; which parts a metric needs
PROTOCOL_PARTS = {
    "training data (split or subset)": "train",
    "flips": "flip",
    "number generated": "generated",
    "FID reference set": "reference",
    "crop": "crop",
    "pixel scale": "scale",
    "test images": "test",
}
_SAMPLE_PARTS = ("training data (split or subset)", "flips", "number generated")
PARTS_OF = {
    "fid": _SAMPLE_PARTS + ("FID reference set",),
    "kid": _SAMPLE_PARTS + ("FID reference set",),
    "is": _SAMPLE_PARTS,
    "mse": ("pixel scale", "test images"),
}


def missing_protocol_parts(metric: str, dataset: str, protocol: str) -> list[str]:
    """The parts of the data protocol a compared number's protocol string leaves unsaid."""
    parts = PARTS_OF[metric] + (("crop",) if dataset.startswith("celeba") and metric != "mse" else ())
    return [part for part in parts if PROTOCOL_PARTS[part] not in protocol.lower()]


@dataclass(frozen=True)
class PaperNumber:
    """A published number and the protocol behind it."""

    method: str  # row label as printed in the source table
    suite_id: str | None  # this suite's method id the number belongs to (None: not run here)
    dataset: str  # svhn | cifar10 | celeba64 | ...
    metric: str  # fid | is | kid | mse
    value: float
    source: str  # paper and table
    protocol: str  # FID implementation, #generated vs #reference, reference split, reduction
    verified: bool = True  # False where docs/papers.md marks the number UNVERIFIED
    tolerance: float = 0.10  # relative band, shown in the table's `paper_tolerance` (the verdict compares)
    n_generated: int | None = None  # images the paper scored; FID is compared at this N
    allowance: float = 0.0  # relative widening of the measured interval for the verdict
    allowance_reason: str = ""  # the protocol difference the allowance covers


def _row(raw: dict, where: str, known_methods) -> PaperNumber:
    def bad(field, why):
        return SuiteError(
            f"{where}, column '{field}' = {raw.get(field)!r}: {why}. Fix that row of the paper-number "
            f"file (each row: {', '.join(FIELDS)})."
        )

    for f in ("method", "dataset", "metric", "value", "source", "protocol", "verified"):
        if not (raw.get(f) or "").strip():
            raise bad(f, "empty")
    if raw["metric"] not in METRICS:
        raise bad("metric", f"must be one of {', '.join(METRICS)}")
    if raw["suite_id"] and raw["suite_id"] not in known_methods:
        raise bad(
            "suite_id",
            f"not a method of this suite ({', '.join(sorted(known_methods))}); leave it empty "
            f"for a row the suite does not run",
        )
    nums = {}
    for f in ("value", "tolerance", "allowance"):
        try:
            nums[f] = float(raw[f] or 0)
        except ValueError:
            raise bad(f, "not a number") from None
        if not math.isfinite(nums[f]) or (f != "value" and nums[f] < 0):
            raise bad(f, "must be finite" + (" and >= 0" if f != "value" else ""))
    if raw["verified"] not in ("true", "false"):
        raise bad("verified", "must be true or false")
    n = raw.get("n_generated") or ""
    if n and not (n.isdigit() and int(n) > 0):
        raise bad("n_generated", "must be a positive whole number or empty (not stated)")
    missing = missing_protocol_parts(raw["metric"], raw["dataset"], raw["protocol"]) if raw["suite_id"] else []
    if missing:
        raise bad(
            "protocol",
            f"does not state its paper's {', '.join(missing)} (words: "
            f"{', '.join(repr(PROTOCOL_PARTS[m]) for m in missing)}); state each, or that the "
            f"paper does not (UNVERIFIED)",
        )
    if nums["allowance"] > 0 and not (raw.get("allowance_reason") or "").strip():
        raise bad("allowance_reason", "an allowance needs its reason (which protocol difference it covers)")
    return PaperNumber(
        raw["method"],
        raw["suite_id"] or None,
        raw["dataset"],
        raw["metric"],
        nums["value"],
        raw["source"],
        raw["protocol"],
        raw["verified"] == "true",
        nums["tolerance"],
        int(n) if n else None,
        nums["allowance"],
        raw.get("allowance_reason") or "",
    )


def suite_ids() -> set[str]:
    """What a suite_id may name: a method, "<method>@<variant>" of its declared VARIANTS, uniform_noise."""
    from ..registry import get_method, method_ids

    return {"uniform_noise", *method_ids(), *(f"{m}@{v}" for m in method_ids() for v in get_method(m).VARIANTS)}


def csv_rows(path: Path, fields: list[str], what: str) -> list[dict]:
    """The rows of one of the suite's data files (paper numbers, claims), its header checked."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != fields:
                raise SuiteError(f"{path}: header is {reader.fieldnames}, expected {fields}; restore the header line.")
            return list(reader)
    except (OSError, UnicodeDecodeError) as err:
        raise SuiteError(f"cannot read the {what} {path} ({err}); it ships with the suite in methods/.") from None


def load(path=PATH, owner: str | None = None) -> list[PaperNumber]:
    """The numbers of one file, each row checked; `owner`: a plug-in's file, whose rows may name
    only the plug-in's own method id (or none)."""
    path = Path(path)
    rows = csv_rows(path, FIELDS, "paper-number file")
    out, seen = [], {}
    for line, raw in enumerate(rows, start=2):
        where = f"{path.name} line {line} ({raw.get('source')}: {raw.get('method')}, {raw.get('dataset')} {raw.get('metric')})"
        if None in raw or any(v is None for v in raw.values()):
            raise SuiteError(f"{where}: has {len(raw)} columns instead of {len(FIELDS)}; quote fields holding commas.")
        p = _row(raw, where, suite_ids())
        if owner is not None and p.suite_id not in (None, owner):
            raise SuiteError(
                f"{where}: suite_id '{p.suite_id}' in the paper numbers of plug-in '{owner}'; a plug-in's "
                f"file may give numbers of its own method only (suite_id '{owner}' or empty)."
            )
        key = (p.source, p.method, p.dataset, p.metric)
        if key in seen:
            raise SuiteError(
                f"{where}: the same cell as line {seen[key]}; a source table has one number per "
                f"row label, dataset and metric. Delete one of the two."
            )
        seen[key] = line
        out.append(p)
    return out


def load_all() -> list[PaperNumber]:
    """The suite's numbers and every plug-in's own (its class's PAPER_NUMBERS file), one cell once."""
    from ..registry import get_method, registry

    out = load()
    for name, entry in sorted(registry().items()):
        extra = getattr(get_method(name), "PAPER_NUMBERS", None) if entry.plugin else None
        if extra is not None:
            out += load(extra, owner=name)
    seen = {}
    for p in out:
        key = (p.source, p.method, p.dataset, p.metric)
        if key in seen and seen[key] is not p:
            raise SuiteError(
                f"the paper number {p.source}: {p.method}, {p.dataset} {p.metric} is given twice (by the "
                f"suite and a plug-in, or by two plug-ins); keep it in one file."
            )
        seen[key] = p
    return out
