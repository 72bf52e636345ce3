"""CoopNets baseline: Xie, Lu, Gao, Zhu, Wu, "Cooperative Training of Descriptor and Generator
Networks", TPAMI 2018 (the "Cooperative EBM [42]" rows of Cui & Han 2023 Tables 1 and 3). Released
code: jianwen-xie/CoopNets @ 808fe0b (TensorFlow 1), `main.py`, `model/model.py` ("code" below).
Run here as the ablation of `coop_vae_ebm` and `dual_mcmc`: an EBM and a generator taught by the
EBM's revisions, with no inference model.

Models (as in coop_vae_ebm, whose networks and revision this file reuses):
  descriptor  p_theta(x) = exp(f_theta(x)) q(x) / Z, q = N(0, sigma_ref^2 I), so the energy is
              U(x) = -f(x) + ||x||^2 / (2 sigma_ref^2);
  generator   z ~ N(0, I_d), x = g_alpha(z) + eps, eps ~ N(0, sigma_g^2 I), sigma_g = 0.3.

Learning, per iteration (TPAMI Algorithm 1; code `train`, steps G0, D1, G1, D2, G2):
  G0: z_i ~ N(0, I), x^_i = g(z_i), i = 1..n~ (n~ = chains_per_obs x batch);
  D1: x~_i = l_D Langevin steps on U from x^_i:  x <- x - delta^2/2 (x / sigma_ref^2 - df/dx) + delta N(0, I);
  G1: z~_i = l_G Langevin steps on the generator's posterior p(z | x~_i) from z_i:
        z <- z - delta_g^2/2 (z + d/dz ||x~_i - g(z)||^2 / (2 sigma_g^2)) + delta_g N(0, I);
      the code's default is l_G = 0 (z~_i = z_i: the latent that produced x^_i is known);
  D2: theta: minimise mean_i f(x~_i) - mean_j f(x_j)       (MLE: observed vs revised);
  G2: alpha: minimise mean_i ||x~_i - g(z~_i)||^2 / (2 sigma_g^2)
      ("MCMC teaching": the generator regresses onto its own revised samples).
  Sampling: z ~ N(0, I), g(z), then l_test descriptor steps (code `sampling`).

What is removed relative to the methods it ablates:
  - coop_vae_ebm teaches its decoder through an encoder (a VAE fitted to the revised samples);
    here the decoder is taught directly on (z_i, x~_i), and there is no encoder;
  - dual_mcmc's generator loss is ||G(z_post) - x||^2 (MLE on data via its inference model and
    posterior chain) + S ||G(z) - x~||^2; here only the second (teaching) term remains.

Sampler mapping (the shared sampler is x <- x - step_size * dE/dx + noise_std * N(0, I)):
  descriptor: E = U above, step_size = delta^2 / 2, noise_std = delta (the code's chain has the
              noise, unlike coop_vae_ebm's released code), via `CoopVAEBM.revise`;
  generator posterior: E(z) = ||x - g(z)||^2_sum / (2 sigma_g^2) + ||z||^2 / 2,
              step_size = delta_g^2 / 2, noise_std = delta_g.
  Test-time inference for the reconstruction MSE (Cui & Han Table 3 reports one for this model, which
  has no encoder) is that posterior chain from z ~ N(0, I) for `recon_steps` steps, then g(z).

Paper presets (`cifar10`, `celeba64`: the datasets of the published rows) take the code's `main.py`
defaults: delta 0.002, sigma_ref 0.016, l_D = 15 (training) / 10 (its `sampling` call), noise on,
144 chains per batch of 100, Adam lr 0.007 (descriptor) / 1e-4 (generator), beta1 0.5, no lr decay,
sigma_g 0.3, delta_g 0.1, l_G = 0, z of 100 dims, 1,000 epochs.
Departures:
  - Networks: the code releases only a 64x64 'scene' and a 28x28 'mnist' net, no 32x32 one; we use
    coop_vae_ebm's networks (the same group's later code, the 'cifar' descriptor and decoder, and
    its 64x64 extension), so the two models differ only in the encoder.
  - The code's G1 gradient is of the batch-mean loss (each chain's gradient divided by the number
    of chains); we use the per-sample posterior of the equation above (l_G = 0 by default anyway).
  - recon_steps = 20 (the suite's other cold-start posterior chain, latent_ebm's K1): how Cui & Han
    obtained this model's MSE is not stated.
  - The digits preset is coop_vae_ebm's CPU preset with the encoder removed (PRESETS below derives
    it), so on the embedded run the two differ only in what makes this the baseline; not a paper
    setting (among its changes: noise 0 and 30 test steps, as coop_vae_ebm there).
"""

from dataclasses import dataclass

import torch
from ebmbench.methods import coop_vae_ebm
from ebmbench.methods.coop_vae_ebm import CoopVAEBM, Decoder

from ebmbench.method_base import Method, TrainConfig, ablated
from ebmbench.nets import ConvScalarNet, tf_style_init


