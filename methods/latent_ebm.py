"""Latent-space EBM prior: Pang, Han, Nijkamp, Zhu, Wu, "Learning Latent Space Energy-Based Prior
Model", NeurIPS 2020 (docs/papers.md section 4), and its convolutional-latent variant from
Dehong Xu's UCLA MS thesis 2021, "Learning convolutional latent space EBM prior" (seed 003,
chapters 3-4; docs/papers.md section 4b). Official code: bpucla/latent-space-EBM-prior @ a530d0f,
`train_svhn.py` ("LE" below); "one-page code" = the paper's supplementary script, known through
third-party ports.

The model (Pang eq. 1-2; Xu sec. 3.1):
    z ~ p_alpha(z) = exp(-E_alpha(z)) p0(z) / Z(alpha),  p0 = N(0, sigma0^2 I), sigma0 = 1
    x = G_beta(z) + eps,  eps ~ N(0, sigma^2 I),  sigma = 0.3
E_alpha is an *energy* (low = likely), as in LE's `netE`. Xu writes the same prior with
f_alpha = -E_alpha (exp(f) p0). For `latent_ebm` z is a vector (nz = 100 or 128) and E an MLP;
for `latent_ebm_conv` z is a 4x4 map with 100 channels and E a ConvNet over that map.

Learning, per iteration on a batch x_1..x_B (Pang Alg. 1; Xu sec. 3.3), with short-run chains
started afresh from N(0, I) every iteration (non-persistent):
  1. prior chain:     z^-_i = K0 steps of Langevin on p_alpha(z), from z ~ N(0, I);
  2. posterior chain: z^+_i = K1 steps of Langevin on p_theta(z | x_i), from z ~ N(0, I)
     (not from the prior chain, as in LE);
  3. generator, MLE on posterior samples: descend  L_G = sum_i ||x_i - G(z^+_i)||^2 / B
     (LE's `loss_g`; the 1 / (2 sigma^2) factor is absorbed into the Adam step);
  4. prior EBM: descend  L_E = mean_i E(z^+_i) - mean_i E(z^-_i)
     (Pang's delta_alpha = E_post[grad f] - E_prior[grad f] with f = -E; Xu eq. in sec. 3.3).
  Adam (betas 0.5, 0.999), lr_E 2e-5, lr_G 1e-4, ExponentialLR gamma 0.998 per epoch [LE].

Sampler mapping (the shared sampler is z <- z - step_size * dU/dz + noise_std * N(0, I)):
  prior:     U(z) = E(z) + ||z||^2 / (2 sigma0^2),                        step_size = s0^2/2, noise_std = s0
  posterior: U(z) = ||x - G(z)||^2_sum / (2 sigma^2) + E(z) + ||z||^2/2,  step_size = s1^2/2, noise_std = s1
  This is LE's update z <- z - s^2/2 * grad U + s * N(0, I) verbatim (exact Langevin in Xu's
  form z + s' grad log pi + sqrt(2 s') eps with s' = s^2/2), s0 = 0.4, K0 = 60, s1 = 0.1, sigma = 0.3.
  The sums run over all latent (and pixel) coordinates of one example. No clipping, no data noise.
  Test-time sampling is the training prior chain (same K0) followed by G; test-time inference is
  the training posterior chain followed by G.

Choices where the sources disagree (docs/papers.md section 7.3):
  - K1 = 20 (LE `train_svhn.py` default), not 40 (one-page code): LE is the authors' own release
    and the only one that names a dataset; Table 1's K1 per dataset is UNVERIFIED either way.
  - E's activation is GELU (LE's default at the settings that run) for every preset, not the
    LeakyReLU(0.2) of the one-page-code ports and the follow-up repos: again the authors' own
    release; `e_act="lrelu"` selects the other.
  - Iterations: SVHN 201 epochs as in LE; CIFAR-10 and CelebA 70,000 iterations as in the
    one-page code (LE only covers SVHN).
  - Pang's Table 1 MSE pixel scale ([0, 1] or [-1, 1]: a factor 4) and its test-time inference are
    UNVERIFIED; this suite reports test MSE on [0, 1] after the training posterior chain, and the
    MSE rows are marked unverified, so the table never calls them plainly "reproduced".
  - K0 for CelebA: 60 as for the other datasets (LE, one-page code); the project page's Fig. 2
    suggests 40 for CelebA (UNVERIFIED).

Presets: `svhn` is LE's (nz 100, ngf 64, 32x32) [P]; `cifar10` (nz 128, ngf 128, 8x8 start) and
`celeba64` (nz 100, ngf 128, five transposed convs) come from the follow-up repos
Diffusion-Amortized-MCMC and Latent-Space-Normalizing-Flow, which agree exactly [S]. Which CelebA
crop and subset Table 1 used is UNVERIFIED (LE offers a Resize(64) + CenterCrop(64), a 128x128
crop at (45, 25), and SRI's 40,000-image subset): config/paper.yaml trains this method on the
`celeba64_40k` variant (LE's `celeba64_sri` loader: the centred 178x178 box, 40,000 images as data and
FID reference, 40,000 generated: the preset's `n_samples=40_000`), and the protocol strings say what
is unverified. Otherwise as LE: the whole train split, no flips, 50,000 generated samples against
train-split statistics (`n_samples=50_000`).

Xu's thesis (latent_ebm_conv) states only: z is a 4x4x100 feature map, 60 prior and 30 posterior
Langevin steps, lr 1e-5 (EBM) and 1e-4 (generator) "in SGD", 200 epochs. Left open there and
filled here (THESIS-OPEN):
  - the energy net: sec. 3.1 still calls f_alpha an MLP; the issue asks for an energy over the map,
    so we use conv3x3(100 -> ndf) - act - conv3x3(ndf -> ndf) - act - conv4x4 valid (ndf -> 1),
    ndf = 200 and GELU as in Pang's MLP;
  - the generator: Pang's DCGAN stack with its first 4x4 s1 p0 transposed conv (1x1 -> 4x4)
    replaced by a 3x3 s1 p1 transposed conv (4x4 -> 4x4), widths as in Pang's per-dataset nets;
  - s0, s1, sigma, sigma0, batch 100, Adam betas and the 0.998 decay: Pang's LE values. The thesis
    says "SGD"; we read that as the generic term and use LE's Adam (UNVERIFIED);
  - the thesis' prior gradient "grad f + z / sigma^2" and log-likelihood "+||x - g||^2/(2 sigma^2)"
    drop minus signs; we use the correct -z / sigma0^2 and -||x - g||^2 / (2 sigma^2).
  No FID is reported in the thesis, so methods/paper_numbers.csv has no row for it.

Latent space (Xu's claim: one latent position controls one image patch). `measurements` gives
`locality`: for codes z of test images (the posterior chain from N(0, I), as `reconstruct`), perturb
one latent unit by N(0, I) noise (the reference prior's scale), decode, and take the share of the
image's squared change (summed over channels) that falls inside the unit's patch of a 4 x 4
partition of the image (ebmbench.latent_figures.locality); averaged over units and images. A unit of
latent_ebm_conv is one of the 4 x 4 positions (all nz channels there) and its patch the image patch
at the same position. A unit of latent_ebm is one coordinate of the vector z, and its patch the one
holding the largest share of its change averaged over the images: a fixed assignment, chosen in the
vector latent's favour. 1 = perfectly local; 1/16 = the change spreads evenly. Computed on up to
`measure_images` test images. `latent_interpolation.png`: paths between pairs of initial codes
z0 ~ N(0, I) (z_rho = rho z0_a + sqrt(1 - rho^2) z0_b), each point revised by the prior chain with
its noise held fixed (so the path is a path of prior samples), then decoded by G.

The digits presets are CPU-sized (narrower generator, shorter chains, larger learning rates, a
few hundred iterations); they are not paper settings.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ebmbench.latent_figures import interpolation_figure, locality
from ebmbench.method_base import Method, TrainConfig
from ebmbench.nets import ConvTGenerator, MLPEnergy, xavier_init
from ebmbench.plots import image_grid, line_plot


@dataclass(frozen=True)
class Config(TrainConfig):
    nz: int = 100  # latent dimension (latent_ebm) or channels of the latent map (latent_ebm_conv)
    g_arch: str = "dcgan"  # "dcgan": 4x4 start, stride-2 doublings (SVHN, CelebA); "cifar8": 8x8 start (CIFAR-10)
    ngf: int = 64  # generator width; the first layer has 8 ngf channels
    ndf: int = 200  # prior energy width
    e_act: str = "gelu"  # "gelu" (LE) or "lrelu" (one-page code, follow-ups)
    sigma: float = 0.3  # generator noise sd, x = G(z) + N(0, sigma^2)
    prior_sigma: float = 1.0  # sigma0 of the reference p0 = N(0, sigma0^2 I)
    prior_steps: int = 60  # K0
    prior_step: float = 0.4  # s0
    post_steps: int = 20  # K1 (LE; one-page code 40)
    post_step: float = 0.1  # s1
    lr_e: float = 2e-5
    lr_g: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gamma: float = 0.998  # ExponentialLR per epoch, both optimisers
    batch_size: int = 100
    n_iters: int = 70_000  # one-page code
    checkpoint_every: int = 1000
    # figures
    fig_images: int = 8  # rows of the revision strips
    fig_cols: int = 8  # snapshots along a chain
    measure_images: int = 100  # test images behind `locality`


PRESETS = {
    "svhn": Config(nz=100, ngf=64, n_iters=201 * (73_257 // 100), n_samples=50_000),  # LE: 201 epochs of 732 its
    "cifar10": Config(nz=128, ngf=128, g_arch="cifar8", n_samples=50_000),
    # SRI's protocol: at most the subset's 40,000 images generated (LE asserts len(ds_train) >=
    # n_fid_samples; the count used is not stated: UNVERIFIED). K0 = 60; the project page's Fig. 2 has 40 (UNVERIFIED)
    "celeba64": Config(nz=100, ngf=128, n_samples=40_000),
    # CPU preset for the embedded digits (32x32, 1,497 images), sized for a CPU budget of about 90 s;
    # not a paper setting.
    # Departures: nz 16, generator width ngf 8, E width 100, K0 = 30, K1 = 10, batch 50, lr_E 5e-4,
    # lr_G 1e-3, 300 iterations (~10 epochs); s0, s1, sigma and the update rules are the paper's.
    "digits": Config(
        nz=16,
        ngf=8,
        ndf=100,
        prior_steps=30,
        post_steps=10,
        batch_size=50,
        n_iters=300,
        checkpoint_every=100,
        lr_e=5e-4,
        lr_g=1e-3,
    ),
}


def generator_layers(arch: str, ngf: int, n_c: int, image_size: int, latent_size: int) -> list:
    """(out, kernel, stride, padding) per transposed conv; see Config.g_arch."""
    if arch == "cifar8":  # follow-ups' CIFAR-10 net: 1x1 -> 8x8 -> 16 -> 32, then a 3x3 s1 to the image
        if image_size != 32 or latent_size != 1:
            raise ValueError("g_arch 'cifar8' is the 32x32 generator from a latent vector")
        return [(8 * ngf, 8, 1, 0), (4 * ngf, 4, 2, 1), (2 * ngf, 4, 2, 1), (n_c, 3, 1, 1)]
    if arch != "dcgan":
        raise ValueError(f"unknown g_arch '{arch}'; choose 'dcgan' or 'cifar8'")
    if image_size < 8 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
    # to 4x4: Pang's 4x4 s1 p0 from a vector, or Xu's map kept at 4x4 by a 3x3 s1 p1 (THESIS-OPEN)
    layers = [(8 * ngf, 4, 1, 0) if latent_size == 1 else (8 * ngf, 3, 1, 1)]
    width, size = 8 * ngf, 4
    while size < image_size:
        width, size = width // 2, size * 2
        layers.append((n_c if size == image_size else width, 4, 2, 1))
    return layers


class ConvLatentEnergy(nn.Module):
    """Energy over a (nz, s, s) latent map: conv3x3 - act - conv3x3 - act - conv s x s valid -> scalar
    (Xu 2021 leaves the net open: THESIS-OPEN, our choice)."""

    def __init__(self, nz: int, ndf: int, latent_size: int, act: str = "gelu"):
        super().__init__()
        acts = {"gelu": nn.GELU, "lrelu": lambda: nn.LeakyReLU(0.2)}
        self.net = nn.Sequential(
            nn.Conv2d(nz, ndf, 3, 1, 1),
            acts[act](),
            nn.Conv2d(ndf, ndf, 3, 1, 1),
            acts[act](),
            nn.Conv2d(ndf, 1, latent_size, 1, 0),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).flatten(1).squeeze(1)


class LatentEBM(Method):
    Config, PRESETS = Config, PRESETS
    FIGURES = (
        "posterior_revision.png",
        "posterior_mse.png",
        "prior_revision.png",
        "prior_energy.png",
        "latent_interpolation.png",
    )
    latent_size = 1  # spatial size of the latent; 1 = Pang's vector

    def __init__(self, cfg: Config, image_shape, device):
        super().__init__(cfg, image_shape, device)
        c, h, _ = image_shape
        self.E = self.build_energy(cfg).to(device)
        self.G = ConvTGenerator(cfg.nz, generator_layers(cfg.g_arch, cfg.ngf, c, h, self.latent_size)).to(device)
        xavier_init(self.G)  # LE: xavier_normal_ on (transposed) convs; Linear layers keep PyTorch's default
        xavier_init(self.E)
        self.nets = {"E": self.E, "G": self.G}
        betas = (cfg.beta1, cfg.beta2)
        self.opts = {
            "E": torch.optim.Adam(self.E.parameters(), lr=cfg.lr_e, betas=betas),
            "G": torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas),
        }
        self.scheds = {k: torch.optim.lr_scheduler.ExponentialLR(o, cfg.gamma) for k, o in self.opts.items()}

    def build_energy(self, cfg: Config) -> nn.Module:
        return MLPEnergy(cfg.nz, cfg.ndf, cfg.e_act)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        s = self.latent_size
        return (self.cfg.nz,) if s == 1 else (self.cfg.nz, s, s)

    # -- the two energies and their chains ----------------------------------------------------
    def z0(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Chain initialisation N(0, I), fresh every call (LE: sigma_init = 1 for both chains)."""
        return torch.randn((n, *self.latent_shape), generator=gen, device=self.device)

    def prior_energy(self, z: torch.Tensor) -> torch.Tensor:
        """-log p_alpha(z) + const = E(z) + ||z||^2 / (2 sigma0^2)."""
        return self.E(z) + z.pow(2).flatten(1).sum(1) / (2 * self.cfg.prior_sigma**2)

    def posterior_energy(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p_theta(z | x) + const = ||x - G(z)||^2 / (2 sigma^2) + E(z) + ||z||^2 / (2 sigma0^2)."""
        rec = (x - self.G(z)).pow(2).flatten(1).sum(1) / (2 * self.cfg.sigma**2)
        return rec + self.prior_energy(z)

    def prior_chain(self, z: torch.Tensor, gen: torch.Generator, **kw) -> torch.Tensor:
        c = self.cfg
        return self.langevin(
            self.prior_energy,
            z,
            n_steps=c.prior_steps,
            step_size=c.prior_step**2 / 2,
            noise_std=c.prior_step,
            generator=gen,
            **kw,
        )

    def posterior_chain(self, z: torch.Tensor, x: torch.Tensor, gen: torch.Generator, **kw) -> torch.Tensor:
        c = self.cfg
        return self.langevin(
            lambda v: self.posterior_energy(v, x),
            z,
            n_steps=c.post_steps,
            step_size=c.post_step**2 / 2,
            noise_std=c.post_step,
            generator=gen,
            **kw,
        )

    def chains(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-2: (prior samples z^-, posterior samples z^+) for the batch x."""
        z_prior0, z_post0 = self.z0(len(x), gen), self.z0(len(x), gen)
        return self.prior_chain(z_prior0, gen), self.posterior_chain(z_post0, x, gen)

    # -- learning ------------------------------------------------------------------------------
    def train_step(self, x, gen):
        z_prior, z_post = self.chains(x, gen)
        # step 3: generator by MLE on the posterior samples
        x_hat = self.G(z_post)
        loss_g = (x_hat - x).pow(2).flatten(1).sum(1).mean()
        self.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.opts["G"].step()
        # step 4: prior EBM, positive phase on posterior samples, negative phase on prior samples
        e_pos, e_neg = self.E(z_post).mean(), self.E(z_prior).mean()
        loss_e = e_pos - e_neg
        self.opts["E"].zero_grad(set_to_none=True)
        loss_e.backward()
        self.opts["E"].step()
        return {
            "loss_ebm": loss_e.item(),
            "loss_gen": loss_g.item(),
            "energy_posterior": e_pos.item(),
            "energy_prior": e_neg.item(),
            "recon_mse": ((x_hat.detach() - x) / 2).pow(2).mean().item(),
        }  # on the [0, 1] pixel scale

    def sample(self, n, gen):
        z = self.prior_chain(self.z0(n, gen), gen)
        with torch.no_grad():
            return self.G(z)

    def reconstruct(self, x, gen):
        z = self.posterior_chain(self.z0(len(x), gen), x, gen)
        with torch.no_grad():
            return self.G(z)

    # -- figures: the two chains at work (Xu Figs. 4.1-4.3, 4.7-4.9 in training curves) ---------
    def _strip(self, chain, z0, n_steps: int, x=None, energies: list | None = None):
        """Run `chain` from z0 recording G(z_k) at fig_cols steps and, given x, the MSE at every step;
        given a list `energies`, append the shown chains' energies U(z_k) at every step to it."""
        keep = set(torch.linspace(0, n_steps, self.cfg.fig_cols).round().int().tolist())
        snaps, mse = [], []

        def record(k, z, e):
            if energies is not None:
                energies.append(e[: self.cfg.fig_images].tolist())
            with torch.no_grad():
                g = self.G(z)
                if x is not None:
                    mse.append(((g - x) / 2).pow(2).mean().item())
                if k in keep:
                    snaps.append(g[: self.cfg.fig_images])

        chain(z0, record)
        return torch.stack(snaps, 1), mse

    def figures(self, x, gen, out_dir: Path):
        out_dir = Path(out_dir)
        self.posterior_figures(x, gen, out_dir)
        self.prior_figures(gen, out_dir)
        self.interpolation(gen, out_dir)
        return [out_dir / name for name in self.FIGURES]

    # -- latent space: interpolation and locality ------------------------------------------------
    def interpolation(self, gen, out_dir: Path) -> Path:
        """latent_interpolation.png: G(prior chain(z0_rho)) along paths between pairs of z0 ~ N(0, I),
        every column's chain with the same noise (one seed), so row i keeps its noise along the path."""
        c = self.cfg
        z_a, z_b = self.z0(c.fig_images, gen), self.z0(c.fig_images, gen)
        seed = int(torch.randint(0, 2**31, (1,), generator=gen, device=self.device))

        def decode(codes):  # row-major (pair, point) codes -> one fixed-noise chain per column
            chain = lambda z0: self.prior_chain(z0, torch.Generator(device=self.device).manual_seed(seed))  # noqa: E731
            cols = codes.unflatten(0, (-1, c.fig_cols)).unbind(1)
            return torch.stack([self.G(chain(z0)) for z0 in cols], 1).flatten(0, 1)

        return interpolation_figure(decode, z_a, z_b, c.fig_cols, out_dir / "latent_interpolation.png")

    def measurements(self, x, gen):
        """locality (see the module docstring) on posterior codes of up to measure_images test images."""
        x = x[: self.cfg.measure_images]
        z = torch.cat([self.posterior_chain(self.z0(len(xb), gen), xb, gen) for xb in x.split(self.cfg.batch_size)])
        noise, s = torch.randn(z.shape, generator=gen, device=self.device), self.latent_size
        if s == 1:  # a vector latent: unit u is coordinate u, its patch the best-matching one
            masks, own = torch.eye(z.shape[1], device=self.device), None
        else:  # a map latent: unit u is position (u // s, u % s) with all its channels, its patch the same position
            masks, own = torch.eye(s * s, device=self.device).view(s * s, 1, s, s), list(range(s * s))
        grid = 4 if s == 1 else s  # a 4 x 4 partition of the image: a conv latent's own grid
        return {"locality": locality(self.G, z, lambda v, u: v + noise * masks[u], len(masks), grid, own)}

    def posterior_figures(self, x, gen, out_dir: Path) -> None:
        """The posterior chain revising z for test images, and its reconstruction error per step."""
        c = self.cfg
        post, mse = self._strip(
            lambda z, cb: self.posterior_chain(z, x, gen, on_step=cb), self.z0(len(x), gen), c.post_steps, x
        )
        strip = torch.cat([post, x[: c.fig_images, None]], 1)  # last column: the observed image
        image_grid(strip.flatten(0, 1), out_dir / "posterior_revision.png", nrow=strip.shape[1])
        line_plot(
            {f"posterior chain ({len(x)} test images)": mse},
            out_dir / "posterior_mse.png",
            "reconstruction error along the posterior chain",
            "Langevin step k",
            "MSE of G(z_k), [0,1] scale",
        )

    def prior_figures(self, gen, out_dir: Path) -> None:
        """The prior chain from N(0, I) through the EBM prior, with its energy at every step (Pang Fig. 2)."""
        c = self.cfg
        energies = []  # Pang Fig. 2 prints the energy beside each step of the prior trajectory
        prior, _ = self._strip(
            lambda z, cb: self.prior_chain(z, gen, on_step=cb),
            self.z0(c.fig_images, gen),
            c.prior_steps,
            energies=energies,
        )
        image_grid(prior.flatten(0, 1), out_dir / "prior_revision.png", nrow=prior.shape[1])
        per_chain = {f"row {i + 1}": [step[i] for step in energies] for i in range(len(energies[0]))}
        line_plot(
            per_chain,
            out_dir / "prior_energy.png",
            "prior chain: energy at every step (rows of prior_revision)",
            "Langevin step k",
            "U(z_k) = E(z_k) + |z_k|^2 / 2",
        )


# ----------------------------------------------------------------------------
# Xu 2021: the same algorithm on a 4x4x100 convolutional latent map.


@dataclass(frozen=True)
class ConvConfig(Config):
    post_steps: int = 30  # Xu sec. 4.1
    lr_e: float = 1e-5  # Xu sec. 4.1
    lr_g: float = 1e-4  # Xu sec. 4.1


CONV_PRESETS = {  # 200 epochs of batch 100 (Xu sec. 4.1; the batch size is LE's, THESIS-OPEN)
    "svhn": ConvConfig(nz=100, ngf=64, n_iters=200 * (73_257 // 100)),
    "cifar10": ConvConfig(nz=100, ngf=64, n_iters=200 * (50_000 // 100)),
    # CelebA: the thesis gives neither crop nor subset; the suite's celeba64 uses the full training split
    "celeba64": ConvConfig(nz=100, ngf=128, n_iters=200 * (162_770 // 100)),
    # CPU preset, sized as latent_ebm's (not a thesis setting): a 4x4x2 latent map (a 4x4x4 one
    # reconstructs as well but its prior samples were worse: docs/digits-presets.md), ngf 8,
    # E width 64, K0 = 30, K1 = 10, batch 50, lr_E 1e-3, lr_G 1e-3, 300 iterations.
    "digits": ConvConfig(
        nz=2,
        ngf=8,
        ndf=64,
        prior_steps=30,
        post_steps=10,
        batch_size=50,
        n_iters=300,
        checkpoint_every=100,
        lr_e=1e-3,
        lr_g=1e-3,
    ),
}


class LatentEBMConv(LatentEBM):
    """Pang's learning algorithm with z a (nz, 4, 4) map and a convolutional energy over it."""

    Config, PRESETS = ConvConfig, CONV_PRESETS  # the thesis reports no FID or MSE
    latent_size = 4

    def build_energy(self, cfg: Config) -> nn.Module:
        return ConvLatentEnergy(cfg.nz, cfg.ndf, self.latent_size, cfg.e_act)
