"""Short-run MCMC EBM (Nijkamp et al. 2019): the chain step against the released update, the two
capabilities of the learned chain (interpolation, reconstruction; seed Figs. 3 and 4) and the paper
presets' data protocol, on tiny CPU inputs."""

import dataclasses

import pytest
import torch
from ebmbench.methods.short_run import PRESETS, ShortRun
from PIL import Image

from ebmbench.evaluate.paper_numbers import load

CPU = torch.device("cpu")


def model_of(seed=0, **changes):
    torch.manual_seed(seed)
    return ShortRun(dataclasses.replace(PRESETS["digits"], **changes), (3, 32, 32), CPU)


def test_one_chain_step_is_the_released_update():
    """train_cifar10_minimal.py: f_prime = grad f(x_k).sum(); x_k.data += f_prime + 0.01 * randn.
    On the same random numbers one step of the suite's chain gives x0 + f'(x0) + 0.01 xi: bit-equal
    when summed as (x0 + f') + 0.01 xi (the shared sampler's order), and within rounding of one
    addition of the released x0 + (f' + 0.01 xi)."""
    m = model_of(n_steps=1)
    x0 = m.p0(16, torch.Generator().manual_seed(3))
    with torch.no_grad():  # make f' large enough that a wrong sign or scale cannot hide in the noise
        for p in m.f.parameters():
            p.mul_(3.0)
    xr = x0.clone().requires_grad_(True)
    (f_prime,) = torch.autograd.grad(m.f(xr).sum(), xr)
    xi = torch.randn(x0.shape, generator=torch.Generator().manual_seed(7))
    x1 = m.short_run(x0, torch.Generator().manual_seed(7))

    assert f_prime.abs().mean() > 0.1 * 0.01  # the gradient term is not negligible against the noise
    assert torch.equal(x1, (x0 + f_prime) + 0.01 * xi)
    official = x0 + (f_prime + 0.01 * xi)
    ulp = torch.finfo(torch.float32).eps * official.abs().clamp_min(1.0)
    assert ((x1 - official).abs() <= ulp).all()
    # a chain that descended f (the sign slip the shared sampler's E = -f mapping guards against)
    assert not torch.allclose(x1, (x0 - f_prime) + 0.01 * xi, atol=1e-3)


def test_fixed_noise_chain_is_a_deterministic_map_of_its_start():
    m = model_of(n_steps=5)
    z = m.p0(4, torch.Generator().manual_seed(0))
    a, b = m._fixed_noise_chain(z, seed=11), m._fixed_noise_chain(z, seed=11)
    assert torch.equal(a, b)
    assert not torch.allclose(a, m._fixed_noise_chain(z, seed=12))  # the noise u is part of the map


def test_interpolation_rows_run_from_m_of_z1_to_m_of_z2():
    """Fig. 3: row i is M(rho z1 + sqrt(1 - rho^2) z2) for rho from 1 to 0; its end columns are the
    chain's images of z1 and z2 themselves, under the one fixed noise u of the figure."""
    m = model_of(n_steps=5, interp_pairs=3, interp_points=5)
    grid = m.interpolate(torch.Generator().manual_seed(5))
    assert grid.shape == (3 * 5, 3, 32, 32)
    rows = grid.view(3, 5, 3, 32, 32)

    g = torch.Generator().manual_seed(5)  # replay the figure's draws: z1, z2, then the noise seed
    z1, z2 = m.p0(3, g), m.p0(3, g)
    seed = int(torch.randint(0, 2**31, (1,), generator=g))
    torch.testing.assert_close(rows[:, 0], m._fixed_noise_chain(z1, seed))
    torch.testing.assert_close(rows[:, -1], m._fixed_noise_chain(z2, seed))
    mid = 0.5 * z1 + 0.75**0.5 * z2  # rho = 0.5, the middle column
    torch.testing.assert_close(rows[:, 2], m._fixed_noise_chain(mid, seed))
    assert not torch.allclose(rows[:, 0], rows[:, -1], atol=1e-2)


def test_reconstruction_by_noise_optimisation_lowers_the_error():
    """Fig. 4 with the suite's earlier optimiser: z from random noise, Adam on ||x - M(z)||^2 with f
    fixed; the error falls and the last snapshot is the chain's image of the optimised z (its MSE on
    the [0, 1] scale, clamped as the suite's `mse`)."""
    m = model_of(n_steps=4, recon_iters=30, recon_lr=0.05, recon_optimizer="adam")
    x = m.p0(3, torch.Generator().manual_seed(1)).clamp(-0.5, 0.5)
    before = [p.clone() for p in m.f.parameters()]
    snaps, losses = m.reconstruct_by_noise(x, torch.Generator().manual_seed(2), keep=4)
    assert snaps.shape == (3, 4, 3, 32, 32) and len(losses) == 31
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    torch.testing.assert_close(((snaps[:, -1].clamp(-1, 1) - x) / 2).pow(2).mean(), torch.tensor(losses[-1]))
    assert all(torch.equal(a, b) for a, b in zip(before, m.f.parameters(), strict=True))  # only z moved


def test_figures_write_interpolation_and_reconstruction(tmp_path):
    m = model_of(n_steps=3, recon_iters=4, recon_images=2, interp_pairs=2, interp_points=4)
    x = m.p0(5, torch.Generator().manual_seed(0))
    paths = m.figures(x, torch.Generator().manual_seed(0), tmp_path)
    assert [p.name for p in paths] == list(ShortRun.FIGURES)
    for p in paths:
        with Image.open(p) as im:
            assert im.width > 32 and im.height > 32


