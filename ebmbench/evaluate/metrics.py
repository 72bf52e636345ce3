"""FID / IS / KID / precision and recall through torch-fidelity, and reconstruction MSE. Runs on
files, never in training.

Feature extractors:
  digits     a small classifier trained once on the digits train split (`train_digits_classifier`),
             with mild nuisance augmentation, registered with torch-fidelity: FID/KID on its
             L2-normalised 128-d embedding, IS on its 10-way logits (the MNIST-literature practice;
             numbers are not comparable to Inception). Validated in tests/test_extractors.py.
  inception  torch-fidelity's `inception-v3-compat` (the TF-FID port), from a local weights file when
             given (offline clusters), else torch-fidelity's own download. A weights file without
             the classifier layer gives FID/KID, and IS as unavailable (null with the reason).

Precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", NeurIPS; torch-fidelity's `prc`): the fraction of generated images inside the
k-nearest-neighbour balls (k = 3) of the reference images, and the reverse; on the same features as
FID (the digits embedding, Inception's 2048-d pool3). The paper uses VGG-16 fc2 features, which
torch-fidelity would download: the numbers are comparable within the suite, not with that paper's.

Reference statistics are cached under a name holding the dataset's content hash (data +
preprocessing) and the extractor's weights hash: torch-fidelity keys its cache by name only, so a
name without them would silently reuse stale statistics.
"""

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..checks import finite_or_absent
from ..data import dataset_info, digits_split, load_prepared
from ..io import SuiteError, load_images_npz, load_torch, read_json, save_torch, sha256_file, to_float
from ..torch_compat import import_torch_fidelity
from .disturbances import blur_tensor
from .kept_features import calculate_metrics_keeping, save_kept

tf = import_torch_fidelity()
from torch_fidelity.feature_extractor_base import FeatureExtractorBase  # noqa: E402

# ----------------------------------------------------------------------------
# The digits classifier used as a feature extractor.


