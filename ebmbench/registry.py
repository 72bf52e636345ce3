"""Resolve a method id and a preset to a Config, failing with the valid choices."""

import pkgutil

from .io import SuiteError
from .method_base import apply_overrides


def method_ids() -> list[str]:
    from ebmbench.methods import METHODS

    return sorted(METHODS)


def get_method(name: str):
    from ebmbench.methods import METHODS

    if name not in METHODS:
        raise SuiteError(f"unknown method '{name}'; known methods: {', '.join(sorted(METHODS))}.")
    return pkgutil.resolve_name(METHODS[name])


def resolve_config(method: str, preset: str, overrides: dict | None = None):
    cls = get_method(method)
    if preset not in cls.PRESETS:
        raise SuiteError(
            f"method '{method}' has no preset '{preset}'; presets: {', '.join(sorted(cls.PRESETS))}. "
            f"For a custom dataset, set dataset_options.<name>.preset to one of them."
        )
    return apply_overrides(cls.PRESETS[preset], overrides or {}, where=f"overrides for {method}/{preset}")


def preset_image_shape(preset: str) -> tuple[int, int, int]:
    """(C, H, W) of the dataset a preset is written for."""
    return (3, 64, 64) if preset == "celeba64" else (3, 32, 32)


def parameter_counts(methods=None) -> list[dict]:
    """Build each method's networks for each preset (CPU) and count their parameters."""
    import torch

    from .nets import n_params

    rows = []
    for name in methods or method_ids():
        cls = get_method(name)
        for preset, cfg in cls.PRESETS.items():
            model = cls(cfg, preset_image_shape(preset), torch.device("cpu"))
            for net_name, net in model.nets.items():
                rows.append({"method": name, "preset": preset, "network": net_name, "params": n_params(net)})
    return rows
