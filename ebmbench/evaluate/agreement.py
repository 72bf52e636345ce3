"""Agreement check: do independently trained digits extractors rank the runs the same way?

FID on a learned extractor's features is only a measurement of sample quality if the verdict
does not hinge on that one network. Besides the default extractor (`--weights`), this trains two
more on the same train split: the same architecture from another seed, and another architecture
(`lenet`). Each scores every sample file against the train split; Spearman's rho between the FID
rankings of each pair says whether they order the runs alike (1 = same order).
"""

import itertools
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from ..data import load_prepared
from ..io import SuiteError, load_images_npz
from .digits_classifier import load_digits_classifier, train_digits_classifier
from .extractors import features
from .scoring import fid_of_features, run_labels

# The independent instruments: (architecture, seed); the default is whatever --weights holds.
ALTERNATIVES = {"conv-seed1": ("conv", 1), "lenet-seed0": ("lenet", 0)}


def run_label(samples_path: Path) -> str:
    return run_labels(samples_path).get("method") or samples_path.parent.name


def _alternative(work: Path, data_dir, name: str, epochs: int) -> Path:
    arch, seed = ALTERNATIVES[name]
    path = work / f"digits_classifier-{name}.pt"
    if path.exists():
        load_digits_classifier(path)  # refuses a stale file from an older format
    else:
        train_digits_classifier(data_dir, path, epochs=epochs, seed=seed, arch=arch)
    return path


def agreement(sample_files, data_dir, weights, work_dir=None, epochs: int = 12, device: str = "cpu") -> dict:
    files = [Path(f) for f in sample_files]
    labels = [run_label(f) for f in files]
    if len(files) < 3:
        raise SuiteError(
            f"agreement needs at least 3 sample files to rank (got {len(files)}); pass every run's "
            f"samples.npz and the uniform-noise reference."
        )
    if len(set(labels)) < len(labels):
        raise SuiteError(f"two sample files share a run name ({', '.join(labels)}); pass one seed per method.")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        extractors = {"default": Path(weights)}
        extractors.update({name: _alternative(work, data_dir, name, epochs) for name in ALTERNATIVES})
        reference = np.array(load_prepared(data_dir, "train"))
        images = [load_images_npz(f) for f in files]
        fid = {}
        for name, w in extractors.items():
            ref = features(reference, "digits", w, device)
            fid[name] = {
                lab: fid_of_features(features(im, "digits", w, device), ref)
                for lab, im in zip(labels, images, strict=True)
            }
    ranking = {name: sorted(labels, key=per.get) for name, per in fid.items()}
    rho = {
        f"{a} vs {b}": float(spearmanr([fid[a][x] for x in labels], [fid[b][x] for x in labels])[0])
        for a, b in itertools.combinations(fid, 2)
    }
    return {
        "runs": labels,
        "fid": fid,
        "ranking": ranking,
        "spearman_rho": rho,
        "extractors": {k: str(v) for k, v in extractors.items()},
    }


def report(result: dict) -> str:
    names = list(result["fid"])
    lines = [f"{'run':<18}" + "".join(f"{n:>14}" for n in names)]
    for lab in result["ranking"]["default"]:
        lines.append(f"{lab:<18}" + "".join(f"{result['fid'][n][lab]:>14.4f}" for n in names))
    lines.append("")
    for n in names:
        lines.append(f"ranking ({n}): " + " < ".join(result["ranking"][n]))
    for pair, r in result["spearman_rho"].items():
        lines.append(f"Spearman rho {pair}: {r:.3f}")
    return "\n".join(lines)
