"""The files between stages as declared contracts: one definition per file type (a prepared
dataset's info.json and a score's metrics.json; the table's rows and the gate's expected values are
checked by ebmbench.evaluate.gate on the same ranges),
checked by the stage that writes the file and again by the stage that reads it.

A contract is a table field -> rule (type and range) plus the fields it requires. A file that breaks
its contract is refused with one paragraph naming the file, the field, the rule and the remedy, so
that an impossible value (FID -0.5, precision 7.5, status "OK") never reaches a table or a gate.

METRIC_RANGES declares each metric's possible values; a metric of the suite (scoring.METRICS) not
declared there is any finite number. Extend it beside a new metric.
"""

import math

from .io import SuiteError

INF = math.inf

# metric -> (least, greatest) possible value. IS = exp(E KL(p(y|x) || p(y))) >= 1; the MSE is on
# [0, 1] pixels. KID has no lower bound: torch-fidelity's KID is the mean of unbiased MMD^2
# estimates, slightly negative by estimator noise where two sets are drawn alike (test images scored
# against the train split give -1e-4), and such a value is reported as computed, never clipped.
METRIC_RANGES = {
    "fid": (0.0, INF),
    "kid": (-INF, INF),
    "is": (1.0, INF),
    "precision": (0.0, 1.0),
    "recall": (0.0, 1.0),
    "mse": (0.0, 1.0),
    "is_std": (0.0, INF),
    "kid_std": (0.0, INF),
    "memorised": (0.0, 1.0),  # a share of the samples
    "seconds_per_1000": (0.0, INF),
    "recon_mse_noise": (0.0, 1.0),  # [0, 1] pixels, like mse
    "z_mse_before_revision": (0.0, 1.0),
    "z_mse_after_revision": (0.0, 1.0),
    "locality": (0.0, 1.0),  # a share of an image change
}
STATUSES = ("ok", "diverged")  # what a run's samples.json and metrics.json may say


def number(lo=-INF, hi=INF, null: bool = False):
    def rule(v):
        if v is None and null:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return "is not a finite number"
        return None if lo <= v <= hi else f"is outside its possible range [{lo:g}, {hi:g}]"

    return rule


def count(least: int = 1):
    def rule(v):
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= least
        return None if ok else f"is not a whole number >= {least}"

    return rule


def text(v):
    return None if isinstance(v, str) and v.strip() else "is not a non-empty text"


def one_of(*choices):
    return lambda v: None if v in choices else f"is not one of {', '.join(map(repr, choices))}"


def of_type(kind, name: str):
    return lambda v: None if isinstance(v, kind) else f"is not {name}"


def shape(v):
    ok = isinstance(v, list) and len(v) == 3 and all(count(1)(x) is None for x in v) and v[-1] in (1, 3)
    return None if ok else "is not an image shape [H, W, C] with C 1 or 3"


def sha256(v):
    ok = isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)
    return None if ok else "is not a SHA-256 hex digest"


def check(record, rules: dict, required, where, remedy: str) -> dict:
    """Check `record` against a contract: `required` fields present, each field present obeying its rule."""
    if not isinstance(record, dict):
        raise SuiteError(f"{where} is not a JSON object ({type(record).__name__}); {remedy}.")
    missing = [k for k in required if k not in record]
    if missing:
        raise SuiteError(f"{where} lacks the field(s) {', '.join(missing)}; {remedy}.")
    for k, rule in rules.items():
        if k in record and (why := rule(record[k])) is not None:
            raise SuiteError(f"{where}: field '{k}' = {record[k]!r} {why}; {remedy}.")
    return record


# -- info.json of a prepared dataset ------------------------------------------------------------------

INFO_RULES = {
    "name": text,
    "kind": text,
    "preprocessing": of_type(str, "a text"),
    "n_train": count(1),
    "n_test": count(0),
    "image_shape": shape,
    "sha256": sha256,
    "entry": text,
}
INFO_REQUIRED = ("name", "kind", "n_train", "n_test", "image_shape", "sha256")


def info(record, where) -> dict:
    return check(record, INFO_RULES, INFO_REQUIRED, where, "delete the folder and rerun prepare")


# -- metrics.json of a score ---------------------------------------------------------------------------

METRICS_RULES = {
    "method": text,
    "dataset": text,
    "seed": count(0),
    "status": one_of(*STATUSES),
    "n_generated": count(1),
    "n_reference": count(1),
    "mse_n": count(0),
    "extractor": text,
    "reference": text,
    "features": text,
    "preset": text,
    "preset_changes": of_type(dict, "an object (field: value)"),
    "data_kind": text,
    "data_sha256": sha256,
    "provenance": of_type(dict, "an object"),
}
# what `score` must record for the table to combine seeds and judge a protocol (checked on write)
METRICS_PROVENANCE = ("reference", "data_kind", "data_sha256", "provenance")
METRICS_REMEDY = "rerun the score step that writes it (a metric that cannot be computed is null with its reason)"


def metrics(record, where, metric_names, written: bool = False) -> dict:
    """A metrics.json: labels and status; when ok the counts, the extractor and each metric within
    its declared range or null with `<metric>_unavailable` saying why. `written`: as `score` writes
    it now, with the provenance the table's checks need (older files lack it and read as not comparable)."""
    check(record, METRICS_RULES, ("method", "dataset", "status"), where, METRICS_REMEDY)
    if record["status"] != "ok":
        return record
    need = ["n_generated", "n_reference", "extractor"] + (["mse_n", "mse_scale"] if "mse" in record else [])
    need += list(METRICS_PROVENANCE) if written else []
    rules = {m: number(*METRIC_RANGES.get(m, (-INF, INF)), null=True) for m in (*metric_names, *METRIC_RANGES)}
    check(record, rules, need, where, METRICS_REMEDY)
    for m in metric_names:
        if m in record and record[m] is None and text(record.get(f"{m}_unavailable")) is not None:
            raise SuiteError(f"{where}: field '{m}' is null without '{m}_unavailable' saying why; {METRICS_REMEDY}.")
    return record
