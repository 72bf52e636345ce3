"""ExampleEbm: <the paper: authors, title, venue, year; its official code and commit, if any>.

Written by `ebmbench new-method` as a minimal honest EBM to start from: maximum likelihood with
short-run Langevin chains started from uniform noise (Nijkamp et al. 2019, Algorithm 1). Replace
each section with your method's.

Update rules, per iteration:
  1. draw m observed images x_i in [-1, 1];
  2. draw m chains from p0 = Uniform(-1, 1), fresh every iteration;
  3. run K Langevin steps on the energy E(x) = -f(x) (the shared sampler, below);
  4. ascend mean f(x_i) - mean f(x_i^-) with Adam.

Sampler mapping (the shared sampler is x <- x - step_size * dE/dx + noise_std * N(0, I)):
  E(x) = -f(x); step_size 1 and noise_std 0.01 on the tempered f, as the short-run code does.
  State your paper's symbols here: which network is the energy or its negative, the step size
  and the noise scale -- the released codes disagree on all three.

Departures from the paper:
  - The digits preset is CPU-sized (narrow net, 40 steps, 100 iterations), not a paper setting.
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


class ExampleEbm(Method):
    Config, PRESETS = Config, PRESETS

    def __init__(self, cfg: Config, image_shape, device):
        super().__init__(cfg, image_shape, device)
        c, h, _ = image_shape
        self.f = ConvScalarNet(c, cfg.n_f, h).to(device)  # f = negative energy
        self.nets = {"f": self.f}
        self.opts = {"f": torch.optim.Adam(self.f.parameters(), lr=cfg.lr)}

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
