"""Latent-space views shared by the latent-variable methods: the latent interpolation figure (decoded
paths between pairs of codes) and the locality measure (how much of one latent unit's effect on the
image stays inside one image patch). Each method passes its own decoder and codes."""

import math
from collections.abc import Callable
from pathlib import Path

import torch

from .plots import image_grid

Decode = Callable[[torch.Tensor], torch.Tensor]


def interpolation_codes(z_a: torch.Tensor, z_b: torch.Tensor, n_points: int) -> torch.Tensor:
    """(rows x n_points, *latent) codes z_rho = rho z_a + sqrt(1 - rho^2) z_b, rho = cos(t pi / 2) for
    t evenly from 0 (z_a) to 1 (z_b): the path of short-run's Fig. 3, which keeps two independent
    N(0, I) codes N(0, I) all along (a straight line would shrink the middle towards 0)."""
    rho = torch.cos(torch.linspace(0, 1, n_points, device=z_a.device) * math.pi / 2)
    shape = (-1, n_points, *[1] * (z_a.dim() - 1))
    rho = rho.view(shape)
    path = rho * z_a[:, None] + (1 - rho**2).clamp_min(0).sqrt() * z_b[:, None]
    return path.flatten(0, 1)


def interpolation_figure(
    decode: Decode, z_a: torch.Tensor, z_b: torch.Tensor, n_points: int, path, batch_with: torch.Tensor | None = None
) -> Path:
    """latent_interpolation.png: one row per pair (z_a[i], z_b[i]), columns along `interpolation_codes`,
    decoded in one batch. `batch_with`: codes decoded in the same batch and dropped, for decoders
    whose batch norm uses the batch's statistics (so the path is decoded as samples are)."""
    codes = interpolation_codes(z_a, z_b, n_points)
    batch = codes if batch_with is None else torch.cat([codes, batch_with])
    with torch.no_grad():
        images = decode(batch)[: len(codes)]
    image_grid(images, Path(path), nrow=n_points)
    return Path(path)


def patch_shares(change: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, grid^2): the share of each image's squared change (summed over channels) inside each cell
    of a grid x grid partition of the image, cells in row-major order."""
    n, _, h, w = change.shape
    sq = change.pow(2).sum(1).reshape(n, grid, h // grid, grid, w // grid).sum((2, 4)).flatten(1)
    return sq / sq.sum(1, keepdim=True).clamp_min(torch.finfo(sq.dtype).tiny)


def locality(
    decode: Decode,
    z: torch.Tensor,
    perturb: Callable[[torch.Tensor, int], torch.Tensor],
    n_units: int,
    grid: int,
    own_patch: list[int] | None = None,
) -> float:
    """Mean share of the image change caused by perturbing one latent unit that falls inside that
    unit's patch of a grid x grid partition: 1 = each unit changes only its own patch, 1 / grid^2 =
    the change spreads evenly. `perturb(z, u)`: z with unit u perturbed. `own_patch[u]`: unit u's
    patch (a convolutional latent's position); None (a vector latent): each unit's best-matching
    patch, the one holding the largest share of its change averaged over the images, fixed across
    images as a position's patch is. Averaged over the units and the codes z."""
    with torch.no_grad():
        base = decode(z)
        shares = torch.stack([patch_shares(decode(perturb(z, u)) - base, grid) for u in range(n_units)], 1)
    own = shares.mean(0).argmax(1) if own_patch is None else torch.tensor(own_patch, device=shares.device)
    return shares[:, torch.arange(n_units, device=shares.device), own].mean().item()
