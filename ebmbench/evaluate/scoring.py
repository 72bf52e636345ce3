"""Scoring a sample file, and the metrics.json it becomes: FID / IS / KID / precision and recall
through torch-fidelity, and reconstruction MSE. Runs on files, never in training.

Precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", NeurIPS; torch-fidelity's `prc`): the fraction of generated images inside the
k-nearest-neighbour balls (k = 3) of the reference images, and the reverse; on the same features as
FID (the digits embedding, Inception's 2048-d pool3). The paper uses VGG-16 fc2 features, which
torch-fidelity would download: the numbers are comparable within the suite, not with that paper's.

Reference statistics are cached under a name holding the dataset's content hash (data +
preprocessing) and the extractor's weights hash: torch-fidelity keys its cache by name only, so a
name without them would silently reuse stale statistics.

metrics.json (written by `ebmbench score`, read by the table through `metrics_record`): the run's
labels and status; when ok, the counts, the extractor id and each metric as a finite number or null
with `<metric>_unavailable` giving the reason; `features`: where the kept features were written,
relative to the metrics.json's own folder.
"""

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import schemas
from ..checks import input_file
from ..commit import refuse_unfinished
from ..data import dataset_info, load_prepared
from ..io import SuiteError, load_images_npz, read_json, write_json
from .extractors import ImagesDataset, extractor_spec, logits_missing, tf
from .kept_features import calculate_metrics_keeping, save_kept
from .measured import MEASURED, measured_metrics
from .nearest import memorised_of, no_figure

METRICS = ("fid", "is", "kid", "precision", "recall", "mse", "memorised", *MEASURED)  # MEASURED: a method's own numbers
LOWER_IS_BETTER = {"fid": True, "kid": True, "mse": True, "is": False, "precision": False, "recall": False} | MEASURED
LOWER_IS_BETTER["memorised"] = True  # share of samples within a training image's nearest (ebmbench.evaluate.nearest)

# The fewest images each metric is defined on: FID's and KID's covariances / unbiased MMD need two,
# IS averages over torch-fidelity's 10 splits (isc_splits), one image each at least. Below these a
# metric is refused or absent with its reason, never NaN.
# Precision and recall need k + 1 images in each set (a k-th neighbour other than the image itself).
PRC_NEIGHBORHOOD = 3
PRC_BATCH = 10000  # rows of each block of distances (torch-fidelity's prc_batch_size default)
MIN_IMAGES = {"fid": 2, "kid": 2, "is": 10, "mse": 1, "precision": PRC_NEIGHBORHOOD + 1, "recall": PRC_NEIGHBORHOOD + 1}
MIN_IMAGES |= dict.fromkeys(MEASURED, 1)


def fid_of_features(a, b) -> float:
    """FID between two feature sets, with torch-fidelity's own statistics and formula."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats = [fid_features_to_statistics(f.double()) for f in (a, b)]
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


def reconstruction_mse(path) -> dict:
    """Per-pixel MSE between test images and their reconstructions, both on the [0, 1] pixel scale."""
    original = load_images_npz(path, "original").astype(np.float64) / 255
    recon = load_images_npz(path, "reconstruction").astype(np.float64) / 255
    if original.shape != recon.shape:
        raise SuiteError(f"{path}: original {original.shape} and reconstruction {recon.shape} differ in shape.")
    if len(original) < MIN_IMAGES["mse"]:
        return {
            "mse": None,
            "mse_unavailable": f"no reconstructions in {path}",
            "mse_n": 0,
            "mse_scale": "[0,1] pixels",
        }
    per_image = ((original - recon) ** 2).mean(axis=(1, 2, 3))
    return {"mse": float(per_image.mean()), "mse_n": int(len(per_image)), "mse_scale": "[0,1] pixels"}


def precision_recall_of(kept: dict, extractor_name: str, cuda: bool) -> dict:
    """torch-fidelity's precision and recall (`prc_features_to_metric`) on the features the FID pass just
    extracted (kept by `calculate_metrics_keeping`), so the extractor runs once.

    Not through `prc=True`: on a GPU run (save_cpu_ram off) that takes full n x n distance matrices in host
    memory, 106 GB for CelebA's 162,770 training images. Its blockwise path (save_cpu_ram) holds PRC_BATCH
    rows at a time, and with the features on the GPU the distances are computed there."""
    from torch_fidelity.metric_prc import prc_features_to_metric

    layer = tf.registry.FEATURE_EXTRACTORS_REGISTRY[extractor_name].get_default_feature_layer_for_metric("prc")
    gen, ref = (kept["features"][i][layer] for i in (1, 2))
    if cuda:
        gen, ref = gen.cuda(), ref.cuda()
    m = prc_features_to_metric(
        gen, ref, prc_neighborhood=PRC_NEIGHBORHOOD, prc_batch_size=PRC_BATCH, save_cpu_ram=True, verbose=False
    )
    return {
        "precision": m["precision"],
        "recall": m["recall"],
        "prc_protocol": f"k={PRC_NEIGHBORHOOD} nearest neighbours (Kynkaanniemi et al. 2019) on layer '{layer}'",
    }


def run_labels(samples_path) -> dict:
    """samples.json beside a sample file: which run the samples come from ({} for samples made outside the suite)."""
    labels_path = Path(samples_path).with_name("samples.json")
    return read_json(labels_path) if labels_path.exists() else {}


def reference_cache_prefix(info: dict) -> str:
    """The start of the cached reference statistics' names: dataset and content hash (the extractor id follows)."""
    return f"{info['name']}-train-{info['sha256'][:16]}"


