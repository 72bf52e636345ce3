"""One defensible answer per paper number: the verdict of a measured interval
(ebmbench.evaluate.intervals) against the paper's value, and the table columns that carry it.

Verdicts (`verdict`):
  reproduced    the paper value inside the interval widened by the protocol allowance
  better/worse  outside it, in the good / bad direction; the signed gap (measured - paper) is
                stated in interval widths (2 x half-width)
  inconclusive  the interval is wider than `max_rel_width` x |paper value|: no answer either way
  not run       a paper number the suite has no run for (or no value of, e.g. a seed lacking it)
  diverged      training diverged; no number
  not comparable (<fields>)  the run's protocol is not the paper's (data kind, preset, sample count,
                extractor: ebmbench.protocol); the measured value and its interval still show
A paper number not checked against its paper (verified = False) gets " [unverified]" appended.
"""

import numpy as np

from ..protocol import differences
from .intervals import Interval, measured_interval

MAX_REL_WIDTH = 0.5  # an interval wider than half the paper value cannot tell reproduced from not

VERDICTS = ("reproduced", "better", "worse", "inconclusive", "not run", "diverged", "not comparable")


def verdict(
    interval: Interval | None,
    paper: float,
    lower_is_better: bool,
    allowance: float = 0.0,
    verified: bool = True,
    diverged: bool = False,
    max_rel_width: float = MAX_REL_WIDTH,
) -> str:
    """The verdict string of one paper number against one measured interval (see module doc)."""
    if diverged:
        v = "diverged"
    elif interval is None:
        v = "not run"
    elif not np.isfinite(interval.half_width) or 2 * interval.half_width > max_rel_width * abs(paper):
        v = "inconclusive"
    else:
        slack = interval.half_width + allowance * abs(paper)
        gap = interval.mean - paper
        if abs(gap) <= slack:
            v = "reproduced"
        else:
            good = gap < 0 if lower_is_better else gap > 0
            width = 2 * interval.half_width
            ratio = f"{gap / width:+.1f}" if width > 0 else ("+inf" if gap > 0 else "-inf")
            v = f"{'better' if good else 'worse'} ({ratio} widths)"
    return v if verified else v + " [unverified]"


def verdict_class(text: str) -> str:
    """'worse (+2.3 widths) [unverified]' -> 'worse' (for colouring, counting and the paper gate)."""
    return next(v for v in VERDICTS if text.startswith(v))


# -- per table row ---------------------------------------------------------------------------------

VERDICT_COLUMNS = ["estimate", "estimator", "half_width", "interval", "paper_allowance", "allowance_reason", "verdict"]


def verdict_fields(
    ok: list[dict], n_runs: int, metric: str, p, lower_is_better: bool, allow_changed: bool = False
) -> dict:
    """The VERDICT_COLUMNS of one table row: `ok` the runs with numbers out of `n_runs`, `p` the
    PaperNumber compared with (None: no paper number, no verdict); `allow_changed`: compare runs of
    a changed paper preset too (the verdict then names the changes)."""
    out, iv = {}, None
    diverged = len(ok) < n_runs
    if ok and not diverged and all(r.get(metric) is not None for r in ok):
        iv, how = measured_interval(ok, metric, p.n_generated if p is not None else None)
        out = {"estimate": iv.mean, "estimator": how, "half_width": iv.half_width, "interval": iv.text}
    if p is not None:
        v = verdict(iv, p.value, lower_is_better, p.allowance, p.verified, diverged)
        if iv is not None:
            differ = sorted({d for r in ok for d in differences(r, p, metric, out["estimator"], allow_changed)})
            changed = sorted({f"{k}={c}" for r in ok for k, c in (r.get("preset_changes") or {}).items()})
            if differ:
                v = f"not comparable ({'; '.join(differ)})" + ("" if p.verified else " [unverified]")
            elif changed:  # compared because the user asked to (table --compare-changed-presets)
                v += f" [changed preset: {', '.join(changed)}]"
        out |= {"paper_allowance": p.allowance, "allowance_reason": p.allowance_reason, "verdict": v}
    return out
