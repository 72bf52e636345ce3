"""Metrics against known answers: FID of a set with itself, a shifted set, MSE, the cache key."""

import numpy as np
import pytest
import torch

from ebmbench.data import load_prepared
from ebmbench.evaluate.scoring import reconstruction_mse, score
from ebmbench.io import SuiteError, save_npz

from .test_extractors import digit_folder, inception  # noqa: F401 (fixtures: a folder dataset, offline Inception)


def test_digits_classifier_is_accurate(digits_classifier):
    from ebmbench.io import load_torch

    assert load_torch(digits_classifier)["test_accuracy"] > 0.9


def test_fid_of_a_set_with_itself_is_zero_and_a_shifted_set_is_not(digits_dir, digits_classifier, tmp_path):
    train = np.array(load_prepared(digits_dir, "train"))
    save_npz(tmp_path / "same" / "samples.npz", images=train)
    same = score(tmp_path / "same" / "samples.npz", digits_dir, "digits", digits_classifier)
    assert abs(same["fid"]) < 1e-3
    save_npz(tmp_path / "test" / "samples.npz", images=np.array(load_prepared(digits_dir, "test")))
    held_out = score(tmp_path / "test" / "samples.npz", digits_dir, "digits", digits_classifier)
    shifted = np.roll(train, 6, axis=2)  # digits moved 6 px to the right
    save_npz(tmp_path / "shift" / "samples.npz", images=shifted)
    moved = score(tmp_path / "shift" / "samples.npz", digits_dir, "digits", digits_classifier)
    # other real digits differ from the train split by sampling alone; a 6 px shift by far more
    assert 0 < held_out["fid"] and moved["fid"] > 5 * held_out["fid"]
    # KID is unbiased, so a set against itself scatters around 0; the shift must stand far above that
    assert abs(same["kid"]) < 0.05 * moved["kid"]
    noise = np.random.RandomState(0).randint(0, 256, train.shape, dtype=np.uint8)
    save_npz(tmp_path / "noise" / "samples.npz", images=noise)
    assert score(tmp_path / "noise" / "samples.npz", digits_dir, "digits", digits_classifier)["fid"] > moved["fid"]
    assert same["n_reference"] == len(train) and same["is"] > 5  # real digits spread over the 10 classes


def test_reference_statistics_are_cached_under_a_content_hash(digits_dir, digits_classifier, tmp_path):
    from ebmbench.data import dataset_info

    test = np.array(load_prepared(digits_dir, "test"))
    save_npz(tmp_path / "s" / "samples.npz", images=test)
    score(tmp_path / "s" / "samples.npz", digits_dir, "digits", digits_classifier, cache_dir=tmp_path / "cache")
    names = [p.name for p in (tmp_path / "cache").iterdir()]
    assert any(dataset_info(digits_dir)["sha256"][:16] in n for n in names), names


def test_reconstruction_mse_known_answer(tmp_path):
    a = np.zeros((4, 8, 8, 3), np.uint8)
    b = np.full((4, 8, 8, 3), 255, np.uint8)
    b[:2] = 0  # half the images perfect, half maximally wrong -> mean MSE 0.5 on the [0, 1] scale
    save_npz(tmp_path / "r.npz", original=a, reconstruction=b)
    assert reconstruction_mse(tmp_path / "r.npz")["mse"] == pytest.approx(0.5)


def test_samples_with_wrong_dtype_or_shape_are_rejected(digits_dir, digits_classifier, tmp_path):
    save_npz(tmp_path / "f.npz", images=np.zeros((10, 32, 32, 3), np.float32))
    with pytest.raises(SuiteError, match="uint8"):
        score(tmp_path / "f.npz", digits_dir, "digits", digits_classifier)
    save_npz(tmp_path / "s.npz", images=np.zeros((10, 16, 16, 3), np.uint8))
    with pytest.raises(SuiteError, match="image shape"):
        score(tmp_path / "s.npz", digits_dir, "digits", digits_classifier)


def test_a_digits_classifier_of_the_old_format_is_refused(digits_dir, tmp_path):
    """Its features were unnormalised: scoring with it would silently change every number."""
    from ebmbench.io import save_torch

    save_torch(tmp_path / "old.pt", {"state_dict": {}, "test_accuracy": 1.0})
    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(digits_dir, "test")))
    with pytest.raises(SuiteError, match="older ebmbench.*retrain"):
        score(tmp_path / "s" / "samples.npz", digits_dir, "digits", tmp_path / "old.pt")


