"""Latent-space EBM prior (Pang et al. 2020) and its convolutional variant (Xu 2021): the two
Langevin chains against known answers, the learning step's direction, the released architectures."""

import dataclasses
import math

import pytest
import torch
from ebmbench.methods.latent_ebm import LatentEBM, LatentEBMConv
from torch import nn

from ebmbench.evaluate.paper_numbers import load
from ebmbench.latent_figures import interpolation_codes, locality
from ebmbench.nets import n_params

CPU = torch.device("cpu")
PAPER = [p for p in load() if p.source == "Pang et al. 2020 Table 1"]  # methods/paper_numbers.csv
VARIANTS = [LatentEBM, LatentEBMConv]


def model_of(cls, shape=(3, 32, 32), seed=0, **changes):
    torch.manual_seed(seed)
    return cls(dataclasses.replace(cls.PRESETS["digits"], **changes), shape, CPU)


def gen(seed):
    return torch.Generator().manual_seed(seed)


class LinearTilt(nn.Module):
    """E(z) = -<b, z>: tilts N(0, I) to N(b, I)."""

    def __init__(self, b):
        super().__init__()
        self.b = b

    def forward(self, z):
        return -(z * self.b).flatten(1).sum(1)


def zero_energy(model):
    """Zero the last layer of the prior energy net: E == 0, so p_alpha = p0 = N(0, I)."""
    last = [m for m in model.E.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()


def ula_prior_moments(s, k, mu=0.0):
    """Mean and variance after k steps of z <- z - s^2/2 (z - mu) + s N(0, 1) from N(0, 1)."""
    a = 1 - s * s / 2
    return mu * (1 - a**k), a ** (2 * k) + s * s * (1 - a ** (2 * k)) / (1 - a * a)


@pytest.mark.parametrize("cls", VARIANTS)
def test_prior_chain_lowers_tilted_energy_of_its_start_points(cls):
    model = model_of(cls)  # a fixed, randomly initialised EBM
    z0 = 3 * model.z0(256, gen(0))  # start far out in the Gaussian tails
    z = model.prior_chain(z0, gen(1))
    with torch.no_grad():
        before, after = model.prior_energy(z0).mean(), model.prior_energy(z).mean()
    assert after < 0.5 * before, (before, after)


@pytest.mark.parametrize("cls", VARIANTS)
def test_prior_chain_with_zero_energy_keeps_standard_normal(cls):
    """E == 0: the chain targets N(0, I). Its exact discrete-time variance after K0 steps (s0 = 0.4:
    1 / (1 - s0^2/4) = 1.042 at stationarity) must be met within sampling error."""
    model = model_of(cls, prior_steps=60, prior_step=0.4)
    zero_energy(model)
    z = model.prior_chain(model.z0(1000 if cls is LatentEBM else 250, gen(0)), gen(1)).flatten(1)
    _, var = ula_prior_moments(0.4, 60)
    n = z.numel()
    assert abs(z.mean().item()) < 4 / math.sqrt(n)
    assert abs(z.var().item() - var) < 4 * var * math.sqrt(2 / n), (z.var().item(), var)
    assert abs(z.var().item() - 1) < 0.06  # and N(0, I) up to the step's discretisation


@pytest.mark.parametrize("cls", VARIANTS)
def test_prior_chain_follows_the_energy_sign(cls):
    """E(z) = -<b, z> makes the prior N(b, I): a chain descending E the wrong way would go to -b."""
    model = model_of(cls, prior_steps=60, prior_step=0.4)
    b = torch.linspace(-1.5, 1.5, math.prod(model.latent_shape)).reshape(model.latent_shape)
    model.E = LinearTilt(b)
    n = 2000
    z = model.prior_chain(model.z0(n, gen(0)), gen(1))
    mean, var = ula_prior_moments(0.4, 60, b)
    assert ((z.mean(0) - mean).abs() / math.sqrt(var)).max() < 5 / math.sqrt(n)


@pytest.mark.parametrize("cls", VARIANTS)
def test_posterior_chain_lowers_reconstruction_error(cls):
    model = model_of(cls)  # fixed generator and EBM
    last = [m for m in model.G.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    with torch.no_grad():
        last.weight.mul_(30)  # at initialisation G(z) barely depends on z; make it as sensitive as a trained G
        x = model.G(model.z0(64, gen(0)))  # observations the generator can explain
    z0 = model.z0(64, gen(1))
    z = model.posterior_chain(z0, x, gen(2))
    with torch.no_grad():
        before, after = (model.G(z0) - x).pow(2).mean(), (model.G(z) - x).pow(2).mean()
    assert after < 0.2 * before, (before, after)


@pytest.mark.parametrize("cls", VARIANTS)
def test_posterior_chain_matches_linear_gaussian_posterior(cls):
    """G(z) = W z, E == 0: p(z | x) is Gaussian with precision P = W'W / sigma^2 + I and mean
    P^-1 W'x / sigma^2. The chain (step s1^2/2, noise s1) has the known stationary law
    N(mean, (P (I - s1^2 P / 4))^-1); its samples must match both moments. (s1 = 0.3 rather than
    the paper's 0.1 so that 250 steps mix; the mapping under test is the same.)"""
    nz = 4 if cls is LatentEBM else 1
    model = model_of(cls, shape=(1, 8, 8), nz=nz, post_steps=250, post_step=0.3, sigma=0.3)
    model.E = LinearTilt(torch.zeros(model.latent_shape))  # E == 0 at no cost per step
    d, D = math.prod(model.latent_shape), 64
    w = torch.randn(D, d, generator=gen(0)) * 0.12  # eigenvalues of P in ~[1, 25]: s1^2/2 * 25 < 2, stable
    model.G = lambda z: (z.flatten(1) @ w.T).reshape(-1, 1, 8, 8)
    x_one = torch.randn(D, generator=gen(1)) * 0.5
    n = 2000
    z = model.posterior_chain(model.z0(n, gen(2)), x_one.reshape(1, 1, 8, 8).expand(n, 1, 8, 8), gen(3)).flatten(1)
    sigma2, h = 0.09, 0.3**2 / 2
    prec = w.T @ w / sigma2 + torch.eye(d)
    mean = torch.linalg.solve(prec, w.T @ x_one / sigma2)
    cov = torch.linalg.inv(prec @ (torch.eye(d) - h * prec / 2))
    sd = cov.diagonal().sqrt()
    assert ((z.mean(0) - mean).abs() / sd).max() < 5 / math.sqrt(n)
    assert ((z.var(0) - cov.diagonal()).abs() / cov.diagonal()).max() < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("cls", VARIANTS)
def test_train_step_descends_both_objectives(cls):
    """On the very samples the step used: the EBM gap mean E(z+) - mean E(z-) and the generator's
    reconstruction error both fall (a flipped sign in either update would raise them)."""
    model = model_of(cls, lr_e=1e-3, lr_g=1e-3, batch_size=16)
    x = torch.rand(16, 3, 32, 32, generator=gen(0)) * 2 - 1
    z_prior, z_post = model.chains(x, gen(5))  # the same draws train_step makes with gen(5)

    def objectives():
        with torch.no_grad():
            return (model.E(z_post).mean() - model.E(z_prior).mean()).item(), (model.G(z_post) - x).pow(2).mean().item()

    gap0, rec0 = objectives()
    stats = model.train_step(x, gen(5))
    gap1, rec1 = objectives()
    assert stats["loss_ebm"] == pytest.approx(gap0, rel=1e-5, abs=1e-6)
    assert stats["recon_mse"] == pytest.approx(rec0 / 4, rel=1e-5)  # logged on the [0, 1] scale
    assert gap1 < gap0 and rec1 < rec0


def test_paper_presets_rebuild_the_released_networks():
    """Parameter counts of the released nets (docs/papers.md section 8): LE `train_svhn.py` [P] and the
    follow-ups' CIFAR-10 / CelebA-64 generators [S]."""
    want = {"svhn": (60_601, 3_447_683), "cifar10": (66_201, 18_883_075), "celeba64": (60_601, 12_656_515)}
    for preset, (e, g) in want.items():
        shape = (3, 64, 64) if preset == "celeba64" else (3, 32, 32)
        model = LatentEBM(LatentEBM.PRESETS[preset], shape, CPU)
        assert (n_params(model.E), n_params(model.G)) == (e, g), preset
        assert model.G(torch.zeros(1, *model.latent_shape)).shape == (1, *shape)


@pytest.mark.parametrize("preset", ["svhn", "celeba64"])
def test_conv_variant_maps_a_4x4x100_latent_to_the_image(preset):
    shape = (3, 64, 64) if preset == "celeba64" else (3, 32, 32)
    model = LatentEBMConv(LatentEBMConv.PRESETS[preset], shape, CPU)
    z = torch.zeros(2, 100, 4, 4)
    assert model.latent_shape == (100, 4, 4)
    assert model.G(z).shape == (2, *shape) and model.E(z).shape == (2,)
    c = model.cfg
    assert (c.prior_steps, c.post_steps, c.lr_e, c.lr_g) == (60, 30, 1e-5, 1e-4)  # Xu sec. 4.1


def test_paper_numbers_cover_pang_table_1():
    cells = {(p.method, p.dataset, p.metric): p for p in PAPER}
    assert len(cells) == len(PAPER) == 32  # 6 x 6 cells minus SRI's four CIFAR-10 dashes
    assert cells[("Ours", "svhn", "fid")].value == 29.44 and cells[("Ours", "cifar10", "mse")].value == 0.020
    assert {p.suite_id for p in PAPER if p.method == "Ours"} == {"latent_ebm"}
    assert {p.suite_id for p in PAPER if p.method == "VAE"} == {"vae"}
    assert all(p.suite_id is None for p in PAPER if p.method not in ("Ours", "VAE"))
    assert all("UNVERIFIED" in p.protocol for p in PAPER)
    assert not [p for p in load() if p.suite_id == "latent_ebm_conv"]


@pytest.mark.parametrize("cls", [LatentEBMConv])  # the figure code is shared; the map variant covers both
def test_figures_are_written(cls, tmp_path):
    model = model_of(cls, prior_steps=6, post_steps=6, fig_images=3, fig_cols=4)
    x = torch.rand(5, 3, 32, 32, generator=gen(0)) * 2 - 1
    written = model.figures(x, gen(1), tmp_path)
    assert sorted(p.name for p in written) == sorted(cls.FIGURES)
    assert all(p.stat().st_size > 0 for p in written)


def test_prior_energy_figure_plots_the_energy_of_every_step(tmp_path, monkeypatch):
    """Pang Fig. 2 prints the energy beside each step of the prior trajectory: one line per shown
    chain, K0 + 1 values each, equal to U(z_k) along the chain."""
    import ebmbench.methods.latent_ebm as le

    model = model_of(LatentEBM, prior_steps=5, post_steps=2, fig_images=3, fig_cols=3)
    plotted = {}
    real = le.line_plot
    monkeypatch.setattr(
        le, "line_plot", lambda series, path, *a: (plotted.__setitem__(path.name, series), real(series, path, *a))
    )
    model.figures(torch.rand(4, 3, 32, 32, generator=gen(0)) * 2 - 1, gen(1), tmp_path)
    lines = plotted["prior_energy.png"]
    assert len(lines) == 3 and all(len(v) == 6 for v in lines.values())
    # replay the figure's generator: the posterior chain's start and noise, then the prior chain's
    g = gen(1)
    model.posterior_chain(model.z0(4, g), torch.rand(4, 3, 32, 32, generator=gen(0)) * 2 - 1, g)
    energies = []
    model.prior_chain(model.z0(3, g), g, on_step=lambda k, z, e: energies.append(e.tolist()))
    assert [v[-1] for v in lines.values()] == pytest.approx(energies[-1], rel=1e-5)


def test_mse_rows_are_marked_unverified_scale():
    """Pang's MSE pixel scale ([0, 1] or [-1, 1]: 4x) is unconfirmed; so are Dual-MCMC's Table 3 rows."""
    DUAL = [p for p in load() if p.source.startswith("Cui & Han 2023 (NeurIPS)")]

    for rows in (PAPER, DUAL):
        mse = [p for p in rows if p.metric == "mse"]
        assert mse and all(not p.verified and p.protocol.startswith("SCALE UNVERIFIED") for p in mse)
        assert all(p.verified for p in rows if p.metric == "fid" and p.method == "Ours")


# -- latent space: locality (Xu's claim as a number) and the interpolation path ---------------------


def upsample_generator(factor):
    """A (1, 4, 4) latent map -> (3, 4f, 4f) image, each position painting exactly its own f x f patch."""
    return lambda z: z.sum(1, keepdim=True).repeat_interleave(factor, 2).repeat_interleave(factor, 3).repeat(1, 3, 1, 1)


def test_locality_is_one_for_a_generator_whose_positions_paint_only_their_patch():
    z = torch.randn(5, 1, 4, 4, generator=gen(0))
    masks = torch.eye(16).view(16, 1, 4, 4)
    noise = torch.randn(z.shape, generator=gen(1))
    value = locality(upsample_generator(8), z, lambda v, u: v + noise * masks[u], 16, 4, list(range(16)))
    assert value == pytest.approx(1.0)
    shifted = [(u + 1) % 16 for u in range(16)]  # the wrong patch for every position holds none of its change
    assert locality(upsample_generator(8), z, lambda v, u: v + noise * masks[u], 16, 4, shifted) == pytest.approx(0.0)


def test_locality_is_one_sixteenth_when_every_unit_changes_the_whole_image_alike():
    """A vector latent whose every coordinate scales the whole image evenly: its best patch holds 1/16."""
    z = torch.randn(6, 5, generator=gen(0))
    decode = lambda v: v.sum(1).view(-1, 1, 1, 1).expand(-1, 3, 32, 32)  # noqa: E731
    noise = torch.randn(z.shape, generator=gen(1))
    eye = torch.eye(5)
    assert locality(decode, z, lambda v, u: v + noise * eye[u], 5, 4) == pytest.approx(1 / 16)


@pytest.mark.parametrize("cls", VARIANTS)
def test_measurements_give_a_locality_between_even_spread_and_perfect(cls):
    m = model_of(cls)
    m.train(False)
    x = torch.rand(6, 3, 32, 32, generator=gen(0)) * 2 - 1
    out = m.measurements(x, gen(1))
    assert set(out) == {"locality"} and 1 / 16 - 1e-6 <= out["locality"] <= 1.0


def test_interpolation_path_runs_from_one_code_to_the_other_keeping_unit_norms():
    z_a, z_b = torch.eye(4)[:2], torch.eye(4)[2:]  # orthonormal pairs
    path = interpolation_codes(z_a, z_b, 5).view(2, 5, 4)
    torch.testing.assert_close(path[:, 0], z_a)
    torch.testing.assert_close(path[:, -1], z_b, atol=1e-6, rtol=0)
    torch.testing.assert_close(path.norm(dim=2), torch.ones(2, 5))  # rho^2 + (1 - rho^2) = 1
