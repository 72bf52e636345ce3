"""Dual-MCMC (Cui & Han 2023): the two chains, spectral norm and the released architectures."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from ebmbench.methods.dual_mcmc import DualMCMC, diag_normal_nll
from torch import nn

from ebmbench.evaluate import paper_numbers
from ebmbench.evaluate.measured import measured_metrics
from ebmbench.evaluate.paper_numbers import load
from ebmbench.evaluate.scoring import LOWER_IS_BETTER, METRICS
from ebmbench.io import SuiteError, load_images_npz, read_json, write_json
from ebmbench.nets import n_params

CPU = torch.device("cpu")


def model(**kw):
    cfg = dataclasses.replace(DualMCMC.PRESETS["digits"], batch_size=8, **kw)
    torch.manual_seed(0)
    return DualMCMC(cfg, (3, 32, 32), CPU)


def test_ebm_revision_is_the_released_update_and_lowers_the_energy():
    """On a fixed quadratic energy E = ||x - c||^2 the code's step x - s^2/2 dE/dx contracts x - c by
    (1 - s^2) per step; with n = 1e-3 the chain must land there and lower E of its start points."""
    m = model(x_step=0.5, x_noise=1e-3, x_steps=6)
    c = 0.3
    m.E = lambda x: ((x - c) ** 2).flatten(1).sum(1)
    with torch.no_grad():
        x0 = m.G(m.prior(8, torch.Generator().manual_seed(0)))
    x6 = m.revise_x(x0, torch.Generator().manual_seed(1))
    assert m.E(x6).mean() < 0.5 * m.E(x0).mean()
    expected = c + (1 - 0.5**2) ** 6 * (x0 - c)
    assert (x6 - expected).abs().max() < 1e-2  # noise: 6 steps of 1e-3 N(0, 1), contracted


def test_posterior_revision_is_the_released_update():
    """With a linear generator G(z) = W z and no noise, one step is the released
    z - s^2/2 (2 W^T (W z - x) / sigma^2 + z / sigma_p^2): no 1/2 on the likelihood term."""
    m = model(z_noise=0.0, z_steps=1, z_step=0.1, sigma=0.3, prior_sigma=1.0)
    W = torch.randn(3 * 32 * 32, m.cfg.nz, generator=torch.Generator().manual_seed(0)) / 40
    m.generate = lambda z: (z @ W.T).view(-1, 3, 32, 32)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    z0 = torch.randn(4, m.cfg.nz)
    z1 = m.revise_z(z0, x, None)
    grad = 2 * (z0 @ W.T - x.flatten(1)) @ W / 0.3**2 + z0
    assert torch.allclose(z1, z0 - 0.5 * 0.1**2 * grad, atol=1e-5)


def test_posterior_revision_lowers_the_reconstruction_error_of_a_fixed_generator():
    m = model(z_steps=10)
    m.train(False)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        x = m.generate(m.prior(8, gen))  # observations the generator can explain exactly
    z0 = m.prior(8, gen)  # an uninformed start
    before = [p.detach().clone() for p in m.G.parameters()]
    z = m.revise_z(z0, x, gen)
    with torch.no_grad():
        mse0, mse1 = ((m.generate(z0) - x) ** 2).mean(), ((m.generate(z) - x) ** 2).mean()
    assert mse1 < 0.7 * mse0
    assert all(torch.equal(a, b) for a, b in zip(before, m.G.parameters(), strict=True))  # the chain never trains G


@pytest.mark.parametrize("arch", ["resnet", "dcgan"])
def test_every_ebm_layer_is_spectrally_normalised(arch):
    m = model(arch=arch, ndf=16, ngf=16)
    layers = [mod for mod in m.E.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(mod, "weight_orig") for mod in layers)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        for _ in range(30):  # power iteration runs once per training-mode forward
            m.E(x)
    for mod in layers:
        sigma = torch.linalg.matrix_norm(mod.weight.detach().flatten(1), 2)
        assert 0.9 < sigma < 1.05, (mod, sigma)
    for net in (m.G, m.I):  # G and I have none, as released
        assert not any(hasattr(mod, "weight_orig") for mod in net.modules())


@pytest.mark.parametrize(
    "preset,counts",
    [
        ("cifar10", {"ebm": 16_793_088, "gen": 16_024_579, "inf": 15_208_064}),
        ("celeba64", {"ebm": 19_536_768, "gen": 12_220_675, "inf": 15_210_752}),
    ],
)
def test_paper_networks_have_the_released_parameter_counts(preset, counts):
    """docs/papers.md section 8: counts of the released classes built on CPU."""
    size = 64 if preset == "celeba64" else 32
    m = DualMCMC(DualMCMC.PRESETS[preset], (3, size, size), CPU)
    assert {k: n_params(v) for k, v in m.nets.items()} == counts
    with torch.no_grad():
        m.train(False)
        assert m.E(torch.zeros(2, 3, size, size)).shape == (2,)
        assert m.G(torch.zeros(2, 128)).shape == (2, 3, size, size)
        mu, logvar = m.I(torch.zeros(2, 3, size, size))
        assert mu.shape == logvar.shape == (2, 128)


def test_diag_normal_nll_is_the_gaussian_log_density_up_to_its_constant():
    z, mu, logvar = torch.randn(5, 7), torch.randn(5, 7), torch.randn(5, 7)
    logp = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(1)
    const = 0.5 * 7 * torch.log(torch.tensor(2 * torch.pi))
    assert torch.allclose(diag_normal_nll(z, mu, logvar), -logp - const, atol=1e-4)


def test_test_time_generator_uses_batch_statistics_and_leaves_running_buffers_alone():
    m = model()
    z = m.prior(8, torch.Generator().manual_seed(0))
    buffers = {k: b.clone() for k, b in m.G.named_buffers()}
    m.train(False)
    out = m.generate(z)
    assert all(torch.equal(buffers[k], b) for k, b in m.G.named_buffers())
    assert not m.G.training
    m.G.train()
    assert torch.allclose(out, m.G(z), atol=1e-6)  # train-mode BN: the batch's own statistics


def test_ebm_loss_is_divided_by_the_chain_temperature():
    """use_temp: the E gradient is (n/s)^-2 times the untempered one (x250,000 at CIFAR-10 settings)."""
    grads = {}
    for use_temp in (False, True):
        m = model(use_temp=use_temp, x_step=0.5, x_noise=1e-3, lr_e=0.0)
        m.train_step(torch.rand(8, 3, 32, 32) * 2 - 1, torch.Generator().manual_seed(0))
        grads[use_temp] = torch.cat([p.grad.flatten() for p in m.E.parameters()])
    scale = grads[False].abs().max()
    assert scale > 0 and torch.allclose(grads[True] / 250_000, grads[False], rtol=1e-4, atol=1e-5 * scale)


def test_paper_presets_state_the_released_data_protocol():
    """dataset.py: CelebA-64 is cropped, resized bilinear and randomly flipped; CIFAR-10 is not
    flipped; both are scored on 50,000 samples of a model trained on the whole train split."""
    cifar, celeba = DualMCMC.PRESETS["cifar10"], DualMCMC.PRESETS["celeba64"]
    assert (cifar.hflip, celeba.hflip) == (False, True)
    assert cifar.n_samples == celeba.n_samples == 50_000 and cifar.n_train == celeba.n_train == 0
    import ebmbench.methods.dual_mcmc

    doc = ebmbench.methods.dual_mcmc.__doc__
    assert "_CelebA64_netI/G/E" in doc and "not in the released" not in doc  # the nets are released


def test_the_x0_variant_is_the_generator_sample_the_default_then_revises():
    """`x0` draws G(z) from the same stream as `sample`: revising it with the rest of that stream
    gives the default sample bit for bit, and the revision changes it."""
    m = model(sample_steps=3)
    m.train(False)
    g = torch.Generator().manual_seed(4)
    x0 = m.sample_variant("x0", 8, g)
    revised = m.revise_x(x0, g, 3)
    assert torch.equal(m.sample(8, torch.Generator().manual_seed(4)), revised)
    assert not torch.allclose(x0, revised)
    with pytest.raises(SuiteError, match="no sampling variant 'x1'"):
        m.sample_variant("x1", 8, g)


def test_z_mse_falls_with_the_posterior_revision_of_a_fixed_generator():
    """Observations the generator explains exactly from a known z, an inference model that knows
    nothing: the z-chain must lower the reconstruction MSE it starts from."""
    m = model(z_steps=10)
    m.train(False)
    with torch.no_grad():
        x = m.generate(m.prior(8, torch.Generator().manual_seed(3)))
    out = m.measurements(x, torch.Generator().manual_seed(5))
    assert set(out) == {"z_mse_before_revision", "z_mse_after_revision"}
    assert out["z_mse_after_revision"] < 0.7 * out["z_mse_before_revision"]


def test_the_generator_only_paper_row_is_measured_by_the_x0_variant(tmp_path):
    rows = [p for p in load() if p.method == "Ours (generator x0 only)"]
    assert [(p.suite_id, p.dataset) for p in rows] == [("dual_mcmc@x0", "celeba64")]
    src = Path(str(paper_numbers.PATH)).read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text(src.replace("dual_mcmc@x0", "dual_mcmc@x1"))
    with pytest.raises(SuiteError, match="line 18 .*suite_id"):
        load(bad)


def test_measured_numbers_reach_the_metrics_checked(tmp_path):
    """score's merge: the sampling cost from samples.json, each measurement as a metric; an unknown
    name stops naming the remedy; a non-finite one is null with its reason."""
    path = tmp_path / "measurements.json"
    write_json(path, {"z_mse_before_revision": 0.05, "z_mse_after_revision": 0.02})
    out = measured_metrics({"seconds_per_1000": 3.5}, path)
    assert out == {"seconds_per_1000": 3.5, "z_mse_before_revision": 0.05, "z_mse_after_revision": 0.02}
    assert set(out) <= set(METRICS) and not LOWER_IS_BETTER["locality"] and LOWER_IS_BETTER["seconds_per_1000"]
    path.write_text('{"z_mse_after_revision": NaN}')
    assert measured_metrics({}, path)["z_mse_after_revision_unavailable"].startswith("not finite")
    write_json(path, {"zmse": 0.1})
    with pytest.raises(SuiteError, match="'zmse', not a measurement of this suite.*MEASURED"):
        measured_metrics({}, path)


def test_a_variant_run_is_labelled_timed_and_leaves_the_default_samples_alone(digits_dir, tmp_path):
    """`sample --variant x0`: samples and labels "dual_mcmc@x0" with its seconds per 1,000 images; the
    default run of the same model writes the z MSEs to measurements.json, and its samples are the
    same whether or not the variant was drawn first."""
    from ebmbench.loop import train
    from ebmbench.sampling import generate

    train("dual_mcmc", digits_dir, tmp_path / "run", 0, None, {"n_iters": 2}, "cpu", False)
    generate(tmp_path / "run", 10, tmp_path / "a", 0, digits_dir, n_recon=8, progress=False)
    generate(tmp_path / "run", 10, tmp_path / "x0", 0, None, progress=False, variant="x0")
    generate(tmp_path / "run", 10, tmp_path / "b", 0, digits_dir, n_recon=8, progress=False)
    labels = read_json(tmp_path / "x0" / "samples.json")
    assert labels["method"] == "dual_mcmc@x0" and labels["variant"] == "x0" and labels["seconds_per_1000"] > 0
    assert not (tmp_path / "x0" / "measurements.json").exists() and not (tmp_path / "x0" / "figures").exists()
    a, b, x0 = (load_images_npz(tmp_path / d / "samples.npz") for d in ("a", "b", "x0"))
    assert np.array_equal(a, b) and not np.array_equal(a, x0)
    assert set(read_json(tmp_path / "a" / "measurements.json")) == {"z_mse_before_revision", "z_mse_after_revision"}
    with pytest.raises(SuiteError, match="no sampling variant 'noise_K'; its variants: x0"):
        generate(tmp_path / "run", 10, tmp_path / "bad", 0, None, progress=False, variant="noise_K")
