"""Checks of the workflow config beyond its JSON schema (which cannot know the methods' Configs),
run by the Snakefile before any job so that a bad key fails at once, naming the key."""
from .io import SuiteError
from .registry import get_method, resolve_config


def preset_of(config: dict, dataset: str) -> str:
    return config["dataset_options"][dataset].get("preset", dataset)


def extractor_of(config: dict, dataset: str) -> str:
    opts = config["dataset_options"][dataset]
    return opts.get("extractor", "digits" if opts["kind"] == "digits" else "inception")


def planned_runs(config: dict) -> list[tuple[str, str]]:
    """(method, dataset) pairs to train: all listed pairs except a built-in dataset that a method's
    paper does not cover (no preset; e.g. Dual-MCMC has no SVHN setting). A preset named
    explicitly in dataset_options must exist."""
    runs = []
    for method in config["methods"]:
        cls = get_method(method)
        for name in config["datasets"]:
            if preset_of(config, name) in cls.PRESETS or "preset" in config["dataset_options"].get(name, {}):
                runs.append((method, name))
    return runs


def skipped_runs(config: dict) -> list[tuple[str, str]]:
    planned = set(planned_runs(config))
    return [(m, d) for m in config["methods"] for d in config["datasets"] if (m, d) not in planned]


def check_workflow_config(config: dict) -> None:
    options = config["dataset_options"]
    for name in config["datasets"]:
        if name not in options:
            raise SuiteError(f"dataset '{name}' is listed in datasets but has no entry in dataset_options "
                             f"(known: {', '.join(sorted(options))}).")
        opts = options[name]
        if opts["kind"] == "folder" and "path" not in opts:
            raise SuiteError(f"dataset_options.{name}: kind 'folder' needs a 'path' to the image folder.")
        if extractor_of(config, name) == "digits" and opts["kind"] != "digits":
            raise SuiteError(f"dataset_options.{name}: the digits extractor only fits the digits dataset; use inception.")
    for method, name in planned_runs(config):
        preset = preset_of(config, name)
        resolve_config(method, preset, config.get("overrides", {}).get(method, {}).get(preset, {}))
    for method, per_preset in config.get("overrides", {}).items():
        cls = get_method(method)
        for preset, fields in per_preset.items():
            if preset not in cls.PRESETS:
                raise SuiteError(f"overrides.{method}.{preset}: method '{method}' has no preset '{preset}' "
                                 f"(presets: {', '.join(sorted(cls.PRESETS))}).")
            resolve_config(method, preset, fields)
