"""Reliability: resume-exact after SIGKILL, divergence handling, bad input, atomic writes, the gate."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from ebmbench.cli import main
from ebmbench.io import SuiteError, atomic_path, load_torch, save_torch

FAST = ["--set", "n_steps=8", "--set", "checkpoint_every=3", "--set", "recon_iters=2", "--set", "interp_points=2"]


def train_cmd(data, out, n_iters):
    return [
        sys.executable,
        "-m",
        "ebmbench",
        "train",
        "--method",
        "short_run",
        "--data",
        str(data),
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        "--set",
        f"n_iters={n_iters}",
        *FAST,
    ]


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def same_state(a, b):
    sa, sb = load_torch(a)["method_state"], load_torch(b)["method_state"]

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    fa, fb = dict(flat(sa)), dict(flat(sb))
    assert fa.keys() == fb.keys()
    for k in fa:
        if isinstance(fa[k], torch.Tensor):
            assert torch.equal(fa[k], fb[k]), k
        else:
            assert fa[k] == fb[k], k


def test_sigkill_and_resume_is_bit_identical(digits_dir, tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(train_cmd(digits_dir, full, 12), check=True, capture_output=True)
    proc = subprocess.Popen(train_cmd(digits_dir, killed, 12), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(log_lines(killed / "log.jsonl")) < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed; make the run longer"
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    assert not (killed / "model.pt").exists() and (killed / "state-latest.pt").exists()
    r = subprocess.run(train_cmd(digits_dir, killed, 12), check=True, capture_output=True, text=True)
    assert json.loads(r.stdout.strip().splitlines()[-1])["resumed_from"] in (6, 9)
    same_state(full / "model.pt", killed / "model.pt")
    assert log_lines(full / "log.jsonl") == log_lines(killed / "log.jsonl")
    for run in (full, killed):  # and the same samples, hence the same metrics
        assert (
            main(["sample", "--run", str(run), "--out", str(run), "--n", "16", "--threads", "1", "--no-progress"]) == 0
        )
    assert np.array_equal(np.load(full / "samples.npz")["images"], np.load(killed / "samples.npz")["images"])


def test_snakemake_rerun_of_a_killed_job_resumes_its_checkpoint(workflow_dir):
    (workflow_dir / "c.yaml").write_text(
        "methods: [short_run]\noverrides: {short_run: {digits: {n_iters: 40, n_steps: 8, checkpoint_every: 5}}}\n"
    )
    target = "results/digits/short_run/seed0/model.pt"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", target, "--configfile", "c.yaml"]
    proc = subprocess.Popen(
        cmd, cwd=workflow_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    log = workflow_dir / "results/digits/short_run/seed0/log.jsonl"
    deadline = time.time() + 180
    while len(log_lines(log)) < 12 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a node failure would
    proc.wait()
    # what a user does after a crash: release Snakemake's lock, rerun the incomplete job
    subprocess.run(cmd + ["--unlock"], cwd=workflow_dir, check=True, capture_output=True)
    r = subprocess.run(cmd + ["--rerun-incomplete"], cwd=workflow_dir, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((workflow_dir / "results/digits/short_run/seed0/train.json").read_text())
    assert summary["resumed_from"] >= 10 and summary["iterations"] == 40


@pytest.fixture
def nan_at(monkeypatch):
    """Make short_run's training step report NaN at the given iterations (first occurrence only)."""
    from ebmbench.methods.short_run import ShortRun

    calls, original = {"n": 0, "at": set()}, ShortRun.train_step

    def step(self, x, gen):
        stats = original(self, x, gen)
        i = calls["n"]
        calls["n"] += 1
        if i in calls["at"]:
            calls["at"].discard(i)
            stats["loss"] = float("nan")
        return stats

    monkeypatch.setattr(ShortRun, "train_step", step)
    return calls["at"]


