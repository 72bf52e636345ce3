"""Config errors fail before any job runs and name the offending key."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ebmbench.io import SuiteError
from ebmbench.method_base import apply_overrides
from ebmbench.registry import resolve_config
from ebmbench.run_plan import check_workflow_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def checked(cfg):
    cfg = copy.deepcopy(cfg)
    validate(cfg, str(ROOT / "config/schema.yaml"))
    check_workflow_config(cfg)


def test_default_and_paper_configs_are_valid():
    checked(DEFAULT)
    checked({**DEFAULT, **yaml.safe_load((ROOT / "config/paper.yaml").read_text())})


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"n_sample": 10}, "n_sample"),  # unknown top-level key
        ({"n_samples": "many"}, "n_samples"),  # wrong type
        ({"seeds": [-1]}, "-1"),  # out of range
        ({"device": "gpu"}, "gpu"),
        ({"dataset_options": {"digits": {"kind": "digits", "crop_box": [1, 2, 3, 4]}}}, "crop_box"),
    ],
)
def test_schema_errors_name_the_key(change, needle):
    with pytest.raises(Exception) as e:
        checked({**DEFAULT, **change})
    assert needle in str(e.value)


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"methods": ["shortrun"]}, "unknown method 'shortrun'"),
        ({"datasets": ["mnist"]}, "dataset 'mnist'"),
        ({"overrides": {"short_run": {"digits": {"n_iter": 5}}}}, "unknown config key 'n_iter'"),
        ({"overrides": {"short_run": {"digits": {"n_iters": "long"}}}}, "'n_iters'"),
        ({"overrides": {"short_run": {"digits": {"lr": -1.0}}}}, "'lr'"),
        ({"overrides": {"short_run": {"mnist": {"n_iters": 5}}}}, "no preset 'mnist'"),
        ({"datasets": ["mine"], "dataset_options": {"mine": {"kind": "folder"}}}, "needs a 'path'"),
    ],
)
def test_semantic_errors_name_the_key(change, needle):
    with pytest.raises(SuiteError, match=needle.replace("(", r"\(")):
        checked({**DEFAULT, **change})


def test_override_types_are_coerced_only_when_safe():
    cfg = resolve_config("short_run", "digits")
    assert apply_overrides(cfg, {"lr": 1}).lr == 1.0  # an int where a float is expected is fine
    with pytest.raises(SuiteError):
        apply_overrides(cfg, {"n_iters": 2.5})
    with pytest.raises(SuiteError):
        apply_overrides(cfg, {"n_iters": True})


def snakemake(workdir, *args):
    # the target goes before --configfile, which takes several values and would swallow it
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args], capture_output=True, text=True, cwd=workdir
    )


def test_workflow_refuses_a_bad_key_before_any_job(workflow_dir):
    (workflow_dir / "bad.yaml").write_text("overrides: {short_run: {digits: {n_step: 3}}}\n")
    r = snakemake(workflow_dir, "results/table.csv", "--configfile", "bad.yaml")
    assert r.returncode != 0 and "n_step" in r.stdout + r.stderr
    assert not (workflow_dir / "results").exists()


def test_paper_config_plans_without_data(workflow_dir):
    r = snakemake(workflow_dir, "results/table.csv", "--configfile", "config/paper.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("svhn", "cifar10", "celeba64", "svhn_40k", "cifar10_40k", "celeba64_40k"):
        assert f"resources/data/{name}/info.json" in r.stdout
    # each method on its paper's protocol: short-run and Pang et al. on the 40k subsets, Dual-MCMC on its box
    for run in (
        "celeba64_40k/short_run",
        "cifar10_40k/short_run",
        "celeba64_40k/latent_ebm",
        "celeba64/dual_mcmc",
        "cifar10/dual_mcmc",
        "svhn/latent_ebm",
    ):
        assert f"results/{run}/seed0/metrics.json" in r.stdout, run
    for run in ("celeba64/short_run", "cifar10/short_run", "celeba64/latent_ebm", "celeba64_40k/dual_mcmc"):
        assert f"results/{run}/seed0" not in r.stdout, run


PAPER = {**DEFAULT, **yaml.safe_load((ROOT / "config/paper.yaml").read_text())}


def protocol(config, method, dataset):
    """What the workflow gives `method` on the listed `dataset`: the prepared data's crop, resize,
    training split (= FID reference), and the run's training subset, sample count and flips."""
    from ebmbench.run_plan import entry_for, preset_of

    entry = entry_for(config, method, dataset)
    opts, preset = config["dataset_options"][entry], preset_of(config, entry)
    cfg = resolve_config(method, preset, config["overrides"].get(method, {}).get(preset, {}))
    return {
        "entry": entry,
        "preset": preset,
        "crop": opts.get("crop"),
        "resize": opts.get("resize", "bicubic"),
        "reference": opts.get("n_train", "whole train split"),
        "n_train": cfg.n_train or opts.get("n_train", "all"),
        "n_samples": cfg.n_samples or config["n_samples"],
        "hflip": cfg.hflip,
    }


CENTRE, DUAL_BOX = [0, 20, 178, 198], [15, 40, 163, 188]


