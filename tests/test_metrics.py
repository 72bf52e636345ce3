"""Metrics against known answers: FID of a set with itself, a shifted set, MSE, the cache key."""
import numpy as np
import pytest
import torch

from ebmbench.data import load_prepared
from ebmbench.io import SuiteError, save_npz
from ebmbench.metrics import reconstruction_mse, score


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


def test_inception_weights_that_are_not_a_state_dict_are_refused(digits_dir, tmp_path):
    from ebmbench.metrics import logits_missing

    (tmp_path / "w.pth").write_bytes(b"not a torch file")
    with pytest.raises(SuiteError, match="unreadable.*inception_weights"):
        logits_missing("inception", tmp_path / "w.pth")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(SuiteError, match="not a state_dict of torch-fidelity's inception-v3-compat"):
        logits_missing("inception", tmp_path / "other.pth")
