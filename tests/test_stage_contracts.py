"""The files between stages as contracts, what may be combined, not-comparable verdicts, explicit
paths, and multi-file outputs committed whole (kills at every instant the fault hook exposes).

One table (CASES): each case runs one command on a fresh copy of a fixture folder (a prepared
digits subset, a tiny trained, sampled and scored run, its table) and asserts the exit code, the
message (one paragraph, no traceback) and the files left behind: unchanged for every refusal.
The kills run the command in a subprocess with EBMBENCH_FAULT=<stage>:<instant> (ebmbench.commit),
then check that the next reader accepts the folder as the old complete set or refuses it clearly,
and that a rerun recovers.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ebmbench.cli import main
from ebmbench.io import save_torch

FAST = ["--no-progress", "--threads", "1", "--set", "n_steps=4", "--set", "recon_iters=2", "--set", "n_iters=2"]
FAST += ["--set", "interp_points=2", "--set", "checkpoint_every=2"]
PREP = json.dumps({"n_train": 300})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from ebmbench.evaluate.digits_classifier import DigitsClassifier

    r = tmp_path_factory.mktemp("contracts")
    assert main(["prepare", "--dataset", "digits", "--spec", PREP, "--out", f"{r}/digits"]) == 0
    assert main(["train", "--method", "short_run", "--data", f"{r}/digits", "--out", f"{r}/run", *FAST]) == 0
    assert main(["sample", "--run", f"{r}/run", "--out", f"{r}/run", "--n", "12", "--no-progress"]) == 0
    save_torch(r / "w.pt", {"state_dict": DigitsClassifier().state_dict(), "arch": "conv", "test_accuracy": 0.0})
    assert main(score(r)) == 0
    assert main(["table", f"{r}/run/metrics.json", "--out", f"{r}/table.csv"]) == 0
    m = json.loads((r / "run" / "metrics.json").read_text())
    m.pop("features")
    (r / "m").mkdir()
    for name, change in VARIANTS.items():
        (r / "m" / f"{name}.json").write_text(json.dumps({**m, **change}))
    (r / "m" / "latin1.json").write_bytes(json.dumps(m).replace("short_run", "short_r\u00fcn").encode("latin-1"))
    (r / "m" / "list.json").write_text("[1, 2]")
    exp = [("short_run", "digits", "fid", m["fid"], 0.5, "x")]
    pd.DataFrame(exp * 2, columns=["method", "dataset", "metric", "expected", "tolerance", "reason"]).to_csv(
        r / "exp_twice.csv", index=False
    )
    pd.DataFrame(
        [("short_run", "digits", "fid", -1.0, 0.5, "x")],
        columns=["method", "dataset", "metric", "expected", "tolerance", "reason"],
    ).to_csv(r / "exp_negative.csv", index=False)
    pd.DataFrame(exp, columns=["method", "dataset", "metric", "expected", "tolerance", "reason"]).to_csv(
        r / "exp.csv", index=False
    )
    return r


def score(r, *extra, out="run/metrics.json", features="run/features.npz"):
    args = ["score", "--samples", f"{r}/run/samples.npz", "--data", f"{r}/digits", "--extractor", "digits"]
    return args + ["--weights", f"{r}/w.pt", "--features", f"{r}/{features}", "--out", f"{r}/{out}", *extra]


# metrics.json variants: name -> fields changed from the real score
VARIANTS = {
    "fid_neg": {"fid": -0.5},
    "prec_big": {"precision": 7.5},
    "status_OK": {"status": "OK"},
    "is_half": {"is": 0.5},
    "kid_std_neg": {"kid_std": -0.1},
    "n_zero": {"n_generated": 0},
    "seed_neg": {"seed": -1},
    "mse_big": {"mse": 2.0, "mse_n": 3, "mse_scale": "[0,1] pixels"},
    "extractor_empty": {"extractor": ""},
    "fid_null": {"fid": None},
    "features_num": {"features": 5},
    "seed0": {},
    "seed1": {"seed": 1},
    "seed1_inception": {"seed": 1, "extractor": "inception-default"},
    "seed1_n1000": {"seed": 1, "n_generated": 1000},
    "seed1_ref": {"seed": 1, "reference": "digits train split (other preprocessing)"},
    "cifar_folder": {"dataset": "cifar10", "method": "latent_ebm", "data_kind": "folder", "n_generated": 1000},
    "cifar_changed": {
        "dataset": "cifar10",
        "method": "latent_ebm",
        "data_kind": "cifar10",
        "preset": "cifar10",
        "extractor": "inception-default",
        "n_generated": 50000,
        "preset_changes": {"n_iters": 50},
    },
}


def table(*files, extra=()):
    return lambda r: ["table", *(f"{r}/m/{f}.json" for f in files), "--out", f"{r}/t.csv", *extra]


def edit_table(change):
    """A copy of the fixture's table with one cell (or a duplicated row) changed, for `check`."""

    def make(r):
        df = pd.read_csv(r / "table.csv")
        df = change(df)
        df.to_csv(r / "table.csv", index=False)
        return ["check", f"{r}/table.csv", "--against", f"{r}/exp.csv"]

    return make


