"""The suite as its ecosystem expects it: a lint-clean workflow, config defaults from the schema,
rule arguments quoted by Snakemake, and a package that installs as ebmbench only."""

import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def snakemake(cwd, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True)


def test_snakemake_lint_is_clean():
    r = snakemake(ROOT, "--lint")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Congratulations" in r.stdout + r.stderr


def test_schema_defaults_equal_the_shipped_config():
    """A config file that names only the required keys gets every other value from the schema's
    defaults (snakemake's validate fills them in), and they are the values config.yaml states."""
    from snakemake.utils import validate

    from ebmbench.container import DEFAULT_BASE

    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    minimal = {k: shipped[k] for k in schema["required"]}
    validate(minimal, str(ROOT / "config/schema.yaml"))
    for key in ("n_recon", "threads", "overrides", "container", "metrics", "image"):
        assert minimal[key] == shipped[key], key
    assert minimal["image"]["base_image"] == DEFAULT_BASE


def test_rule_arguments_are_quoted_by_snakemake(workflow_dir):
    """A folder dataset whose path has a space and a quote, and an override with a string value,
    reach the shell as single words ({params.x:q}), not split or broken."""
    cfg = {
        "datasets": ["mine"],
        "methods": ["short_run"],
        "dataset_options": {
            "mine": {"kind": "folder", "path": "/data/my images/o'neil", "image_size": 32, "preset": "digits"}
        },
        "overrides": {"short_run": {"digits": {"n_iters": 3}}},
    }
    (workflow_dir / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = snakemake(workflow_dir, "-n", "-p", "--cores", "1", "results/table.csv", "--configfile", "c.yaml")
    assert r.returncode == 0, r.stderr[-3000:]
    prepare = next(line for line in r.stdout.splitlines() if "ebmbench prepare" in line)
    spec = prepare.split("--spec ", 1)[1].split(" --data-root")[0]
    assert json.loads(shlex.split(spec)[0])["path"] == "/data/my images/o'neil"
    train = next(line for line in r.stdout.splitlines() if "ebmbench train" in line)
    assert "--set n_iters=3" in train


def test_installs_as_ebmbench_only(tmp_path):
    """methods/ is the package ebmbench.methods: the built wheel holds no top-level `methods`, ships
    the paper-number data, and in this environment `import methods` fails outside the checkout."""
    src = tmp_path / "src"  # a copy: setuptools writes build/ beside the sources
    for name in ("pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    for d in ("ebmbench", "methods"):
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = tmp_path.glob("ebmbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.startswith("ebmbench-")} == {"ebmbench"}
    assert "ebmbench/methods/short_run.py" in names and "ebmbench/methods/paper_numbers.csv" in names
    assert "ebmbench/__init__.py" in names

    def py(code):
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)

    assert py("import methods").returncode != 0
    assert py("import ebmbench.methods.short_run").returncode == 0


def test_version_and_params_from_the_console_script(tmp_path):
    exe = Path(sys.executable).parent / "ebmbench"
    r = subprocess.run([exe, "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ebmbench {metadata.version('ebmbench')}"
    r = subprocess.run([exe, "params"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "short_run" in r.stdout and "dual_mcmc" in r.stdout


def test_every_metrics_json_records_the_suite_version(tmp_path):
    from ebmbench.provenance import provenance

    samples = tmp_path / "samples.npz"
    samples.write_bytes(b"")
    assert provenance(samples, "cpu")["ebmbench"] == metadata.version("ebmbench")


def test_a_closed_pipe_is_not_an_error(tmp_path):
    """`ebmbench params | head -1`: the reader leaves early; the CLI exits 0 without a traceback."""
    exe = Path(sys.executable).parent / "ebmbench"
    r = subprocess.run(
        f"'{exe}' params | head -1", shell=True, cwd=tmp_path, capture_output=True, text=True, executable="/bin/bash"
    )
    status = subprocess.run(
        f"'{exe}' params | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        executable="/bin/bash",
    )
    assert len(r.stdout.splitlines()) == 1 and r.stderr == ""
    assert status.returncode == 0 and status.stderr == ""