class DigitsClassifier(nn.Module):
    """A digits classifier whose 128-d embedding, L2-normalised, is the FID/KID feature.

    Normalising removes the embedding's length, which in a ReLU network grows with ink contrast:
    unnormalised, a faint but well-formed digit lands far from a crisp one and FID measures
    contrast. The logits are read from the normalised embedding (a cosine classifier, as in
    NormFace, Wang et al. 2017), so the space that separates the classes is the one FID measures.
    Two architectures, so that the agreement check (`ebmbench agreement`) can compare independent
    instruments: `conv` (3x3 convs, max pooling, ReLU; the default) and `lenet` (5x5 convs, average
    pooling, tanh, after LeCun et al. 1998).
    """

    ARCHS = ("conv", "lenet")
    SCALE = 16.0  # logit scale of the cosine classifier: unit-norm inputs need it to reach confident logits

    def __init__(self, arch: str = "conv"):
        super().__init__()
        if arch == "conv":
            self.body = nn.Sequential(
                nn.Conv2d(3, 32, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 16x16
                nn.Conv2d(32, 64, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 8x8
                nn.Conv2d(64, 128, 3, 1, 1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # 4x4
                nn.Flatten(),
                nn.Linear(128 * 16, 128),
            )
        elif arch == "lenet":
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 5, 1, 2),
                nn.Tanh(),
                nn.AvgPool2d(2),  # 16x16
                nn.Conv2d(16, 48, 5, 1, 2),
                nn.Tanh(),
                nn.AvgPool2d(2),  # 8x8
                nn.Conv2d(48, 96, 3, 2, 1),
                nn.Tanh(),  # 4x4
                nn.Flatten(),
                nn.Linear(96 * 16, 128),
            )
        else:
            raise SuiteError(f"unknown digits classifier architecture '{arch}'; known: {', '.join(self.ARCHS)}.")
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [-1, 1], (B, 3, 32, 32) -> (unit-norm features, logits)."""
        f = nn.functional.normalize(self.body(x), dim=1)
        return f, self.head(self.SCALE * f)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Nuisances that generated digits show and that should not count as a change of shape.

    Generated digits are not centred exactly (shift), come faint or with a grey background
    (contrast, brightness), grainy (Langevin noise) or soft (decoder blur). Each is drawn mildly,
    within what a reader still sees as the same digit, so FID stays sensitive to the strong
    disturbances of the Heusel et al. 2017 test (tests/test_extractors.py)."""
    b = len(x)
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
    x = torch.roll(x, (dy, dx), dims=(2, 3))
    lo = -1 + 0.4 * u(b, 1, 1, 1)  # background brought up to -0.6
    hi = 1 - 0.7 * u(b, 1, 1, 1)  # ink brought down to 0.3
    x = lo + (x + 1) / 2 * (hi - lo)
    blurred = u(b) < 1 / 3
    if blurred.any():
        x = x.clone()
        x[blurred] = blur_tensor(x[blurred], 0.3 + 0.7 * u(int(blurred.sum())))
    noisy = (u(b, 1, 1, 1) < 0.5).float()
    x = x + noisy * 0.2 * u(b, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def train_digits_classifier(data_dir, out_path, epochs: int = 12, seed: int = 0, arch: str = "conv") -> dict:
    """Train the digits feature extractor on the train split (augmented); report test accuracy."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    from sklearn.datasets import load_digits

    info = dataset_info(data_dir)
    if info["kind"] != "digits":
        raise SuiteError(f"the digits classifier needs the prepared digits dataset, got '{info['name']}'.")
    labels = torch.as_tensor(load_digits().target)
    train_idx, test_idx = digits_split(len(labels))
    y_train, y_test = labels[train_idx], labels[test_idx]
    x_train = to_float(load_prepared(data_dir, "train"))
    x_test = to_float(load_prepared(data_dir, "test"))
    net = DigitsClassifier(arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in tqdm(range(epochs), desc=f"digits classifier ({arch})", unit="epoch"):
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            loss = nn.functional.cross_entropy(net(_augment(x_train[idx], gen))[1], y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(x_test)[1].argmax(1) == y_test).float().mean().item()
    if acc < 0.9:
        raise SuiteError(
            f"digits classifier reached only {acc:.3f} test accuracy; its features would make FID meaningless."
        )
    seconds = time.perf_counter() - start
    save_torch(
        out_path,
        {
            "state_dict": net.state_dict(),
            "arch": arch,
            "seed": seed,
            "epochs": epochs,
            "test_accuracy": acc,
            "train_seconds": seconds,
        },
    )
    return {"test_accuracy": acc, "arch": arch, "seed": seed, "train_seconds": round(seconds, 1)}


def load_digits_classifier(path) -> DigitsClassifier:
    ckpt = load_torch(path, "digits classifier")
    if not isinstance(ckpt, dict) or "arch" not in ckpt:
        raise SuiteError(
            f"digits classifier {path} was written by an older ebmbench (unnormalised features, no "
            f"'arch' field); delete it and retrain with `python -m ebmbench classifier`."
        )
    net = DigitsClassifier(ckpt["arch"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


class DigitsFeatureExtractor(FeatureExtractorBase):
    NAME = "ebmbench-digits"

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise SuiteError(
                "the digits feature extractor needs its weights file (train it with `ebmbench classifier`)."
            )
        self.net = load_digits_classifier(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, x):
        feats = dict(zip(("features", "logits"), self.net(x.float() / 127.5 - 1), strict=True))
        return tuple(feats[k].double() for k in self.features_list)


tf.register_feature_extractor(DigitsFeatureExtractor.NAME, DigitsFeatureExtractor)


# ----------------------------------------------------------------------------


class _Images(torch.utils.data.Dataset):
    """uint8 NHWC array -> uint8 CHW tensors, the input torch-fidelity expects."""

    def __init__(self, arr: np.ndarray):
        self.arr = arr

    def __len__(self):
        return len(self.arr)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.arr[i])).permute(2, 0, 1)


INCEPTION_REMEDY = (
    "set metrics.inception_weights to a local copy of torch-fidelity's weights file "
    "(weights-inception-2015-12-05-6726825d.pth, see the README) or leave it empty to download"
)


def extractor_spec(extractor: str, weights: str | None) -> tuple[dict, str]:
    """torch-fidelity kwargs for an extractor, and an id naming it exactly (weights hash)."""
    if extractor == "digits":
        if not weights or not Path(weights).exists():
            raise SuiteError(
                f"digits classifier weights {weights} not found; train them with `python -m ebmbench classifier`."
            )
        return {
            "feature_extractor": DigitsFeatureExtractor.NAME,
            "feature_extractor_weights_path": str(weights),
        }, f"digitsclf-{sha256_file(weights)[:12]}"
    if extractor == "inception":
        kw = {"feature_extractor": "inception-v3-compat"}
        if weights:
            if not Path(weights).exists():
                raise SuiteError(f"Inception weights file {weights} does not exist; {INCEPTION_REMEDY}.")
            kw["feature_extractor_weights_path"] = str(weights)
            return kw, f"inception-{sha256_file(weights)[:12]}"
        return kw, "inception-default"
    raise SuiteError(f"unknown feature extractor '{extractor}'; use 'digits' or 'inception'.")


def logits_missing(extractor: str, weights) -> str | None:
    """Why IS cannot be computed with these weights, or None when it can.

    A pool3-only Inception copy (such as one rebuilt from a TorchScript export without the
    classifier) carries an all-zero `fc` layer; its logits are all zero, every p(y|x) uniform,
    and IS would come out as exactly 1 -- a number that measures nothing."""
    if extractor != "inception" or not weights:
        return None
    try:
        sd = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise SuiteError(f"Inception weights file {weights} is unreadable ({err}); {INCEPTION_REMEDY}.") from None
    if not isinstance(sd, dict) or "fc.weight" not in sd or "Mixed_7c.branch_pool.conv.weight" not in sd:
        raise SuiteError(
            f"Inception weights file {weights} is not a state_dict of torch-fidelity's "
            f"inception-v3-compat; {INCEPTION_REMEDY}."
        )
    if not torch.count_nonzero(sd["fc.weight"]):
        return f"the Inception weights {Path(weights).name} have no classifier (all-zero fc layer: pool3 features only)"
    return None


def features(images: np.ndarray, extractor: str, weights=None, device: str = "cpu") -> torch.Tensor:
    """The FID/KID features of uint8 NHWC images under an extractor (as torch-fidelity computes them)."""
    kw, _ = extractor_spec(extractor, weights)
    name = kw.pop("feature_extractor")
    layer = tf.registry.FEATURE_EXTRACTORS_REGISTRY[name].get_default_feature_layer_for_metric("fid")
    cuda = device.startswith("cuda")
    fe = tf.utils.create_feature_extractor(name, [layer], cuda=cuda, verbose=False, **kw)
    return tf.utils.get_featuresdict_from_dataset(_Images(images), fe, 100, cuda, not cuda, False)[layer]


def fid_of_features(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets, with torch-fidelity's own statistics and formula."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats = [fid_features_to_statistics(f.double()) for f in (a, b)]
    return fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]


# The fewest images each metric is defined on: FID's and KID's covariances / unbiased MMD need two,
# IS averages over torch-fidelity's 10 splits (isc_splits), one image each at least. Below these a
# metric is refused or absent with its reason, never NaN.
# Precision and recall need k + 1 images in each set (a k-th neighbour other than the image itself).
PRC_NEIGHBORHOOD = 3
PRC_BATCH = 10000  # rows of each block of distances (torch-fidelity's prc_batch_size default)
MIN_IMAGES = {"fid": 2, "kid": 2, "is": 10, "mse": 1, "precision": PRC_NEIGHBORHOOD + 1, "recall": PRC_NEIGHBORHOOD + 1}


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


def score(
    samples_path,
    data_dir,
    extractor: str,
    weights=None,
    cache_dir=None,
    device: str = "cpu",
    recon_path=None,
    precision_recall: bool = True,
) -> dict:
    labels_path = Path(samples_path).with_name("samples.json")  # which run these samples come from
    labels = read_json(labels_path) if labels_path.exists() else {}
    features_path = Path(samples_path).with_name("features.npz")  # kept for the verdict's bootstrap
    run = {k: v for k, v in labels.items() if k in ("method", "dataset", "seed")}
    if labels.get("status", "ok") != "ok":  # diverged: reported as such, never with a number
        save_kept(features_path, None)  # empty: the workflow declares one per run
        return {**run, "status": labels["status"], "message": labels.get("message", "")}
    samples = load_images_npz(samples_path)
    info = dataset_info(data_dir)
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
        input1=_Images(samples),
        input2=_Images(reference),
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
        input2_cache_name=f"{info['name']}-train-{info['sha256'][:16]}-{extractor_id}",
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
    out["features"] = save_kept(features_path, kept)
    return finite_or_absent(out, ("fid", "is", "is_std", "kid", "kid_std", "precision", "recall", "mse"), "not finite")
