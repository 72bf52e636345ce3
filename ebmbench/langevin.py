"""The one Langevin sampler of the suite.

Convention (every method maps its paper onto it, in its own file):

    x_{k+1} = x_k - step_size * dE/dx(x_k) + noise_std * N(0, I)

with E an *energy*: low energy = likely. Step size and noise scale are separate knobs because the
released codes decouple them (short-run: step 1 on f = -E with noise 0.01; Dual-MCMC: step s^2/2
with noise 1e-3). Exact Langevin for the density exp(-E) is noise_std = sqrt(2 * step_size).

Each step differentiates w.r.t. x only and drops the graph before the next step, so memory does
not grow with the number of steps, and no gradient reaches any network parameter.

Speed (measured by benchmarks/run.py): `frozen` takes the networks' parameters out of
autograd for a chain, so a step records only what the input gradient needs, bitwise the same
chain; `recording` lets the benchmark see every chain a method runs (energy, start, seconds).

Health (ebmbench.health): inside `diagnosing`, every chain reports the signals Nijkamp et al.
("On the Anatomy of MCMC-Based Maximum Likelihood Learning of Energy-Based Models", AAAI 2020)
read learning stability from, taken from values the step computes anyway: the mean input-gradient
norm at the chain's first and last step, the ratio of the drift to the noise of the last update,
and for image chains the share of pixels outside the data's range [-1, 1].
"""

import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch

Energy = Callable[[torch.Tensor], torch.Tensor]


def energy_grad(energy: Energy, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample energies E(x) (detached) and dE/dx, without touching parameter .grad fields."""
    if not create_graph:
        x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        e = energy(x)
        if e.dim() != 1 or e.shape[0] != x.shape[0]:
            raise ValueError(f"energy must return one value per sample, shape ({x.shape[0]},); got {tuple(e.shape)}")
        (g,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    return e.detach(), g


@contextmanager
def frozen(modules: Iterable[torch.nn.Module]):
    """requires_grad off for the modules' parameters inside the block, restored after (also on error).

    A chain differentiates w.r.t. its input only; with trainable parameters autograd would still
    keep the tensors their weight gradients need. Only parameters that required grad are touched,
    so a parameter frozen on purpose stays frozen."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


_records: list | None = None
_diagnostics: list | None = None


@contextmanager
def recording():
    """Collect one dict per chain run inside the block: energy, start x, n_steps, step_size,
    noise_std, seconds (wall, device-synchronised). For the benchmark; off costs nothing."""
    global _records
    outer, _records = _records, []
    try:
        yield _records
    finally:
        _records = outer


@contextmanager
def diagnosing():
    """Collect one dict of health signals per chain run inside the block (see the module docstring)."""
    global _diagnostics
    outer, _diagnostics = _diagnostics, []
    try:
        yield _diagnostics
    finally:
        _diagnostics = outer


def _grad_norm(g: torch.Tensor) -> float:
    """Mean over the chains of the per-chain L2 norm of dE/dx."""
    return g.detach().flatten(1).float().norm(dim=1).mean().item()


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def langevin(
    energy: Energy,
    x: torch.Tensor,
    *,
    n_steps: int,
    step_size: float,
    noise_std: float,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    differentiable: bool = False,
    chain: str = "chain",
    data_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Run `n_steps` of Langevin dynamics on `energy` from `x`; returns the final state (detached).

    `on_step(k, x_k, E(x_k))` is called before each update and once after the last, so a caller can
    record a revision strip or the energy profile along the chain (k = 0..n_steps).

    `differentiable=True` keeps the whole chain in the graph so a loss on the result can be
    back-propagated to the start `x` (reconstruction by optimising the initial noise, Nijkamp et al.
    Fig. 4); memory then grows with n_steps, so it is off for sampling and training.

    `chain` names it in the health signals; `data_range`: the data's pixel range, for image chains.
    """
    if not differentiable:
        x = x.detach()
    if _records is not None:
        record = dict(energy=energy, x=x.detach().clone(), n_steps=n_steps, step_size=step_size, noise_std=noise_std)
        _sync(x)
        t0 = time.perf_counter()
    health = {"chain": chain} if _diagnostics is not None else None
    for k in range(n_steps):
        e, g = energy_grad(energy, x, create_graph=differentiable)
        if on_step is not None:
            on_step(k, x, e)
        if health is not None and k in (0, n_steps - 1):
            health["grad_first" if k == 0 else "grad_last"] = _grad_norm(g)
            if k == n_steps - 1:  # drift |step * dE/dx| against noise |noise_std * N(0, I)| = noise_std sqrt(D)
                noise = noise_std * x[0].numel() ** 0.5
                if noise:  # a noiseless chain (gradient descent) has no ratio
                    health["drift_noise"] = step_size * health["grad_last"] / noise
        # A scale and an add per term, as the released codes write it. Fusing each into one
        # x + alpha * y kernel saves ~1 % of a step and changes the rounding (and so the runs).
        x = x - step_size * g
        if noise_std:
            x = x + noise_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if on_step is not None:
        with torch.no_grad():
            on_step(n_steps, x, energy(x).detach())
    if health is not None:
        if data_range is not None:
            lo, hi = data_range
            health["out_of_range"] = ((x < lo) | (x > hi)).float().mean().item()
        _diagnostics.append(health)
    if _records is not None:
        _sync(x)
        _records.append({**record, "seconds": time.perf_counter() - t0})
    return x if differentiable else x.detach()
