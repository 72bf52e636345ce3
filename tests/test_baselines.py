"""The baselines vae, abp and coopnets: each is the method it ablates minus one named part, checked
against that method's own code and against known answers; and the table puts them beside it.
(The generic contract, one step moving every network and each paper preset at paper resolution,
is tests/test_methods.py, parametrised over every registered id, these three included.)"""

import dataclasses
import math

import pandas as pd
import pytest
import torch
from ebmbench.methods import coop_vae_ebm, latent_ebm
from ebmbench.methods.abp import ABP
from ebmbench.methods.coop_vae_ebm import CoopVAEBM
from ebmbench.methods.coopnets import CoopNets
from ebmbench.methods.latent_ebm import LatentEBM
from ebmbench.methods.vae import VAE
from PIL import Image
from torch import nn

from ebmbench.evaluate.claims import build_claims, format_claims
from ebmbench.evaluate.table import build_table, read_runs
from ebmbench.io import write_json
from ebmbench.nets import n_params

CPU = torch.device("cpu")


def gen(seed):
    return torch.Generator().manual_seed(seed)


def build(cls, shape=(3, 32, 32), seed=0, preset="digits", **changes):
    torch.manual_seed(seed)
    return cls(dataclasses.replace(cls.PRESETS[preset], **changes), shape, CPU)


def shared_fields(a, b) -> dict:
    names = {f.name for f in dataclasses.fields(a)} & {f.name for f in dataclasses.fields(b)}
    return {k: (getattr(a, k), getattr(b, k)) for k in sorted(names)}


class Zero(nn.Module):
    """E(z) = 0, differentiable: latent_ebm's prior reduced to its Gaussian p0."""

    def forward(self, z):
        return z.flatten(1).sum(1) * 0.0


def linear_generator(w, shape):
    """G(z) = W z, reshaped to images: a model whose posterior is Gaussian in closed form."""
    return lambda z: (z.flatten(1) @ w.T).reshape(-1, *shape)


def ula_posterior(w, x, sigma2, h):
    """For G(z) = W z, z ~ N(0, I), x ~ N(Wz, sigma2 I): precision P = W'W / sigma2 + I, mean
    P^-1 W'x / sigma2; Langevin with step h and noise sqrt(2h) is stationary at N(mean, (P (I - h P/2))^-1)."""
    d = w.shape[1]
    prec = w.T @ w / sigma2 + torch.eye(d)
    return torch.linalg.solve(prec, w.T @ x / sigma2), torch.linalg.inv(prec @ (torch.eye(d) - h * prec / 2))


# -- abp = latent_ebm minus its EBM prior ---------------------------------------------------------


def test_abp_is_latent_ebm_without_the_prior_network():
    for name, cfg in ABP.PRESETS.items():  # every preset: latent_ebm's, field for field
        assert all(a == b for a, b in shared_fields(cfg, latent_ebm.PRESETS[name]).values()), name
    abp, lebm = build(ABP, preset="svhn"), build(LatentEBM, preset="svhn")
    assert set(abp.nets) == {"G"} and set(lebm.nets) == {"E", "G"}
    assert n_params(abp.G) == n_params(lebm.G) == 3_447_683  # LE's SVHN generator (docs/papers.md section 8)


def test_abp_posterior_chain_equals_latent_ebms_with_the_prior_term_removed():
    """Same generator weights, same start, same random numbers: latent_ebm's posterior chain with
    E = 0 and abp's chain agree to the last bit; with latent_ebm's own E they do not."""
    lebm, abp = build(LatentEBM), build(ABP, seed=1)
    abp.G.load_state_dict(lebm.G.state_dict())
    x = torch.rand(16, 3, 32, 32, generator=gen(0)) * 2 - 1
    z0 = torch.randn(16, lebm.cfg.nz, generator=gen(1))
    with_prior = lebm.posterior_chain(z0, x, gen(2))
    lebm.E = Zero()
    assert torch.equal(lebm.posterior_chain(z0, x, gen(2)), abp.posterior_chain(z0, x, gen(2)))
    assert not torch.allclose(with_prior, abp.posterior_chain(z0, x, gen(2)))


def test_abp_one_step_is_han_et_al_update():
    """z <- z + s^2/2 [(x - G(z))' dG/dz / sigma^2 - z] + s eps (Han et al. 2017), written out."""
    abp = build(ABP, post_steps=1)
    x = torch.rand(4, 3, 32, 32, generator=gen(0)) * 2 - 1
    z = torch.randn(4, abp.cfg.nz, generator=gen(1)).requires_grad_(True)
    s, sigma = abp.cfg.post_step, abp.cfg.sigma
    (grad_llhd,) = torch.autograd.grad((-(x - abp.G(z)).pow(2).sum() / (2 * sigma**2)), z)
    eps = torch.randn(z.shape, generator=gen(2))
    expected = z.detach() + s**2 / 2 * (grad_llhd - z.detach()) + s * eps
    torch.testing.assert_close(abp.posterior_chain(z.detach(), x, gen(2)), expected)


