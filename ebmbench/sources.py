"""Raw dataset sources -> (train, test, preprocessing description) as uint8 NHWC RGB arrays.

digits   scikit-learn's 1,797 real 8x8 handwritten digits (shipped with the package, offline),
         upsampled to 32x32 RGB; a fixed 1,497 / 300 train/test split.
cifar10  torchvision CIFAR10 under <data_root>/cifar10 (train 50,000 / test 10,000).
svhn     torchvision SVHN under <data_root>/svhn (train 73,257 / test 26,032).
celeba64 torchvision CelebA under <data_root>/celeba: crop box, then resize to 64x64; splits as
         list_eval_partition.txt (train 162,770 / test 19,962).
folder   a user's own folder of images: centre crop to square, resize, fixed test fraction.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from .io import SuiteError
from .torch_compat import import_torchvision

BUILTIN = ("digits", "cifar10", "svhn", "celeba64")


class DatasetError(SuiteError):
    pass


def _missing(name: str, folder: Path, expected: list[str], remedy: str) -> DatasetError:
    return DatasetError(
        f"dataset '{name}' not found or incomplete in {folder}. Expected: {', '.join(expected)}. {remedy}"
    )


# ----------------------------------------------------------------------------
# Loaders: each returns (train, test, preprocessing description), uint8 NHWC RGB.


DIGITS_TEST = 300


def digits_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of the fixed digits split; the digits classifier's labels follow it."""
    perm = np.random.RandomState(0).permutation(n)
    return perm[DIGITS_TEST:], perm[:DIGITS_TEST]


def load_digits(opts: dict):
    from sklearn.datasets import load_digits as sk_digits

    size = opts.get("image_size", 32)
    d = sk_digits()
    # 0..16 ink levels -> 0..255, bilinear upsampling, grey replicated to RGB.
    imgs = np.stack(
        [
            np.asarray(Image.fromarray((im * 255.0 / 16).astype(np.uint8)).resize((size, size), Image.BILINEAR))
            for im in d.images
        ]
    )
    imgs = np.repeat(imgs[..., None], 3, axis=-1)
    train_idx, test_idx = digits_split(len(imgs))
    return (
        imgs[train_idx],
        imgs[test_idx],
        f"sklearn load_digits 8x8 x255/16, bilinear to {size}x{size}, grey->RGB; split RandomState(0) 1497/300",
    )


def load_cifar10(root: Path, download: bool, opts: dict):
    tv = import_torchvision()
    folder = root / "cifar10"
    files = [
        "cifar-10-batches-py/data_batch_1..5",
        "cifar-10-batches-py/test_batch",
        "cifar-10-batches-py/batches.meta",
    ]
    remedy = (
        "Download and unpack cifar-10-python.tar.gz from the CIFAR-10 page there, or set "
        "dataset_options.cifar10.download: true on a machine with internet."
    )
    if not download and not (folder / "cifar-10-batches-py").is_dir():
        raise _missing("cifar10", folder, files, remedy)
    try:
        train = tv.datasets.CIFAR10(str(folder), train=True, download=download).data
        test = tv.datasets.CIFAR10(str(folder), train=False, download=download).data
    except Exception as err:
        raise DatasetError(
            f"dataset 'cifar10' in {folder} could not be read ({err}). Files are missing, truncated or corrupt (checksum). {remedy}"
        ) from None
    return (
        _check_shape("cifar10", train, 32),
        _check_shape("cifar10", test, 32),
        "CIFAR-10 python batches, 32x32, no resize",
    )


def load_svhn(root: Path, download: bool, opts: dict):
    tv = import_torchvision()
    folder = root / "svhn"
    remedy = "Put train_32x32.mat and test_32x32.mat (SVHN format 2) there, or set dataset_options.svhn.download: true on a machine with internet."
    if not download and not (folder / "train_32x32.mat").exists():
        raise _missing("svhn", folder, ["train_32x32.mat", "test_32x32.mat"], remedy)
    try:
        # torchvision keeps SVHN as NCHW
        train = tv.datasets.SVHN(str(folder), split="train", download=download).data.transpose(0, 2, 3, 1)
        test = tv.datasets.SVHN(str(folder), split="test", download=download).data.transpose(0, 2, 3, 1)
    except Exception as err:
        raise DatasetError(
            f"dataset 'svhn' in {folder} could not be read ({err}). Files are missing, truncated or corrupt (checksum). {remedy}"
        ) from None
    return (
        _check_shape("svhn", np.ascontiguousarray(train), 32),
        _check_shape("svhn", np.ascontiguousarray(test), 32),
        "SVHN format 2, 32x32, extra split unused",
    )


