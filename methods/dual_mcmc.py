"""Dual-MCMC teaching: Cui & Han, "Learning Energy-based Model via Dual-MCMC Teaching", NeurIPS 2023
(seed 001; docs/papers.md section 3). Official code: jcui1224/dual-MCMC @ aac3c4c, `train.py`,
`nets.py`, `config.py`, `utils.py` (add_sn), `task_fid.py`.

Three models (seed, "Joint densities"):
  EBM        pi_alpha(x) = exp(f_alpha(x)) / Z; the code's net outputs the *energy* E = -f (low on data);
  generator  p_theta(x, z) = N(z; 0, sigma_p^2 I) N(x; G(z), sigma^2 I);
  inference  q_phi(z | x) = N(mu_phi(x), diag V_phi(x)).
Two MCMC revisions: T^x_alpha (EBM Langevin on x, started at the generator's G(z)) and T^z_theta
(posterior Langevin on z, started at the inference model's draw). The three objectives of the seed,
  EBM:       min_alpha KL(Q~ || Pi_alpha,phi) - KL(P~ || Pi_alpha,phi),
  generator: min_theta KL(Q~ || P_theta) + KL(P~ || P_theta),
  inference: min_phi   KL(Q~ || Q_phi) + KL(P~ || Pi_alpha,phi),
with P~ = T^x p_theta(x|z) p(z) and Q~ = p_data(x) T^z q_phi(z|x), become, per iteration in the
released `train.py` (this order is what we run; B = batch size, sums over pixels / latent dims):
  1. z ~ N(0, I); x0 = G(z) (graph kept). z_inf = mu(x) + exp(logvar(x)/2) eps (reparameterised q);
     z_post = T^z(z_inf) (k_z = 10 steps); x_rev = T^x(x0) (k_x = 30 steps).
  2. G: minimise  ||G(z_post) - x||^2 / B  +  S ||G(z) - x_rev||^2 / B       (S = 50 CIFAR, 70 CelebA):
     the first term is KL(Q~||P) (MLE on the revised posterior pairs), the second the "MCMC teaching"
     of KL(P~||P): G regresses onto its own EBM-revised samples.
  3. I: minimise  mean NLL_q(z_post | x)  +  0.1 mean NLL_q(z | x_rev),  NLL of a diagonal Gaussian
     (0.5 sum logvar + 0.5 sum (z - mu)^2 / (1e-6 + exp logvar), no constant): KL(Q~||Q) and the
     inference half of KL(P~||Pi).
  4. E: regenerate x0' = G(z) with the *updated* G, revise it, x_neg = T^x(x0') (`fine_tune=True`),
     and minimise (mean E(x) - mean E(x_neg)) / T with T = mcmc_temp = (n_x / s_x)^2 (`use_temp`):
     x250,000 for CIFAR-10, x90,000 for CelebA-64. This is the MLE gradient of the seed's EBM loss.
  Adam betas (0.0, 0.9) for all three; lr E 1e-4, G 3e-4, I 1e-4; weight decay E 0, G 5e-4, I 5e-4;
  ExponentialLR 0.998 per epoch; spectral norm on every Conv/Linear of the EBM; G and I have none.

Sampler mapping (the shared sampler is x <- x - step_size * dE/dx + noise_std * N(0, I)):
  EBM x-chain. The code runs  x <- x - 0.5 s^2 dE/dx + n N(0, I)  with s = e_l_step_size (0.5 CIFAR,
    0.3 CelebA) and n = e_n_step_size = 1e-3, so  step_size = s^2 / 2,  noise_std = n, on the net's
    output E directly (it already is an energy). Exact Langevin for exp(-E) would need
    n = sqrt(2 step_size) = s; with n = 1e-3 the chain targets exp(-E / T) at T = n^2 / s^2 =
    (n/s)^2, which is exactly the mcmc_temp the E loss is divided by: the model whose MLE gradient
    step 4 takes is exp(-E/T), the one the chain samples.
  Posterior z-chain. The code runs  z <- z - 0.5 s^2 (d/dz ||x - G(z)||^2_sum / sigma^2 + z / sigma_p^2)
    + n N(0, I)  with s = 0.1, n = 0.1, sigma = 0.3, sigma_p = 1. We pass the energy
    U(z) = ||x - G(z)||^2 / sigma^2 + ||z||^2 / (2 sigma_p^2)  with step_size = s^2 / 2, noise_std = n.
    Note there is no 1/2 on the likelihood term (the code differentiates the summed MSE), so the chain
    targets a posterior whose observation noise is sigma / sqrt(2), not sigma; here n = s = sqrt(2
    step_size), so this chain *is* exact (untempered) Langevin for exp(-U).
  The seed's slides write Langevin as  x <- x + s d/dx log pi + sqrt(2 s) U,  i.e. step_size = s and
    noise_std = sqrt(2 s) in our convention, with s the slide's step. The code instead uses step
    s^2/2 (s its own step) and, for the x-chain, a noise decoupled from the step (the tempering
    above). We follow the code; the slides' equations are the idealised form.

Revision, measured. Sampling variant `x0` (VARIANTS; `ebmbench sample --variant x0`): G(z) alone,
no EBM revision, the paper's "Ours (generator x0 only)" row (section 5.2), from the same seeded
stream as the default sample, so it holds the very x0 the default revises. Measurements
(`measurements`, into metrics.json): the z-chain's test reconstruction MSE ([0, 1] pixels, images
clamped to [-1, 1] as the suite's `mse`) before revision, G(z0) with z0 = mu_phi(x), and after the
k_z posterior steps from z0 (`z_mse_before_revision`, `z_mse_after_revision`; the second is the
reconstruction `reconstruct` gives, on its own random stream). `latent_interpolation.png`: G along
paths between pairs of z ~ N(0, I) (the prior is Gaussian: no prior chain), decoded beside a batch of
other codes as G's batch norm uses batch statistics at test time.

Test time: samples are G(z) followed by k_x = 30 EBM steps (paper Table 1 / section 6). Reconstruction
is the paper's Table 3 "Inf + L=10": z0 = mu_phi(x) (the mean, as the released `recon_x`), 10
posterior steps, G(z_10). The released code never calls .eval(): its FID and reconstructions use
G's batch-norm batch statistics, so `test_bn_batch_stats=True` does the same (the running buffers
are left untouched); set it False to use the running statistics instead.

Departures from the released code (checked line by line against aac3c4c; the networks, their
initialisation `weights_init`, the losses with `Gfactor` = 1.0 in G's and I's loss, and the CelebA-64
nets `_CelebA64_netI/G/E` are the released ones):
  - The code's abort on |E_data - E_sample| > 1e4 or NaN is kept as the training loop's
    divergence check (`max_energy_gap` = 1e4 on the logged energies): the run stops, keeps its last
    good checkpoint and is reported as diverged, instead of returning silently.
  - `Gfactor` is not a knob here: it multiplies G's reconstruction term and I's posterior NLL in
    train.py, and both presets use its value 1.0.
  - CelebA-64 data: the released transform is crop (15, 40, 163, 188) -> torchvision `Resize(64)`
    (bilinear) -> `RandomHorizontalFlip`; the suite's `celeba64` crops the same box. The paper config
    asks for the bilinear resize (dataset option `resize`) and the preset flips (`hflip=True`);
    the embedded default resizes bicubic and nothing flips there.
  - The released checkpoints were scored with 70 EBM steps at step 0.4 (task_fid.py), not the 30
    steps of the paper's Table 1; our presets score with the paper's 30 (`sample_steps`).
  - The paper trains on the whole training split and scores 50,000 samples against train-split
    statistics; the presets say so (`n_train=0`, `n_samples=50_000`).
  - No SVHN preset: the paper reports no SVHN result and the released code has no SVHN setting.
  - The digits preset is CPU-sized (see PRESETS) and not a paper setting: `arch="dcgan"` swaps in the
    suite's shared DCGAN-style nets (energy ConvScalarNet with spectral norm, ConvTGenerator with BN,
    ConvEncoder) and the chains are shortened to 10 EBM / 5 posterior steps.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ebmbench.latent_figures import interpolation_figure
from ebmbench.method_base import Method, TrainConfig
from ebmbench.nets import ConvEncoder, ConvScalarNet, ConvTGenerator
from ebmbench.plots import image_grid, line_plot

# ----------------------------------------------------------------------------
# Networks (released nets.py; CelebA-64 variants per docs/papers.md section 3). The family follows the
# resolution: 32x32 is the CIFAR-10 family, 64x64 the CelebA-64 family.


def weights_init(m: nn.Module) -> None:
    """The released `weights_init`: xavier_normal_ on every Conv* weight, BN weight ~ N(0, 1), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_normal_(m.weight)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight)
        nn.init.zeros_(m.bias)


