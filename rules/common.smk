# Helper functions of the rules, in one place; the rule files hold rules only.
import dataclasses
import functools
import json
import math
import os
import sys

from ebmbench.run_plan import (
    check_workflow_config,
    extractor_of,
    planned_runs,
    preset_of,
    skipped_runs,
    variants_of,
)
from ebmbench.container import DEFAULT_BASE
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


CUDA = str(config["device"]).startswith("cuda")


def overrides_of(method, preset):
    return config["overrides"].get(method, {}).get(preset, {})


def method_config(wildcards):
    preset = preset_of(config, wildcards.dataset)
    method = _method_of(wildcards)
    return resolve_config(method, preset, overrides_of(method, preset))


def config_record(wildcards):
    """The run's whole resolved Config as one string: a train job's parameter, so that a preset edited
    in its method file (not only an override) makes Snakemake train that run again."""
    return json.dumps(dataclasses.asdict(method_config(wildcards)), sort_keys=True)


def overrides_args(wildcards):
    """--set field=value per override of this method and preset, as separate words for {params:q}."""
    fields = overrides_of(wildcards.method, preset_of(config, wildcards.dataset))
    return [word for k, v in fields.items() for word in ("--set", f"{k}={json.dumps(v)}")]


def n_samples_of(wildcards):
    """Generated images to score: the method's paper preset states its own count (short-run: 40,000;
    Dual-MCMC, Pang et al., CoopVAEBM: 50,000); a preset without one (0) takes config n_samples."""
    return method_config(wildcards).n_samples or config["n_samples"]


def all_metrics():
    runs = [f"results/{d}/{m}/seed{s}/metrics.json" for m, d in planned_runs(config) for s in config["seeds"]]
    # each sampling variant a method declares (its VARIANTS): sampled from the same model, scored as "<method>@<variant>"
    runs += [
        f"results/{d}/{m}/seed{s}/variants/{v}/metrics.json"
        for m, d in planned_runs(config)
        for s in config["seeds"]
        for v in get_method(m).VARIANTS
    ]
    return runs + expand("results/{dataset}/uniform_noise/metrics.json", dataset=config["datasets"])


def run_dir(wildcards, output):
    """The run folder a job writes into, from its first output (never a hard-coded prefix)."""
    return os.path.dirname(output[0])


# --- scoring ---------------------------------------------------------------------------------------
def is_model_run(run):
    """A run's own samples (not uniform noise, not a sampling variant's): figures, reconstructions, measurements."""
    return run != "uniform_noise" and "/variants/" not in run


def score_inputs(w):
    inputs = {"samples": f"results/{w.dataset}/{w.run}/samples.npz", "data": f"resources/data/{w.dataset}/info.json"}
    if extractor_of(config, w.dataset) == "digits":
        inputs["weights"] = "resources/digits_classifier.pt"
    if is_model_run(w.run):
        inputs["figures"] = f"results/{w.dataset}/{w.run}/figures"
        if get_method(w.run.split("/")[0]).measures():
            inputs["measurements"] = f"results/{w.dataset}/{w.run}/measurements.json"
    return inputs


def score_args(w, input):
    """The score call's options as separate words (quoted by {params:q})."""
    args = ["--extractor", extractor_of(config, w.dataset)]
    if "weights" in input.keys():
        args += ["--weights", input.weights]
    elif config["metrics"]["inception_weights"]:
        args += ["--weights", config["metrics"]["inception_weights"]]
    if not config["metrics"]["precision_recall"]:
        args.append("--no-precision-recall")
    if is_model_run(w.run) and get_method(w.run.split("/")[0]).reconstructs():
        args += ["--recon", f"{input.figures}/recon.npz"]
    if "measurements" in input.keys():
        args += ["--measurements", input.measurements]
    return args


