"""From a trained run: N samples (uint8 NHWC .npz + grid), test reconstructions, paper figures."""

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import dataset_info, load_prepared
from .io import SuiteError, remove_outputs, save_npz, to_float, to_uint8, write_json
from .plots import image_grid, text_image
from .runs import load_run
from .seeding import seeded_generator

# What `generate` writes into its folder (and metrics.json, computed from those samples).
SAMPLE_OUTPUTS = ("samples.npz", "samples.json", "grid.png", "figures", "metrics.json")


def generate(
    run_dir,
    n: int,
    out_dir,
    seed: int = 0,
    data_dir=None,
    n_recon: int = 500,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Write samples.npz, samples.json and grid.png to out_dir; with data_dir also out_dir/figures/:
    recon.npz + recon.png (if the method reconstructs) and the method's figures.
    Batch b draws from a generator seeded (seed, b)."""
    model, identity, status = load_run(run_dir, device)
    out_dir = Path(out_dir)
    if n <= 0:
        raise SuiteError(f"number of samples must be positive, got {n}.")
    if data_dir is not None:  # before anything in out_dir is touched
        info = dataset_info(data_dir)
        if identity["data_sha256"] != info["sha256"]:
            raise SuiteError(
                f"run {run_dir} was trained on '{identity['dataset']}', other data than --data {data_dir} "
                f"('{info['name']}'); pass the prepared folder it was trained on."
            )
    labels = {k: identity[k] for k in ("method", "dataset", "seed", "preset", "data_sha256")}
    remove_outputs(out_dir, SAMPLE_OUTPUTS)  # an interrupted rerun leaves none of the previous run's files
    if status["status"] != "ok":  # a diverged run is never scored: no samples, a grid that says why
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        h, w, c = identity["image_shape"]
        save_npz(out_dir / "samples.npz", images=np.zeros((0, h, w, c), np.uint8))
        write_json(out_dir / "samples.json", {**labels, **status})
        text_image(
            f"{identity['method']}: diverged at iteration {status['iter']}\n({status['quantity']})",
            out_dir / "grid.png",
        )
        return {"status": "diverged"}
    bs, per_call = identity["config"]["batch_size"], model.sample_chunk()
    chunks = []
    for b, start in enumerate(tqdm(range(0, n, per_call), desc="sampling", unit="batch", disable=not progress)):
        gen = seeded_generator(model.device, seed, "sample", b)
        chunks.append(to_uint8(model.sample(min(per_call, n - start), gen)))
    samples = np.concatenate(chunks)
    save_npz(out_dir / "samples.npz", images=samples)
    write_json(out_dir / "samples.json", {**labels, "status": "ok"})
    image_grid(samples[:64], out_dir / "grid.png", nrow=8)
    written = {"samples": str(out_dir / "samples.npz"), "grid": str(out_dir / "grid.png")}
    if data_dir is None:
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
