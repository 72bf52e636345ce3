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


# --- Containers and cluster resources (README, "Containers and clusters") ---------------------------
import functools
import math
import os

from ebmbench.container import DEFAULT_BASE

IMAGE = "resources/images/{method}.json"
CUDA = str(config["device"]).startswith("cuda")


def in_container():
    return config.get("container", "none") == "docker"


def _method_of(wildcards):
    run = wildcards.get("run", "")
    return wildcards.get("method") or (None if run == "uniform_noise" else run.split("/")[0])


@functools.cache
def image_digest(method):
    """Content hash of the method's image inputs: it, not file times, decides a rebuild."""
    from ebmbench.container import content_hash, image_inputs

    opts = config.get("image", {})
    return content_hash(image_inputs(method, opts.get("base_image", DEFAULT_BASE), opts.get("wheelhouse", "wheels"),
                                     opts.get("extra_ca")))


def image_input(wildcards):
    """The image record a job waits for (ancient: its rewrite must not rerun finished jobs; a new
    image does, through the tag in the command)."""
    method = _method_of(wildcards)
    return [ancient(IMAGE.format(method=method))] if in_container() and method else []


def apptainer_image(wildcards):
    """Snakemake's own container directive (used with --sdm apptainer): the method's image as a .sif
    file or docker:// URI, from the pattern image.apptainer; none for uniform noise and local runs."""
    method = _method_of(wildcards)
    if config.get("container") != "apptainer" or not method:
        return None
    return config["image"]["apptainer"].format(method=method)


def ebmbench_cmd(wildcards):
    """What runs the CLI: this environment, or the method's image (uniform noise has none: local)."""
    method = _method_of(wildcards)
    if config.get("container") == "apptainer":
        return "python3 -P -m ebmbench"  # -P: the image's package, not a checkout in the bound working dir
    if not (in_container() and method):
        return "python -m ebmbench"
    from ebmbench.container import image_tag, run_prefix

    run = wildcards.get("run") or f"{wildcards.method}/seed{wildcards.seed}"
    weights = config.get("metrics", {}).get("inception_weights")
    return run_prefix(image_tag(method, image_digest(method)), IMAGE.format(method=method),
                      f"results/{wildcards.dataset}/{run}", CUDA, [os.path.abspath(weights)] if weights else [])


def job_resource(stage, key):
    """One resource of a train/sample/score job, from its method preset; the SLURM profile submits
    with these. A paper preset on a CUDA device asks for one GPU; memory by image size; train time
    from the preset's n_iters at a budget of 0.5 s per iteration + 30 min (a budget, not a
    measurement: no GPU was at hand to time the paper presets). digits presets are CPU-sized."""
    def resource(wildcards, threads):
        preset = preset_of(config, wildcards.dataset)
        paper = preset != "digits"
        if key == "gpu":
            return int(paper and CUDA)
        if key == "cpus_per_task":
            return config.get("threads", 2)  # not `threads`: a dry run scales that to --cores
        if key == "mem_mb":
            return (32000 if preset == "celeba64" else 16000) if paper else 4000
        if not paper:
            return 30
        if stage != "train":
            return 240
        method = _method_of(wildcards)
        cfg = resolve_config(method, preset, config.get("overrides", {}).get(method, {}).get(preset, {}))
        return 30 + math.ceil(cfg.n_iters * 0.5 / 60)
    return resource


def job_resources(stage):
    return {key: job_resource(stage, key) for key in ("gpu", "cpus_per_task", "mem_mb", "runtime")}
