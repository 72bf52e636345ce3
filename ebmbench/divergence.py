"""Telling a diverged training iteration: a non-finite logged value or parameter, or an energy gap
past the configured bound. The loop catches `DivergenceError` and retries or stops. Also what the
loop does with an early warning (ebmbench.health.EarlyWarning): record it, rewind or stop."""

import math
import sys

import torch

from .io import SuiteError, append_jsonl


class DivergenceError(SuiteError):
    def __init__(self, message: str, iteration: int, quantity: str):
        super().__init__(message)
        self.iteration, self.quantity = iteration, quantity


class RewindRequest(DivergenceError):
    """An early warning under on_warning: rewind: back to the last good checkpoint, learning rates halved."""


class WarningStop(DivergenceError):
    """An early warning under on_warning: stop: the run ends here, no retry."""


def heed_warning(i: int, signal: str, message: str, action: str, prog: dict, log_path, bar=None) -> None:
    """Record an early warning (log.jsonl event, the run's progress record, stderr), then act:
    `record` goes on, `rewind` and `stop` raise for the loop's divergence handling."""
    prog.setdefault("warnings", []).append({"iter": i, "signal": signal})
    append_jsonl(log_path, {"iter": i, "event": "warning", "signal": signal, "message": message})
    if action == "rewind":
        raise RewindRequest(message, i, f"early warning: {signal}")
    if action == "stop":
        raise WarningStop(message + " Stopped (on_warning: stop).", i, f"early warning: {signal}")
    (bar.write if bar is not None else print)(f"warning: {message}", file=sys.stderr)


def scale_learning_rates(model, factor: float) -> None:
    """Multiply every optimiser's learning rate by `factor`, and its scheduler's base, so a per-epoch
    schedule keeps the scaled rate."""
    for opt in model.opts.values():
        for group in opt.param_groups:
            group["lr"] *= factor
    for sched in model.scheds.values():
        sched.base_lrs = [lr * factor for lr in sched.base_lrs]


def check_stats(i: int, stats: dict, max_energy_gap: float) -> None:
    """Divergence within one iteration: any logged value NaN/Inf, or the spread of the logged
    energies (data vs samples, posterior vs prior) beyond the configured bound (0 = no bound)."""
    for k, v in stats.items():
        if not math.isfinite(v):
            raise DivergenceError(f"training diverged at iteration {i}: {k} = {v}.", i, k)
    energies = {k: v for k, v in stats.items() if k.startswith("energy")}
    if max_energy_gap and len(energies) > 1:
        gap = max(energies.values()) - min(energies.values())
        if gap > max_energy_gap:
            raise DivergenceError(
                f"training diverged at iteration {i}: energy gap {gap:.4g} between "
                f"{', '.join(energies)} exceeds max_energy_gap = {max_energy_gap:g}.",
                i,
                "energy gap",
            )


def check_parameters(i: int, model) -> None:
    for name, net in model.nets.items():
        for k, p in net.named_parameters():
            if not torch.isfinite(p).all():
                raise DivergenceError(
                    f"training diverged at iteration {i}: parameters of {name}.{k} are not finite.", i, f"{name}.{k}"
                )
