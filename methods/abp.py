"""ABP baseline: Han, Lu, Zhu, Wu, "Alternating Back-Propagation for Generator Network", AAAI 2017,
run here as the ablation of `latent_ebm` (Pang et al. 2020): the same generator, posterior chain,
optimiser and presets, with the EBM prior removed.

The model (Han et al. sec. 2):
    z ~ N(0, sigma0^2 I_d), sigma0 = 1;   x = G_theta(z) + eps,  eps ~ N(0, sigma^2 I)
i.e. `latent_ebm`'s p_alpha(z) = exp(-E_alpha(z)) p0(z) / Z with E_alpha = 0.

Learning: maximum likelihood by alternating two back-propagations, per batch x_1..x_B
  1. inferential back-propagation: z_i = K1 steps of Langevin on p_theta(z | x_i),
         z <- z + (s^2/2) [ (x_i - G(z))' dG/dz / sigma^2 - z ] + s N(0, I)
     (the gradient of log p(x_i, z) back-propagated through G to z);
  2. learning back-propagation: one gradient step on theta of
         sum_i ||x_i - G(z_i)||^2 / (2 sigma^2)
     at the inferred z_i (Monte Carlo of the observed-data log-likelihood gradient); as in
     latent_ebm the constant 1 / (2 sigma^2) is absorbed into the Adam step.
  Here exactly `latent_ebm`'s steps 2 and 3 (its posterior chain and generator update), with its
  steps 1 and 4 (prior chain, EBM update) gone.

Sampler mapping (the shared sampler is z <- z - step_size * dU/dz + noise_std * N(0, I)):
  posterior: U(z) = ||x - G(z)||^2_sum / (2 sigma^2) + ||z||^2 / (2 sigma0^2),
             step_size = s1^2 / 2, noise_std = s1,
  the Han et al. update above verbatim. It is `LatentEBM.posterior_energy` / `posterior_chain`
  unchanged; only `prior_energy` loses its E(z) term. Sampling needs no chain: z ~ N(0, I), then
  G(z). Test-time inference (reconstruction MSE) is the posterior chain from N(0, I), then G.

Departures from Han et al. 2017 (all to make the run a like-for-like ablation of `latent_ebm`):
  - Han et al. keep one persistent z_i per training image, warm-started from the previous epoch;
    we start every chain afresh from N(0, I) with K1 = 20 steps, as `latent_ebm`'s posterior chain
    (Pang et al.'s short-run inference), so that the prior is the only difference.
  - Step size, sigma, K1, networks, Adam settings and iteration counts are `latent_ebm`'s preset
    for the same dataset (PRESETS below is derived from it), not Han et al.'s own choices (not in
    docs/papers.md).
  - latent_interpolation.png decodes G along paths between pairs of z ~ N(0, I) directly (the prior
    is N(0, I): no prior chain); latent_ebm's `locality` measurement is not run for this baseline.
  - Published ABP numbers come from citing papers (Cui, Wu & Han CVPR 2023 Table 1 FID; Cui & Han
    NeurIPS 2023 Table 3 MSE), whose protocol for this baseline is not stated: UNVERIFIED.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from ebmbench.methods import latent_ebm
from ebmbench.methods.latent_ebm import LatentEBM, generator_layers

from ebmbench.latent_figures import interpolation_figure
from ebmbench.method_base import Method, TrainConfig, ablated
from ebmbench.nets import ConvTGenerator, xavier_init


@dataclass(frozen=True)
class Config(TrainConfig):
    """`latent_ebm.Config` without the EBM prior's fields (ndf, e_act, prior chain, lr_e)."""

    nz: int = 100
    g_arch: str = "dcgan"
    ngf: int = 64
    sigma: float = 0.3
    prior_sigma: float = 1.0
    post_steps: int = 20  # K1
    post_step: float = 0.1  # s1
    lr_g: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gamma: float = 0.998
    batch_size: int = 100
    n_iters: int = 70_000
    checkpoint_every: int = 1000
    fig_images: int = 8
    fig_cols: int = 8


# latent_ebm's svhn / cifar10 / celeba64 / digits presets minus the prior (digits: CPU-sized, not a
# paper setting; see latent_ebm.PRESETS for what it changes)
PRESETS = {name: ablated(cfg, Config) for name, cfg in latent_ebm.PRESETS.items()}


class ABP(LatentEBM):
    """`LatentEBM` with E = 0: the generator and its posterior chain only."""

    Config, PRESETS = Config, PRESETS
    FIGURES = ("posterior_revision.png", "posterior_mse.png", "latent_interpolation.png")
    measurements = Method.measurements  # latent_ebm's locality measures its claim, not this baseline's
    ABLATES = ("latent_ebm",)  # the method this baseline is an ablation of (table grouping)

    def __init__(self, cfg: Config, image_shape, device):
        Method.__init__(self, cfg, image_shape, device)  # not LatentEBM's: it would build the EBM
        c, h, _ = image_shape
        self.G = ConvTGenerator(cfg.nz, generator_layers(cfg.g_arch, cfg.ngf, c, h, 1)).to(device)
        xavier_init(self.G)
        self.nets = {"G": self.G}
        self.opts = {"G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))}
        self.scheds = {"G": torch.optim.lr_scheduler.ExponentialLR(self.opts["G"], cfg.gamma)}

    def prior_energy(self, z: torch.Tensor) -> torch.Tensor:
        """-log p0(z) + const = ||z||^2 / (2 sigma0^2): latent_ebm's prior without E(z)."""
        return z.pow(2).flatten(1).sum(1) / (2 * self.cfg.prior_sigma**2)

    def train_step(self, x, gen):
        z_post = self.posterior_chain(self.z0(len(x), gen), x, gen)  # 1. inferential back-prop
        x_hat = self.G(z_post)  # 2. learning back-prop (latent_ebm's generator step)
        loss_g = (x_hat - x).pow(2).flatten(1).sum(1).mean()
        self.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.opts["G"].step()
        return {"loss_gen": loss_g.item(), "recon_mse": ((x_hat.detach() - x) / 2).pow(2).mean().item()}

    def sample(self, n, gen):
        """Ancestral: z ~ N(0, I) exactly, no chain."""
        with torch.no_grad():
            return self.G(self.z0(n, gen))

    def figures(self, x, gen, out_dir: Path):
        """latent_ebm's posterior figures (its prior ones have nothing to show: the prior is N(0, I))."""
        out_dir = Path(out_dir)
        self.posterior_figures(x, gen, out_dir)
        self.interpolation(gen, out_dir)
        return [out_dir / name for name in self.FIGURES]

    def interpolation(self, gen, out_dir: Path) -> Path:
        """latent_interpolation.png: G along paths between pairs of z ~ N(0, I) (no prior chain)."""
        c = self.cfg
        z_a, z_b = self.z0(c.fig_images, gen), self.z0(c.fig_images, gen)
        return interpolation_figure(self.G, z_a, z_b, c.fig_cols, Path(out_dir) / "latent_interpolation.png")