def test_abp_posterior_chain_matches_linear_gaussian_posterior():
    abp = build(ABP, shape=(1, 8, 8), nz=4, post_steps=250, post_step=0.3)
    w = torch.randn(64, 4, generator=gen(0)) * 0.12
    abp.G = linear_generator(w, (1, 8, 8))
    x = torch.randn(64, generator=gen(1)) * 0.5
    n = 2000
    z = abp.posterior_chain(abp.z0(n, gen(2)), x.reshape(1, 1, 8, 8).expand(n, 1, 8, 8), gen(3))
    mean, cov = ula_posterior(w, x, abp.cfg.sigma**2, 0.3**2 / 2)
    sd = cov.diagonal().sqrt()
    assert ((z.mean(0) - mean).abs() / sd).max() < 5 / math.sqrt(n)
    assert ((z.var(0) - cov.diagonal()).abs() / cov.diagonal()).max() < 5 * math.sqrt(2 / n)


def test_abp_samples_ancestrally_from_the_gaussian_prior():
    abp = build(ABP)
    with torch.no_grad():
        expected = abp.G(torch.randn(5, abp.cfg.nz, generator=gen(0)))
    torch.testing.assert_close(abp.sample(5, gen(0)), expected)


# -- vae = latent_ebm minus its EBM prior, with an encoder for the posterior chain ----------------


def test_vae_has_an_encoder_and_no_energy_or_chain():
    for name, cfg in VAE.PRESETS.items():
        assert all(a == b for a, b in shared_fields(cfg, latent_ebm.PRESETS[name]).values()), name
        assert not any("steps" in f.name for f in dataclasses.fields(cfg))
    vae = build(VAE)
    assert set(vae.nets) == {"G", "enc"}
    with torch.no_grad():  # ancestral sampling, and reconstruction through the encoder mean
        expected = vae.G(torch.randn(5, vae.cfg.nz, generator=gen(0)))
        x = torch.rand(3, 3, 32, 32) * 2 - 1
        torch.testing.assert_close(vae.reconstruct(x, gen(0)), vae.G(vae.enc(x)[0]))
    torch.testing.assert_close(vae.sample(5, gen(0)), expected)


def test_vae_neg_elbo_is_the_exact_marginal_likelihood_with_the_true_posterior():
    """Linear-Gaussian model, encoder = exact posterior: E_eps[-ELBO] = -log p(x) up to the constant
    our loss drops, (D/2) log(2 pi sigma^2); an encoder off the posterior gives a strictly larger value."""
    vae = build(VAE, shape=(1, 8, 8), nz=3)
    d, D, sigma2 = 3, 64, vae.cfg.sigma**2
    q, _ = torch.linalg.qr(torch.randn(D, d, generator=gen(0)))
    w = q * torch.tensor([0.5, 1.0, 2.0])  # orthogonal columns: the exact posterior is diagonal
    vae.G = linear_generator(w, (1, 8, 8))
    x = torch.randn(D, generator=gen(1)) * 0.5
    mean, _ = ula_posterior(w, x, sigma2, 0.0)
    post_var = 1 / ((w * w).sum(0) / sigma2 + 1)
    n = 40_000
    xs = x.reshape(1, 1, 8, 8).expand(n, 1, 8, 8)

    def neg_elbo(mu, var):
        vae.enc = lambda _x: (mu.expand(n, d), var.log().expand(n, d))
        with torch.no_grad():
            return vae.neg_elbo(xs, gen(2))[0].double()

    exact = neg_elbo(mean, post_var)
    c = w @ w.T + sigma2 * torch.eye(D)
    neg_log_px = -torch.distributions.MultivariateNormal(torch.zeros(D), c).log_prob(x).double()
    want = neg_log_px - D / 2 * math.log(2 * math.pi * sigma2)
    assert abs(exact.mean() - want) < 5 * exact.std() / math.sqrt(n), (exact.mean(), want)
    assert neg_elbo(mean + 0.5, post_var).mean() > want + 1.0


def test_vae_step_descends_the_neg_elbo_on_its_own_draws():
    vae = build(VAE, batch_size=16)
    x = torch.rand(16, 3, 32, 32, generator=gen(0)) * 2 - 1
    with torch.no_grad():
        before = vae.neg_elbo(x, gen(5))[0].mean().item()
    stats = vae.train_step(x, gen(5))
    with torch.no_grad():
        after = vae.neg_elbo(x, gen(5))[0].mean().item()
    assert stats["loss_vae"] == pytest.approx(before, rel=1e-5) and after < before