def test_paper_presets_follow_the_papers_data_protocol():
    """Paper sec. 5.1: each dataset reduced to 40,000 observed examples, 40,000 generated examples."""
    for name in ("cifar10", "celeba64", "svhn"):
        assert (PRESETS[name].n_train, PRESETS[name].n_samples) == (40_000, 40_000), name
    assert PRESETS["cifar10"].n_f == 128 and PRESETS["celeba64"].n_f == 64
    mine = [p for p in load() if p.suite_id == "short_run" and p.source != "Cui & Han 2023 (NeurIPS) Table 1"]
    assert mine and all("40,000" in p.protocol for p in mine)


def _batches(monkeypatch, digits_dir, out, **sets):
    """Run the training loop for a few iterations, recording the batches it hands to train_step."""
    from ebmbench.loop import train

    seen = []
    monkeypatch.setattr(ShortRun, "train_step", lambda self, x, gen: seen.append(x.clone()) or {"loss": 0.0})
    train(
        "short_run",
        digits_dir,
        out,
        seed=0,
        overrides={"n_iters": 3, "batch_size": 32, **sets},
        device="cpu",
        progress=False,
    )
    return seen


def test_loop_trains_on_the_presets_subset_and_flips_only_when_asked(monkeypatch, digits_dir, tmp_path):
    import json

    import numpy as np
    import pytest

    from ebmbench.data import load_prepared
    from ebmbench.io import SuiteError, to_float

    first = to_float(np.asarray(load_prepared(digits_dir, "train")[:64]))
    plain = _batches(monkeypatch, digits_dir, tmp_path / "a", n_train=64)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 0, 1]  # 64 images = 2 batches of 32 per epoch
    for x in plain:  # every image comes from the first 64
        assert all(any(torch.equal(img, ref) for ref in first) for img in x)

    flipped = _batches(monkeypatch, digits_dir, tmp_path / "b", n_train=64, hflip=True)
    same = [[torch.equal(a, b) for a, b in zip(xa, xb, strict=True)] for xa, xb in zip(plain, flipped, strict=True)]
    mirrored = [
        [torch.equal(a.flip(2), b) for a, b in zip(xa, xb, strict=True)] for xa, xb in zip(plain, flipped, strict=True)
    ]
    assert all(s or m for rs, rm in zip(same, mirrored, strict=True) for s, m in zip(rs, rm, strict=True))
    n_flipped = sum(not s for rs in same for s in rs)
    assert 0.25 * 96 < n_flipped < 0.75 * 96  # about half of the 3 x 32 images

    with pytest.raises(SuiteError, match="n_train = 5000"):
        _batches(monkeypatch, digits_dir, tmp_path / "c", n_train=5000)


def test_reconstruction_is_plain_gradient_descent_and_its_error_falls_to_the_metric():
    """With f = 0 the chain is M(z) = z + noise, so L(z) = sum ||x - M(z)||^2 and the seed's update
    z - eta L'(z) with eta = 1/4 halves the error each step: the MSE falls by 4x per step, and
    recon_mse_noise is the MSE after the last step."""
    m = model_of(n_steps=1, noise_std=0.0, recon_step=0.25, recon_iters=4)
    with torch.no_grad():
        for p in m.f.parameters():
            p.zero_()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    _, mses = m.reconstruct_by_noise(x, torch.Generator().manual_seed(1), keep=2)
    assert len(mses) == 5 and mses[0] > 0.01
    for a, b in zip(mses, mses[1:], strict=False):
        assert b == pytest.approx(a / 4, rel=1e-4)
    measured = m.measurements(x, torch.Generator().manual_seed(1))
    assert measured == {"recon_mse_noise": pytest.approx(mses[-1])}


def test_digits_learning_rate_decays_linearly_at_the_end_and_resumes_on_schedule():
    """The digits preset's schedule: constant lr, then over the last lr_decay_fraction of n_iters linear to
    lr * lr_final at n_iters, one step per iteration; a model loaded mid-decay continues on the same rates. The paper
    presets keep the released code's constant rate."""
    lr = 1e-3
    m = model_of(n_steps=1, batch_size=4, n_iters=10, lr=lr, lr_decay_fraction=0.4, lr_final=0.1)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    seen, state = [], None
    for i in range(10):
        seen.append(m.opts["f"].param_groups[0]["lr"])
        m.train_step(x, torch.Generator().manual_seed(i))
        if i == 7:
            state = m.state_dict()
    expected = [lr] * 6 + [lr * (1 - (i - 6) / 4 * 0.9) for i in range(6, 10)]
    assert seen == pytest.approx(expected, rel=1e-12)
    m.end_epoch()  # an epoch's end does not move the schedule
    assert m.opts["f"].param_groups[0]["lr"] == pytest.approx(lr * 0.1)

    resumed = model_of(n_steps=1, batch_size=4, n_iters=10, lr=lr, lr_decay_fraction=0.4, lr_final=0.1)
    resumed.load_state_dict(state)
    assert resumed.opts["f"].param_groups[0]["lr"] == pytest.approx(expected[8], rel=1e-12)

    for name in ("cifar10", "celeba64", "svhn"):
        assert PRESETS[name].lr_decay_fraction == 0
        paper = ShortRun(dataclasses.replace(PRESETS[name], n_f=4), (3, 32, 32), CPU)
        assert [paper.lr_factor(i) for i in (0, 10**5, 10**6)] == [1.0, 1.0, 1.0]
