"""The feature extractors torch-fidelity runs, and what names them exactly.

  digits     the digits classifier (ebmbench.evaluate.digits_classifier), registered with
             torch-fidelity as `ebmbench-digits`: FID/KID on its normalised embedding, IS on its logits.
  inception  torch-fidelity's `inception-v3-compat` (the TF-FID port), from a local weights file when
             given (offline clusters), else torch-fidelity's own download. A weights file without
             the classifier layer gives FID/KID, and IS as unavailable (null with the reason).

Each extractor is named by an id that holds its weights' hash, so cached reference statistics and
the table never mix numbers of two instruments.
"""

from pathlib import Path

import numpy as np
import torch

from ..io import SuiteError, sha256_file
from ..torch_compat import import_torch_fidelity
from .digits_classifier import load_digits_classifier

tf = import_torch_fidelity()
from torch_fidelity.feature_extractor_base import FeatureExtractorBase  # noqa: E402


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


class ImagesDataset(torch.utils.data.Dataset):
    """uint8 NHWC array -> uint8 CHW tensors, the input torch-fidelity expects."""

    def __init__(self, arr: np.ndarray):
        self.arr = arr

    def __len__(self):
        return len(self.arr)

    def __getitem__(self, i):
        return torch.from_numpy(np.array(self.arr[i])).permute(2, 0, 1)


INCEPTION_REMEDY = (
    "set metrics.inception_weights to a local copy of torch-fidelity's weights file "
    "(weights-inception-2015-12-05-6726825d.pth, see docs/paper-runs.md) or leave it empty to download"
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
    return tf.utils.get_featuresdict_from_dataset(ImagesDataset(images), fe, 100, cuda, not cuda, False)[layer]
