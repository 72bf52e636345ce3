"""One comparison page per dataset: every model's samples side by side under its name.

Panels in a grid, three to a row (readable at 100 % zoom on a laptop screen). Each shows the first
`n` images of a run's samples.npz (the same number for every model, all from runs of one seed, so
the same sampling seed), its headline numbers from that run's metrics.json below it, and the
uniform-noise images beside them as the level to beat.

    ebmbench comparison --out results/digits/comparison.png \
        results/digits/short_run/seed0 ... results/digits/uniform_noise
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import SuiteError, atomic_path, load_images_npz, read_json  # noqa: E402
from ..plots import grid_array  # noqa: E402


def headline(m: dict) -> str:
    if m.get("status", "ok") != "ok":
        return m.get("status", "")
    parts = [f"{k.upper()} {m[k]:.4g}" for k in ("fid", "is") if m.get(k) is not None]
    if m.get("mse") is not None:
        parts.append(f"MSE {m['mse']:.3g}")
    lines = [" | ".join(parts)]
    if m.get("precision") is not None and m.get("recall") is not None:  # fidelity vs coverage (k-NN)
        lines.append(f"precision {m['precision']:.2f} | recall {m['recall']:.2f}")
    count = f"{m.get('n_generated', '?')} samples"
    if m.get("memorised") is not None:  # share within a training image's nearest distance (ebmbench.evaluate.nearest)
        count += f", memorised {m['memorised']:.1%}"
    return "\n".join([*lines, count])


COLUMNS = 3  # panels per row


def comparison_page(run_dirs, out, n: int = 36, nrow: int = 6) -> Path:
    panels = []
    for d in map(Path, run_dirs):
        m = read_json(d / "metrics.json")
        name = "uniform noise (reference)" if d.name == "uniform_noise" else m.get("method", d.parent.name)
        seed = "" if d.name == "uniform_noise" else f", seed {m.get('seed', d.name.removeprefix('seed'))}"
        images = load_images_npz(d / "samples.npz") if m.get("status", "ok") == "ok" else None
        if images is not None and len(images) < n:
            raise SuiteError(
                f"{d}/samples.npz holds {len(images)} images; the comparison page shows {n} of every model."
            )
        panels.append((name + seed, images[:n] if images is not None else None, headline(m)))
    if not panels:
        raise SuiteError("the comparison page needs at least one run folder.")
    # a grid, COLUMNS panels a row, each large enough that its images and numbers read at 100 % zoom
    # on a laptop screen (about 1,500 px wide in all)
    cols = min(COLUMNS, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 5.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, images, text) in zip(axes.flat, panels, strict=False):
        if images is not None:
            grid = grid_array(images, nrow)
            ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes, fontsize=12)
        ax.set_title(title, fontsize=13)
        ax.set_xlabel(text, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(out)
