"""BrokenEbm: the template's short-run EBM with a deliberate bug, to show what `ebmbench
check-method` reports. A second network `g`, a learned temperature that divides the energy, is
built and registered in `self.nets` but never given an optimiser step: one training step leaves it
unchanged, which the contract's "one step moves every network" check names, with the remedy.
Everything else is the template's (see examples/example_ebm).
"""

from dataclasses import dataclass

import torch

from ebmbench.method_base import Method, TrainConfig
from ebmbench.nets import ConvScalarNet


@dataclass(frozen=True)
class Config(TrainConfig):
    n_f: int = 64  # energy-net width
    n_steps: int = 100  # K Langevin steps, training and sampling
    step_size: float = 1.0  # shared-sampler step on E = -f
    noise_std: float = 0.01  # Langevin noise
    data_noise: float = 0.03  # noise added to observed images
    lr: float = 1e-4
    batch_size: int = 64


PRESETS = {
    # CPU preset for the embedded digits (32x32): small enough to train in about a minute on two cores
    "digits": Config(n_f=16, n_steps=40, batch_size=32, lr=3e-4, n_iters=100, checkpoint_every=50),
}


class BrokenEbm(Method):
    Config, PRESETS = Config, PRESETS

    def __init__(self, cfg: Config, image_shape, device):
        super().__init__(cfg, image_shape, device)
        c, h, _ = image_shape
        self.f = ConvScalarNet(c, cfg.n_f, h).to(device)  # f = negative energy
        self.g = torch.nn.Linear(1, 1).to(device)  # a temperature network
        self.nets = {"f": self.f, "g": self.g}
        self.opts = {"f": torch.optim.Adam(self.f.parameters(), lr=cfg.lr)}  # the bug: nothing steps g

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        return -self.f(x)

    def chains(self, n: int, gen: torch.Generator) -> torch.Tensor:
        c = self.cfg
        x0 = torch.rand((n, *self.image_shape), generator=gen, device=self.device) * 2 - 1  # p0
        return self.langevin(
            self.energy, x0, n_steps=c.n_steps, step_size=c.step_size, noise_std=c.noise_std, generator=gen
        )

    def train_step(self, x, gen):
        c = self.cfg
        x = x + c.data_noise * torch.randn(x.shape, generator=gen, device=x.device)
        x_neg = self.chains(len(x), gen)
        f_data, f_neg = self.f(x).mean(), self.f(x_neg).mean()
        loss = f_neg - f_data
        self.opts["f"].zero_grad(set_to_none=True)
        loss.backward()
        self.opts["f"].step()
        return {"loss": loss.item(), "energy_data": -f_data.item(), "energy_sample": -f_neg.item()}

    def sample(self, n, gen):
        return self.chains(n, gen)