@pytest.mark.parametrize(
    "method,dataset,expected",
    [
        # Dual-MCMC's released CelebA-64 data: its box, bilinear, whole split as data and reference, flips, 50k
        (
            "dual_mcmc",
            "celeba64",
            {
                "entry": "celeba64",
                "crop": DUAL_BOX,
                "resize": "bilinear",
                "reference": "whole train split",
                "n_train": "all",
                "n_samples": 50_000,
                "hflip": True,
            },
        ),
        (
            "dual_mcmc",
            "cifar10",
            {"entry": "cifar10", "reference": "whole train split", "n_samples": 50_000, "hflip": False},
        ),
        # short-run sec. 5.1: 40,000 training images (its reference), 40,000 generated, no flips
        (
            "short_run",
            "celeba64",
            {
                "entry": "celeba64_40k",
                "crop": CENTRE,
                "reference": 40_000,
                "n_train": 40_000,
                "n_samples": 40_000,
                "hflip": False,
            },
        ),
        ("short_run", "cifar10", {"entry": "cifar10_40k", "reference": 40_000, "n_train": 40_000, "n_samples": 40_000}),
        ("short_run", "svhn", {"entry": "svhn_40k", "reference": 40_000, "n_samples": 40_000}),
        # Pang et al.: whole split and 50k on SVHN / CIFAR-10; CelebA on SRI's 40k centre-cropped subset, <= 40k generated
        (
            "latent_ebm",
            "svhn",
            {"entry": "svhn", "reference": "whole train split", "n_samples": 50_000, "hflip": False},
        ),
        (
            "latent_ebm",
            "celeba64",
            {"entry": "celeba64_40k", "crop": CENTRE, "reference": 40_000, "n_samples": 40_000, "hflip": False},
        ),
        ("vae", "celeba64", {"entry": "celeba64_40k", "n_samples": 40_000}),
        ("abp", "celeba64", {"entry": "celeba64_40k", "n_samples": 40_000}),
        ("coopnets", "celeba64", {"entry": "celeba64", "crop": DUAL_BOX, "n_samples": 50_000, "hflip": False}),
    ],
)
def test_paper_plan_gives_each_method_its_papers_protocol(method, dataset, expected):
    from ebmbench.run_plan import planned_runs

    got = protocol(PAPER, method, dataset)
    assert (method, got["entry"]) in planned_runs(PAPER)
    assert got["preset"] == dataset  # a variant runs the dataset's own paper preset
    assert {k: got[k] for k in expected} == expected


def test_every_planned_run_of_the_paper_config_is_a_listed_dataset_once():
    from ebmbench.run_plan import planned_runs

    runs = planned_runs(PAPER)
    assert len(runs) == len(set(runs))
    reported = [(m, PAPER["dataset_options"][e].get("variant_of", e)) for m, e in runs]
    assert len(reported) == len(set(reported))  # the table groups by (method, reported dataset)
    assert {d for _, d in reported} == set(PAPER["datasets"])


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"x": {"kind": "digits", "variant_of": "nope", "methods": ["short_run"]}}, "variant_of must name"),
        ({"x": {"kind": "cifar10", "variant_of": "digits", "methods": ["short_run"]}}, "differs from"),
        ({"x": {"kind": "digits", "variant_of": "digits"}}, "needs 'methods'"),
        ({"x": {"kind": "digits", "variant_of": "digits", "methods": ["shortrun"]}}, "unknown method 'shortrun'"),
        ({"x": {"kind": "digits", "methods": ["short_run"]}}, "belongs to a protocol variant"),
        (
            {
                "x": {"kind": "digits", "variant_of": "digits", "methods": ["short_run"]},
                "y": {"kind": "digits", "variant_of": "digits", "methods": ["vae", "short_run"]},
            },
            "also in variant",
        ),
        (
            {
                "x": {"kind": "digits", "variant_of": "digits", "methods": ["short_run"]},
                "y": {"kind": "digits", "variant_of": "x", "methods": ["vae"]},
            },
            "variant_of must name",
        ),
    ],
)
def test_protocol_variants_are_checked(change, needle):
    cfg = copy.deepcopy(DEFAULT)
    cfg["dataset_options"].update(change)
    with pytest.raises(SuiteError, match=needle):
        checked(cfg)


def test_a_variant_listed_in_datasets_is_refused():
    cfg = copy.deepcopy(DEFAULT)
    cfg["dataset_options"]["digits_sub"] = {"kind": "digits", "variant_of": "digits", "methods": ["short_run"]}
    cfg["datasets"] = ["digits", "digits_sub"]
    with pytest.raises(SuiteError, match="not its variant"):
        checked(cfg)


def test_a_variant_is_prepared_as_its_dataset_with_its_own_data(tmp_path):
    """Its runs are labelled with the dataset the papers' numbers name; its content hash (the name of
    its cached FID reference statistics) is its own."""
    from ebmbench.data import prepare
    from ebmbench.run_plan import planned_runs, skipped_runs

    spec = {"kind": "digits", "variant_of": "digits", "methods": ["short_run"], "n_train": 500}
    cfg = copy.deepcopy(DEFAULT)
    cfg["dataset_options"]["digits_sub"] = spec
    checked(cfg)
    assert ("short_run", "digits_sub") in planned_runs(cfg) and ("short_run", "digits") not in planned_runs(cfg)
    assert ("vae", "digits") in planned_runs(cfg) and skipped_runs(cfg) == []
    plain = prepare("digits", {"kind": "digits"}, tmp_path, tmp_path / "digits")
    sub = prepare("digits_sub", spec, tmp_path, tmp_path / "digits_sub")
    assert plain["name"] == sub["name"] == "digits" and sub["entry"] == "digits_sub" and "entry" not in plain
    assert sub["n_train"] == 500 and sub["n_test"] == plain["n_test"] and sub["sha256"] != plain["sha256"]
    assert "protocol variant 'digits_sub'" in sub["preprocessing"]
