"""The kept features: what torch-fidelity computed FID and IS from, written at scoring time and read
by the table, so the verdict can bootstrap without a second pass through the feature extractor (the
expensive part of scoring).

`calculate_metrics_keeping` calls torch-fidelity's own `calculate_metrics` unchanged, recording the
return values of the two steps inside it that produce the features and the FID statistics, so the
metrics are bit-identical to a plain call. The record is written where `score --features` names
(features.npz in the workflow's run folder):
  gen_<layer>   generated-image features of every layer torch-fidelity extracted (float32)
  fid_layer     name of the FID layer; ref_mu, ref_sigma: the reference statistics (float64)
  isc_layer     name of the IS layer (absent where IS was not computed)
"""

from pathlib import Path

import numpy as np

from ..io import save_npz
from ..torch_compat import import_torch_fidelity

import_torch_fidelity()
import torch_fidelity.metrics as _tfm  # noqa: E402

# the names `calculate_metrics_one_feature_extractor` looks up in its module when it runs
_HOOKED = (
    "extract_featuresdict_from_input_id_cached",
    "fid_featuresdict_to_statistics_cached",
    "isc_featuresdict_to_metric",
)


def calculate_metrics_keeping(**kwargs) -> tuple[dict, dict]:
    """torch_fidelity.calculate_metrics(**kwargs), and {"features": {input_id: featuresdict},
    "fid": [(layer, statistics) for input1, input2], "isc_layer": name}."""
    record = {"features": {}, "fid": [], "isc_layer": None}
    orig = {name: getattr(_tfm, name) for name in _HOOKED}

    def features(input_id, feat_extractor, **kw):
        out = record["features"][input_id] = orig[_HOOKED[0]](input_id, feat_extractor, **kw)
        return out

    def fid_stats(featuresdict, cache_name, feat_extractor, layer, **kw):
        out = orig[_HOOKED[1]](featuresdict, cache_name, feat_extractor, layer, **kw)
        record["fid"].append((layer, out))
        return out

    def isc(featuresdict, layer, **kw):
        record["isc_layer"] = layer
        return orig[_HOOKED[2]](featuresdict, layer, **kw)

    for name, fn in zip(_HOOKED, (features, fid_stats, isc), strict=True):
        setattr(_tfm, name, fn)
    try:
        metrics = _tfm.calculate_metrics(**kwargs)
    finally:
        for name, fn in orig.items():
            setattr(_tfm, name, fn)
    return metrics, record


def save_kept(path, record: dict | None) -> str:
    """Write the kept features (an empty file for a run without numbers, e.g. diverged); return its path."""
    arrays = {}
    if record and 1 in record["features"] and len(record["fid"]) == 2:
        for layer, feats in record["features"][1].items():
            arrays[f"gen_{layer}"] = feats.numpy().astype(np.float32)
        (layer, _), (_, ref) = record["fid"]
        arrays |= {"fid_layer": np.array(layer), "ref_mu": ref["mu"], "ref_sigma": ref["sigma"]}
        if record["isc_layer"] is not None:
            arrays["isc_layer"] = np.array(record["isc_layer"])
    save_npz(path, **arrays)
    return str(path)


def load_kept(path) -> dict | None:
    """The kept features as `save_kept` wrote them; None where absent or empty."""
    if not path or not Path(path).exists():
        return None
    with np.load(path) as f:
        return {k: f[k] for k in f.files} if "fid_layer" in f.files else None
