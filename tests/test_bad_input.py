"""Every bad input and OS fault across the commands: one paragraph naming the value or path, a
non-zero exit, no traceback, and no output file changed or left behind.

The cases are a table (CASES); each builds its arguments inside one shared fixture folder, and the
whole folder is compared byte for byte (and by mode) before and after the command. Disk full and
read-only are real: a small tmpfs mounted where the tests run as root, skipped (reason printed)
otherwise. Permission denied runs the command as user `nobody` when the tests run as root.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ebmbench.cli import main
from ebmbench.io import save_npz, save_torch, write_json

FAST = [
    "--no-progress",
    "--threads",
    "1",
    "--set",
    "n_steps=4",
    "--set",
    "recon_iters=2",
    "--set",
    "interp_points=2",
    "--set",
    "checkpoint_every=2",
]


def png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Valid inputs the bad cases start from: prepared digits, a tiny trained and sampled run, a
    digits-classifier-shaped weights file, a prepared folder dataset, metrics and table files."""
    from ebmbench.data import prepare
    from ebmbench.evaluate.digits_classifier import DigitsClassifier

    r = tmp_path_factory.mktemp("bad")
    prepare("digits", {"kind": "digits"}, r, r / "digits")
    rng = np.random.RandomState(0)
    for i in range(10):
        png(r / "imgs" / f"{i}.png", rng.randint(0, 256, (40, 40, 3), dtype=np.uint8))
    prepare("mine", {"kind": "folder", "path": str(r / "imgs")}, r, r / "mine")
    for i in range(5):
        png(r / "few" / f"{i}.png", rng.randint(0, 256, (40, 40, 3), dtype=np.uint8))
    shutil.copytree(r / "imgs", r / "floaty")
    Image.fromarray(rng.rand(40, 40).astype(np.float32), "F").save(r / "floaty" / "f.tiff")
    shutil.copytree(r / "imgs", r / "broken")
    (r / "broken" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert (
        main(
            [
                "train",
                "--method",
                "short_run",
                "--data",
                str(r / "digits"),
                "--out",
                str(r / "run"),
                "--set",
                "n_iters=2",
                *FAST,
            ]
        )
        == 0
    )
    assert (
        main(
            ["sample", "--run", str(r / "run"), "--out", str(r / "run"), "--n", "12", "--no-progress", "--threads", "1"]
        )
        == 0
    )
    shutil.copytree(r / "run", r / "badrun")
    for f in ("model.pt", "state-latest.pt"):
        (r / "badrun" / f).write_bytes((r / "run" / f).read_bytes()[:300])
    (r / "empty").mkdir()
    (r / "afile").write_text("not a folder\n")
    save_torch(r / "w.pt", {"state_dict": DigitsClassifier().state_dict(), "arch": "conv", "test_accuracy": 0.0})
    save_npz(r / "float" / "samples.npz", images=np.zeros((12, 32, 32, 3), np.float32))
    save_npz(r / "one" / "samples.npz", images=np.zeros((1, 32, 32, 3), np.uint8))
    (r / "cache").mkdir()
    info = json.loads((r / "digits" / "info.json").read_text())
    (r / "cache" / f"digits-train-{info['sha256'][:16]}-digitsclf-x-features.pt").write_bytes(b"PK\x03\x04 truncated")
    ok = {
        "method": "short_run",
        "dataset": "digits",
        "seed": 0,
        "status": "ok",
        "fid": 10.0,
        "is": 2.0,
        "kid": 0.1,
        "n_generated": 12,
        "n_reference": 1497,
        "extractor": "digitsclf-x",
    }
    write_json(r / "m" / "a.json", ok)
    write_json(r / "m" / "same_run.json", ok)
    write_json(r / "m" / "no_counts.json", {k: v for k, v in ok.items() if k != "n_generated"})
    (r / "m" / "nan.json").write_text(json.dumps({**ok, "seed": 1, "fid": float("nan")}))
    (r / "m" / "cut.json").write_text('{"method": "short_run", "dat')
    cols = ["method", "dataset", "metric", "measured", "status", "paper", "paper_source", "paper_tolerance", "verdict"]
    pd.DataFrame([("short_run", "digits", "fid", 10.0, "done", None, None, None, None)], columns=cols).to_csv(
        r / "table.csv", index=False
    )
    exp = ["method", "dataset", "metric", "expected", "tolerance", "reason"]
    pd.DataFrame([], columns=exp).to_csv(r / "exp_empty.csv", index=False)
    pd.DataFrame([("short_run", "digits", "fid", 10.0, "lots", "x")], columns=exp).to_csv(
        r / "exp_tol.csv", index=False
    )
    pd.DataFrame([("short_run", "digits", "fidd", 10.0, 0.2, "x")], columns=exp).to_csv(
        r / "exp_metric.csv", index=False
    )
    return r


def T(*a):  # train with the fast settings
    return ["train", "--method", "short_run", *FAST, *a]  # later --set values win


def S(r, *a, samples="run/samples.npz", weights="w.pt"):  # score
    return [
        "score",
        "--samples",
        f"{r}/{samples}",
        "--data",
        f"{r}/digits",
        "--extractor",
        "digits",
        *(["--weights", f"{r}/{weights}"] if weights else []),
        "--out",
        f"{r}/x.json",
        *a,
    ]


# name -> (arguments built from the fixture folder r, text the message must contain)
CASES = {
    # prepare
    "prepare: unknown dataset kind": (lambda r: ["prepare", "--dataset", "mnist", "--out", f"{r}/x"], "'mnist'"),
    "prepare: spec not JSON": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", "{kind: digits", "--out", f"{r}/x"],
        "{kind: digits",
    ),
    "prepare: spec not an object": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", "[1]", "--out", f"{r}/x"],
        "must be a JSON object",
    ),
    "prepare: test_fraction 1.5": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/imgs", "test_fraction": 1.5}),
            "--out",
            f"{r}/x",
        ],
        "test_fraction: 1.5",
    ),
    "prepare: n_train 0": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", '{"n_train": 0}', "--out", f"{r}/x"],
        "n_train: 0",
    ),
    "prepare: image_size 7": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", '{"image_size": 7}', "--out", f"{r}/x"],
        "image_size: 7",
    ),
    "prepare: unknown spec key": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", '{"colour": 1}', "--out", f"{r}/x"],
        "'colour'",
    ),
    "prepare: folder without path": (
        lambda r: ["prepare", "--dataset", "mine", "--spec", '{"kind": "folder"}', "--out", f"{r}/x"],
        "needs a 'path'",
    ),
    "prepare: folder missing": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/nowhere"}),
            "--out",
            f"{r}/x",
        ],
        "/nowhere",
    ),
    "prepare: folder of 5 images": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/few"}),
            "--out",
            f"{r}/x",
        ],
        "found 5",
    ),
    "prepare: corrupt image": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/broken"}),
            "--out",
            f"{r}/x",
        ],
        "cut.png",
    ),
    "prepare: float image mode": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/floaty"}),
            "--out",
            f"{r}/x",
        ],
        "f.tiff",
    ),
    "prepare: no training image left": (
        lambda r: [
            "prepare",
            "--dataset",
            "mine",
            "--spec",
            json.dumps({"kind": "folder", "path": f"{r}/imgs", "test_fraction": 0.96}),
            "--out",
            f"{r}/x",
        ],
        "test_fraction 0.96",
    ),
    "prepare: n_train above the split": (
        lambda r: ["prepare", "--dataset", "digits", "--spec", '{"n_train": 5000}', "--out", f"{r}/x"],
        "n_train 5000",
    ),
    "prepare: missing data root": (
        lambda r: ["prepare", "--dataset", "cifar10", "--data-root", f"{r}/nowhere", "--out", f"{r}/x"],
        "nowhere/cifar10",
    ),
    "prepare: --out is a file": (lambda r: ["prepare", "--dataset", "digits", "--out", f"{r}/afile"], "afile"),
    "prepare: --out below a file": (lambda r: ["prepare", "--dataset", "digits", "--out", f"{r}/afile/sub"], "afile"),
    # classifier
    "classifier: data missing": (lambda r: ["classifier", "--data", f"{r}/nodata", "--out", f"{r}/c.pt"], "nodata"),
    "classifier: not the digits data": (
        lambda r: ["classifier", "--data", f"{r}/mine", "--out", f"{r}/c.pt"],
        "'mine'",
    ),
    "classifier: --out is a folder": (
        lambda r: ["classifier", "--data", f"{r}/digits", "--out", f"{r}/empty"],
        "empty",
    ),
    "classifier: --threads 0": (
        lambda r: ["classifier", "--data", f"{r}/digits", "--out", f"{r}/c.pt", "--threads", "0"],
        "--threads",
    ),
    # train
    "train: unknown method": (
        lambda r: ["train", "--method", "nope", "--data", f"{r}/digits", "--out", f"{r}/x"],
        "'nope'",
    ),
    "train: unknown config key": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "n_iter=3"),
        "'n_iter'",
    ),
    "train: wrong type": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "n_iters=lots"), "'lots'"),
    "train: negative lr": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "lr=-0.1"), "-0.1"),
    "train: batch_size 0": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "batch_size=0"),
        "'batch_size'",
    ),
    "train: n_iters 0": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "n_iters=0"), "'n_iters'"),
    "train: checkpoint_every 0": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "checkpoint_every=0"),
        "'checkpoint_every'",
    ),
    "train: --set without =": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "n_iters"),
        "'n_iters'",
    ),
    "train: --set not YAML": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--set", "lr=[1"), "[1"),
    "train: unknown preset": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--preset", "mnist"), "'mnist'"),
    "train: device gpu": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--device", "gpu"), "'gpu'"),
    "train: negative seed": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/x", "--seed", "-1"), "-1"),
    "train: data missing": (lambda r: T("--data", f"{r}/nodata", "--out", f"{r}/x"), "nodata"),
    "train: data is a file": (lambda r: T("--data", f"{r}/afile", "--out", f"{r}/x"), "afile"),
    "train: data not prepared": (lambda r: T("--data", f"{r}/empty", "--out", f"{r}/x"), "empty/info.json"),
    "train: --out is a file": (lambda r: T("--data", f"{r}/digits", "--out", f"{r}/afile"), "afile"),
    "train: batch above the data": (
        lambda r: T("--data", f"{r}/mine", "--out", f"{r}/x", "--preset", "digits", "--set", "batch_size=64"),
        "batch_size 64",
    ),
    "train: checkpoint of another config": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/run", "--set", "n_iters=2", "--set", "n_f=8"),
        "n_f",
    ),
    "train: corrupt checkpoint": (
        lambda r: T("--data", f"{r}/digits", "--out", f"{r}/badrun", "--set", "n_iters=2"),
        "corrupt or truncated",
    ),
    # sample and noise
    "sample: run missing": (lambda r: ["sample", "--run", f"{r}/norun", "--out", f"{r}/x", "--n", "4"], "norun"),
    "sample: no model.pt": (lambda r: ["sample", "--run", f"{r}/empty", "--out", f"{r}/x", "--n", "4"], "model.pt"),
    "sample: --n 0": (lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/x", "--n", "0"], "--n"),
    "sample: --n-recon 0": (
        lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/x", "--n", "4", "--n-recon", "0"],
        "--n-recon",
    ),
    "sample: other dataset": (
        lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/x", "--n", "4", "--data", f"{r}/mine"],
        "'mine'",
    ),
    "sample: --out is a file": (lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/afile", "--n", "4"], "afile"),
    "sample: corrupt model": (
        lambda r: ["sample", "--run", f"{r}/badrun", "--out", f"{r}/x", "--n", "4"],
        "badrun/model.pt",
    ),
    "sample: device cuda:7": (
        lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/x", "--n", "4", "--device", "cuda:7"],
        "cuda:7",
    ),
    "noise: --n 0": (lambda r: ["noise", "--data", f"{r}/digits", "--out", f"{r}/x", "--n", "0"], "--n"),
    # score
    "score: samples missing": (lambda r: S(r, samples="nosuch/samples.npz"), "nosuch/samples.npz"),
    "score: float samples": (lambda r: S(r, samples="float/samples.npz"), "float32"),
    "score: one sample": (lambda r: S(r, samples="one/samples.npz"), "1 generated images"),
    "score: no weights": (lambda r: S(r, weights=None), "--weights"),
    "score: weights missing": (lambda r: S(r, weights="nope.pt"), "nope.pt"),
    "score: weights not a classifier": (lambda r: S(r, weights="run/model.pt"), "run/model.pt"),
    "score: samples of another dataset": (
        lambda r: [
            "score",
            "--samples",
            f"{r}/run/samples.npz",
            "--data",
            f"{r}/mine",
            "--extractor",
            "inception",
            "--out",
            f"{r}/x.json",
        ],
        "'mine'",
    ),
    "score: inception weights missing": (
        lambda r: [
            "score",
            "--samples",
            f"{r}/run/samples.npz",
            "--data",
            f"{r}/digits",
            "--extractor",
            "inception",
            "--weights",
            f"{r}/pt_inception.pth",
            "--out",
            f"{r}/x.json",
        ],
        "pt_inception.pth",
    ),
    "score: truncated cached statistics": (lambda r: S(r, "--cache", f"{r}/cache"), "digitsclf-x-features.pt"),
    "score: recon missing": (lambda r: S(r, "--recon", f"{r}/run/recon.npz"), "recon.npz"),
    "score: device tpu": (lambda r: S(r, "--device", "tpu"), "'tpu'"),
    "score: --out is a folder": (lambda r: S(r)[:-2] + ["--out", f"{r}/empty"], "empty"),
    "score: --features is a folder": (lambda r: S(r, "--features", f"{r}/empty"), "--features"),
    # table
    "table: no inputs": (lambda r: ["table", "--out", f"{r}/t.csv"], "at least one metrics.json"),
    "table: one file twice": (lambda r: ["table", f"{r}/m/a.json", f"{r}/m/a.json", "--out", f"{r}/t.csv"], "seed 0"),
    "table: one run in two files": (
        lambda r: ["table", f"{r}/m/a.json", f"{r}/m/same_run.json", "--out", f"{r}/t.csv"],
        "same_run.json",
    ),
    "table: field missing": (lambda r: ["table", f"{r}/m/no_counts.json", "--out", f"{r}/t.csv"], "n_generated"),
    "table: NaN metric": (lambda r: ["table", f"{r}/m/nan.json", "--out", f"{r}/t.csv"], "field 'fid' = nan"),
    "table: truncated metrics": (lambda r: ["table", f"{r}/m/cut.json", "--out", f"{r}/t.csv"], "cut.json"),
    "table: metrics missing": (lambda r: ["table", f"{r}/m/none.json", "--out", f"{r}/t.csv"], "none.json"),
    "table: --out is a folder": (lambda r: ["table", f"{r}/m/a.json", "--out", f"{r}/empty"], "empty"),
    "table: --claims is a folder": (
        lambda r: ["table", f"{r}/m/a.json", "--out", f"{r}/t.csv", "--claims", f"{r}/empty"],
        "--claims",
    ),
    "table: --verdicts-html is a folder": (
        lambda r: ["table", f"{r}/m/a.json", "--out", f"{r}/t.csv", "--verdicts-html", f"{r}/empty"],
        "--verdicts-html",
    ),
    "table: --paper-tables is a file": (
        lambda r: ["table", f"{r}/m/a.json", "--out", f"{r}/t.csv", "--paper-tables", f"{r}/afile"],
        "--paper-tables",
    ),
    # check
    "check: zero rows compared": (
        lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp_empty.csv"],
        "zero rows",
    ),
    "check: zero paper rows": (lambda r: ["check", f"{r}/table.csv", "--against", "paper"], "zero rows"),
    "check: tolerance not a number": (lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp_tol.csv"], "'lots'"),
    "check: unknown metric": (lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp_metric.csv"], "'fidd'"),
    "check: table missing": (lambda r: ["check", f"{r}/none.csv", "--against", "paper"], "none.csv"),
}


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
    }


def run_cli(args, capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    return code, capsys.readouterr().err.strip()


def assert_refused(code, err, needle):
    assert code not in (0, None), err
    assert "Traceback" not in err and needle in err, err
    # one paragraph: a single error line (argparse: usage + one error line)
    assert len([line for line in err.splitlines() if "error" in line]) == 1, err


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_in_one_paragraph_and_changes_nothing(case, root, capsys):
    if case == "sample: device cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    before = snapshot(root)
    args, needle = CASES[case]
    code, err = run_cli(args(root), capsys)
    assert_refused(code, err, needle)
    assert snapshot(root) == before


def test_inception_offline_without_weights_is_one_paragraph(root, capsys, monkeypatch):
    """torch-fidelity downloads its Inception weights when none are given; offline that is a URLError."""
    import urllib.error

    def offline(url, *a, **k):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setenv("TORCH_HOME", str(root / "no-torch-home"))  # no cached copy of the weights
    before = snapshot(root)
    code, err = run_cli(
        [
            "score",
            "--samples",
            f"{root}/run/samples.npz",
            "--data",
            f"{root}/digits",
            "--extractor",
            "inception",
            "--out",
            f"{root}/x.json",
        ],
        capsys,
    )
    assert_refused(code, err, "--weights")
    assert "download failed" in err
    shutil.rmtree(root / "no-torch-home", ignore_errors=True)  # torch.hub makes its folder before downloading
    assert snapshot(root) == before


# ----------------------------------------------------------------------------
# The workflow's config: repeats in the lists would count one run twice in the table.


def workflow_checked(change):
    import copy

    import yaml
    from snakemake.utils import validate

    from ebmbench.run_plan import check_workflow_config

    base = Path(__file__).resolve().parents[1] / "config"
    cfg = {**yaml.safe_load((base / "config.yaml").read_text()), **copy.deepcopy(change)}
    validate(cfg, str(base / "schema.yaml"))
    check_workflow_config(cfg)


@pytest.mark.parametrize(
    "change,needle",
    [
        ({"seeds": [0, 1, 0]}, "[0, 1, 0]"),
        ({"datasets": ["digits", "digits"]}, "['digits', 'digits']"),
        ({"methods": ["short_run", "dual_mcmc", "short_run"]}, "short_run"),
        ({"overrides": {"short_run": {"digits": {"batch_size": 0}}}}, "'batch_size'"),
        (
            {
                "dataset_options": {
                    "digits": {"kind": "digits"},
                    "mine": {"kind": "folder", "path": "x", "test_fraction": 0},
                }
            },
            "test_fraction",
        ),
    ],
)
def test_workflow_config_refuses_repeats_and_meaningless_values(change, needle):
    with pytest.raises(Exception) as e:
        workflow_checked(change)
    assert needle in str(e.value)


def test_snakemake_refuses_a_repeated_seed_before_any_job(workflow_dir):
    (workflow_dir / "c.yaml").write_text("seeds: [0, 0]\n")
    r = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/table.csv", "--configfile", "c.yaml"],
        cwd=workflow_dir,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "[0, 0] has non-unique elements" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr and not (workflow_dir / "results").exists()


# ----------------------------------------------------------------------------
# OS faults, real: a small tmpfs (disk full, read-only), another user (permission denied).


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        print("skipped: mounting a tmpfs needs root")
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"skipped: cannot mount a tmpfs here ({r.stderr.strip()})")
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder: Path) -> None:
    """Fill a file system to the last byte (the filler stays, part of what must not change)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


FAULTS = {
    # disk full: the prepared arrays (4.6 MB) do not fit into 512 kB
    "disk full: prepare": (
        False,
        lambda r, m: ["prepare", "--dataset", "digits", "--out", f"{m}/data"],
        "disk holding it is full",
    ),
    # disk full to the last byte: a tiny table or metrics file fails too
    "disk full: table": (
        True,
        lambda r, m: ["table", f"{r}/m/a.json", "--out", f"{m}/t.csv"],
        "disk holding it is full",
    ),
    "disk full: sample": (
        True,
        lambda r, m: ["sample", "--run", f"{r}/run", "--out", f"{m}/s", "--n", "4", "--no-progress"],
        "disk holding it is full",
    ),
    "read-only: train": (
        "ro",
        lambda r, m: T("--data", f"{r}/digits", "--out", f"{m}/run", "--set", "n_iters=2"),
        "read-only",
    ),
    "read-only: score": ("ro", lambda r, m: S(r)[:-2] + ["--out", f"{m}/metrics.json"], "read-only"),
    "read-only: classifier": (
        "ro",
        lambda r, m: ["classifier", "--data", f"{r}/digits", "--out", f"{m}/c.pt"],
        "read-only",
    ),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_os_faults_are_one_paragraph_naming_the_path(case, root, tmpfs, capsys):
    how, args, needle = FAULTS[case]
    if how is True:
        fill(tmpfs)
    elif how == "ro":
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    before, before_root = snapshot(tmpfs), snapshot(root)
    code, err = run_cli(args(root, tmpfs), capsys)
    assert_refused(code, err, needle)
    assert str(tmpfs) in err
    assert snapshot(tmpfs) == before and snapshot(root) == before_root  # no temporary file, no folder left


def test_permission_denied_names_the_folder(root, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cmd = [sys.executable, "-m", "ebmbench", "table", f"{root}/m/a.json", "--out", f"{locked}/t.csv"]
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that let it
        if not shutil.which("setpriv"):
            print("skipped: running as root without setpriv to drop CAP_DAC_OVERRIDE")
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "permission denied" in r.stderr and str(locked) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not list(locked.iterdir())


# ----------------------------------------------------------------------------
# One writer per run folder; a rerun leaves no mixture; permissions follow the umask.


def test_two_trains_into_one_folder_exactly_one_runs(root, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "ebmbench",
        "train",
        "--method",
        "short_run",
        "--data",
        str(root / "digits"),
        "--out",
        str(out),
        "--set",
        "n_iters=10",
        *FAST,
    ]
    procs = [
        subprocess.Popen(cmd + ["--set", f"lr={lr}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for lr in (1e-4, 2e-4)
    ]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [e[-500:] for _, _, e in results]
    winner = next(p for p, _, _ in results if p.returncode == 0)
    loser_err = next(e for p, _, e in results if p.returncode == 2)
    assert f"PID {winner.pid}" in loser_err and str(out) in loser_err and "Traceback" not in loser_err
    iters = [json.loads(line)["iter"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert iters == list(range(10))  # every iteration once: one writer
    from ebmbench.io import load_torch

    lr = json.loads((out / "config.json").read_text())["config"]["lr"]
    assert load_torch(out / "model.pt")["identity"]["config"]["lr"] == lr
    assert not (out / ".ebmbench.lock").exists()


def test_a_lock_left_by_a_killed_writer_does_not_block(root, tmp_path, capsys):
    """flock dies with its holder: a lock file a SIGKILLed run left behind (its PID inside, no
    process holding it) does not stop the next run."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".ebmbench.lock").write_text("999999\n")
    assert main(T("--data", str(root / "digits"), "--out", str(run), "--set", "n_iters=2")) == 0
    assert (run / "model.pt").exists() and not (run / ".ebmbench.lock").exists()


def test_an_interrupted_rerun_leaves_the_previous_outputs_whole(root, tmp_path, monkeypatch):
    """The new set is written aside and committed whole (ebmbench.commit): interrupted before the
    commit, the folder holds exactly the previous run's files, nothing of the new one."""
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    (run / "figures").mkdir()
    (run / "figures" / "old_figure.png").write_bytes(b"previous run")
    (run / "metrics.json").write_text("{}")
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}

    def killed(*a, **k):
        raise KeyboardInterrupt  # interrupted after the samples, before the grid

    monkeypatch.setattr("ebmbench.sampling.image_grid", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["sample", "--run", str(run), "--out", str(run), "--n", "4", "--no-progress"])
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no staging folder, no lock left


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_results_get_the_permissions_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        save_torch(tmp_path / "m.pt", {"a": torch.ones(1)})
    finally:
        os.umask(old)
    for f in ("m.json", "m.pt"):
        assert (tmp_path / f).stat().st_mode & 0o777 == 0o666 & ~umask


# ----------------------------------------------------------------------------
# No NaN in metrics.json or the table: absent, with its reason.


def test_too_few_images_for_is_is_absent_with_its_reason_and_the_table_says_so(root, tmp_path, capsys):
    from ebmbench.data import load_prepared

    save_npz(tmp_path / "s" / "samples.npz", images=np.array(load_prepared(root / "digits", "test")[:5]))
    write_json(tmp_path / "s" / "samples.json", {"method": "short_run", "dataset": "digits", "seed": 0, "status": "ok"})
    save_npz(
        tmp_path / "s" / "recon.npz",
        original=np.zeros((0, 32, 32, 3), np.uint8),
        reconstruction=np.zeros((0, 32, 32, 3), np.uint8),
    )
    assert (
        main(
            [
                "score",
                "--samples",
                str(tmp_path / "s/samples.npz"),
                "--data",
                str(root / "digits"),
                "--extractor",
                "digits",
                "--weights",
                str(root / "w.pt"),
                "--recon",
                str(tmp_path / "s/recon.npz"),
                "--out",
                str(tmp_path / "s/metrics.json"),
            ]
        )
        == 0
    )
    text = (tmp_path / "s/metrics.json").read_text()
    m = json.loads(text)
    assert "NaN" not in text and "Infinity" not in text
    assert m["is"] is None and m["is_unavailable"].startswith("fewer than 10") and m["n_generated"] == 5
    assert m["mse"] is None and "no reconstructions" in m["mse_unavailable"]
    assert m["fid"] >= 0 and m["kid"] is not None
    write_json(tmp_path / "s2" / "metrics.json", {**m, "seed": 1, "is": 3.0, "is_unavailable": None})
    assert (
        main(
            [
                "table",
                str(tmp_path / "s/metrics.json"),
                str(tmp_path / "s2/metrics.json"),
                "--out",
                str(tmp_path / "t.csv"),
            ]
        )
        == 0
    )
    csv = (tmp_path / "t.csv").read_text().lower()
    assert not re.search(r"(^|,)-?(nan|inf|infinity)(,|$)", csv, re.M), csv  # no cell holds NaN/Inf
    t = pd.read_csv(tmp_path / "t.csv").set_index("metric")
    # one seed lacks IS: the group has no IS (a mean over the other seed would pass for both)
    assert t.loc["is", "status"].startswith("unavailable (seed 0: fewer than 10") and pd.isna(t.loc["is", "measured"])
    assert t.loc["fid", "n_seeds"] == 2 and t.loc["fid", "status"] == "done"


# ----------------------------------------------------------------------------
# Folder images of any PIL mode: converted by scaling, not clipping.


def test_folder_images_of_any_mode_are_scaled_not_clipped(tmp_path):
    from ebmbench.data import prepare

    folder = tmp_path / "imgs"
    folder.mkdir()
    grey16 = np.full((32, 32), 32896, np.uint16)  # 32896 / 257 = 128: mid grey, not white
    for i in range(4):
        Image.fromarray(grey16).save(folder / f"g16_{i}.png")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128  # red at half opacity -> 200 * 128 / 255 = 100 over black
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    pal = Image.new("P", (32, 32), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.save(folder / "pal.png")
    Image.new("CMYK", (32, 32), (0, 0, 0, 0)).save(folder / "cmyk.tif")  # no ink: white
    Image.new("L", (32, 32), 77).save(folder / "l.png")
    Image.new("1", (32, 32), 1).save(folder / "bw.png")
    Image.fromarray(np.full((32, 32), 1000, np.int32), "I").save(folder / "i.tif")  # 1000 / 257 -> 4
    info = prepare("mine", {"kind": "folder", "path": str(folder), "test_fraction": 0.1}, tmp_path, tmp_path / "out")
    images = np.concatenate([np.load(tmp_path / "out" / "train.npy"), np.load(tmp_path / "out" / "test.npy")])
    assert info["n_train"] + info["n_test"] == 10
    centres = sorted(tuple(int(v) for v in im[16, 16]) for im in images)
    expected = sorted(
        [(128, 128, 128)] * 4 + [(100, 0, 0), (10, 20, 30), (255, 255, 255), (77, 77, 77), (255, 255, 255), (4, 4, 4)]
    )
    assert centres == expected