def test_nan_stops_the_run_keeps_the_last_good_checkpoint_and_is_reported(
    digits_dir, tmp_path, nan_at, digits_classifier
):
    from ebmbench.divergence import DivergenceError
    from ebmbench.loop import train

    nan_at.add(4)
    run = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"iteration 4: loss = nan"):
        train(
            "short_run",
            digits_dir,
            run,
            overrides={"n_iters": 9, "n_steps": 4, "checkpoint_every": 3, "divergence_retries": 0},
            progress=False,
        )
    summary = json.loads((run / "train.json").read_text())
    assert summary["status"] == "diverged" and summary["iter"] == 4 and summary["quantity"] == "loss"
    final = load_torch(run / "model.pt")
    assert final["iter"] == 3 and final["status"]["status"] == "diverged"
    same_state(run / "model.pt", run / "state-latest.pt")  # the last good weights, nothing after them
    # downstream: no samples, no numbers, and the table says diverged
    main(["sample", "--run", str(run), "--out", str(run), "--n", "16", "--no-progress"])
    assert (
        main(
            [
                "score",
                "--samples",
                str(run / "samples.npz"),
                "--data",
                str(digits_dir),
                "--extractor",
                "digits",
                "--weights",
                str(digits_classifier),
                "--out",
                str(run / "metrics.json"),
            ]
        )
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "fid" not in metrics
    assert main(["table", str(run / "metrics.json"), "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert set(table["status"]) == {"diverged"} and table["measured"].isna().all()


def test_divergence_retry_restarts_from_checkpoint_with_a_new_seed(digits_dir, tmp_path, nan_at):
    from ebmbench.loop import train

    nan_at.add(4)
    summary = train(
        "short_run",
        digits_dir,
        tmp_path / "run",
        progress=False,
        overrides={"n_iters": 8, "n_steps": 4, "checkpoint_every": 3, "divergence_retries": 1},
    )
    assert summary["status"] == "ok" and len(summary["restarts"]) == 1
    restart = summary["restarts"][0]
    assert restart["iter"] == 4 and restart["resumed_at"] == 3
    events = [json.loads(line) for line in log_lines(tmp_path / "run" / "log.jsonl")]
    assert [e["iter"] for e in events if "event" not in e] == list(range(8))
    assert any(e.get("event") == "restart" and e["new_seed"] != 0 for e in events)


# ----------------------------------------------------------------------------
# Corrupt files and a full disk (the table of bad inputs and OS faults: tests/test_bad_input.py).


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from ebmbench.data import prepare

    root = tmp_path_factory.mktemp("bad")
    prepare("digits", {"kind": "digits"}, root, root / "digits")
    assert (
        main(
            [
                "train",
                "--method",
                "short_run",
                "--data",
                str(root / "digits"),
                "--out",
                str(root / "run"),
                "--no-progress",
                "--set",
                "n_iters=2",
                *FAST,
            ]
        )
        == 0
    )
    return root


def test_a_checkpoint_of_another_run_is_refused_or_set_aside(tiny_run, tmp_path, capsys):
    # The CLI refuses another run's checkpoint; the workflow (--other-run restart: it reruns a job
    # only when its config changed) sets it aside and trains the new config from iteration 0.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run)
    old = load_torch(run / "state-latest.pt")
    args = ["train", "--method", "short_run", "--data", str(tiny_run / "digits"), "--out", str(run), "--no-progress"]
    changed = [*args, "--set", "n_iters=3", *FAST, "--set", "n_steps=7"]
    assert main(changed) == 2
    err = capsys.readouterr().err
    assert "belongs to another run" in err and "config.n_steps" in err
    assert main([*changed, "--other-run", "restart"]) == 0
    assert "set aside" in capsys.readouterr().err
    kept = load_torch(run / "state-latest.other-run.pt")
    assert kept["iter"] == old["iter"] and kept["identity"] == old["identity"]
    assert (run / "log.other-run.jsonl").exists()
    new = load_torch(run / "state-latest.pt")
    assert new["identity"]["config"]["n_steps"] == 7 and new["iter"] == 3
    assert [json.loads(r)["iter"] for r in log_lines(run / "log.jsonl")] == [0, 1, 2]  # from iteration 0
    # the same run again resumes its own checkpoint (nothing set aside)
    (run / "state-latest.other-run.pt").unlink()
    assert main([*changed, "--other-run", "restart"]) == 0
    assert not (run / "state-latest.other-run.pt").exists()


def corrupt(path, keep=200):
    path.write_bytes(path.read_bytes()[:keep])


def test_corrupt_prepared_data_and_truncated_checkpoint(tiny_run, tmp_path, capsys):
    import shutil

    data = tmp_path / "digits"
    shutil.copytree(tiny_run / "digits", data)
    corrupt(data / "train.npy")
    assert main(["train", "--method", "short_run", "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "rerun prepare" in capsys.readouterr().err
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run)
    corrupt(run / "model.pt")
    assert main(["sample", "--run", str(run), "--out", str(run), "--n", "4"]) == 2
    assert "corrupt or truncated" in capsys.readouterr().err
    corrupt(run / "state-latest.pt")
    assert (
        main(
            [
                "train",
                "--method",
                "short_run",
                "--data",
                str(tiny_run / "digits"),
                "--out",
                str(run),
                "--set",
                "n_iters=2",
                *FAST,
            ]
        )
        == 2
    )
    assert "corrupt or truncated" in capsys.readouterr().err


def test_disk_full_while_writing_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    save_torch(target, {"w": torch.ones(3)})
    original = target.read_bytes()

    def full_disk(obj, f, *a, **k):  # save_torch hands torch.save an open file
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SuiteError, match=f"cannot write {target}.*disk holding it is full"):
        save_torch(target, {"w": torch.zeros(3)})
    assert target.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_atomic_path_publishes_only_complete_files(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"


# ----------------------------------------------------------------------------
# The regression gate.


def table_csv(path, rows):
    cols = ["method", "dataset", "metric", "measured", "status", "paper", "paper_source", "paper_tolerance", "verdict"]
    rows = [r + (None,) * (len(cols) - len(r)) for r in rows]  # no verdict unless given
    pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols).to_csv(path, index=False)


def test_gate_fails_only_on_the_regressed_metric(tmp_path, capsys):
    table_csv(
        tmp_path / "table.csv",
        [
            (
                "short_run",
                "digits",
                "fid",
                520.0,
                "done",
                None,
                None,
                None,
            ),  # regressed: expected 400 +- 20 %
            ("short_run", "digits", "is", 7.5, "done", None, None, None),  # improved: expected 5 +- 20 %
            ("short_run", "digits", "kid", 21000.0, "done", None, None, None),  # within tolerance
        ],
    )
    pd.DataFrame(
        [
            ("short_run", "digits", "fid", 400.0, 0.2, "3 seeds"),
            ("short_run", "digits", "is", 5.0, 0.2, "3 seeds"),
            ("short_run", "digits", "kid", 20000.0, 0.2, "3 seeds"),
        ],
        columns=["method", "dataset", "metric", "expected", "tolerance", "reason"],
    ).to_csv(tmp_path / "exp.csv", index=False)
    assert main(["check", str(tmp_path / "table.csv"), "--against", str(tmp_path / "exp.csv")]) == 1
    out = capsys.readouterr().out
    assert "short_run/digits/fid" in out and "/is" not in out and "/kid" not in out and "1 regression" in out


def test_gate_counts_a_missing_or_diverged_metric_as_a_failure(tmp_path, capsys):
    table_csv(tmp_path / "table.csv", [("short_run", "digits", "fid", None, "diverged", None, None, None)])
    pd.DataFrame(
        [("short_run", "digits", "fid", 400.0, 0.2, "x"), ("dual_mcmc", "digits", "fid", 300.0, 0.2, "x")],
        columns=["method", "dataset", "metric", "expected", "tolerance", "reason"],
    ).to_csv(tmp_path / "e.csv", index=False)
    assert main(["check", str(tmp_path / "table.csv"), "--against", str(tmp_path / "e.csv")]) == 1
    assert "2 regression" in capsys.readouterr().out


def test_gate_against_paper_fails_on_a_worse_verdict_and_passes_on_reproduced(tmp_path, capsys):
    """The paper gate reads the verdict, not a tolerance band: a measurement 19 % off the paper whose
    interval still covers it passes, one 13 % off with a tight interval fails."""
    table_csv(
        tmp_path / "table.csv",
        [
            ("short_run", "celeba64", "fid", 27.4, "done", 23.02, "Dual-MCMC T1", 0.10, "reproduced"),
            ("short_run", "cifar10", "is", 5.4, "done", 6.21, "Dual-MCMC T1", 0.20, "worse (-3.1 widths)"),
            ("short_run", "svhn", "fid", 16.0, "done", 20.0, "T", 0.10, "better (-2.0 widths) [unverified]"),
            ("short_run", "cifar10", "fid", 50.0, "done", 44.5, "T", 0.10, "inconclusive"),
            ("dual_mcmc", "cifar10", "fid", None, "not run", 15.89, "Dual-MCMC T1", 0.10, "not run"),
        ],
    )
    assert main(["check", str(tmp_path / "table.csv"), "--against", "paper"]) == 1
    out = capsys.readouterr().out
    assert "cifar10/is" in out and "verdict: worse (-3.1 widths)" in out and "1 regression" in out
    assert "celeba64" not in out and "svhn" not in out and "cifar10/fid" not in out and "dual_mcmc" not in out
    table_csv(
        tmp_path / "ok.csv",
        [("short_run", "celeba64", "fid", 27.4, "done", 23.02, "Dual-MCMC T1", 0.10, "reproduced [unverified]")],
    )
    assert main(["check", str(tmp_path / "ok.csv"), "--against", "paper"]) == 0
    assert "no verdict worse than the paper" in capsys.readouterr().out


def test_gate_against_paper_fails_on_a_diverged_or_valueless_run(tmp_path, capsys):
    table_csv(
        tmp_path / "table.csv",
        [
            ("short_run", "cifar10", "fid", None, "diverged", 44.5, "T", 0.10, "diverged"),
            ("short_run", "cifar10", "is", None, "unavailable (seed 0: too few)", 6.21, "T", 0.10, "not run"),
        ],
    )
    assert main(["check", str(tmp_path / "table.csv"), "--against", "paper"]) == 1
    out = capsys.readouterr().out
    assert "status: diverged" in out and "status: unavailable (seed 0: too few)" in out and "2 regression" in out
