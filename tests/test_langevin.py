"""The shared sampler against known answers."""

import subprocess
import sys

import pytest
import torch

from ebmbench.langevin import langevin


def test_gaussian_energy_gives_known_mean_and_variance():
    # E(x) = |x - mu|^2 / (2 s^2). With step eps and noise sqrt(2 eps) the chain is the AR(1)
    # x' = mu + a (x - mu) + sqrt(2 eps) xi, a = 1 - eps / s^2, whose stationary variance is
    # 2 eps / (1 - a^2) (slightly above s^2: the discretisation bias, known exactly).
    mu, s, eps, n = torch.tensor([1.5, -2.0]), 0.7, 0.01, 20000
    x0 = torch.zeros(n, 2)
    x = langevin(
        lambda x: ((x - mu) ** 2).sum(1) / (2 * s**2),
        x0,
        n_steps=1500,
        step_size=eps,
        noise_std=(2 * eps) ** 0.5,
        generator=torch.Generator().manual_seed(0),
    )
    a = 1 - eps / s**2
    var = 2 * eps / (1 - a**2)
    se_mean = (var / n) ** 0.5
    assert torch.allclose(x.mean(0), mu, atol=4 * se_mean)
    se_var = var * (2 / (n - 1)) ** 0.5
    assert torch.allclose(x.var(0), torch.full((2,), var), atol=4 * se_var)


def test_no_noise_is_gradient_descent_and_zero_steps_is_identity():
    x0 = torch.randn(5, 3)
    assert torch.equal(langevin(lambda x: (x**2).sum(1), x0, n_steps=0, step_size=0.1, noise_std=0.0), x0)
    x1 = langevin(lambda x: (x**2).sum(1), x0, n_steps=1, step_size=0.1, noise_std=0.0)
    assert torch.allclose(x1, x0 - 0.1 * 2 * x0)  # low energy = likely: steps go downhill


def test_same_generator_same_chain_and_no_parameter_gradients():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    energy = lambda x: net(x).squeeze(1)  # noqa: E731
    x0 = torch.randn(6, 4)
    kw = dict(n_steps=20, step_size=0.05, noise_std=0.1)
    a = langevin(energy, x0, generator=torch.Generator().manual_seed(3), **kw)
    b = langevin(energy, x0, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(a, b) and not a.requires_grad
    assert all(p.grad is None for p in net.parameters())


def test_on_step_sees_every_state_and_energy():
    seen = []
    langevin(
        lambda x: (x**2).sum(1),
        torch.ones(2, 1),
        n_steps=4,
        step_size=0.1,
        noise_std=0.0,
        on_step=lambda k, x, e: seen.append((k, e.mean().item())),
    )
    assert [k for k, _ in seen] == [0, 1, 2, 3, 4]
    assert all(e1 < e0 for (_, e0), (_, e1) in zip(seen, seen[1:], strict=False))


def test_energy_must_be_per_sample():
    with pytest.raises(ValueError, match="one value per sample"):
        langevin(lambda x: (x**2).sum(), torch.ones(3, 2), n_steps=1, step_size=0.1, noise_std=0.0)


PEAK = """
import resource, sys, torch
from ebmbench.nets import ConvScalarNet
from ebmbench.langevin import langevin
torch.manual_seed(0); torch.set_num_threads(1)
f = ConvScalarNet(3, 32, 32)
x = torch.rand(64, 3, 32, 32)
langevin(lambda x: -f(x), x, n_steps=int(sys.argv[1]), step_size=1.0, noise_std=0.01)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_steps():
    # A kept graph would add ~30 MB of activations per step (64 x 32 x 32 x 32 floats and up):
    # 100 steps would then need GBs more than 10. Each count runs in a fresh process.
    peak = {n: int(subprocess.check_output([sys.executable, "-c", PEAK, str(n)], text=True)) for n in (10, 100)}
    assert peak[100] <= 1.10 * peak[10], peak
