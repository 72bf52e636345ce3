"""PNG figures: image grids and training curves (written atomically, headless)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from .io import atomic_path, to_uint8  # noqa: E402
from .torch_compat import import_torchvision  # noqa: E402


def grid_array(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """uint8 NHWC -> one uint8 HWC mosaic, `nrow` images per row, on white (torchvision's make_grid)."""
    n, h, w, c = images.shape
    x = torch.tensor(np.asarray(images)).permute(0, 3, 1, 2)  # a copy: prepared data is memory-mapped read-only
    # make_grid narrows a batch shorter than nrow to its own length and returns a batch of one bare (no
    # border): blank cells fill the last row plus one spare row, cut off again, so every grid is nrow wide
    rows = -(-n // nrow)
    x = torch.cat([x, x.new_full(((rows + 1) * nrow - n, c, h, w), 255)])
    grid = import_torchvision().utils.make_grid(x, nrow=nrow, padding=pad, pad_value=255)
    # make_grid repeats a grey channel three times: keep one
    return np.ascontiguousarray(grid[:c, : rows * (h + pad) + pad].permute(1, 2, 0).numpy())


def save_png(array: np.ndarray, path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")


def image_grid(images, path, nrow: int = 8) -> None:
    """Images in [-1, 1] (NCHW tensor) or uint8 NHWC array -> grid PNG."""
    if isinstance(images, torch.Tensor):
        images = to_uint8(images)
    save_png(grid_array(images, nrow), path)


def text_image(text: str, path) -> None:
    """A small PNG carrying a message, where a figure cannot exist (e.g. a diverged run's grid)."""
    fig, ax = plt.subplots(figsize=(4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10)
    save_figure(fig, path)


def save_figure(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def training_curves(log: list[dict], path, title: str = "") -> None:
    """A panel per loss, one for energies (data vs samples), one for everything else logged."""
    keys = [k for k in (log[0] if log else {}) if k not in ("iter", "epoch")]
    # each loss gets its own panel: a generator's summed squared error and an EBM's energy gap
    # differ by orders of magnitude
    groups = {k: [k] for k in keys if k.startswith("loss")}
    groups["energy (positive vs negative phase)"] = [k for k in keys if k.startswith("energy")]
    groups["other"] = [k for k in keys if not any(k in g for g in groups.values())]
    groups = {name: ks for name, ks in groups.items() if ks}
    fig, axes = plt.subplots(1, max(1, len(groups)), figsize=(5 * max(1, len(groups)), 3.5), squeeze=False)
    it = np.array([r["iter"] for r in log])
    for ax, (name, ks) in zip(axes[0], groups.items(), strict=False):  # one empty panel when nothing was logged
        for k in ks:
            y = np.array([r.get(k, np.nan) for r in log], float)
            ax.plot(it, y, alpha=0.35, lw=0.8)
            w = max(1, len(y) // 50)  # moving average for readability
            if len(y) >= w:
                ax.plot(
                    it[w - 1 :], np.convolve(y, np.ones(w) / w, mode="valid"), label=k, color=ax.lines[-1].get_color()
                )
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def line_plot(series: dict[str, list[float]], path, title: str, xlabel: str, ylabel: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, ys in series.items():
        ax.plot(range(len(ys)), ys, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    save_figure(fig, path)
