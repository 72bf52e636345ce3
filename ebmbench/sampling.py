"""From a trained run: N samples (uint8 NHWC .npz + grid), test reconstructions, paper figures, the
method's own measurements; or the samples of one of its sampling variants."""

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import dataset_info, load_prepared
from .io import SuiteError, remove_outputs, save_npz, to_float, to_uint8, write_json
from .plots import image_grid, text_image
from .protocol import preset_changes
from .runs import load_run
from .seeding import seeded_generator

# What `generate` writes into its folder (and metrics.json, computed from those samples).
SAMPLE_OUTPUTS = ("samples.npz", "samples.json", "grid.png", "figures", "measurements.json", "metrics.json")


def draw_samples(model, n: int, seed: int, variant: str | None = None, progress: bool = False):
    """n images (uint8, N x H x W x C) from the model, or from its sampling `variant`, in chunks of
    model.sample_chunk(); chunk b draws from a generator seeded (seed, "sample", b). Also returns the
    seconds spent drawing them."""
    per_call = model.sample_chunk()
    draw = model.sample if variant is None else lambda k, g: model.sample_variant(variant, k, g)
    chunks, seconds = [], 0.0
    for b, start in enumerate(tqdm(range(0, n, per_call), desc="sampling", unit="batch", disable=not progress)):
        gen = seeded_generator(model.device, seed, "sample", b)
        t0 = time.perf_counter()
        batch = draw(min(per_call, n - start), gen)
        if batch.is_cuda:
            torch.cuda.synchronize(batch.device)
        seconds += time.perf_counter() - t0
        chunks.append(to_uint8(batch))
    return np.concatenate(chunks), seconds


def generate(
    run_dir,
    n: int,
    out_dir,
    seed: int = 0,
    data_dir=None,
    n_recon: int = 500,
    device: str = "auto",
    progress: bool = True,
    variant: str | None = None,
) -> dict:
    """Write samples.npz, samples.json and grid.png to out_dir; with data_dir also out_dir/figures/:
    recon.npz + recon.png (if the method reconstructs), the method's figures, and measurements.json
    (its `measurements`, {} if none). Batch b draws from a generator seeded (seed, b). With `variant`:
    only the samples, grid and labels of that sampling variant, from the same seeded streams (so a
    variant that skips a revision shows the very proposals the default revises), labelled
    "<method>@<variant>". samples.json records `seconds_per_1000`, the wall time of drawing them."""
    model, identity, status = load_run(run_dir, device)
    out_dir = Path(out_dir)
    if n <= 0:
        raise SuiteError(f"number of samples must be positive, got {n}.")
    if variant is not None and variant not in model.VARIANTS:
        raise SuiteError(
            f"method '{identity['method']}' has no sampling variant '{variant}'; its variants: "
            f"{', '.join(model.VARIANTS) or 'none'}. Pass one of those to --variant, or leave it out."
        )
    if data_dir is not None:  # before anything in out_dir is touched
        info = dataset_info(data_dir)
        if identity["data_sha256"] != info["sha256"]:
            raise SuiteError(
                f"run {run_dir} was trained on '{identity['dataset']}', other data than --data {data_dir} "
                f"('{info['name']}'); pass the prepared folder it was trained on."
            )
    labels = {k: identity[k] for k in ("method", "dataset", "seed", "preset", "data_sha256")}
    labels["preset_changes"] = preset_changes(identity)  # what a paper comparison must know (ebmbench.protocol)
    if variant is not None:
        labels |= {"method": f"{identity['method']}@{variant}", "variant": variant}
    remove_outputs(out_dir, SAMPLE_OUTPUTS)  # an interrupted rerun leaves none of the previous run's files
    if status["status"] != "ok":  # a diverged run is never scored: no samples, a grid that says why
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        h, w, c = identity["image_shape"]
        save_npz(out_dir / "samples.npz", images=np.zeros((0, h, w, c), np.uint8))
        write_json(out_dir / "samples.json", {**labels, **status})
        if data_dir is not None and variant is None:
            write_json(out_dir / "measurements.json", {})
        text_image(
            f"{identity['method']}: diverged at iteration {status['iter']}\n({status['quantity']})",
            out_dir / "grid.png",
        )
        return {"status": "diverged"}
    samples, seconds = draw_samples(model, n, seed, variant, progress)
    bs = identity["config"]["batch_size"]
    save_npz(out_dir / "samples.npz", images=samples)
    write_json(out_dir / "samples.json", {**labels, "status": "ok", "seconds_per_1000": seconds / n * 1000})
    image_grid(samples[:64], out_dir / "grid.png", nrow=8)
    written = {"samples": str(out_dir / "samples.npz"), "grid": str(out_dir / "grid.png")}
    if data_dir is None or variant is not None:
        return written

    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    test = load_prepared(data_dir, "test")
    x = to_float(test[: min(n_recon, len(test))]).to(model.device)
    gen = seeded_generator(model.device, seed, "figures")
    recon = [model.reconstruct(xb, gen) for xb in x.split(bs)]
    if all(r is not None for r in recon):
        save_npz(fig_dir / "recon.npz", original=to_uint8(x), reconstruction=to_uint8(torch.cat(recon)))
        # pairs (test image, reconstruction) side by side
        image_grid(torch.stack([x[:32], torch.cat(recon)[:32]], 1).flatten(0, 1), fig_dir / "recon.png", nrow=16)
        written["recon"] = str(fig_dir / "recon.npz")
    for path in model.figures(x[:bs], gen, fig_dir):
        written[Path(path).stem] = str(path)
    # after everything above, from a stream of its own: the samples and figures stay as they were
    measured = model.measurements(x, seeded_generator(model.device, seed, "measurements"))
    write_json(out_dir / "measurements.json", {k: float(v) for k, v in measured.items()})
    written["measurements"] = str(out_dir / "measurements.json")
    return written


def uniform_noise(data_dir, n: int, out_dir, seed: int = 0) -> None:
    """Uniform-noise images shaped like the dataset: the p0 of short-run and the FID a method must beat."""
    info = dataset_info(data_dir)
    h, w, c = info["image_shape"]
    images = np.random.RandomState(seed).randint(0, 256, (n, h, w, c), dtype=np.uint8)
    save_npz(Path(out_dir) / "samples.npz", images=images)
    write_json(
        Path(out_dir) / "samples.json",
        {"method": "uniform_noise", "dataset": info["name"], "seed": seed, "data_sha256": info["sha256"]},
    )
    image_grid(images[:64], Path(out_dir) / "grid.png", nrow=8)