def add_spectral_norm(m: nn.Module) -> nn.Module:
    """The released `add_sn`: torch's spectral_norm on every Conv2d / Linear, recursively."""
    for name, child in m.named_children():
        m.add_module(name, add_spectral_norm(child))
    return nn.utils.spectral_norm(m) if isinstance(m, (nn.Conv2d, nn.Linear)) else m


class EBMBlock(nn.Module):
    """SNGAN discriminator block. start=True: conv-ReLU-conv (no pre-activation), shortcut pool
    then 1x1 conv; otherwise pre-activation ReLU-conv-ReLU-conv, shortcut 1x1 conv then pool."""

    def __init__(self, c_in: int, c_out: int, down: bool, start: bool = False):
        super().__init__()
        self.down, self.start = down, start
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.sc = nn.Conv2d(c_in, c_out, 1, bias=False) if (c_in != c_out or down) else None

    def forward(self, x):
        h = x if self.start else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        y = x
        if self.start:
            y = F.avg_pool2d(y, 2) if self.down else y
            y = self.sc(y) if self.sc is not None else y
        else:
            y = self.sc(y) if self.sc is not None else y
            y = F.avg_pool2d(y, 2) if self.down else y
        return h + y


class ResEnergy(nn.Module):
    """Energy E(x) (low on data). 32x32 (CIFAR-10 `_Cifar10_netE`): Start(3->ndf, down),
    Block(ndf, down), Block(ndf) x2. 64x64 (CelebA-64): Start(3->ndf/16, down) and four down-blocks
    doubling to ndf (64 -> 2 px). Then ReLU, global average pool, Linear(ndf -> 1, no bias)."""

    def __init__(self, n_c: int, ndf: int, image_size: int):
        super().__init__()
        if image_size == 32:
            blocks = [
                EBMBlock(n_c, ndf, True, start=True),
                EBMBlock(ndf, ndf, True),
                EBMBlock(ndf, ndf, False),
                EBMBlock(ndf, ndf, False),
            ]
        elif image_size == 64:
            w = [ndf // 16, ndf // 8, ndf // 4, ndf // 2, ndf]
            blocks = [EBMBlock(n_c, w[0], True, start=True)] + [
                EBMBlock(a, b, True) for a, b in zip(w, w[1:], strict=False)
            ]
        else:
            raise ValueError(f"Dual-MCMC networks exist for 32x32 and 64x64 images, got {image_size}")
        self.blocks = nn.Sequential(*blocks)
        self.lin = nn.Linear(ndf, 1, bias=False)

    def forward(self, x):
        h = F.relu(self.blocks(x)).mean((2, 3))  # = avg_pool2d over the whole map
        return self.lin(h).squeeze(1)


class GenBlock(nn.Module):
    """BN-ReLU-bilinear x2-conv3x3-BN-ReLU-conv3x3, plus (bilinear x2, 1x1 conv) shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1, self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.sc = nn.Conv2d(c_in, c_out, 1)  # always learnable: every block upsamples

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)  # noqa: E731
        h = self.conv2(F.relu(self.bn2(self.conv1(up(F.relu(self.bn1(x)))))))
        return h + self.sc(up(x))


class ResGenerator(nn.Module):
    """z (B, nz) -> Linear -> 4x4 x c0 -> GenBlocks (x2 each) -> BN-ReLU-conv3x3 -> tanh.
    32x32: three blocks ngf -> ngf; 64x64: four blocks ngf -> ngf/2 -> ... -> ngf/16."""

    def __init__(self, nz: int, ngf: int, image_size: int, n_c: int = 3):
        super().__init__()
        if image_size == 32:
            w = [ngf] * 4
        elif image_size == 64:
            w = [ngf, ngf // 2, ngf // 4, ngf // 8, ngf // 16]
        else:
            raise ValueError(f"Dual-MCMC networks exist for 32x32 and 64x64 images, got {image_size}")
        self.w0 = w[0]
        self.lin = nn.Linear(nz, 16 * w[0])
        self.blocks = nn.Sequential(*[GenBlock(a, b) for a, b in zip(w, w[1:], strict=False)])
        self.bn = nn.BatchNorm2d(w[-1])
        self.conv = nn.Conv2d(w[-1], n_c, 3, 1, 1)

    def forward(self, z):
        h = self.lin(z.flatten(1)).view(-1, self.w0, 4, 4)
        return torch.tanh(self.conv(F.relu(self.bn(self.blocks(h)))))


class ConvInference(nn.Module):
    """x -> (mu, logvar), each (B, nz). conv (3x3 s1 at 32x32; 4x4 s2 at 64x64) to nif, then 4x4 s2
    convs to 2, 4, 8 nif (down to 4x4), LeakyReLU(0.2) after each, no biases; two 4x4 valid heads."""

    def __init__(self, nz: int, nif: int, image_size: int, n_c: int = 3):
        super().__init__()
        if image_size not in (32, 64):
            raise ValueError(f"Dual-MCMC networks exist for 32x32 and 64x64 images, got {image_size}")
        first = (
            nn.Conv2d(n_c, nif, 3, 1, 1, bias=False) if image_size == 32 else nn.Conv2d(n_c, nif, 4, 2, 1, bias=False)
        )
        layers = [first, nn.LeakyReLU(0.2)]
        for k in range(3):
            layers += [nn.Conv2d(nif * 2**k, nif * 2 ** (k + 1), 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(*layers)
        self.mu, self.logvar = nn.Conv2d(8 * nif, nz, 4, 1, 0), nn.Conv2d(8 * nif, nz, 4, 1, 0)

    def forward(self, x):
        h = self.main(x)
        return self.mu(h).flatten(1), self.logvar(h).flatten(1)


def diag_normal_nll(z, mu, logvar):
    """Per-sample -log N(z; mu, diag exp(logvar)) without the constant (released `diag_normal_NLL`)."""
    return 0.5 * logvar.sum(1) + 0.5 * ((z - mu) ** 2 / (1e-6 + logvar.exp())).sum(1)


# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config(TrainConfig):
    # networks (CIFAR-10 defaults; config.py)
    arch: str = "resnet"  # resnet: the released nets; dcgan: the suite's small shared nets (digits only)
    nz: int = 128
    ngf: int = 512
    ndf: int = 512
    nif: int = 128
    spectral_norm: bool = True  # add_sn on every EBM Conv/Linear
    # EBM x-chain: x <- x - s^2/2 dE/dx + n N  (e_l_steps, e_l_step_size, e_n_step_size)
    x_steps: int = 30  # k_x, training
    x_step: float = 0.5  # s (0.3 for CelebA-64)
    x_noise: float = 1e-3  # n
    sample_steps: int = 30  # k_x at test (paper Table 1; task_fid.py used 70 at s = 0.4)
    fine_tune: bool = True  # E update revises the updated G's samples again
    use_temp: bool = True  # divide the E loss by mcmc_temp = (n / s)^2
    # posterior z-chain: z <- z - s^2/2 dU/dz + n N  (l_steps, l_step_size, n_step_size)
    z_steps: int = 10  # k_z (training and "Inf + L=10" reconstruction)
    z_step: float = 0.1
    z_noise: float = 0.1
    sigma: float = 0.3  # generator observation noise (sig)
    prior_sigma: float = 1.0  # prior_sig
    # loss weights
    s_factor: float = 50.0  # S, MCMC teaching of G (70 for CelebA-64)
    i_factor: float = 0.1  # weight of the NLL of z under q(z | revised sample)
    # optimisers (Adam, per network)
    lr_e: float = 1e-4
    lr_g: float = 3e-4
    lr_i: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    decay_e: float = 0.0
    decay_g: float = 5e-4
    decay_i: float = 5e-4
    gamma: float = 0.998  # ExponentialLR per epoch, all three nets
    max_energy_gap: float = 1e4  # the released code stops when |E_data - E_sample| exceeds this
    test_bn_batch_stats: bool = True  # released code never calls .eval() (see docstring)
    batch_size: int = 100
    n_iters: int = 301 * 500  # 301 epochs of CIFAR-10's 500 batches
    checkpoint_every: int = 500
    # figures (the paper's Fig. "MCMC revision")
    fig_rows: int = 8
    fig_columns: int = 11  # snapshots along a chain, first and last included
    interp_points: int = 8  # columns of latent_interpolation.png (rows: fig_rows pairs)
    measure_images: int = 300  # test images behind z_mse_before/after_revision (at most those given)


PRESETS = {
    # the paper's data protocol: the whole train split, 50,000 samples; CelebA-64 flips (dataset.py)
    "cifar10": Config(n_samples=50_000),
    "celeba64": Config(
        ngf=1024,
        ndf=1024,
        x_step=0.3,
        s_factor=70.0,
        n_samples=50_000,
        hflip=True,
        n_iters=301 * 1627,
        checkpoint_every=1627,
    ),  # 162,770 // 100 batches per epoch
    # CPU preset for the embedded digits (32x32, 1,497 images): the suite's small DCGAN-style nets
    # (ConvScalarNet n_f 16 with spectral norm, ConvTGenerator with BN, ConvEncoder), nz 32, batch 32,
    # 10 EBM / 5 posterior steps (paper: 30 / 10), ~200 iterations, sized for a CPU budget of about
    # 90 s; the paper's ResNets at 1/16 width cost about twice as much per step. Not a paper setting.
    "digits": Config(
        arch="dcgan",
        nz=32,
        ngf=32,
        ndf=16,
        nif=16,
        x_steps=10,
        sample_steps=10,
        z_steps=5,
        batch_size=32,
        n_iters=200,
        checkpoint_every=100,
        fig_rows=6,
    ),
}


class DualMCMC(Method):
    Config, PRESETS = Config, PRESETS
    FIGURES = (
        "revision.png",
        "energy_profile.png",
        "latent_revision.png",
        "latent_mse.png",
        "latent_interpolation.png",
    )
    VARIANTS = {"x0": "generator x0 = G(z) only, no EBM revision (the paper's 'generator x0 only' row)"}

    def __init__(self, cfg: Config, image_shape, device):
        super().__init__(cfg, image_shape, device)
        c, h, _ = image_shape
        if cfg.arch == "resnet":
            E, G, I = (
                ResEnergy(c, cfg.ndf, h),
                ResGenerator(cfg.nz, cfg.ngf, h, c),
                ConvInference(cfg.nz, cfg.nif, h, c),
            )
        elif cfg.arch == "dcgan":  # CPU-sized stand-ins for the digits preset
            n_up = int(math.log2(h // 4))
            layers = [(cfg.ngf * 2 ** (n_up - 1), 4, 1, 0)] + [
                (cfg.ngf * 2 ** (n_up - 2 - k), 4, 2, 1) for k in range(n_up - 1)
            ]
            E, G, I = (
                ConvScalarNet(c, cfg.ndf, h),
                ConvTGenerator(cfg.nz, layers + [(c, 4, 2, 1)], batchnorm=True),
                ConvEncoder(c, cfg.nif, h, cfg.nz),
            )
        else:
            raise ValueError(f"arch must be 'resnet' or 'dcgan', got {cfg.arch!r}")
        for net in (E, G, I):
            net.apply(weights_init)
        if cfg.spectral_norm:
            E = add_spectral_norm(E)
        self.E, self.G, self.I = E.to(device), G.to(device), I.to(device)
        self.nets = {"ebm": self.E, "gen": self.G, "inf": self.I}
        lr = {"ebm": cfg.lr_e, "gen": cfg.lr_g, "inf": cfg.lr_i}
        decay = {"ebm": cfg.decay_e, "gen": cfg.decay_g, "inf": cfg.decay_i}
        self.opts = {
            k: torch.optim.Adam(net.parameters(), lr=lr[k], betas=(cfg.beta1, cfg.beta2), weight_decay=decay[k])
            for k, net in self.nets.items()
        }
        self.scheds = {k: torch.optim.lr_scheduler.ExponentialLR(o, cfg.gamma) for k, o in self.opts.items()}

    # -- the two chains ---------------------------------------------------------------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z). At test time with `test_bn_batch_stats`, BN uses the batch's statistics as the
        released code does (it never calls .eval()), on copies of the running buffers."""
        if self.G.training or not self.cfg.test_bn_batch_stats:
            return self.G(z)
        self.G.train()
        try:
            buffers = {k: b.clone() for k, b in self.G.named_buffers()}
            return torch.func.functional_call(self.G, buffers, (z,))
        finally:
            self.G.train(False)

    def revise_x(self, x0: torch.Tensor, gen: torch.Generator, n_steps: int | None = None, **kw) -> torch.Tensor:
        """T^x: EBM Langevin from x0 (code: x - 0.5 s^2 dE/dx + n N)."""
        c = self.cfg
        return self.langevin(
            self.E,
            x0,
            n_steps=c.x_steps if n_steps is None else n_steps,
            step_size=0.5 * c.x_step**2,
            noise_std=c.x_noise,
            generator=gen,
            **kw,
        )

    def posterior_energy(self, x: torch.Tensor):
        c = self.cfg

        def U(z):  # ||x - G(z)||^2 / sigma^2 (no 1/2, as the code) + ||z||^2 / (2 sigma_p^2)
            return ((x - self.generate(z)) ** 2).flatten(1).sum(1) / c.sigma**2 + (z**2).sum(1) / (2 * c.prior_sigma**2)

        return U

    def revise_z(self, z0: torch.Tensor, x: torch.Tensor, gen: torch.Generator, **kw) -> torch.Tensor:
        """T^z: posterior Langevin from z0 (code: z - 0.5 s^2 dU/dz + n N)."""
        c = self.cfg
        return self.langevin(
            self.posterior_energy(x),
            z0,
            n_steps=c.z_steps,
            step_size=0.5 * c.z_step**2,
            noise_std=c.z_noise,
            generator=gen,
            **kw,
        )

    def prior(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn((n, self.cfg.nz), generator=gen, device=self.device)

    # -- one iteration of the released train.py ------------------------------------------------------
    def train_step(self, x, gen):
        c, B = self.cfg, len(x)
        # 1. z ~ p(z), x0 = G(z); z_inf ~ q(z|x); the two revisions
        z = self.prior(B, gen)
        x0 = self.G(z)
        mu, logvar = self.I(x)
        z_inf = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=gen, device=x.device)
        z_post = self.revise_z(z_inf, x, gen)
        x_rev = self.revise_x(x0, gen)
        # 2. G: MLE on (x, z_post) + S * MCMC teaching toward the EBM-revised samples
        recon = self.G(z_post)
        loss_recon = ((recon - x) ** 2).sum() / B
        loss_teach = ((x0 - x_rev) ** 2).sum() / B
        loss_gen = loss_recon + c.s_factor * loss_teach
        self.opts["gen"].zero_grad(set_to_none=True)
        loss_gen.backward()
        self.opts["gen"].step()
        # 3. I: NLL of the revised posterior latents, plus i_factor * NLL of z under q(z | x_rev)
        nll_post = diag_normal_nll(z_post, mu, logvar).mean()
        mu_s, logvar_s = self.I(x_rev)
        nll_prior = diag_normal_nll(z, mu_s, logvar_s).mean()
        loss_inf = nll_post + c.i_factor * nll_prior
        self.opts["inf"].zero_grad(set_to_none=True)
        loss_inf.backward()
        self.opts["inf"].step()
        # 4. E: regenerate with the updated G, revise again, contrast data against revised samples
        e_data = self.E(x).mean()
        with torch.no_grad():
            x_neg = self.G(z)
        if c.fine_tune:
            x_neg = self.revise_x(x_neg, gen)
        e_neg = self.E(x_neg).mean()
        gap = e_data - e_neg
        temp = (c.x_noise / c.x_step) ** 2 if c.use_temp else 1.0
        loss_ebm = gap / temp
        self.opts["ebm"].zero_grad(set_to_none=True)
        loss_ebm.backward()
        self.opts["ebm"].step()
        stats = {
            "loss_ebm": gap.item(),
            "loss_gen": loss_gen.item(),
            "loss_inf": loss_inf.item(),
            "energy_data": e_data.item(),
            "energy_sample": e_neg.item(),
        }
        n_pix = x[0].numel()
        stats |= {"recon_mse": loss_recon.item() / n_pix, "teach_mse": loss_teach.item() / n_pix}
        return stats

    # -- test time ----------------------------------------------------------------------------------
    def sample(self, n, gen):
        with torch.no_grad():
            x0 = self.generate(self.prior(n, gen))
        return self.revise_x(x0, gen, self.cfg.sample_steps)

    def sample_variant(self, variant, n, gen):
        """`x0`: G(z), z ~ N(0, I), the proposals `sample` revises (same stream, same z)."""
        if variant != "x0":
            return super().sample_variant(variant, n, gen)
        with torch.no_grad():
            return self.generate(self.prior(n, gen))

    def measurements(self, x, gen):
        """The z-chain's test reconstruction MSE before (G(mu(x))) and after (G(z_kz)) revision, in
        batches of batch_size (G's batch statistics as in `reconstruct`)."""
        x = x[: self.cfg.measure_images]
        before, after = [], []
        for xb in x.split(self.cfg.batch_size):
            with torch.no_grad():
                mu, _ = self.I(xb)
                before.append(self.generate(mu).clamp(-1, 1))
            z = self.revise_z(mu, xb, gen)
            with torch.no_grad():
                after.append(self.generate(z).clamp(-1, 1))
        mse = lambda r: ((torch.cat(r) - x) / 2).pow(2).mean().item()  # noqa: E731  [0, 1] pixel scale
        return {"z_mse_before_revision": mse(before), "z_mse_after_revision": mse(after)}

    def reconstruct(self, x, gen):
        """Table 3 "Inf + L=10": z0 = mu(x), k_z posterior steps, then G."""
        with torch.no_grad():
            mu, _ = self.I(x)
        z = self.revise_z(mu, x, gen)
        with torch.no_grad():
            return self.generate(z)

    def figures(self, x, gen, out_dir: Path):
        """The paper's "MCMC revision" figure: x-revision strip + energy profile, z-revision strip + MSE."""
        c, out_dir = self.cfg, Path(out_dir)
        n = min(c.fig_rows, len(x))

        def keep_at(k_total):
            return set(torch.linspace(0, k_total, min(c.fig_columns, k_total + 1)).round().int().tolist())

        # x-chain: generator sample -> EBM-revised sample
        snaps, energies, at = [], [], keep_at(c.sample_steps)

        def on_x(k, xk, e):
            energies.append(e.mean().item())
            if k in at:
                snaps.append(xk[:n].detach().clone())

        with torch.no_grad():
            x0 = self.generate(self.prior(len(x), gen))  # full batch: BN batch statistics as in `sample`
        self.revise_x(x0, gen, c.sample_steps, on_step=on_x)
        image_grid(torch.stack(snaps, 1).flatten(0, 1), out_dir / "revision.png", nrow=len(snaps))
        line_plot(
            {"mean E(x_k)": energies},
            out_dir / "energy_profile.png",
            "EBM revision of generator samples",
            "Langevin step k",
            "energy (low = likely)",
        )

        # z-chain: inference reconstruction -> posterior-revised reconstruction
        zsnaps, mses, zat = [], [], keep_at(c.z_steps)

        def on_z(k, zk, e):
            with torch.no_grad():
                r = self.generate(zk)
            mses.append((((r - x) / 2) ** 2).mean().item())  # [0, 1] pixel scale, as the suite's metric
            if k in zat:
                zsnaps.append(r[:n].clone())

        with torch.no_grad():
            mu, _ = self.I(x)
        self.revise_z(mu, x, gen, on_step=on_z)
        strip = torch.cat([torch.stack(zsnaps, 1), x[:n, None]], 1)  # last column: the observed images
        image_grid(strip.flatten(0, 1), out_dir / "latent_revision.png", nrow=strip.shape[1])
        line_plot(
            {"MSE(G(z_k), x)": mses},
            out_dir / "latent_mse.png",
            "Posterior revision of inferred latents",
            "Langevin step k",
            "per-pixel MSE, [0,1] scale",
        )
        z_a, z_b, pad = (self.prior(k, gen) for k in (n, n, self.cfg.batch_size))  # pad: G's BN batch statistics
        interpolation_figure(self.generate, z_a, z_b, c.interp_points, out_dir / "latent_interpolation.png", pad)
        return [out_dir / f for f in self.FIGURES]
