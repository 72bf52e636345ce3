"""Checks of the workflow config beyond its JSON schema (which cannot know the methods' Configs),
run by the Snakefile before any job so that a bad key fails at once, naming the key.

Per-paper data protocols. A dataset listed in `datasets` (e.g. celeba64) is one prepared folder: one
crop, one training split, and that split is the FID reference. Papers differ there (Dual-MCMC: a
148x148 box and the whole 162,770-image split; Pang et al.'s CelebA rows: SRI's 40,000-image
subset, a centre crop, that subset as reference). An entry with `variant_of: celeba64` and
`methods: [...]` is another protocol of the same dataset: the methods it lists train and are scored
on it instead, and their runs are reported as celeba64 (data.prepare names it so), so the table sets
them beside the papers' celeba64 numbers. A variant is not listed in `datasets`; uniform noise and
the comparison page stay with the listed entry.
"""

from .io import SuiteError
from .registry import get_method, resolve_config


def preset_of(config: dict, dataset: str) -> str:
    opts = config["dataset_options"][dataset]
    return opts.get("preset", opts.get("variant_of", dataset))


def extractor_of(config: dict, dataset: str) -> str:
    opts = config["dataset_options"][dataset]
    return opts.get("extractor", "digits" if opts["kind"] == "digits" else "inception")


def variants_of(config: dict, dataset: str) -> list[str]:
    """The dataset_options entries that are other data protocols of `dataset`."""
    return [name for name, opts in config["dataset_options"].items() if opts.get("variant_of") == dataset]


def entry_for(config: dict, method: str, dataset: str) -> str:
    """The dataset_options entry `method` trains and is scored on for the listed `dataset`: the
    variant naming the method, else the dataset's own entry."""
    hits = [v for v in variants_of(config, dataset) if method in config["dataset_options"][v].get("methods", [])]
    return hits[0] if hits else dataset


def planned_runs(config: dict) -> list[tuple[str, str]]:
    """(method, dataset entry) pairs to train: all listed pairs, each on its method's entry (a
    variant or the dataset itself), except a built-in dataset that a method's paper does not cover
    (no preset; e.g. Dual-MCMC has no SVHN setting). A preset named explicitly in dataset_options
    must exist."""
    runs = []
    for method in config["methods"]:
        cls = get_method(method)
        for name in config["datasets"]:
            entry = entry_for(config, method, name)
            if preset_of(config, entry) in cls.PRESETS or "preset" in config["dataset_options"].get(entry, {}):
                runs.append((method, entry))
    return runs


def skipped_runs(config: dict) -> list[tuple[str, str]]:
    planned = set(planned_runs(config))
    return [
        (m, d) for m in config["methods"] for d in config["datasets"] if (m, entry_for(config, m, d)) not in planned
    ]


def _check_variant(config: dict, name: str) -> None:
    options, opts = config["dataset_options"], config["dataset_options"][name]
    base = opts.get("variant_of")
    if base is None:
        if "methods" in opts:
            raise SuiteError(
                f"dataset_options.{name}: 'methods' belongs to a protocol variant; add "
                f"'variant_of: <dataset>' or remove 'methods'."
            )
        return
    where = f"dataset_options.{name} (a variant of '{base}')"
    if base not in options or "variant_of" in options[base]:
        raise SuiteError(
            f"{where}: variant_of must name another entry of dataset_options that is not a variant "
            f"itself (entries: {', '.join(sorted(options))})."
        )
    if opts["kind"] != options[base]["kind"]:
        raise SuiteError(
            f"{where}: kind '{opts['kind']}' differs from '{base}''s kind '{options[base]['kind']}'; "
            f"a variant is the same data under another protocol."
        )
    if name in config["datasets"]:
        raise SuiteError(
            f"{where}: list '{base}' in datasets, not its variant; the variant's methods use it in place of '{base}'."
        )
    if not opts.get("methods"):
        raise SuiteError(f"{where}: needs 'methods', the methods whose papers use this protocol.")
    for method in opts["methods"]:
        get_method(method)  # unknown method: fails naming the choices
        others = [v for v in variants_of(config, base) if v != name and method in options[v].get("methods", [])]
        if others:
            raise SuiteError(
                f"{where}: method '{method}' is also in variant '{others[0]}' of '{base}'; give each "
                f"method one protocol per dataset."
            )


def check_workflow_config(config: dict) -> None:
    options = config["dataset_options"]
    for name in config["datasets"]:
        if name not in options:
            raise SuiteError(
                f"dataset '{name}' is listed in datasets but has no entry in dataset_options "
                f"(known: {', '.join(sorted(options))})."
            )
    for name in options:
        _check_variant(config, name)
    for name in {entry_for(config, m, d) for m in config["methods"] for d in config["datasets"]}:
        opts = options[name]
        if opts["kind"] == "folder" and "path" not in opts:
            raise SuiteError(f"dataset_options.{name}: kind 'folder' needs a 'path' to the image folder.")
        if extractor_of(config, name) == "digits" and opts["kind"] != "digits":
            raise SuiteError(
                f"dataset_options.{name}: the digits extractor only fits the digits dataset; use inception."
            )
    for method, name in planned_runs(config):
        preset = preset_of(config, name)
        resolve_config(method, preset, config.get("overrides", {}).get(method, {}).get(preset, {}))
    for method, per_preset in config.get("overrides", {}).items():
        cls = get_method(method)
        for preset, fields in per_preset.items():
            if preset not in cls.PRESETS:
                raise SuiteError(
                    f"overrides.{method}.{preset}: method '{method}' has no preset '{preset}' "
                    f"(presets: {', '.join(sorted(cls.PRESETS))})."
                )
            resolve_config(method, preset, fields)
