"""Whether a run followed a paper number's protocol: what a run records of its protocol (its preset
and any change to it, its data's kind and content hash, the extractor and sample count its score
used), and the fields where it differs from the paper's.

A verdict against a paper number is given only where nothing differs (ebmbench.evaluate.verdicts);
otherwise the row says `not comparable (<fields>)` beside the measured value. A paper preset run
with changed fields (e.g. fewer iterations for a first look) is compared only when the table is
asked to (`ebmbench table --compare-changed-presets`), and the verdict then names the changes.
"""

import dataclasses

from .runs import RUN_POLICY, SWITCHES_BEFORE

# Fields of a run's config that change neither the model nor its samples' protocol: how often to
# checkpoint, speed switches, and the sample count (recorded as n_generated and judged as such).
NOT_PROTOCOL = set(RUN_POLICY) | set(SWITCHES_BEFORE)
FEATURE_METRICS = ("fid", "is", "kid", "precision", "recall")  # scored on an extractor's features


def preset_changes(identity: dict) -> dict:
    """The run's config fields that differ from its preset's, field -> the run's value ({}: the preset as is)."""
    from .registry import resolve_config

    preset = dataclasses.asdict(resolve_config(identity["method"], identity["preset"]))
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731 -- JSON has lists only
    return {
        k: v
        for k, v in identity["config"].items()
        if k not in NOT_PROTOCOL and k in preset and norm(preset[k]) != norm(v)
    }


def differences(run: dict, p, metric: str, estimator: str, allow_changed: bool) -> list[str]:
    """Where a run (its metrics record) differs from paper number `p`'s protocol, one phrase each."""
    out = []
    kind = run.get("data_kind")
    if kind != p.dataset:
        out.append(f"data kind {kind or 'not recorded'}, the paper's {p.dataset}")
    preset = run.get("preset")
    if preset != p.dataset:
        out.append(f"preset {preset or 'not recorded'}, the paper's {p.dataset}")
    changes = run.get("preset_changes") or {}
    if changes and not allow_changed:
        out.append("preset changed (" + ", ".join(f"{k}={v}" for k, v in sorted(changes.items())) + ")")
    n = run.get("n_generated")
    if (
        metric != "mse"
        and p.n_generated
        and n is not None
        and n < p.n_generated
        and not estimator.startswith("FID-inf")
    ):
        out.append(f"{n} generated, the paper's {p.n_generated}")
    extractor = str(run.get("extractor") or "not recorded")
    if metric in FEATURE_METRICS and not extractor.startswith("inception"):
        out.append(f"extractor {extractor}, the paper's Inception")
    return out