def score(
    samples_path,
    data_dir,
    extractor: str,
    weights=None,
    cache_dir=None,
    device: str = "cpu",
    recon_path=None,
    precision_recall: bool = True,
    features_path=None,
    measurements_path=None,
    nearest_path=None,
) -> dict:
    """The metrics of one sample file against the dataset's train split; with `features_path`, the
    features behind FID and IS are kept there for the table's bootstrap (ebmbench.evaluate.kept_features);
    with `nearest_path`, a figure of samples beside their nearest training images (ebmbench.evaluate.nearest)."""
    labels = run_labels(samples_path)
    run = {k: v for k, v in labels.items() if k in ("method", "dataset", "seed")}
    if labels.get("status", "ok") != "ok":  # diverged: reported as such, never with a number
        if features_path is not None:
            save_kept(features_path, None)  # empty: the workflow declares one per run
        if nearest_path is not None:
            no_figure(nearest_path, labels["status"])
        return {**run, "status": labels["status"], "message": labels.get("message", "")}
    samples = load_images_npz(samples_path)
    info = dataset_info(data_dir)
    # samples made outside the suite (no samples.json): named after their folder, on the data given
    run = run or {"method": Path(samples_path).resolve().parent.name, "dataset": info["name"]}
    reference = load_prepared(data_dir, "train")
    if samples.shape[1:] != reference.shape[1:]:
        raise SuiteError(
            f"samples {samples_path} have image shape {samples.shape[1:]}, the dataset '{info['name']}' has {reference.shape[1:]}."
        )
    for what, arr in (
        ("generated images in " + str(samples_path), samples),
        (f"reference images in '{info['name']}'", reference),
    ):
        if len(arr) < MIN_IMAGES["fid"]:
            raise SuiteError(
                f"{len(arr)} {what}: FID and KID need at least {MIN_IMAGES['fid']} (a covariance), "
                f"IS at least {MIN_IMAGES['is']}; generate more (sample --n)."
            )
    kw, extractor_id = extractor_spec(extractor, weights)
    no_logits = logits_missing(extractor, weights)
    isc = len(samples) >= MIN_IMAGES["is"] and no_logits is None
    prc = precision_recall and min(len(samples), len(reference)) >= MIN_IMAGES["precision"]
    cuda = device.startswith("cuda")
    metrics, kept = calculate_metrics_keeping(
        input1=ImagesDataset(samples),
        input2=ImagesDataset(reference),
        fid=True,
        isc=isc,
        kid=True,
        kid_subset_size=min(1000, len(samples), len(reference)),
        cuda=cuda,
        save_cpu_ram=not cuda,
        verbose=False,
        batch_size=100,
        cache=cache_dir is not None,
        cache_root=str(cache_dir) if cache_dir else None,
        input2_cache_name=f"{reference_cache_prefix(info)}-{extractor_id}",
        **kw,
    )
    out = {
        **run,
        "status": "ok",
        "fid": metrics["frechet_inception_distance"],
        "is": metrics.get("inception_score_mean"),
        "is_std": metrics.get("inception_score_std"),
        "kid": metrics["kernel_inception_distance_mean"],
        "kid_std": metrics["kernel_inception_distance_std"],
        "n_generated": int(len(samples)),
        "n_reference": int(len(reference)),
        "reference": f"{info['name']} train split ({info['preprocessing']})",
        "extractor": extractor_id,
    }
    if not isc:
        out["is_unavailable"] = (
            no_logits or f"fewer than {MIN_IMAGES['is']} generated images (IS averages over 10 splits)"
        )
    if prc:
        out |= precision_recall_of(kept, kw["feature_extractor"], cuda)
        out["prc_protocol"] += f" of {extractor_id}"
    elif precision_recall:
        for k in ("precision", "recall"):
            out[k] = None
            out[f"{k}_unavailable"] = (
                f"fewer than {MIN_IMAGES[k]} generated or reference images (k = {PRC_NEIGHBORHOOD} nearest neighbours)"
            )
    if recon_path:
        out.update(reconstruction_mse(recon_path))
    out.update(measured_metrics(labels, measurements_path))  # sampling cost, the method's measurements
    # on the features FID was computed from, after it: the numbers above stay as they were
    title = f"{run.get('method', 'samples')}, seed {run.get('seed')}"
    out.update(memorised_of(kept, samples, reference, nearest_path, title, cuda))
    if features_path is not None:
        save_kept(features_path, kept)
    return finite_or_absent(out, ("fid", "is", "is_std", "kid", "kid_std", "precision", "recall", "mse"), "not finite")