def load_celeba64(root: Path, download: bool, opts: dict):
    tv = import_torchvision()
    folder = root / "celeba"
    files = [
        "celeba/img_align_celeba/*.jpg",
        "celeba/list_eval_partition.txt",
        "celeba/list_attr_celeba.txt",
        "celeba/identity_CelebA.txt",
        "celeba/list_bbox_celeba.txt",
        "celeba/list_landmarks_align_celeba.txt",
    ]
    remedy = (
        "CelebA's automatic download is unreliable upstream: download the 'Align&Cropped' images and the "
        "annotation files from the CelebA page by hand and unpack them there."
    )
    if not download and not (folder / "celeba" / "img_align_celeba").is_dir():
        raise _missing("celeba64", folder, files, remedy)
    size = opts.get("image_size", 64)
    box = tuple(opts.get("crop", (15, 40, 163, 188)))
    resize = opts.get("resize", "bicubic")  # Dual-MCMC's released transform: bilinear (torchvision Resize)
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[resize]
    out = []
    for split in ("train", "test"):
        try:
            ds = tv.datasets.CelebA(str(folder), split=split, target_type=[], download=download)
        except Exception as err:
            raise DatasetError(f"dataset 'celeba64' in {folder} could not be read ({err}). {remedy}") from None
        imgs = np.empty((len(ds.filename), size, size, 3), np.uint8)
        for i, fn in enumerate(ds.filename):
            path = folder / "celeba" / "img_align_celeba" / fn
            try:
                with Image.open(path) as im:
                    imgs[i] = np.asarray(im.convert("RGB").crop(box).resize((size, size), resample))
            except (OSError, ValueError) as err:
                raise DatasetError(f"CelebA image {path} is missing or corrupt ({err}). {remedy}") from None
        out.append(imgs)
    return (
        out[0],
        out[1],
        f"CelebA aligned, PIL crop box (left, top, right, bottom) = {box}, {resize} resize to {size}x{size}",
    )


def to_rgb(im: Image.Image, path: Path, name: str) -> Image.Image:
    """Any PIL mode a folder may hold -> 8-bit RGB by scaling, never by clipping: PIL's own
    convert("RGB") clips 16-bit values at 255, which turns nearly every pixel of a 16-bit PNG white.
    Transparency is composited over black (colour scaled by its alpha); modes without a defined
    mapping to 8-bit RGB are refused, naming the file."""
    if im.mode in ("RGB", "1", "L", "CMYK", "YCbCr") or (im.mode == "P" and "transparency" not in im.info):
        return im.convert("RGB")  # exact, or PIL's defined colour conversion
    if im.mode in ("RGBA", "RGBa", "LA", "La", "PA", "P"):
        a = np.asarray(im.convert("RGBA"), np.float64)
        return Image.fromarray(np.round(a[..., :3] * a[..., 3:] / 255).astype(np.uint8))
    if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit grey ("I" is how older PIL opens 16-bit PNGs)
        a = np.asarray(im).astype(np.int64)
        if a.min() >= 0 and a.max() <= 65535:
            return Image.fromarray(np.round(a / 257).astype(np.uint8)).convert("RGB")  # 65535 -> 255
    raise DatasetError(
        f"image {path} in dataset '{name}' has PIL mode '{im.mode}', which has no defined conversion to "
        f"8-bit RGB (16-bit grey, palette, alpha, CMYK and 8-bit modes are converted); convert it "
        f"(e.g. to 8-bit PNG) or remove it."
    )


def load_folder(path: Path, opts: dict):
    size, test_fraction = opts.get("image_size", 32), opts.get("test_fraction", 0.1)
    if not path.is_dir():
        raise _missing(
            opts["name"], path, ["*.png / *.jpg images"], "Point dataset_options.<name>.path at a folder of images."
        )
    files = sorted(
        p for p in path.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
    )
    if len(files) < 10:
        raise _missing(opts["name"], path, ["at least 10 images (*.png, *.jpg)"], f"found {len(files)}.")
    imgs = np.empty((len(files), size, size, 3), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = to_rgb(im, f, opts["name"])
                s = min(im.size)
                left, top = (im.width - s) // 2, (im.height - s) // 2
                imgs[i] = np.asarray(im.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC))
        except OSError as err:
            raise DatasetError(
                f"image {f} in dataset '{opts['name']}' cannot be read ({err}); remove or replace it."
            ) from None
    perm = np.random.RandomState(0).permutation(len(imgs))
    n_test = max(1, int(round(test_fraction * len(imgs))))
    if n_test >= len(imgs):
        raise DatasetError(
            f"dataset '{opts['name']}': test_fraction {test_fraction} of {len(imgs)} images in {path} "
            f"leaves no training image; lower test_fraction or add images."
        )
    return (
        imgs[perm[n_test:]],
        imgs[perm[:n_test]],
        f"folder {path}: centre square crop, bicubic to {size}x{size}; split RandomState(0), test fraction {test_fraction}",
    )


def _check_shape(name, arr, size):
    if arr.ndim != 4 or arr.shape[1:] != (size, size, 3) or arr.dtype != np.uint8:
        raise DatasetError(
            f"dataset '{name}' loaded with unexpected shape {arr.shape} / dtype {arr.dtype}; the files are not in the expected format."
        )
    return arr
