"""CoopVAEBM (Xie, Zheng, Li 2021): its pieces against known answers, on tiny CPU inputs."""

import dataclasses

import pytest
import torch
from ebmbench.methods.coop_vae_ebm import PRESETS, CoopVAEBM, gaussian_kl

CPU = torch.device("cpu")


def tiny(**extra):
    return dataclasses.replace(PRESETS["digits"], batch_size=4, **extra)


def test_energy_is_descriptor_on_gaussian_reference():
    """U(x) = -f(x) + ||x||^2 / (2 sigma_ref^2), and its gradient is the released code's
    x / sigma_ref^2 - df/dx, so one shared-sampler step is x - 0.5 delta^2 (x / sigma^2 - df/dx)."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(), (3, 32, 32), CPU)
    x = torch.randn(3, 3, 32, 32)
    sigma = m.cfg.sigma_ref
    expected = -m.f(x) + (x**2).sum((1, 2, 3)) / (2 * sigma**2)
    torch.testing.assert_close(m.energy(x), expected)

    xr = x.clone().requires_grad_(True)
    (df,) = torch.autograd.grad(m.f(xr).sum(), xr)
    delta = m.cfg.delta
    code_step = x - 0.5 * delta**2 * (x / sigma**2 - df)  # CoopVAEBM model.py, noise line commented out
    torch.testing.assert_close(m.revise(x, 1, torch.Generator().manual_seed(0)), code_step)


def test_revision_lowers_energy_of_frozen_ebm():
    """Langevin revision of decoder samples on the method's own EBM (weights frozen) lowers U."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(), (3, 32, 32), CPU)
    for p in m.f.parameters():
        p.requires_grad_(False)
    before = [p.clone() for p in m.f.parameters()]
    x0 = m.generate(8, torch.Generator().manual_seed(1))
    energies = []
    m.revise(
        x0, m.cfg.n_steps, torch.Generator().manual_seed(2), on_step=lambda k, x, e: energies.append(e.mean().item())
    )
    assert len(energies) == m.cfg.n_steps + 1
    assert all(b < a for a, b in zip(energies, energies[1:], strict=False)), energies  # noise 0: monotone descent
    assert all(torch.equal(a, b) for a, b in zip(before, m.f.parameters(), strict=True))


def test_revision_on_quadratic_reference_only_matches_closed_form():
    """With f = 0 the energy is ||x||^2 / (2 sigma^2): K noiseless steps scale x by
    (1 - step / sigma^2)^K with step = delta^2 / 2 (the sampler mapping, exactly)."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(), (3, 32, 32), CPU)
    with torch.no_grad():
        for p in m.f.parameters():
            p.zero_()
    x0 = torch.randn(2, 3, 32, 32)
    k, c = 7, m.cfg
    out = m.revise(x0, k, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0 * (1 - c.delta**2 / 2 / c.sigma_ref**2) ** k)


def test_kl_term_matches_closed_form_and_monte_carlo():
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.7]])
    var = logvar.exp()
    closed = 0.5 * (var + mu**2 - 1 - logvar).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), closed)
    torch.testing.assert_close(gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar), mc, atol=0.02)


def test_ebm_step_follows_the_mle_gradient():
    """The EBM update descends mean f(revised) - mean f(observed): after one small step that
    difference is lower than before on the same batches."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(ebm_lr=1e-5), (3, 32, 32), CPU)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    g = torch.Generator().manual_seed(3)
    x_rev = m.revise(m.generate(4, torch.Generator().manual_seed(3)), m.cfg.n_steps, g)
    before = (m.f(x_rev).mean() - m.f(x).mean()).item()
    stats = m.train_step(x, torch.Generator().manual_seed(3))  # same generator stream: same x_rev
    assert stats["loss_ebm"] == pytest.approx(before, rel=1e-5)
    after = (m.f(x_rev).mean() - m.f(x).mean()).item()
    assert after < before


def test_decoder_batchnorm_has_offset_only_and_batch_statistics():
    """TF batch_norm as the code calls it: no scale parameter, batch statistics even in eval mode."""
    torch.manual_seed(0)
    m = CoopVAEBM(dataclasses.replace(PRESETS["cifar10"], batch_size=2), (3, 32, 32), CPU)
    names = [n for n, _ in m.dec.named_parameters()]
    assert not any(n.endswith(".bn.weight") for n in names) and any(n.endswith(".offset") for n in names)
    m.train(False)
    z = torch.randn(6, m.cfg.nz)
    with torch.no_grad():
        h = m.dec.net[:2](z[:, :, None, None])  # first transposed conv + BN
    torch.testing.assert_close(h.mean((0, 2, 3)), torch.zeros(h.shape[1]), atol=1e-5, rtol=0)