def finite_or_absent(out: dict, metrics, reason: str) -> dict:
    """Replace a NaN/Inf metric by None plus `<metric>_unavailable` with the reason: a number that
    cannot be computed is absent, never a NaN in metrics.json or the table."""
    for k in metrics:
        v = out.get(k)
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
            out[f"{k}_unavailable"] = f"{reason} ({v})"
    return out


# -- the metrics.json contract, and the checks `ebmbench score` runs before any work ----------------


def features_record(features_path, metrics_path) -> str:
    """The `features` field of metrics.json: the kept features' path relative to the metrics.json's folder."""
    return os.path.relpath(features_path, Path(metrics_path).parent)


def metrics_record(path) -> dict:
    """A metrics.json as `score` writes it, checked against its contract (ebmbench.schemas.metrics):
    labels, status, counts, the extractor and each metric within its range or null with its reason.
    `features`, where present, comes back resolved against the metrics.json's own folder (never the
    working directory). A folder mid-commit (a killed score or sample) is refused."""
    path = input_file(path, "metrics file")
    refuse_unfinished(path, "the sample or score step that writes this folder")
    m = schemas.metrics(read_json(path), f"metrics file {path}", METRICS)
    if "features" in m:
        m["features"] = str(path.parent / m["features"])
    return m


def write_metrics(path, m: dict, samples_path, data_dir, shown=None) -> dict:
    """Write a score's record with the protocol the table checks (the samples' preset and its
    changes, the data's kind and hash), checked against the contract first: an impossible value
    stops here, not in the table."""
    labels, info = run_labels(samples_path), dataset_info(data_dir)
    protocol = {k: labels[k] for k in ("preset", "preset_changes") if k in labels}
    m = {**m, **protocol, "data_kind": info["kind"], "data_sha256": info["sha256"]}
    schemas.metrics(m, f"the score for {shown or path}", METRICS, written=True)
    write_json(path, m)
    return m


def samples_match_data(samples: Path, info: dict) -> None:
    """The samples' run must have been trained on the dataset it is scored against."""
    refuse_unfinished(samples, "the sample step that writes this folder", unrelated=("score",))
    labels = run_labels(samples)
    if (
        labels.get("dataset", info["name"]) != info["name"]
        or labels.get("data_sha256", info["sha256"]) != info["sha256"]
    ):
        what = "dataset" if labels.get("dataset", info["name"]) != info["name"] else "prepared data (content hash)"
        raise SuiteError(
            f"samples {samples} come from a run trained on '{labels.get('dataset')}', another {what} than "
            f"--data '{info['name']}'; score them against the data they were trained on."
        )


def cache_entries(cache_dir, info: dict) -> None:
    """Cached reference statistics are zip archives (torch.save); a truncated one would fail deep in
    torch-fidelity. Checked without unpickling (zip CRCs)."""
    if cache_dir is None or not Path(cache_dir).is_dir():
        if cache_dir is not None and Path(cache_dir).exists():
            raise SuiteError(f"--cache {cache_dir} is a file where a folder is meant.")
        return
    for p in sorted(Path(cache_dir).glob(reference_cache_prefix(info) + "*.pt")):
        try:
            with zipfile.ZipFile(p) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            bad = "archive"
        if bad is not None:
            raise SuiteError(
                f"cached reference statistics {p} are truncated or corrupt; delete the file "
                f"(it is recomputed on the next score)."
            )
