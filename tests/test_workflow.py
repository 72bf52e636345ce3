"""The whole workflow on a tiny config, as a user runs it: snakemake -> table, grids, curves, report."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

TINY = """
methods: [short_run]
n_samples: 64
n_recon: 16
overrides:
  short_run:
    digits: {n_iters: 6, checkpoint_every: 3, recon_iters: 3, interp_points: 3}
"""


def run(workdir, *args, env=None):
    r = subprocess.run([sys.executable, "-m", "snakemake", *args], capture_output=True, text=True, cwd=workdir, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.mark.slow
def test_tiny_workflow_end_to_end(workflow_dir):
    (workflow_dir / "tiny.yaml").write_text(TINY)
    run(workflow_dir, "--cores", "2", "results/table.csv", "--configfile", "tiny.yaml")
    table = pd.read_csv(workflow_dir / "results/table.csv")
    got = {(r.method, r.metric): r for r in table.itertuples()}
    for metric in ("fid", "is", "kid"):
        assert got[("short_run", metric)].n_seeds == 1 and got[("uniform_noise", metric)].status == "reference"
    assert got[("short_run", "fid")].n_generated == 64 and got[("short_run", "fid")].n_reference == 1497
    run_dir = workflow_dir / "results/digits/short_run/seed0"
    for f in ("grid.png", "curves.png", "figures/interpolation.png", "figures/reconstruction.png", "log.jsonl"):
        assert (run_dir / f).stat().st_size > 0, f
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 6
    # Snakemake's own benchmark record of each heavy job (wall s, peak RSS, CPU time): the cost table's source
    for rule in ("train", "sample", "score"):
        bench = pd.read_csv(workflow_dir / f"results/benchmarks/{rule}/digits/short_run/seed0.tsv", sep="\t")
        assert len(bench) == 1 and bench["s"].iloc[0] > 0 and "max_rss" in bench.columns, rule
    run(workflow_dir, "results/table.csv", "--configfile", "tiny.yaml", "--report", "report.html")
    assert "Comparison table" in (workflow_dir / "report.html").read_text(errors="ignore")


PROBE = """
methods: [probe]
overrides:
  probe:
    digits: {n_iters: 2, checkpoint_every: 2}
"""


@pytest.mark.slow
def test_a_preset_changed_in_its_method_file_trains_the_run_again(workflow_dir):
    """The resolved Config is a parameter of the train job: after a preset is edited in its method
    file (no override touched), the next run plans the training again instead of keeping the model
    the old preset trained. The method is the example plug-in, copied so the test can edit it."""
    example = Path(__file__).resolve().parents[1] / "examples/example_ebm/example_ebm/method.py"
    source = example.read_text()
    assert source.count("lr=3e-4") == 1
    (workflow_dir / "probe_pkg").mkdir()
    (workflow_dir / "probe_pkg/__init__.py").write_text("")
    (workflow_dir / "probe_pkg/method.py").write_text(source)
    (workflow_dir / "probe.yaml").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(workflow_dir), "EBMBENCH_PLUGINS": "probe=probe_pkg.method:ExampleEbm"}
    target = ["results/digits/probe/seed0/model.pt", "--configfile", "probe.yaml"]
    run(workflow_dir, "--cores", "2", *target, env=env)
    assert "Nothing to be done" in run(workflow_dir, "-n", *target, env=env).stdout

    (workflow_dir / "probe_pkg/method.py").write_text(source.replace("lr=3e-4", "lr=2e-4"))
    plan = run(workflow_dir, "-n", *target, env=env).stdout
    assert "rule train:" in plan and "Params have changed" in plan, plan[-2000:]