def test_the_weights_check_refuses_with_the_loaders_one_message(digits_dir, tmp_path, capsys):
    """`score` checks --weights with the loader the scoring uses: a checkpoint without 'arch' (which
    the check once accepted and the scoring then refused) stops before any work, with that message."""
    from ebmbench.cli import main
    from ebmbench.evaluate.digits_classifier import DigitsClassifier, load_digits_classifier
    from ebmbench.io import save_torch

    old = tmp_path / "old.pt"
    save_torch(old, {"state_dict": DigitsClassifier().state_dict(), "test_accuracy": 1.0})
    with pytest.raises(SuiteError) as loader:
        load_digits_classifier(old)
    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(digits_dir, "test"))[:20])
    args = ["score", "--samples", str(tmp_path / "s" / "samples.npz"), "--data", str(digits_dir)]
    args += ["--extractor", "digits", "--weights", str(old), "--out", str(tmp_path / "m.json")]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"ebmbench score: error: {loader.value}"
    assert "older ebmbench" in str(loader.value) and "retrain it with `ebmbench classifier`" in str(loader.value)
    assert not (tmp_path / "m.json").exists()


def test_score_writes_the_features_exactly_where_told_and_the_table_finds_them(
    digits_dir, digits_classifier, tmp_path, monkeypatch
):
    """--features names the one extra file; metrics.json records it relative to its own folder, and the
    table resolves it there whatever the working directory (the bootstrap then bounds a single seed)."""
    import json

    from ebmbench.cli import main
    from ebmbench.evaluate.table import build_table
    from ebmbench.io import write_json

    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(digits_dir, "test"))[:50])
    write_json(tmp_path / "s" / "samples.json", {"method": "short_run", "dataset": "digits", "seed": 0, "status": "ok"})
    args = ["score", "--samples", str(tmp_path / "s" / "samples.npz"), "--data", str(digits_dir)]
    args += ["--extractor", "digits", "--weights", str(digits_classifier)]
    assert main(args + ["--out", str(tmp_path / "plain" / "metrics.json")]) == 0
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["metrics.json", "samples.json", "samples.npz"]
    assert "features" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())

    kept = tmp_path / "run" / "kept" / "f.npz"
    assert main(args + ["--features", str(kept), "--out", str(tmp_path / "run" / "metrics.json")]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert kept.is_file() and m["features"] == "kept/f.npz"
    assert sorted(p.name for p in tmp_path.rglob("*.npz")) == ["f.npz", "samples.npz"]  # nothing beside the samples

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    rows = {r.metric: r for r in build_table(["../run/metrics.json"]).itertuples()}
    assert rows["fid"].estimator.startswith("raw@50") and np.isfinite(rows["fid"].half_width)  # from the features
    assert "bootstrap over 50 samples" in rows["fid"].interval
    plain = {r.metric: r for r in build_table(["../plain/metrics.json"]).itertuples()}
    assert plain["fid"].estimator == "raw" and plain["fid"].half_width == np.inf  # no features: no bootstrap
    assert rows["fid"].measured == plain["fid"].measured


def test_inception_weights_that_are_not_a_state_dict_are_refused(digits_dir, tmp_path):
    from ebmbench.evaluate.extractors import logits_missing

    (tmp_path / "w.pth").write_bytes(b"not a torch file")
    with pytest.raises(SuiteError, match="unreadable.*inception_weights"):
        logits_missing("inception", tmp_path / "w.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(SuiteError, match="not a state_dict of torch-fidelity's inception-v3-compat"):
        logits_missing("inception", tmp_path / "other.pth")


# ---------------------------------------------------------------------------- precision and recall


def _knn_precision_recall(gen: np.ndarray, ref: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019, eq. 1-2, written here from the paper: a point lies on a manifold when it
    falls inside the ball around one of its points whose radius is the distance to that point's k-th
    nearest neighbour (itself excluded)."""

    def dist(a, b):
        return np.sqrt(np.clip((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0, None))

    def radii(x):
        return np.sort(dist(x, x), axis=1)[:, k]  # column 0 is the point itself

    precision = (dist(gen, ref) <= radii(ref)[None]).any(1).mean()
    recall = (dist(ref, gen) <= radii(gen)[None]).any(1).mean()
    return float(precision), float(recall)


def _digit_labels(split: str):
    from sklearn.datasets import load_digits

    from ebmbench.sources import digits_split

    return load_digits().target[digits_split(1797)[0 if split == "train" else 1]]


def test_precision_recall_known_answers(digits_dir, digits_classifier, tmp_path):
    """The reference itself: precision = recall = 1 (every point at distance 0 from itself). One class of
    real digits: all precise (each is a reference image), ~1/10 of the reference recalled (mode dropping).
    Uniform noise, a cluster far from every digit: neither precise nor recalled."""
    train = np.array(load_prepared(digits_dir, "train"))
    cases = {
        "same": train,
        "zeros_only": train[_digit_labels("train") == 0],
        "noise": np.random.RandomState(0).randint(0, 256, (500, *train.shape[1:]), dtype=np.uint8),
    }
    got = {}
    for name, images in cases.items():
        save_npz(tmp_path / name / "samples.npz", images=images)
        got[name] = score(
            tmp_path / name / "samples.npz", digits_dir, "digits", digits_classifier, cache_dir=tmp_path / "cache"
        )  # the reference features extracted once
        print(name, {k: got[name][k] for k in ("precision", "recall", "fid")})
    assert got["same"]["precision"] == 1.0 and got["same"]["recall"] == 1.0
    assert got["zeros_only"]["precision"] == 1.0 and 0.05 < got["zeros_only"]["recall"] < 0.2
    assert got["noise"]["precision"] < 0.01 and got["noise"]["recall"] < 0.01
    assert "k=3 nearest neighbours" in got["same"]["prc_protocol"] and "'features'" in got["same"]["prc_protocol"]


def test_precision_recall_equal_the_paper_definition_on_the_kept_features(digits_dir, digits_classifier, tmp_path):
    """On held-out digits (neither 0 nor 1), the suite's numbers equal the k-NN definition computed here from
    the digits embedding; adding them leaves FID, KID and IS unchanged."""
    from ebmbench.evaluate.extractors import features

    test = np.array(load_prepared(digits_dir, "test"))
    save_npz(tmp_path / "s" / "samples.npz", images=test)
    with_prc = score(tmp_path / "s" / "samples.npz", digits_dir, "digits", digits_classifier)
    without = score(tmp_path / "s" / "samples.npz", digits_dir, "digits", digits_classifier, precision_recall=False)
    assert "precision" not in without and "recall" not in without
    for k in ("fid", "kid", "kid_std", "is", "is_std"):
        assert with_prc[k] == without[k], k
    gen = features(test, "digits", digits_classifier).numpy()
    ref = features(np.array(load_prepared(digits_dir, "train")), "digits", digits_classifier).numpy()
    p, r = _knn_precision_recall(gen, ref)
    print(f"suite precision {with_prc['precision']:.4f} recall {with_prc['recall']:.4f}; here {p:.4f} {r:.4f}")
    assert with_prc["precision"] == pytest.approx(p, abs=1e-6) and with_prc["recall"] == pytest.approx(
        r, abs=1e-6
    )  # float32 means
    assert 0.5 < p < 1 and 0.5 < r < 1  # real digits: mostly, not perfectly, on each other's manifold
    # and they equal torch-fidelity's own prc=True, here on its full-matrix path (what a GPU run would take)
    import torch_fidelity

    from ebmbench.evaluate.extractors import ImagesDataset, extractor_spec

    kw, _ = extractor_spec("digits", digits_classifier)
    train = np.array(load_prepared(digits_dir, "train"))
    theirs = torch_fidelity.calculate_metrics(
        input1=ImagesDataset(test),
        input2=ImagesDataset(train),
        prc=True,
        cuda=False,
        save_cpu_ram=False,
        verbose=False,
        batch_size=100,
        **kw,
    )
    assert (with_prc["precision"], with_prc["recall"]) == (theirs["precision"], theirs["recall"])


def test_precision_recall_on_too_few_images_are_absent_with_the_reason(digits_dir, digits_classifier, tmp_path):
    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(digits_dir, "test"))[:3])
    m = score(tmp_path / "s" / "samples.npz", digits_dir, "digits", digits_classifier)
    assert m["fid"] is not None
    assert m["precision"] is None and m["recall"] is None and "fewer than 4" in m["precision_unavailable"]


def test_score_cli_precision_recall_flag(digits_dir, digits_classifier, tmp_path):
    import json

    from ebmbench.cli import main

    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(digits_dir, "test"))[:50])
    args = [
        "score",
        "--samples",
        str(tmp_path / "s" / "samples.npz"),
        "--data",
        str(digits_dir),
        "--extractor",
        "digits",
        "--weights",
        str(digits_classifier),
    ]
    assert main(args + ["--out", str(tmp_path / "on.json")]) == 0
    assert main(args + ["--no-precision-recall", "--out", str(tmp_path / "off.json")]) == 0
    on, off = (json.loads((tmp_path / f).read_text()) for f in ("on.json", "off.json"))
    assert 0 <= on["precision"] <= 1 and 0 <= on["recall"] <= 1 and "prc_protocol" in on
    assert not {"precision", "recall", "prc_protocol"} & off.keys()
    assert on["fid"] == off["fid"]


def _metrics_file(path, seed, **values):
    from ebmbench.io import write_json

    write_json(
        path,
        {
            "method": "short_run",
            "dataset": "digits",
            "seed": seed,
            "status": "ok",
            "n_generated": 100,
            "n_reference": 1497,
            "extractor": "digitsclf-test",
            **values,
        },
    )
    return str(path)


def test_table_has_precision_and_recall_rows_and_the_gate_ignores_them(tmp_path):
    import pandas as pd

    from ebmbench.evaluate.gate import check
    from ebmbench.evaluate.table import build_table

    files = [
        _metrics_file(tmp_path / f"m{s}.json", s, fid=10.0 + s, kid=0.1, precision=0.6 + 0.1 * s, recall=0.3)
        for s in (0, 1)
    ]
    df = build_table(files, out=tmp_path / "table.csv")
    rows = {r.metric: r for r in df.itertuples()}
    assert rows["precision"].measured == pytest.approx(0.65) and rows["precision"].std == pytest.approx(
        0.0707, abs=1e-4
    )
    assert rows["recall"].measured == pytest.approx(0.3) and rows["recall"].n_seeds == 2
    assert rows["precision"].status == "done" and rows["precision"].extractor == "digitsclf-test"
    assert list(df.metric) == ["fid", "kid", "precision", "recall"]
    expected = tmp_path / "expected.csv"
    pd.DataFrame(
        [
            {
                "method": "short_run",
                "dataset": "digits",
                "metric": "fid",
                "expected": 10.5,
                "tolerance": 0.1,
                "reason": "test",
            }
        ]
    ).to_csv(expected, index=False)
    assert check(tmp_path / "table.csv", expected) == []


def test_a_seed_scored_without_precision_makes_the_row_unavailable(tmp_path):
    """A mean over the seeds that have it would pass for the whole group's."""
    from ebmbench.evaluate.table import build_table

    files = [
        _metrics_file(tmp_path / "m0.json", 0, fid=10.0, precision=0.6, recall=0.3),
        _metrics_file(tmp_path / "m1.json", 1, fid=11.0),
    ]
    rows = {r.metric: r for r in build_table(files).itertuples()}
    assert rows["fid"].measured == pytest.approx(10.5)
    assert rows["precision"].status == "unavailable (seed 1: not computed)" and np.isnan(rows["precision"].measured)


def test_inception_precision_recall_equal_the_paper_definition_on_torchscript_features(
    inception, digit_folder, tmp_path
):
    """The Inception path (pool3 features of torch-fidelity's inception-v3-compat, run offline): the suite's
    numbers equal the k-NN definition computed here from the TorchScript model's own features."""
    from ebmbench.evaluate.disturbances import DISTURBANCES

    from . import _inception

    ts, weights = inception
    reference = np.array(load_prepared(digit_folder, "train"))
    generated = DISTURBANCES["gaussian_blur"](np.array(load_prepared(digit_folder, "test")), 1.0)
    save_npz(tmp_path / "run" / "samples.npz", images=generated)
    m = score(tmp_path / "run" / "samples.npz", digit_folder, "inception", weights)
    p, r = _knn_precision_recall(
        _inception.torchscript_features(ts, generated), _inception.torchscript_features(ts, reference)
    )
    print(f"suite precision {m['precision']:.4f} recall {m['recall']:.4f}; from TorchScript features {p:.4f} {r:.4f}")
    # features agree to ~1e-5 relative (test_extractors): a point exactly on a ball's edge could flip, one at most
    assert abs(m["precision"] - p) <= 1 / len(generated) + 1e-6 and abs(m["recall"] - r) <= 1 / len(reference) + 1e-6
    assert "'2048' of inception-" in m["prc_protocol"]


def test_comparison_headline_shows_precision_and_recall_beside_fid():
    from ebmbench.evaluate.comparison import headline

    m = {"fid": 12.345, "is": 3.2, "mse": 0.00412, "precision": 0.614, "recall": 0.387, "n_generated": 1000}
    assert headline(m) == "FID 12.35 | IS 3.2 | MSE 0.00412\nprecision 0.61 | recall 0.39\n1000 samples"
    no_prc = {k: v for k, v in m.items() if k not in ("precision", "recall")}
    assert headline(no_prc) == "FID 12.35 | IS 3.2 | MSE 0.00412\n1000 samples"
    assert headline({"status": "diverged"}) == "diverged"


def test_comparison_page_is_a_grid_three_panels_wide(tmp_path):
    from PIL import Image

    from ebmbench.evaluate.comparison import comparison_page
    from ebmbench.io import write_json

    runs = []
    for i in range(9):
        run = tmp_path / f"m{i}" / "seed0"
        save_npz(run / "samples.npz", images=np.full((36, 32, 32, 1), 20 * i, np.uint8))
        write_json(run / "metrics.json", {"method": f"m{i}", "seed": 0, "fid": 1.0, "n_generated": 36})
        runs.append(run)
    # 100 dpi, 4.6 x 5.4 in a panel: three to a row, a laptop screen's width (<= 1600 px) in all
    assert Image.open(comparison_page(runs, tmp_path / "nine.png")).size == (1380, 1620)
    assert Image.open(comparison_page(runs[:2], tmp_path / "two.png")).size == (920, 540)
