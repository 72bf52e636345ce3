"""Hand-written pieces replaced by library calls give the same output as before.

- image grids: torchvision's make_grid writes PNGs byte-identical to the hand-written mosaic;
- sha256_file: hashlib.file_digest equals sha256 of the whole content;
- the method registry: pkgutil.resolve_name finds the same class as import_module + getattr;
- the dataset hash: a memoryview of the arrays hashes like their tobytes() copy.
"""

import hashlib
import importlib

import numpy as np
import pytest
import torch
from PIL import Image

from ebmbench.io import SuiteError, sha256_bytes, sha256_file, to_uint8
from ebmbench.plots import grid_array, image_grid

# ---------------------------------------------------------------------------- image grids


def old_grid_array(images: np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """The hand-written mosaic that make_grid replaced (ebmbench/plots.py before the swap), kept as the reference."""
    n, h, w, c = images.shape
    rows = -(-n // nrow)
    out = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, nrow)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = im
    return out


def old_image_grid(images, path, nrow: int = 8) -> None:
    if isinstance(images, torch.Tensor):
        images = to_uint8(images)
    array = old_grid_array(images, nrow)
    Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(path, format="PNG")


# (n, h, w, channels, nrow): the sample grid; n not a multiple of nrow; fewer images than nrow;
# a single image (make_grid returns one bare); a 1x1 grid; one column; odd sizes; grey and RGB
SHAPES = [
    (64, 32, 32, 3, 8),
    (13, 32, 32, 3, 8),
    (5, 7, 9, 1, 8),
    (1, 5, 3, 3, 4),
    (1, 6, 6, 1, 1),
    (9, 9, 7, 3, 1),
    (10, 11, 13, 1, 3),
    (30, 64, 64, 3, 16),
    (0, 4, 4, 3, 2),
]


@pytest.mark.parametrize("n,h,w,c,nrow", SHAPES)
def test_grid_png_is_byte_identical_to_the_hand_written_mosaic(tmp_path, n, h, w, c, nrow):
    images = np.random.RandomState(n * 7 + h).randint(0, 256, (n, h, w, c), dtype=np.uint8)
    np.testing.assert_array_equal(grid_array(images, nrow), old_grid_array(images, nrow))
    if n == 0:
        return  # an empty grid is a strip of white; PNG writers need no case for it
    image_grid(images, tmp_path / "new.png", nrow=nrow)
    old_image_grid(images, tmp_path / "old.png", nrow=nrow)
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()
    assert Image.open(tmp_path / "new.png").mode == ("L" if c == 1 else "RGB")


@pytest.mark.parametrize("c", [1, 3])
def test_grid_of_a_float_tensor_is_byte_identical(tmp_path, c):
    """The samples path: [-1, 1] NCHW floats (slightly out of range, as Langevin leaves them)."""
    x = torch.Generator().manual_seed(c)
    images = torch.rand(21, c, 32, 32, generator=x) * 2.4 - 1.2
    image_grid(images, tmp_path / "new.png", nrow=8)
    old_image_grid(images, tmp_path / "old.png", nrow=8)
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()


def test_grid_of_read_only_memory_mapped_images(tmp_path):
    """Prepared data is memory-mapped read-only; the grid must not write into it or warn."""
    path = tmp_path / "a.npy"
    np.save(path, np.random.RandomState(0).randint(0, 256, (12, 8, 8, 3), dtype=np.uint8))
    images = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(grid_array(images, 5), old_grid_array(np.array(images), 5))


# ---------------------------------------------------------------------------- sha256_file


@pytest.mark.parametrize("size", [0, 1, 1000, 1 << 20, (3 << 20) + 17])
def test_sha256_file_equals_sha256_of_the_content(tmp_path, size):
    data = np.random.RandomState(size % 1000).randint(0, 256, size, dtype=np.uint8).tobytes()
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_sha256_file_of_an_empty_file(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# ---------------------------------------------------------------------------- registry


def test_every_registered_method_resolves_to_the_same_class():
    from ebmbench.methods import METHODS

    from ebmbench.registry import get_method, method_ids

    assert set(METHODS) <= set(method_ids()) and len(METHODS) == 8  # plus any installed plug-ins
    for name, target in METHODS.items():
        module, cls = target.split(":")
        assert get_method(name) is getattr(importlib.import_module(module), cls), name


def test_an_unknown_method_is_a_suite_error_naming_the_known_ones():
    from ebmbench.registry import get_method

    with pytest.raises(SuiteError, match="unknown method 'nope'; known methods: abp, coop_vae_ebm, coopnets"):
        get_method("nope")


# ---------------------------------------------------------------------------- dataset hash


def test_dataset_hash_equals_the_tobytes_digest(digits_dir):
    from ebmbench.data import dataset_info, load_prepared

    info = dataset_info(digits_dir)
    train, test = (np.array(load_prepared(digits_dir, s)) for s in ("train", "test"))
    assert info["sha256"] == sha256_bytes(train.tobytes(), test.tobytes(), info["preprocessing"].encode())


def test_dataset_hash_of_non_contiguous_arrays_equals_the_tobytes_digest(tmp_path, monkeypatch):
    """A loader returning a strided view (e.g. a transpose) is made C-ordered once, then hashed in place."""
    import ebmbench.data as data

    rng = np.random.RandomState(0)
    train = rng.randint(0, 256, (3, 20, 32, 32), dtype=np.uint8).transpose(1, 2, 3, 0)  # NCHW data as NHWC
    test = rng.randint(0, 256, (10, 32, 32, 3), dtype=np.uint8)[::2]
    assert not train.flags.c_contiguous and not test.flags.c_contiguous
    monkeypatch.setattr(data, "load_digits", lambda spec: (train, test, "made"))
    info = data.prepare("made", {"kind": "digits"}, tmp_path, tmp_path / "out")
    assert info["sha256"] == sha256_bytes(train.tobytes(), test.tobytes(), b"made")
    np.testing.assert_array_equal(data.load_prepared(tmp_path / "out", "train"), train)
    np.testing.assert_array_equal(data.load_prepared(tmp_path / "out", "test"), test)
