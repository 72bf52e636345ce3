"""Each dataset loader on a small fixture written in its real on-disk format, and its errors."""

import pickle

import numpy as np
import pytest
from PIL import Image

from ebmbench.data import load_prepared, prepare
from ebmbench.sources import DatasetError
from ebmbench.torch_compat import import_torchvision

tv = import_torchvision()


@pytest.fixture
def trust_checksums(monkeypatch):
    """Fixtures cannot match the real files' MD5s; everything after the checksum is the real code path."""
    import importlib

    for module in ("cifar", "svhn", "celeba"):
        monkeypatch.setattr(
            importlib.import_module(f"torchvision.datasets.{module}"), "check_integrity", lambda *a, **k: True
        )


def write_cifar10(root, n=20):
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.RandomState(0)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.randint(0, 256, (n, 3072), dtype=np.uint8)  # CIFAR rows: R plane, G plane, B plane
        images[name] = data
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": list(rng.randint(0, 10, n)), "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return images


def test_digits_is_real_and_split_fixed(tmp_path):
    info = prepare("digits", {"kind": "digits"}, tmp_path, tmp_path / "p")
    assert (info["n_train"], info["n_test"], info["image_shape"]) == (1497, 300, [32, 32, 3])
    train = load_prepared(tmp_path / "p", "train")
    assert train.dtype == np.uint8 and train.max() == 255 and train.min() == 0
    assert np.array_equal(train[..., 0], train[..., 2])  # grey replicated to RGB
    again = prepare("digits", {"kind": "digits"}, tmp_path, tmp_path / "q")
    assert again["sha256"] == info["sha256"]


def test_cifar10_reads_the_python_batches(tmp_path, trust_checksums):
    images = write_cifar10(tmp_path)
    info = prepare("cifar10", {"kind": "cifar10"}, tmp_path, tmp_path / "p")
    assert (info["n_train"], info["n_test"]) == (100, 20)
    train = load_prepared(tmp_path / "p", "train")
    first = images["data_batch_1"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(train[0], first)


def test_cifar10_missing_names_folder_and_remedy(tmp_path):
    with pytest.raises(DatasetError) as e:
        prepare("cifar10", {"kind": "cifar10"}, tmp_path / "nowhere", tmp_path / "p")
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "cifar10") in msg and "data_batch_1" in msg and "Download" in msg
    assert not (tmp_path / "p").exists()


def test_cifar10_truncated_batch_is_a_clear_error(tmp_path, trust_checksums):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="could not be read"):
        prepare("cifar10", {"kind": "cifar10"}, tmp_path, tmp_path / "p")


def test_cifar10_real_checksum_rejects_a_fixture(tmp_path):
    """Without the test's bypass, torchvision's MD5 check catches files that are not the real ones."""
    write_cifar10(tmp_path)
    with pytest.raises(DatasetError, match="corrupt"):
        prepare("cifar10", {"kind": "cifar10"}, tmp_path, tmp_path / "p")


def test_svhn_reads_the_mat_files(tmp_path, trust_checksums):
    from scipy.io import savemat

    folder = tmp_path / "svhn"
    folder.mkdir()
    rng = np.random.RandomState(0)
    x = {}
    for split, n in (("train", 12), ("test", 5)):
        x[split] = rng.randint(0, 256, (32, 32, 3, n), dtype=np.uint8)  # SVHN format 2 is HWCN
        savemat(folder / f"{split}_32x32.mat", {"X": x[split], "y": rng.randint(1, 11, (n, 1))})
    info = prepare("svhn", {"kind": "svhn"}, tmp_path, tmp_path / "p")
    assert (info["n_train"], info["n_test"]) == (12, 5)
    assert np.array_equal(load_prepared(tmp_path / "p", "test")[4], x["test"][..., 4])


def test_svhn_missing(tmp_path):
    with pytest.raises(DatasetError, match="train_32x32.mat"):
        prepare("svhn", {"kind": "svhn"}, tmp_path, tmp_path / "p")


def write_celeba(root, n=6):
    folder = root / "celeba" / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    rng = np.random.RandomState(0)
    for name in names:
        Image.fromarray(rng.randint(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / name)
    split = [0, 0, 0, 1, 2, 2][:n]  # torchvision cannot index a split of one image
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {s}\n" for f, s in zip(names, split, strict=True)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {i}\n" for i, f in enumerate(names)))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{f} 1 2 3 4\n" for f in names)
    )
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n"
        + " ".join(f"p{i}" for i in range(10))
        + "\n"
        + "".join(f"{f} " + " ".join(["50"] * 10) + "\n" for f in names)
    )
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n"
        + " ".join(f"a{i}" for i in range(40))
        + "\n"
        + "".join(f"{f} " + " ".join(["-1"] * 40) + "\n" for f in names)
    )
    return folder


def test_celeba64_crops_resizes_and_splits(tmp_path, trust_checksums):
    write_celeba(tmp_path)
    info = prepare(
        "celeba64", {"kind": "celeba64", "crop": [15, 40, 163, 188], "image_size": 64}, tmp_path, tmp_path / "p"
    )
    assert (info["n_train"], info["n_test"], info["image_shape"]) == (3, 2, [64, 64, 3])
    assert "(15, 40, 163, 188)" in info["preprocessing"]


def test_celeba64_corrupt_image(tmp_path, trust_checksums):
    folder = write_celeba(tmp_path)
    (folder / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="000002.jpg"):
        prepare("celeba64", {"kind": "celeba64"}, tmp_path, tmp_path / "p")


def test_celeba64_missing_says_manual_download(tmp_path):
    with pytest.raises(DatasetError, match="img_align_celeba") as e:
        prepare("celeba64", {"kind": "celeba64"}, tmp_path, tmp_path / "p")
    assert "by hand" in str(e.value)


def test_own_image_folder(tmp_path):
    rng = np.random.RandomState(0)
    for i in range(20):
        Image.fromarray(rng.randint(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    info = prepare(
        "mine",
        {"kind": "folder", "path": str(tmp_path), "image_size": 16, "test_fraction": 0.25},
        "unused",
        tmp_path / "p",
    )
    assert (info["n_train"], info["n_test"], info["image_shape"]) == (15, 5, [16, 16, 3])


def test_prepared_split_with_wrong_shape_is_rejected(tmp_path):
    prepare("digits", {"kind": "digits"}, tmp_path, tmp_path / "p")
    np.save(tmp_path / "p" / "test.npy", np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(DatasetError, match="rerun prepare"):
        load_prepared(tmp_path / "p", "test")