# -- coopnets = coop_vae_ebm / dual_mcmc minus the inference model ---------------------------------


def test_coopnets_is_coop_vae_ebm_without_the_encoder():
    digits = shared_fields(CoopNets.PRESETS["digits"], coop_vae_ebm.PRESETS["digits"])
    assert all(a == b for a, b in digits.values())
    assert CoopNets.PRESETS["digits"].gen_lr == coop_vae_ebm.PRESETS["digits"].vae_lr
    coop, vaebm = build(CoopNets, preset="cifar10"), build(CoopVAEBM, preset="cifar10")
    assert set(coop.nets) == {"ebm", "gen"} and set(vaebm.nets) == {"ebm", "encoder", "decoder"}
    # the CoopVAEBM descriptor and decoder of docs/papers.md section 8
    assert (n_params(coop.f), n_params(coop.dec)) == (n_params(vaebm.f), n_params(vaebm.dec)) == (1_710_465, 1_104_515)


def test_coopnets_descriptor_step_is_the_released_code_update():
    """CoopNets model.py: x <- x - 0.5 delta^2 (x / sigma_ref^2 - df/dx) + delta N(0, I), noise on."""
    m = build(CoopNets, preset="digits", delta=0.002, sigma_ref=0.016, noise_std=0.002)
    x = torch.rand(3, 3, 32, 32, generator=gen(0)) * 2 - 1
    xr = x.clone().requires_grad_(True)
    (df,) = torch.autograd.grad(m.f(xr).sum(), xr)
    d, s = 0.002, 0.016
    expected = x - 0.5 * d**2 * (x / s**2 - df) + d * torch.randn(x.shape, generator=gen(1))
    torch.testing.assert_close(m.revise(x, 1, gen(1)), expected)


def test_coopnets_step_teaches_the_generator_with_the_revised_samples():
    """The generator regresses g(z_i) onto the EBM's revision of g(z_i), at the known z_i, and the
    EBM separates data from revisions: both fall on the very draws the step used."""
    # noise in the revision gives the generator a residual to fit from the first step (at
    # initialisation the noiseless revision barely moves), a small lr one Adam step cannot overshoot
    m = build(CoopNets, batch_size=16, noise_std=0.1, gen_lr=3e-4)
    x = torch.rand(16, 3, 32, 32, generator=gen(0)) * 2 - 1
    z, x_rev = m.synthesize(16, gen(5))  # the draws train_step makes with gen(5)

    def objectives():
        with torch.no_grad():
            return (m.dec(z) - x_rev).pow(2).mean().item(), (m.f(x_rev).mean() - m.f(x).mean()).item()

    teach0, gap0 = objectives()
    stats = m.train_step(x, gen(5))
    teach1, gap1 = objectives()
    assert stats["teach_mse"] == pytest.approx(teach0, rel=1e-5) and stats["loss_ebm"] == pytest.approx(gap0, rel=1e-5)
    assert teach0 > 0 and teach1 < teach0 and gap1 < gap0


def test_coopnets_generator_posterior_matches_linear_gaussian_posterior():
    """The chain behind step G1 and the reconstructions: U = ||x - g(z)||^2 / (2 sigma_g^2) + ||z||^2/2."""
    m = build(CoopNets, shape=(1, 8, 8), nz=4, gen_step=0.3)
    w = torch.randn(64, 4, generator=gen(0)) * 0.12
    m.dec = linear_generator(w, (1, 8, 8))
    x = torch.randn(64, generator=gen(1)) * 0.5
    n = 2000
    z = m.infer(torch.randn(n, 4, generator=gen(2)), x.reshape(1, 1, 8, 8).expand(n, 1, 8, 8), 250, gen(3))
    mean, cov = ula_posterior(w, x, m.cfg.gen_sigma**2, 0.3**2 / 2)
    sd = cov.diagonal().sqrt()
    assert ((z.mean(0) - mean).abs() / sd).max() < 5 / math.sqrt(n)
    assert ((z.var(0) - cov.diagonal()).abs() / cov.diagonal()).max() < 5 * math.sqrt(2 / n)


# -- the table: each baseline beside its method, and the papers' orderings measured -------------


def metrics(tmp_path, method, seed, **values):
    path = tmp_path / method / f"seed{seed}.json"
    path.parent.mkdir(exist_ok=True)
    write_json(
        path,
        {
            "method": method,
            "dataset": "digits",
            "seed": seed,
            "status": "ok",
            "n_generated": 100,
            "n_reference": 1497,
            "extractor": "digits",
            "mse_n": 300,
            "mse_scale": "[0,1]",
            **values,
        },
    )
    return path


