"""Telling a diverged training iteration: a non-finite logged value or parameter, or an energy gap
past the configured bound. The loop catches `DivergenceError` and retries or stops."""

import math

import torch

from .io import SuiteError


class DivergenceError(SuiteError):
    def __init__(self, message: str, iteration: int, quantity: str):
        super().__init__(message)
        self.iteration, self.quantity = iteration, quantity


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
