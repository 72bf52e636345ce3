"""Networks shared by more than one method. Resolution is a constructor argument.

A network returns raw scalars; each method says in its own file whether that scalar is an energy
or a negative energy (the papers differ), so the sign lives next to the paper's equations.
Architectures used by a single paper live in that method's file.
"""

import torch
from torch import nn


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------
# Bottom-up ConvNet scalar (Nijkamp et al. 2019 `F`; also the CoopNets / CoopVAEBM descriptor).


class ConvScalarNet(nn.Module):
    """conv3x3 s1 n_f, then stride-2 4x4 convs doubling width (capped at max_mult n_f) down to 4x4,
    then a 4x4 valid conv to one scalar. At 32x32 with max_mult 8 this is exactly the short-run `F`
    (n_f, 2n_f, 4n_f, 8n_f); with max_mult 4 the CoopVAEBM descriptor (n_f, 2n_f, 4n_f, 4n_f).
    Each doubling of resolution adds one stride-2 layer at the capped width."""

    def __init__(self, n_c: int = 3, n_f: int = 64, image_size: int = 32, slope: float = 0.2, max_mult: int = 8):
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
        layers = [nn.Conv2d(n_c, n_f, 3, 1, 1), nn.LeakyReLU(slope)]
        width, size = n_f, image_size
        while size > 4:
            out = min(2 * width, max_mult * n_f)
            layers += [nn.Conv2d(width, out, 4, 2, 1), nn.LeakyReLU(slope)]
            width, size = out, size // 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1).squeeze(1)


# ----------------------------------------------------------------------------
# Top-down generators and bottom-up encoders for the latent-variable models.


class ConvTGenerator(nn.Module):
    """z (B, nz) or (B, nz, h, w) -> image in [-1, 1] by a stack of ConvTranspose2d layers.

    `layers` is a list of (out_channels, kernel, stride, padding); the last entry maps to the
    image channels and is followed by tanh, all others by LeakyReLU (and optional BatchNorm)."""

    def __init__(self, nz: int, layers: list[tuple[int, int, int, int]], slope: float = 0.2, batchnorm: bool = False):
        super().__init__()
        mods, c = [], nz
        for i, (out, k, s, p) in enumerate(layers):
            mods.append(nn.ConvTranspose2d(c, out, k, s, p))
            if i < len(layers) - 1:
                if batchnorm:
                    mods.append(nn.BatchNorm2d(out))
                mods.append(nn.LeakyReLU(slope))
            c = out
        mods.append(nn.Tanh())
        self.net = nn.Sequential(*mods)
        self.nz = nz

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.net(z)


class ConvEncoder(nn.Module):
    """image -> (mu, logvar), each (B, nz): conv3x3 s1 n_f then stride-2 4x4 convs to 4x4, then linear."""

    def __init__(self, n_c: int = 3, n_f: int = 64, image_size: int = 32, nz: int = 100, slope: float = 0.2):
        super().__init__()
        layers = [nn.Conv2d(n_c, n_f, 3, 1, 1), nn.LeakyReLU(slope)]
        width, size = n_f, image_size
        while size > 4:
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(slope)]
            width, size = 2 * width, size // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.mu = nn.Linear(width * 16, nz)
        self.logvar = nn.Linear(width * 16, nz)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.mu(h), self.logvar(h)


class MLPEnergy(nn.Module):
    """Linear(nz, ndf) - act - Linear(ndf, ndf) - act - Linear(ndf, 1): Pang et al.'s prior energy."""

    def __init__(self, nz: int, ndf: int = 200, act: str = "gelu"):
        super().__init__()
        acts = {"gelu": nn.GELU, "lrelu": lambda: nn.LeakyReLU(0.2)}
        self.net = nn.Sequential(nn.Linear(nz, ndf), acts[act](), nn.Linear(ndf, ndf), acts[act](), nn.Linear(ndf, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)).squeeze(1)


def xavier_init(module: nn.Module) -> None:
    """xavier_normal_ on conv / transposed-conv weights (the UCLA latent-EBM and Dual-MCMC codes)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def tf_style_init(module: nn.Module, std: float) -> None:
    """The initialisers of the TensorFlow codes of CoopNets / CoopVAEBM: conv kernels N(0, std), dense Glorot-uniform, biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
