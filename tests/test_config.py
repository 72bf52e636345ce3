"""Config errors fail before any job runs and name the offending key."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from ebmbench.config import check_workflow_config
from ebmbench.io import SuiteError
from ebmbench.method import apply_overrides
from ebmbench.registry import resolve_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "config/config.yaml").read_text())


def checked(cfg):
    cfg = copy.deepcopy(cfg)
    validate(cfg, str(ROOT / "config/schema.yaml"))
    check_workflow_config(cfg)


def test_default_and_paper_configs_are_valid():
    checked(DEFAULT)
    checked({**DEFAULT, **yaml.safe_load((ROOT / "config/paper.yaml").read_text())})


@pytest.mark.parametrize("change,needle", [
    ({"n_sample": 10}, "n_sample"),  # unknown top-level key
    ({"n_samples": "many"}, "n_samples"),  # wrong type
    ({"seeds": [-1]}, "-1"),  # out of range
    ({"device": "gpu"}, "gpu"),
    ({"dataset_options": {"digits": {"kind": "digits", "crop_box": [1, 2, 3, 4]}}}, "crop_box"),
])
def test_schema_errors_name_the_key(change, needle):
    with pytest.raises(Exception) as e:
        checked({**DEFAULT, **change})
    assert needle in str(e.value)


@pytest.mark.parametrize("change,needle", [
    ({"methods": ["shortrun"]}, "unknown method 'shortrun'"),
    ({"datasets": ["mnist"]}, "dataset 'mnist'"),
    ({"overrides": {"short_run": {"digits": {"n_iter": 5}}}}, "unknown config key 'n_iter'"),
    ({"overrides": {"short_run": {"digits": {"n_iters": "long"}}}}, "'n_iters'"),
    ({"overrides": {"short_run": {"digits": {"lr": -1.0}}}}, "'lr'"),
    ({"overrides": {"short_run": {"mnist": {"n_iters": 5}}}}, "no preset 'mnist'"),
    ({"datasets": ["mine"], "dataset_options": {"mine": {"kind": "folder"}}}, "needs a 'path'"),
])
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
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", *args],
                          capture_output=True, text=True, cwd=workdir)


def test_workflow_refuses_a_bad_key_before_any_job(workflow_dir):
    (workflow_dir / "bad.yaml").write_text("overrides: {short_run: {digits: {n_step: 3}}}\n")
    r = snakemake(workflow_dir, "results/table.csv", "--configfile", "bad.yaml")
    assert r.returncode != 0 and "n_step" in r.stdout + r.stderr
    assert not (workflow_dir / "results").exists()


def test_paper_config_plans_without_data(workflow_dir):
    r = snakemake(workflow_dir, "results/table.csv", "--configfile", "config/paper.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("svhn", "cifar10", "celeba64"):
        assert f"resources/data/{name}/info.json" in r.stdout