def test_table_puts_baselines_beside_their_methods_and_the_ledger_measures_the_orderings(tmp_path):
    files = [metrics(tmp_path, "vae", s, fid=f, mse=0.02) for s, f in ((0, 300.0), (1, 320.0))]
    files += [metrics(tmp_path, "latent_ebm", s, fid=f, mse=0.01) for s, f in ((0, 250.0), (1, 270.0))]
    files += [metrics(tmp_path, "abp", s, fid=200.0 + 20 * s, mse=0.005) for s in (0, 1)]
    files += [metrics(tmp_path, m, 0, fid=400.0, mse=0.03) for m in ("dual_mcmc", "coopnets", "short_run")]
    table = build_table(files)
    order = list(dict.fromkeys(table["method"]))
    assert order == ["coopnets", "dual_mcmc", "latent_ebm", "abp", "vae", "short_run"]
    assert set(table[table.method == "vae"]["ablates"]) == {"latent_ebm"}
    assert set(table[table.method == "coopnets"]["ablates"]) == {"coop_vae_ebm dual_mcmc"}
    assert set(table[table.method == "latent_ebm"]["ablates"]) == {""}

    out = tmp_path / "claims.csv"
    od = build_claims(read_runs(files), out, claims=[])  # the papers' orderings alone
    assert len(pd.read_csv(out)) == len(od) > 0
    got = {(r.method_a, r.method_b, r.metric_a, r.source): r for r in od.itertuples()}
    pang = got[("latent_ebm", "vae", "fid", "Pang et al. 2020 Table 1")]
    assert (pang.mean_a, pang.mean_b, pang.n_seeds, pang.verdict) == (260.0, 310.0, 2, "holds")
    assert (pang.difference, pang.lo, pang.hi) == (-50.0, -50.0, -50.0)  # paired by seed: -50 on both
    assert "svhn 29.44 vs 46.78" in pang.claim
    assert got[("latent_ebm", "vae", "mse", "Pang et al. 2020 Table 1")].verdict == "holds"
    assert got[("latent_ebm", "abp", "fid", "Cui, Wu & Han 2023 (CVPR) Table 1")].verdict == "reversed"  # +50 per seed
    tie = got[("dual_mcmc", "coopnets", "fid", "Cui & Han 2023 (NeurIPS) Table 1")]
    assert (tie.verdict, tie.n_seeds) == ("inconclusive", 1) and "no interval" in tie.interval  # one seed
    assert got[("dual_mcmc", "coopnets", "mse", "Cui & Han 2023 (NeurIPS) Table 3")].verdict == "inconclusive"
    assert not any("short_run" in (r.method_a, r.method_b) for r in od.itertuples())  # not a baseline pair
    text = format_claims(od)
    assert "digits latent_ebm_beats_vae_fid: latent_ebm fid < vae fid: 260 vs 310, A - B -50 [-50, -50]" in text


def test_the_ledger_reports_a_diverged_baseline_without_a_number(tmp_path):
    files = [metrics(tmp_path, "latent_ebm", 0, fid=250.0, mse=0.01)]
    path = tmp_path / "vae.json"
    write_json(path, {"method": "vae", "dataset": "digits", "seed": 0, "status": "diverged"})
    od = build_claims(read_runs(files + [path]), claims=[])
    assert set(od[od.method_b == "vae"]["verdict"]) == {"not measured (vae diverged (seed 0))"}


@pytest.mark.parametrize("cls", [VAE, ABP, CoopNets])
def test_baselines_draw_the_latent_interpolation_and_measure_nothing_of_their_methods(cls, tmp_path):
    """Each baseline's figures include latent_interpolation.png (rows: pairs, columns: points along
    the path); the measurements of the methods they ablate are not theirs."""
    m = build(cls, batch_size=4)
    m.train(False)
    x = torch.rand(4, 3, 32, 32, generator=gen(0)) * 2 - 1
    written = m.figures(x, gen(1), tmp_path)
    assert sorted(p.name for p in written) == sorted(cls.FIGURES) and "latent_interpolation.png" in cls.FIGURES
    rows = m.cfg.revision_rows if cls is CoopNets else m.cfg.fig_images
    cols = m.cfg.interp_points if cls is CoopNets else m.cfg.fig_cols
    with Image.open(tmp_path / "latent_interpolation.png") as im:
        assert abs(im.width / im.height - cols / rows) < 0.1
    assert not cls.measures() and cls.VARIANTS == {}
