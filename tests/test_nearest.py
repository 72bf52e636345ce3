"""Not copies: the memorised share against known answers (copies of training images are all
memorised, fresh draws about 1 %, an image's own self never counts), and through `score`: the
train split scored as samples is memorised, the held-out split is not, the figure is drawn and
the other metrics are those of a score without it."""

import numpy as np
import pytest
from PIL import Image

from ebmbench.data import load_prepared
from ebmbench.evaluate.nearest import memorisation
from ebmbench.evaluate.scoring import score
from ebmbench.io import save_npz, write_json


def test_copies_are_memorised_and_fresh_draws_are_not():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2000, 16))
    copies = memorisation(ref[::4], ref)
    assert copies["memorised"] == 1.0 and np.all(copies["dist"] == 0) and np.all(copies["idx"] == np.arange(0, 2000, 4))
    fresh = memorisation(rng.normal(size=(4000, 16)), ref)
    # a fresh draw is as far from the train split as a training image from the others: ~1 % by definition
    assert 0.002 < fresh["memorised"] < 0.03
    # each training image's own zero distance is left out: the threshold is a distance between two images
    assert copies["threshold"] > 0.1 * np.median(fresh["dist"])
    near = memorisation(ref[:100] + 1e-3, ref)  # nudged copies still sit far inside the threshold
    assert near["memorised"] == 1.0


def test_exact_duplicates_in_the_train_split_leave_copies_memorised():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 8))
    ref = np.concatenate([base, base[:30]])  # 10 % duplicated: the train-to-train 1 % quantile is 0
    m = memorisation(base[:50], ref)
    assert m["threshold"] == 0.0 and m["memorised"] == 1.0


@pytest.mark.parametrize("split, expected", [("train", (1.0, 1.0)), ("test", (0.0, 0.05))])
def test_score_writes_memorised_and_the_nearest_figure(digits_dir, digits_classifier, tmp_path, split, expected):
    images = np.array(load_prepared(digits_dir, split))[:400]
    save_npz(tmp_path / "run" / "samples.npz", images=images)
    write_json(tmp_path / "run" / "samples.json", {"method": "vae", "dataset": "digits", "seed": 0, "status": "ok"})
    figure = tmp_path / "run" / "nearest.png"
    m = score(tmp_path / "run" / "samples.npz", digits_dir, "digits", digits_classifier, nearest_path=figure)
    assert expected[0] <= m["memorised"] <= expected[1] and m["memorised_threshold"] > 0
    assert f"share of {len(images)} samples" in m["memorised_protocol"]
    width, height = Image.open(figure).size
    assert 800 <= width <= 1600 and height <= 1000  # readable at 100 % on a laptop screen
    if split == "train":  # computed after the other metrics, from their features: those stay as they were
        plain = score(tmp_path / "run" / "samples.npz", digits_dir, "digits", digits_classifier)
        assert all(plain[k] == m[k] for k in ("fid", "kid", "is", "precision", "recall"))


def test_a_diverged_run_gets_a_figure_saying_so(digits_dir, digits_classifier, tmp_path):
    save_npz(tmp_path / "run" / "samples.npz", images=np.zeros((0, 32, 32, 1), np.uint8))
    write_json(tmp_path / "run" / "samples.json", {"method": "vae", "dataset": "digits", "status": "diverged"})
    m = score(
        tmp_path / "run" / "samples.npz", digits_dir, "digits", digits_classifier, nearest_path=tmp_path / "n.png"
    )
    assert m["status"] == "diverged" and "memorised" not in m and (tmp_path / "n.png").stat().st_size > 0
