import json
import shlex
import sys

from ebmbench.config import check_workflow_config, extractor_of, planned_runs, preset_of, skipped_runs
from ebmbench.io import SuiteError
from ebmbench.registry import get_method, resolve_config

try:
    check_workflow_config(config)
except SuiteError as err:
    raise ValueError(f"invalid config: {err}") from None
for _method, _dataset in skipped_runs(config):
    print(f"note: {_method} has no preset for {_dataset} (its paper does not cover it); not trained.", file=sys.stderr)

wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    method=r"[a-z0-9_]+",
    seed=r"\d+",

RUN = "results/{dataset}/{method}/seed{seed}"
DATA = "resources/data/{dataset}"
CLASSIFIER = "resources/digits_classifier.pt"


def overrides_args(wildcards):
    preset = preset_of(config, wildcards.dataset)
    fields = config.get("overrides", {}).get(wildcards.method, {}).get(preset, {})
    return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in fields.items())


def n_samples_of(wildcards):
    """Generated images to score: the method's paper preset states its own count (short-run: 40,000;
    Dual-MCMC, Pang et al., CoopVAEBM: 50,000); a preset without one (0) takes config n_samples."""
    preset = preset_of(config, wildcards.dataset)
    cfg = resolve_config(wildcards.method, preset, config.get("overrides", {}).get(wildcards.method, {}).get(preset, {}))
    return cfg.n_samples or config["n_samples"]


def all_metrics():
    runs = [RUN.format(method=m, dataset=d, seed=s) + "/metrics.json"
            for m, d in planned_runs(config) for s in config["seeds"]]
    return runs + expand("results/{dataset}/uniform_noise/metrics.json", dataset=config["datasets"])
