"""The one registry of methods: the built-ins, plug-ins, and a method id resolved to its class and
a preset to its Config, failing with the valid choices.

Three sources, one table of id -> "module:Class":
  built-in  `ebmbench.methods.METHODS` (methods/__init__.py);
  plug-in   an installed distribution's entry point in the group `ebmbench.methods`
            (`pip install my-ebm` makes its ids known to the CLI and the workflow alike);
  image     the variable EBMBENCH_PLUGINS ("id=module:Class;..."), set inside a method's container
            image, which holds the plug-in's sources but not its installed metadata.
A method may also be named directly as "package.module:Class" wherever an id is taken.
"""

import os
import pkgutil
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from .io import SuiteError
from .method_base import Method, apply_overrides

GROUP = "ebmbench.methods"
IMAGE_PLUGINS = "EBMBENCH_PLUGINS"


@dataclass(frozen=True)
class Entry:
    target: str  # "module:Class"
    source: str  # where it was registered, for messages: "built-in", "distribution X (entry point ...)"
    plugin: bool = True  # False for the built-ins


def _plugin_entries() -> list[tuple[str, Entry]]:
    found = []
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
        found.append((ep.name, Entry(ep.value, f"distribution '{dist}' (entry point {ep.name} = {ep.value})")))
    for item in filter(None, os.environ.get(IMAGE_PLUGINS, "").split(";")):
        name, _, target = item.partition("=")
        found.append((name.strip(), Entry(target.strip(), f"{IMAGE_PLUGINS} ({item})")))
    return found


@cache
def registry() -> dict[str, Entry]:
    """id -> Entry over built-ins and plug-ins; a name registered twice is refused, naming both."""
    from ebmbench.methods import METHODS

    table = {name: Entry(target, "built-in (methods/__init__.py)", plugin=False) for name, target in METHODS.items()}
    for name, entry in _plugin_entries():
        if name in table and table[name].target != entry.target:
            raise SuiteError(
                f"method id '{name}' is registered twice: by {table[name].source} and by {entry.source}. "
                f'Rename the plug-in\'s entry point (pyproject.toml, [project.entry-points."{GROUP}"]) '
                f"or uninstall one of the two."
            )
        table.setdefault(name, entry)
    return table


def method_ids() -> list[str]:
    return sorted(registry())


def is_direct(name: str) -> bool:
    """A method named as "package.module:Class" rather than by a registered id."""
    return ":" in name


def get_method(name: str):
    entries = registry()
    if is_direct(name):
        entry = Entry(name, f"'{name}' (named directly)")
    elif name in entries:
        entry = entries[name]
    else:
        raise SuiteError(
            f"unknown method '{name}'; known methods: {', '.join(sorted(entries))}. A plug-in registers "
            f"its methods under the entry-point group '{GROUP}' (see docs/add-your-method.md), or name "
            f"a class directly as package.module:Class."
        )
    try:
        cls = pkgutil.resolve_name(entry.target)
    except Exception as err:  # a plug-in's own import error: any exception type, reported as one paragraph
        raise SuiteError(
            f"method '{name}' from {entry.source} does not import: {type(err).__name__}: {err}. "
            f"Fix or reinstall that package (pip install -e <its folder>), or uninstall it."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise SuiteError(
            f"method '{name}' from {entry.source} names {entry.target}, which is not a subclass of "
            f"ebmbench.method_base.Method."
        )
    return cls


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
