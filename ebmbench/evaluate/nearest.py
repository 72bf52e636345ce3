"""Not copies: each generated image's nearest training image in the extractor's feature space (the
features FID is computed on, kept by the scoring pass: the extractor does not run again), the
memorised share, and a figure of samples beside their nearest training images.

memorised = the share of samples whose nearest training image is at most the training images' own
1st-percentile nearest-neighbour distance (train to train, each image's self excluded). A model
that generalises like held-out data lands near 1 % by that definition (a held-out image is as far
from the train split as a training image is from the others); a model that copies lands near 100 %.
Euclidean distances; at most MAX_QUERIES samples and training images are queried (evenly spaced,
so the choice is the same on every run), each against the whole train split.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..io import atomic_path  # noqa: E402
from ..plots import text_image  # noqa: E402

PERCENTILE = 1.0
MAX_QUERIES = 10000  # a 1st percentile of 10,000 distances is known to about +-0.1 percentage points
BLOCK = 2048  # query rows per distance block: BLOCK x n_train floats at a time
N_SHOWN = 10  # pairs per row of the figure


def evenly(n: int, most: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def nearest(queries: torch.Tensor, keys: torch.Tensor, self_index=None) -> tuple[np.ndarray, np.ndarray]:
    """Each query's nearest key: (distance, index); `self_index[i]`: the key that is query i itself."""
    dist, idx = [], []
    for s in range(0, len(queries), BLOCK):
        # not the matrix-product form: it leaves ~1e-3 on identical vectors, and a copy must be at 0
        d = torch.cdist(queries[s : s + BLOCK], keys, compute_mode="donot_use_mm_for_euclid_dist")
        if self_index is not None:
            rows = torch.arange(len(d), device=d.device)
            d[rows, torch.as_tensor(self_index[s : s + BLOCK], device=d.device)] = float("inf")
        m = d.min(dim=1)
        dist.append(m.values.cpu().numpy())
        idx.append(m.indices.cpu().numpy())
    return np.concatenate(dist).astype(np.float64), np.concatenate(idx)


def memorisation(gen, ref, device: str = "cpu") -> dict:
    """The memorised share of generated features `gen` against training features `ref` (n x d each),
    with what the figure shows: each queried sample's nearest training image and distance."""
    gen = torch.as_tensor(np.asarray(gen), dtype=torch.float32, device=device)
    ref = torch.as_tensor(np.asarray(ref), dtype=torch.float32, device=device)
    own = evenly(len(ref), MAX_QUERIES)
    d_ref, _ = nearest(ref[own], ref, self_index=own)
    threshold = float(np.percentile(d_ref, PERCENTILE))
    shown = evenly(len(gen), MAX_QUERIES)
    d, idx = nearest(gen[shown], ref)
    # at most, not below: where exact duplicates make the threshold 0, an exact copy still counts
    return {"memorised": float(np.mean(d <= threshold)), "threshold": threshold, "sample": shown, "dist": d, "idx": idx}


def memorised_of(kept: dict, samples, reference, figure=None, title: str = "", cuda: bool = False) -> dict:
    """metrics.json's memorisation fields from the scoring pass's kept features (input 1: the
    samples, input 2: the train split, at the FID layer); `figure`: also draw the nearest pairs there."""
    layer = kept["fid"][0][0]
    gen, ref = (kept["features"][i][layer] for i in (1, 2))
    m = memorisation(gen.float().cpu().numpy(), ref.float().cpu().numpy(), "cuda" if cuda else "cpu")
    if figure is not None:
        nearest_figure(samples, reference, m, figure, title)
    return {
        "memorised": m["memorised"],
        "memorised_threshold": m["threshold"],
        "memorised_protocol": (
            f"share of {len(m['sample'])} samples whose nearest of {len(ref)} training images (Euclidean, "
            f"layer '{layer}') is within the {PERCENTILE:g} % quantile of the "
            f"train-to-train nearest-neighbour distance, {m['threshold']:.4g}"
        ),
    }


def no_figure(path, why: str) -> None:
    """Where a run has no samples (diverged): the figure the workflow declares, saying why."""
    text_image(f"no nearest training images: {why}", path)


def nearest_figure(samples, reference, m: dict, path, title: str = "") -> None:
    """Two blocks of pairs, each a sample above its nearest training image, the distance as a multiple
    of the threshold under it: the first samples (what a model typically draws), then the samples
    nearest to the train split (the likeliest copies)."""
    order = np.argsort(m["dist"], kind="stable")
    blocks = [
        ("first samples (top) and their nearest training images", np.arange(min(N_SHOWN, len(order)))),
        ("samples nearest to the train split (top) and those training images", order[:N_SHOWN]),
    ]
    # each pair's two rows touch, the blocks apart (a spacer row holding the distances and the next caption)
    fig, axes = plt.subplots(5, N_SHOWN, figsize=(1.2 * N_SHOWN, 6.0), squeeze=False, height_ratios=[1, 1, 0.6, 1, 1])
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[2]:
        ax.axis("off")
    for top_row, (caption, picks) in zip((0, 3), blocks, strict=True):
        for col in range(N_SHOWN):
            top, bottom = axes[top_row, col], axes[top_row + 1, col]
            if col >= len(picks):
                top.axis("off")
                bottom.axis("off")
                continue
            q = picks[col]
            for ax, img in ((top, samples[m["sample"][q]]), (bottom, reference[m["idx"][q]])):
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ratio = m["dist"][q] / m["threshold"] if m["threshold"] > 0 else np.inf
            bottom.set_xlabel(f"{ratio:.2f} x thr", fontsize=10, color="red" if ratio <= 1 else "black")
        axes[top_row, 0].set_title(caption, fontsize=11, loc="left")
    head = f"{title}: " if title else ""
    fig.suptitle(
        f"{head}memorised {m['memorised']:.1%} of {len(m['dist'])} samples\n(sample above its nearest training "
        f"image; under each pair the distance / thr, the {PERCENTILE:g} % quantile of train-to-train nearest "
        f"distances; red: within thr)",
        fontsize=11,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.86, bottom=0.05, wspace=0.06, hspace=0.04)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
