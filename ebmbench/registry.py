"""Resolve a method id and a preset to a Config, failing with the valid choices."""
from .io import SuiteError
from .method import apply_overrides


def get_method(name: str):
    from methods import METHODS

    if name not in METHODS:
        raise SuiteError(f"unknown method '{name}'; known methods: {', '.join(sorted(METHODS))}.")
    return METHODS[name]


def resolve_config(method: str, preset: str, overrides: dict | None = None):
    cls = get_method(method)
    if preset not in cls.PRESETS:
        raise SuiteError(
            f"method '{method}' has no preset '{preset}'; presets: {', '.join(sorted(cls.PRESETS))}. "
            f"For a custom dataset, set datasets.<name>.preset to one of them."
        )
    return apply_overrides(cls.PRESETS[preset], overrides or {}, where=f"overrides for {method}/{preset}")