def set_cell(col, value, metric="fid"):
    def change(df):
        df[col] = df[col].astype(object)
        df.loc[df["metric"] == metric, col] = value
        return df

    return change


def edit_info(**change):
    def make(r):
        info = json.loads((r / "digits" / "info.json").read_text())
        (r / "digits" / "info.json").write_text(json.dumps({**info, **change}))
        return ["train", "--method", "short_run", "--data", f"{r}/digits", "--out", f"{r}/new", *FAST]

    return make


def journal_in(folder, stage):
    def make(r):
        (r / folder / f".{stage}.commit.json").write_text(json.dumps({"stage": stage, "moves": [], "remove": []}))
        return {"digits": ["train", "--method", "short_run", "--data", f"{r}/digits", "--out", f"{r}/new", *FAST],
                "run": table_of_run(r), ".": ["check", f"{r}/table.csv", "--against", f"{r}/exp.csv"]}[folder]  # fmt: skip

    return make


def table_of_run(r):
    return ["table", f"{r}/run/metrics.json", "--out", f"{r}/t.csv"]


# name -> (arguments from the case folder r, exit code, text the one-paragraph message must hold)
# every case here is refused and leaves the folder byte for byte as it was
REFUSED = {
    # 1. contracts of metrics.json, read by table
    "metrics: FID -0.5": (table("fid_neg"), "field 'fid' = -0.5"),
    "metrics: precision 7.5": (table("prec_big"), "field 'precision' = 7.5"),
    "metrics: status OK": (table("status_OK"), "field 'status' = 'OK'"),
    "metrics: IS 0.5": (table("is_half"), "field 'is' = 0.5"),
    "metrics: KID std -0.1": (table("kid_std_neg"), "field 'kid_std' = -0.1"),
    "metrics: n_generated 0": (table("n_zero"), "field 'n_generated' = 0"),
    "metrics: seed -1": (table("seed_neg"), "field 'seed' = -1"),
    "metrics: MSE 2": (table("mse_big"), "field 'mse' = 2.0"),
    "metrics: extractor empty": (table("extractor_empty"), "field 'extractor' = ''"),
    "metrics: FID null without reason": (table("fid_null"), "'fid_unavailable'"),
    "metrics: features a number": (table("features_num"), "field 'features' = 5"),
    "metrics: not UTF-8": (table("latin1"), "is not valid JSON"),
    "metrics: a list": (table("list"), "is not a JSON object"),
    # 2. what may be combined
    "seeds: digits and Inception extractors": (table("seed0", "seed1_inception"), "differ in 'extractor'"),
    "seeds: 12 and 1000 generated": (table("seed0", "seed1_n1000"), "differ in 'n_generated'"),
    "seeds: other reference statistics": (table("seed0", "seed1_ref"), "differ in 'reference'"),
    "seeds: one run twice": (table("seed1", "seed1"), "give each run once"),
    # the gate's inputs: table rows and expected values
    "check: measured abc": (edit_table(set_cell("measured", "abc")), "field 'measured' = 'abc'"),
    "check: measured FID -0.5": (edit_table(set_cell("measured", -0.5)), "field 'measured' = -0.5"),
    "check: status great": (edit_table(set_cell("status", "great")), "field 'status' = 'great'"),
    "check: two measured rows of one metric": (
        edit_table(lambda df: pd.concat([df, df[df.metric == "fid"].assign(measured=0.0)])),
        "exactly one",
    ),
    "check: expected row twice": (lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp_twice.csv"], "keep one"),
    "check: expected FID -1": (
        lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp_negative.csv"],
        "outside the possible range",
    ),
    "check: table not UTF-8": (
        lambda r: (
            (r / "table.csv").write_bytes(b"method\xff,x\n") and ["check", f"{r}/table.csv", "--against", "paper"]
        ),
        "cannot be read as CSV",
    ),
    # contracts of a prepared dataset's info.json, read by train
    "info: n_train -3": (edit_info(n_train=-3), "field 'n_train' = -3"),
    "info: image shape with 2 channels": (edit_info(image_shape=[32, 32, 2]), "field 'image_shape'"),
    "info: sha256 not a digest": (edit_info(sha256="abc"), "field 'sha256' = 'abc'"),
    # 5. folders mid-commit: refused by their readers
    "mid-commit: prepared data": (journal_in("digits", "prepare"), "mid-commit"),
    "mid-commit: a run's samples and metrics": (journal_in("run", "sample"), "mid-commit"),
    "mid-commit: the table": (journal_in(".", "table"), "mid-commit"),
    # 4. outputs that would replace an input
    "score: --out is the samples": (lambda r: score(r, out="run/samples.npz"), "is the input --samples"),
    "score: --out inside --data": (lambda r: score(r, out="digits/m.json", features="digits/f.npz"), "--data"),
    "score: --features beside the samples, --out elsewhere": (
        lambda r: score(r, out="elsewhere/metrics.json"),
        "must lie in (or below) the folder of --out",
    ),
    "table: --out is an input": (
        lambda r: ["table", f"{r}/m/seed1.json", "--out", f"{r}/m/seed1.json"],
        "is the input",
    ),
    "table: --verdicts-html is --out": (
        lambda r: table_of_run(r) + ["--verdicts-html", f"{r}/t.csv"],
        "are the same path",
    ),
    "table: --paper-tables holds an input": (lambda r: table_of_run(r) + ["--paper-tables", f"{r}/run"], "holds"),
    "prepare: --out inside the images": (
        lambda r: (
            (r / "imgs").mkdir()
            or [
                "prepare",
                "--dataset",
                "mine",
                "--spec",
                json.dumps({"kind": "folder", "path": f"{r}/imgs"}),
                "--out",
                f"{r}/imgs/prep",
            ]
        ),  # fmt: skip
        "lies inside",
    ),
    "noise: --out inside --data": (
        lambda r: ["noise", "--data", f"{r}/digits", "--n", "12", "--out", f"{r}/digits/noise"],
        "lies inside",
    ),
    # sizes and seeds that cannot work, refused before anything is touched
    "sample: --n 10**12": (
        lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/run", "--n", str(10**12), "--no-progress"],
        "GB of memory",
    ),
    "noise: --n 10**12": (
        lambda r: ["noise", "--data", f"{r}/digits", "--n", str(10**12), "--out", f"{r}/run"],
        "GB of memory",
    ),
    "noise: --seed 2**40": (
        lambda r: ["noise", "--data", f"{r}/digits", "--n", "12", "--out", f"{r}/nz", "--seed", str(2**40)],
        "2**32 - 1",
    ),
    "train: --seed 2**70": (
        lambda r: [
            "train",
            "--method",
            "short_run",
            "--data",
            f"{r}/digits",
            "--out",
            f"{r}/new",
            "--seed",
            str(2**70),
            *FAST,
        ],  # fmt: skip
        "2**63 - 1",
    ),
}


def snapshot(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def case_dir(base, tmp_path):
    shutil.copytree(base, tmp_path / "w", symlinks=True)
    return tmp_path / "w"


def one_paragraph(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_one_paragraph_and_nothing_touched(name, case_dir, capsys):
    build, says = REFUSED[name]
    args = build(case_dir)  # may change a file first: the snapshot is taken after
    before = snapshot(case_dir)
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, (name, err)
    assert says in one_paragraph(err), (name, err)
    assert snapshot(case_dir) == before, name


def test_not_comparable_shows_the_measured_value_and_the_reasons(case_dir, capsys):
    r = case_dir
    assert main(table("cifar_folder")(r)) == 0
    df = pd.read_csv(r / "t.csv")
    rows = df[df.paper.notna() & df.measured.notna() & (df.metric == "fid")]
    assert len(rows) and all(v.startswith("not comparable (") for v in rows.verdict)
    v = rows.verdict.iloc[0]
    assert "data kind folder" in v and "preset digits" in v and "extractor digitsclf" in v
    assert not any(df.verdict.fillna("").str.startswith(("reproduced", "better", "worse")))
    capsys.readouterr()
    assert main(["check", f"{r}/t.csv", "--against", "paper"]) == 1  # no answer is no pass
    assert "not comparable" in capsys.readouterr().out


def test_a_changed_paper_preset_is_compared_only_when_asked(case_dir):
    r = case_dir
    assert main(table("cifar_changed")(r)) == 0
    fid = pd.read_csv(r / "t.csv").query("metric == 'fid' and paper == paper and measured == measured")
    assert len(fid) and all(v.startswith("not comparable (preset changed (n_iters=50))") for v in fid.verdict)
    assert main(table("cifar_changed", extra=["--compare-changed-presets"])(r)) == 0
    fid = pd.read_csv(r / "t.csv").query("metric == 'fid' and paper == paper and measured == measured")
    assert len(fid) and all("[changed preset: n_iters=50]" in v and not v.startswith("not") for v in fid.verdict)


def test_default_digits_rows_get_no_verdict_and_record_their_protocol(base):
    m = json.loads((base / "run" / "metrics.json").read_text())
    assert m["preset"] == "digits" and m["data_kind"] == "digits" and m["preset_changes"]["n_iters"] == 2
    df = pd.read_csv(base / "table.csv")
    assert df.verdict.isna().all() and (df.status == "done").all()


def test_a_noise_rerun_takes_the_stale_score_away(case_dir):
    r = case_dir
    assert main(["noise", "--data", f"{r}/digits", "--n", "12", "--out", f"{r}/run"]) == 0
    names = sorted(p.name for p in (r / "run").iterdir())
    assert "metrics.json" not in names and "features.npz" not in names and "samples.npz" in names
    assert not [n for n in names if ".new-" in n or n.endswith(".commit.json")]


# -- kills at each instant of each multi-file command -----------------------------------------------

# stage -> the killed command (its new set differs from the fixture's old one: see new_set)
KILLED = {
    "prepare": lambda r: [
        "prepare",
        "--dataset",
        "digits",
        "--spec",
        json.dumps({"n_train": 350}),
        "--out",
        f"{r}/digits",
    ],
    "sample": lambda r: ["sample", "--run", f"{r}/run", "--out", f"{r}/run", "--n", "14", "--no-progress"],
    "score": lambda r: score(r, "--no-precision-recall"),
    "table": lambda r: ["table", f"{r}/run/metrics.json", "--out", f"{r}/table.csv", "--verdicts-html", f"{r}/v.html"],
}
READER = {
    "prepare": lambda r: ["noise", "--data", f"{r}/digits", "--n", "12", "--out", f"{r}/nz"],
    "sample": lambda r: score(r, out="run/again.json", features="run/again.npz"),
    "score": lambda r: table_of_run(r),
    "table": lambda r: ["check", f"{r}/table.csv", "--against", f"{r}/exp.csv"],
}


def new_set(stage, r) -> bool:
    """Whether the folder holds the killed command's new set (else: the fixture's old one)."""
    if stage == "prepare":
        return json.loads((r / "digits" / "info.json").read_text())["n_train"] == 350
    if stage == "sample":
        return len(np.load(r / "run" / "samples.npz")["images"]) == 14
    if stage == "score":
        return "precision" not in json.loads((r / "run" / "metrics.json").read_text())
    return (r / "v.html").exists()


@pytest.mark.parametrize("instant", ["written", "journal", "half"])
@pytest.mark.parametrize("stage", list(KILLED))
def test_a_kill_leaves_a_whole_set_or_a_clear_refusal_and_a_rerun_recovers(stage, instant, case_dir, capsys):
    r = case_dir
    before = snapshot(r)
    env = {**os.environ, "EBMBENCH_FAULT": f"{stage}:{instant}", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "ebmbench", *KILLED[stage](r)], env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr  # killed at the instant, not finished nor failed
    capsys.readouterr()
    code = main(READER[stage](r))
    err = capsys.readouterr().err
    if instant == "written":  # no journal yet: the old set, whole, accepted as it was
        assert code in (0, 1) and not new_set(stage, r), err
        assert {k: v for k, v in snapshot(r).items() if k in before} == before
    else:  # the journal is written: the reader refuses the folder, naming the rerun
        assert code == 2 and "mid-commit" in one_paragraph(err), err
    assert main(KILLED[stage](r)) == 0  # the rerun completes (or discards) the killed commit, then its own
    assert new_set(stage, r)
    leftovers = [
        str(p) for p in r.rglob("*") if ".new-" in p.name or ".old-" in p.name or p.name.endswith(".commit.json")
    ]
    assert not leftovers
    capsys.readouterr()
    assert main(READER[stage](r)) in (0, 1), capsys.readouterr().err  # the gate may fail, never error