def test_figures_write_revision_strip_and_energy_profile(tmp_path):
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(n_steps_test=4, revision_cols=5), (3, 32, 32), CPU)
    files = m.figures(torch.rand(4, 3, 32, 32) * 2 - 1, torch.Generator().manual_seed(0), tmp_path)
    assert sorted(p.name for p in files) == sorted(CoopVAEBM.FIGURES)
    assert all(p.stat().st_size > 0 for p in files)


def test_samples_are_decoded_in_chunks_of_the_training_chain_count(tmp_path):
    """The decoder's BN normalises with the batch it is given, so every decode at test time is a
    full batch of the training chain count (code `sampling`: 900 chains, as in training), also for
    a request smaller than one chunk or with a remainder."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(chains_per_obs=2.5, n_steps_test=2), (3, 32, 32), CPU)  # 4 obs -> 10 chains
    sizes = []
    m.dec.register_forward_hook(lambda mod, inp, out: sizes.append(len(out)))
    assert m.sample_chunk() == 10
    assert m.sample(3, torch.Generator().manual_seed(0)).shape == (3, 3, 32, 32)
    assert m.sample(25, torch.Generator().manual_seed(0)).shape == (25, 3, 32, 32)
    assert sizes == [10] * 4  # 1 chunk for 3, then 3 chunks for 25
    del sizes[:]
    m.figures(torch.rand(4, 3, 32, 32) * 2 - 1, torch.Generator().manual_seed(0), tmp_path)
    # the revision figure decodes a full chunk too; the latent interpolation (8 pairs x 8 points)
    # decodes its path beside a full chunk of prior codes, so batch norm sees a sampling batch
    assert sizes == [10, 8 * m.cfg.interp_points + 10]


def test_cifar10_preset_samples_in_900_chain_batches_and_its_numbers_are_second_hand():
    from ebmbench.evaluate.paper_numbers import load

    PAPER = [p for p in load() if p.suite_id == "coop_vae_ebm" and p.source != "Cui & Han 2023 (NeurIPS) Table 1"]

    m = CoopVAEBM.__new__(CoopVAEBM)
    m.cfg = PRESETS["cifar10"]
    assert m.sample_chunk() == 900 and m.cfg.n_samples == 50_000
    assert PAPER and all(not p.verified and p.protocol.startswith("SECOND-HAND") for p in PAPER)


def test_paper_numbers_that_are_unverified_never_print_plain_reproduced(tmp_path):
    """A measurement equal to an unverified number (here the second-hand IS) gets a verdict only
    with the caveat; the status tells run state only."""
    import json

    from ebmbench.evaluate.table import build_table

    f = tmp_path / "metrics.json"
    f.write_text(
        json.dumps(
            {
                "method": "coop_vae_ebm",
                "dataset": "cifar10",
                "seed": 0,
                "status": "ok",
                "is": 6.65,
                "n_generated": 50000,
                "n_reference": 50000,
                "extractor": "inception",
            }
        )
    )
    rows = build_table([f]).query("metric == 'is'")
    assert set(rows.status) == {"done"}
    unverified = rows[~rows.paper_verified.astype(bool)]
    assert len(unverified) == 1 and unverified.verdict.iloc[0].endswith(" [unverified]")


def test_sampling_variants_are_the_proposals_and_the_noise_started_chains_of_the_same_ebm():
    """(a) vae_proposal: the decoder outputs that `sample` revises (same stream, bit for bit);
    (c) noise_K: the same chain, n_steps_test steps from Uniform(-1, 1); (d) noise_4K: four times as
    long, which (noise 0: gradient descent on U) ends at lower energy."""
    torch.manual_seed(0)
    m = CoopVAEBM(tiny(n_steps_test=3), (3, 32, 32), CPU)
    m.train(False)
    k = m.sample_chunk()
    g = torch.Generator().manual_seed(2)
    proposals = m.sample_variant("vae_proposal", k, g)
    revised = m.revise(proposals, 3, g)
    assert torch.equal(m.sample(k, torch.Generator().manual_seed(2)), revised)
    assert not torch.allclose(proposals, revised)

    g = torch.Generator().manual_seed(5)
    u = torch.rand((k, 3, 32, 32), generator=g) * 2 - 1
    expected = m.revise(u, 3, g)
    noise_k = m.sample_variant("noise_K", k, torch.Generator().manual_seed(5))
    assert torch.equal(noise_k, expected)
    noise_4k = m.sample_variant("noise_4K", k, torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert m.energy(noise_4k).mean() < m.energy(noise_k).mean()
    assert set(CoopVAEBM.VARIANTS) == {"vae_proposal", "noise_K", "noise_4K"}