def comparison_runs(w):
    """The runs of the first seed on this dataset (and on its per-paper variants), and the uniform
    noise (samples and metrics)."""
    entries = {w.dataset, *variants_of(config, w.dataset)}
    dirs = [f"results/{d}/{m}/seed{config['seeds'][0]}" for m, d in planned_runs(config) if d in entries]
    dirs.append(f"results/{w.dataset}/uniform_noise")
    return [f"{d}/{f}" for d in dirs for f in ("samples.npz", "metrics.json")]


def comparison_dirs(w, input):
    return list(dict.fromkeys(os.path.dirname(f) for f in input))


# --- containers and cluster resources (docs/containers-and-clusters.md) ---------------------------
def in_container():
    return config["container"] == "docker"


def _method_of(wildcards):
    run = wildcards.get("run", "")
    return wildcards.get("method") or (None if run == "uniform_noise" else run.split("/")[0])


@functools.cache
def image_digest(method):
    """Content hash of the method's image inputs: it, not file times, decides a rebuild."""
    from ebmbench.container import content_hash, image_inputs

    opts = config["image"]
    return content_hash(image_inputs(method, opts["base_image"], opts["wheelhouse"], opts["extra_ca"]))


def image_record(wildcards):
    return f"resources/images/{_method_of(wildcards)}.json"


def image_input(wildcards):
    """The image record a job waits for (ancient: its rewrite must not rerun finished jobs; a new
    image does, through the tag in the command)."""
    return [ancient(image_record(wildcards))] if in_container() and _method_of(wildcards) else []


def apptainer_image(wildcards):
    """Snakemake's own container directive (used with --sdm apptainer): the method's image as a .sif
    file or docker:// URI, from the pattern image.apptainer; none for uniform noise and local runs."""
    method = _method_of(wildcards)
    if config["container"] != "apptainer" or not method:
        return None
    return config["image"]["apptainer"].format(method=method)


def extra_ca_args(wildcards):
    return ["--extra-ca", config["image"]["extra_ca"]] if config["image"]["extra_ca"] else []


def ebmbench_cmd(wildcards):
    """What runs the CLI: this environment, or the method's image (uniform noise has none: local)."""
    method = _method_of(wildcards)
    if config["container"] == "apptainer":
        return "python3 -P -m ebmbench"  # -P: the image's package, not a checkout in the bound working dir
    if not (in_container() and method):
        return "python -m ebmbench"
    from ebmbench.container import image_tag, run_prefix

    run = wildcards.get("run") or f"{wildcards.method}/seed{wildcards.seed}"
    weights = config["metrics"]["inception_weights"]
    return run_prefix(
        image_tag(method, image_digest(method)),
        image_record(wildcards),
        f"results/{wildcards.dataset}/{run}",
        CUDA,
        [os.path.abspath(weights)] if weights else [],
    )


def job_resource(stage, key):
    """One resource of a train/sample/score job, from its method preset; the SLURM profile submits
    with these. A paper preset on a CUDA device asks for one GPU; memory by image size; train time
    from the preset's n_iters at a budget of 0.5 s per iteration + 30 min (a budget, not a
    measurement: the paper presets are untimed on a GPU, docs/paper-runs.md). digits presets are CPU-sized."""

    def resource(wildcards, threads):
        preset = preset_of(config, wildcards.dataset)
        paper = preset != "digits"
        if key == "gpu":
            return int(paper and CUDA)
        if key == "cpus_per_task":
            return config["threads"]  # not `threads`: a dry run scales that to --cores
        if key == "mem_mb":
            return (32000 if preset == "celeba64" else 16000) if paper else 4000
        if not paper:
            return 30
        if stage != "train":
            return 240
        return 30 + math.ceil(method_config(wildcards).n_iters * 0.5 / 60)

    return resource


def job_resources(stage):
    return {key: job_resource(stage, key) for key in ("gpu", "cpus_per_task", "mem_mb", "runtime")}


# Jobs without a method (data, extractor, noise, figures, table): CPU-only, small. A multi-GPU box
# (`--resources gpu=N`) and SLURM read the same keys.
LIGHT = {"gpu": 0, "cpus_per_task": 1, "mem_mb": 4000, "runtime": 30}
