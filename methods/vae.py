"""VAE baseline: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014, run here as the
ablation of `latent_ebm` (Pang et al. 2020): its generator with the EBM prior removed (as `abp`)
and the posterior Langevin chain replaced by an amortized encoder.

The model:
    z ~ N(0, I_d);   x = G_theta(z) + eps,  eps ~ N(0, sigma^2 I),  sigma = 0.3
    inference model q_phi(z | x) = N(mu_phi(x), diag exp(logvar_phi(x)))          (K&W sec. 2.2)

Learning (K&W Algorithm 1: the SGVB estimator with one sample per datapoint, L = 1, and the KL in
closed form, appendix B), per batch x_1..x_B:
    eps_i ~ N(0, I),  z_i = mu(x_i) + exp(logvar(x_i) / 2) * eps_i    (reparameterisation, sec. 2.4)
    minimise  -ELBO = mean_i [ ||x_i - G(z_i)||^2 / (2 sigma^2) + KL(q(z | x_i) || N(0, I)) ]  (+ const)
    with KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)),
  jointly in theta (G) and phi (encoder): one Adam step on each.
Sampling: z ~ N(0, I), then G(z) (ancestral). Reconstruction: G(mu(x)), the encoder mean.

Sampler mapping: none. The VAE runs no Langevin chain anywhere; that, and the missing EBM prior, is
what separates it from `latent_ebm`.

Choices and departures (Pang et al. print VAE numbers without the settings behind them: UNVERIFIED):
  - Generator, sigma, Adam settings, batch and iterations are `latent_ebm`'s preset for the same
    dataset (PRESETS is derived from it): the like-for-like choice. sigma = 0.3 stays in the ELBO, so
    the KL weighs against the reconstruction as in the generative model latent_ebm learns (no beta).
  - Encoder: the suite's `ConvEncoder` (conv3x3 n_f, stride-2 4x4 convs doubling to 4x4, two linear
    heads), n_f = 64 for every paper preset, xavier init as the generator, learning rate lr_g: ours.
  - latent_interpolation.png: G along paths between pairs of z ~ N(0, I) (as `abp`).
  - The digits preset is latent_ebm's CPU preset with an 8-wide encoder; not a paper setting.
"""

from dataclasses import dataclass

import torch
from ebmbench.methods import latent_ebm
from ebmbench.methods.abp import ABP

from ebmbench.method_base import TrainConfig, ablated
from ebmbench.nets import ConvEncoder, xavier_init


@dataclass(frozen=True)
class Config(TrainConfig):
    """`latent_ebm.Config` without the EBM prior and the posterior chain, plus the encoder width
    (the prior is N(0, I): the closed-form KL below)."""

    nz: int = 100
    g_arch: str = "dcgan"
    ngf: int = 64
    enc_nf: int = 64  # encoder widths n_f, 2n_f, ... down to 4x4 (ours)
    sigma: float = 0.3  # observation noise of the decoder, in the ELBO
    lr_g: float = 1e-4  # both networks
    beta1: float = 0.5
    beta2: float = 0.999
    gamma: float = 0.998
    batch_size: int = 100
    n_iters: int = 70_000
    checkpoint_every: int = 1000
    fig_images: int = 8  # pairs (rows) of latent_interpolation.png
    fig_cols: int = 8  # points along each path


PRESETS = {
    name: ablated(cfg, Config, **({"enc_nf": 8} if name == "digits" else {}))
    for name, cfg in latent_ebm.PRESETS.items()
}


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag e^logvar) || N(0, I)) per sample (Kingma & Welling appendix B)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)


class VAE(ABP):
    """ABP's generator and Gaussian prior, with the encoder in place of the posterior chain."""

    Config, PRESETS = Config, PRESETS
    FIGURES = ("latent_interpolation.png",)  # and the reconstruction grid the sampling stage writes
    ABLATES = ("latent_ebm",)

    def __init__(self, cfg: Config, image_shape, device):
        super().__init__(cfg, image_shape, device)
        c, h, _ = image_shape
        self.enc = ConvEncoder(c, cfg.enc_nf, h, cfg.nz).to(device)
        xavier_init(self.enc)
        self.nets["enc"] = self.enc
        self.opts["enc"] = torch.optim.Adam(self.enc.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.scheds["enc"] = torch.optim.lr_scheduler.ExponentialLR(self.opts["enc"], cfg.gamma)

    def neg_elbo(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample (-ELBO up to its constant, reconstruction term, KL) with one reparameterised z."""
        mu, logvar = self.enc(x)
        eps = torch.randn(mu.shape, generator=gen, device=mu.device)
        x_hat = self.G(mu + (0.5 * logvar).exp() * eps)
        rec = (x - x_hat).pow(2).flatten(1).sum(1) / (2 * self.cfg.sigma**2)
        kl = gaussian_kl(mu, logvar)
        return rec + kl, rec, kl

    def train_step(self, x, gen):
        loss, rec, kl = (t.mean() for t in self.neg_elbo(x, gen))
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.opts.values():
            opt.step()
        return {
            "loss_vae": loss.item(),
            "kl": kl.item(),
            "recon_mse": rec.item() * 2 * self.cfg.sigma**2 / (4 * x[0].numel()),
        }  # on the [0, 1] scale

    def reconstruct(self, x, gen):
        with torch.no_grad():
            return self.G(self.enc(x)[0])

    def figures(self, x, gen, out_dir):
        """ABP's latent interpolation (G along paths between z ~ N(0, I)); no posterior chain to show."""
        return [self.interpolation(gen, out_dir)]