@dataclass(frozen=True)
class Config(TrainConfig):
    nz: int = 100  # gen_latent_size
    ebm_nf: int = 64  # descriptor widths (coop_vae_ebm's)
    dec_nf: int = 64  # generator widths (coop_vae_ebm's decoder)
    lrelu_slope: float = 0.2
    init_std: float = 0.005
    delta: float = 0.002  # des_step_size
    sigma_ref: float = 0.016  # des_refsig
    n_steps: int = 15  # des_sample_steps (l_D)
    n_steps_test: int = 10  # main.py: model.sampling(sess, ckpt, 55000, 10)
    noise_std: float = 0.002  # the code adds delta * N(0, I)
    chains_per_obs: float = 1.44  # num_chain 12 x 12 = 144 per batch of 100
    gen_sigma: float = 0.3  # gen_refsig (sigma_g)
    gen_steps: int = 0  # gen_sample_steps (l_G): off in the code
    gen_step: float = 0.1  # gen_step_size (delta_g)
    recon_steps: int = 20  # generator posterior steps for test reconstructions (ours)
    ebm_lr: float = 0.007  # d_lr
    gen_lr: float = 1e-4  # g_lr
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 100
    n_iters: int = 1000 * 500  # num_epochs 1000 x 500 CIFAR-10 batches
    checkpoint_every: int = 1000
    revision_rows: int = 8
    revision_cols: int = 11
    interp_points: int = 8  # columns of latent_interpolation.png (coop_vae_ebm's figure, rows: revision_rows pairs)


PRESETS = {
    "cifar10": Config(n_samples=50_000),
    "celeba64": Config(n_samples=50_000, n_iters=1000 * 1627),  # 162,770 // 100 batches per epoch
    # coop_vae_ebm's digits preset minus the encoder (its lr for the VAE becomes the generator's)
    "digits": ablated(coop_vae_ebm.PRESETS["digits"], Config, gen_lr=coop_vae_ebm.PRESETS["digits"].vae_lr),
}


class CoopNets(CoopVAEBM):
    """coop_vae_ebm's descriptor, decoder (the generator) and revision; no encoder."""

    Config, PRESETS = Config, PRESETS
    ABLATES = ("coop_vae_ebm", "dual_mcmc")
    VARIANTS = {}  # coop_vae_ebm's variants measure its amortized sampler; not run for the baseline

    def __init__(self, cfg: Config, image_shape, device):
        Method.__init__(self, cfg, image_shape, device)  # not CoopVAEBM's: it would build the encoder
        c, h, _ = image_shape
        self.f = ConvScalarNet(c, cfg.ebm_nf, h, cfg.lrelu_slope, max_mult=4).to(device)
        self.dec = Decoder(cfg.nz, c, cfg.dec_nf, h, cfg.lrelu_slope).to(device)
        for net in (self.f, self.dec):
            tf_style_init(net, cfg.init_std)
        self.nets = {"ebm": self.f, "gen": self.dec}
        betas = (cfg.beta1, cfg.beta2)
        self.opts = {
            "ebm": torch.optim.Adam(self.f.parameters(), lr=cfg.ebm_lr, betas=betas),
            "gen": torch.optim.Adam(self.dec.parameters(), lr=cfg.gen_lr, betas=betas),
        }
        # the code has no learning-rate schedule: self.scheds stays empty

    def posterior_energy(self, x: torch.Tensor):
        """-log p(z | x) + const = ||x - g(z)||^2 / (2 sigma_g^2) + ||z||^2 / 2."""
        s2 = self.cfg.gen_sigma**2
        return lambda z: (x - self.dec(z)).pow(2).flatten(1).sum(1) / (2 * s2) + z.pow(2).sum(1) / 2

    def infer(self, z0: torch.Tensor, x: torch.Tensor, n_steps: int, gen: torch.Generator, **kw) -> torch.Tensor:
        """Step G1: Langevin on the generator's posterior p(z | x) from z0."""
        c = self.cfg
        return self.langevin(
            self.posterior_energy(x),
            z0,
            n_steps=n_steps,
            step_size=c.gen_step**2 / 2,
            noise_std=c.gen_step,
            generator=gen,
            **kw,
        )

    def synthesize(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps G0, D1, G1: the latents and the revised samples the updates learn from."""
        c = self.cfg
        z = torch.randn((n, c.nz), generator=gen, device=self.device)
        with torch.no_grad():
            x_hat = self.dec(z)
        x_rev = self.revise(x_hat, c.n_steps, gen)
        if c.gen_steps:
            z = self.infer(z, x_rev, c.gen_steps, gen)
        return z, x_rev

    def train_step(self, x, gen):
        c = self.cfg
        z, x_rev = self.synthesize(max(1, round(c.chains_per_obs * len(x))), gen)
        f_data, f_rev = self.f(x).mean(), self.f(x_rev).mean()  # D2
        loss_ebm = f_rev - f_data
        self.opts["ebm"].zero_grad(set_to_none=True)
        loss_ebm.backward()
        self.opts["ebm"].step()
        sq = (self.dec(z) - x_rev).pow(2).flatten(1).sum(1)  # G2: teaching by the revised samples
        loss_gen = (sq / (2 * c.gen_sigma**2)).mean()
        self.opts["gen"].zero_grad(set_to_none=True)
        loss_gen.backward()
        self.opts["gen"].step()
        return {
            "loss_ebm": loss_ebm.item(),
            "loss_gen": loss_gen.item(),
            "energy_data": -f_data.item(),
            "energy_sample": -f_rev.item(),  # learned part -f of U
            "teach_mse": sq.mean().item() / x[0].numel(),
        }

    def reconstruct(self, x, gen):
        z = self.infer(
            torch.randn((len(x), self.cfg.nz), generator=gen, device=self.device), x, self.cfg.recon_steps, gen
        )
        with torch.no_grad():
            return self.dec(z)
