"""Image disturbances of Heusel et al. 2017 (TTUR / FID paper, arXiv:1706.08500, Fig. 1 and App. A1):
an extractor fit for FID must give a distance to clean data that rises with each disturbance's level.

All act on uint8 NHWC arrays and return new uint8 arrays. Each draws its randomness once, from
`seed`, independently of the level, so a higher level disturbs a superset of what a lower one does
(the same noise field mixed in more strongly, larger rectangles at the same corners, more of the
same salt-and-pepper pixels): a non-monotone FID curve is then the extractor's fault, not the sampling's.
"""

import numpy as np
import torch

# Level sets from Heusel et al. 2017, Fig. 1 (0 = clean), with one more step each where the paper's
# top level leaves little of a 32x32 digit.
LEVELS = {
    "gaussian_noise": (0.0, 0.1, 0.25, 0.5, 0.75),  # mixing weight alpha of the noise image
    "gaussian_blur": (0.0, 0.5, 1.0, 2.0, 4.0),  # kernel std in pixels
    "black_rectangles": (0.0, 0.1, 0.25, 0.5, 0.75),  # rectangle side / image side, 5 rectangles
    "salt_and_pepper": (0.0, 0.1, 0.2, 0.3, 0.4),  # fraction of pixels set to black or white
}


def gaussian_noise(images: np.ndarray, alpha: float, seed: int = 0) -> np.ndarray:
    """(1 - alpha) X + alpha N, N Gaussian noise on the pixel range (mean 127.5, std 64, clipped)."""
    noise = np.clip(np.random.RandomState(seed).normal(127.5, 64.0, images.shape), 0, 255)
    return np.clip((1 - alpha) * images + alpha * noise + 0.5, 0, 255).astype(np.uint8)


def gaussian_blur(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Separable Gaussian blur with std `sigma` pixels (reflect padding, radius 3 sigma)."""
    if sigma <= 0:
        return images.copy()
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double()
    x = blur_tensor(x, torch.full((len(x),), float(sigma), dtype=torch.float64))
    return np.clip(x.permute(0, 2, 3, 1).numpy() + 0.5, 0, 255).astype(np.uint8)


def blur_tensor(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of x (B, C, H, W) with its own std sigma[b] (> 0); used for training augmentation too."""
    b, c, h, w = x.shape
    radius = min(int(np.ceil(3 * float(sigma.max()))), h - 1, w - 1)  # reflect padding needs pad < size
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma.to(x.dtype)[:, None].clamp(min=1e-3)) ** 2)
    kernel = kernel / kernel.sum(1, keepdim=True)  # (B, 2 radius + 1)
    k = kernel.repeat_interleave(c, 0)  # one kernel per (image, channel) group
    y = torch.nn.functional.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = torch.nn.functional.conv2d(y, k[:, None, None, :], groups=b * c)  # along width
    y = torch.nn.functional.conv2d(y, k[:, None, :, None], groups=b * c)  # along height
    return y.reshape(b, c, h, w)


def black_rectangles(images: np.ndarray, alpha: float, seed: int = 0, n: int = 5) -> np.ndarray:
    """Five black squares of side alpha x image side, at random top-left corners fixed per image."""
    out = images.copy()
    h, w = images.shape[1:3]
    corners = np.random.RandomState(seed).randint(0, [h, w], size=(len(images), n, 2))
    side_h, side_w = int(round(alpha * h)), int(round(alpha * w))
    for i, cs in enumerate(corners):
        for y, x in cs:
            out[i, y : y + side_h, x : x + side_w] = 0
    return out


def salt_and_pepper(images: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A fraction of the pixels (all channels) set to black or white, each with probability 1/2."""
    rng = np.random.RandomState(seed)
    u = rng.random_sample(images.shape[:3])
    white = rng.random_sample(images.shape[:3]) < 0.5
    out = images.copy()
    hit = u < fraction
    out[hit & white] = 255
    out[hit & ~white] = 0
    return out


DISTURBANCES = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "black_rectangles": black_rectangles,
    "salt_and_pepper": salt_and_pepper,
}
