"""Speed switches against known answers: what must not change, what must be restored.
No timings here: benchmarks/run.py measures them."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from ebmbench.io import SuiteError
from ebmbench.langevin import frozen, langevin, recording
from ebmbench.method_base import bf16_native, channels_last_pays
from ebmbench.registry import get_method, method_ids, resolve_config
from ebmbench.runs import build, comparable

SHAPE = (3, 32, 32)


def _model(method, seed=0, **switches):
    cfg = dataclasses.replace(resolve_config(method, "digits"), **switches)
    torch.manual_seed(seed)
    model = get_method(method)(cfg, SHAPE, torch.device("cpu"))
    model.speed_up()
    return model


def _batch(n):
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(1)) * 2 - 1


def _state(model):
    return {f"{name}.{k}": v for name, net in model.nets.items() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("method", method_ids())
def test_frozen_parameters_change_no_number(method):
    # One training iteration with and without parameters frozen during the chains: the same losses
    # and bitwise the same weights afterwards (the chain needs input gradients only).
    runs = []
    for freeze in (False, True):
        model = _model(method, freeze_params=freeze)
        stats = model.train_step(_batch(model.cfg.batch_size), torch.Generator().manual_seed(7))
        runs.append((stats, _state(model)))
        assert all(p.requires_grad for net in model.nets.values() for p in net.parameters())
    (s0, w0), (s1, w1) = runs
    assert s0 == s1
    assert all(torch.equal(w0[k], w1[k]) for k in w0)


def test_frozen_restores_after_an_error_and_keeps_deliberately_frozen_parameters():
    net = torch.nn.Linear(3, 2)
    net.bias.requires_grad_(False)
    with pytest.raises(RuntimeError), frozen([net]):
        assert not net.weight.requires_grad
        raise RuntimeError
    assert net.weight.requires_grad and not net.bias.requires_grad


def test_recording_sees_every_chain_with_its_arguments():
    model = _model("latent_ebm")
    with recording() as chains:
        model.train_step(_batch(model.cfg.batch_size), torch.Generator().manual_seed(0))
    c = model.cfg
    assert [r["n_steps"] for r in chains] == [c.prior_steps, c.post_steps]
    assert all(r["seconds"] > 0 and r["x"].shape[0] == c.batch_size for r in chains)
    # outside the block nothing is recorded
    langevin(lambda x: (x**2).sum(1), torch.ones(2, 1), n_steps=1, step_size=0.1, noise_std=0.0)
    assert len(chains) == 2


def test_channels_last_keeps_the_chain_within_rounding():
    plain, cl = _model("short_run", channels_last="off"), _model("short_run", channels_last="on")
    assert cl.f.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not plain.f.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    x0 = _batch(8)
    a = plain.langevin(
        plain.energy, x0, n_steps=5, step_size=1.0, noise_std=0.01, generator=torch.Generator().manual_seed(0)
    )
    b = cl.langevin(cl.energy, x0, n_steps=5, step_size=1.0, noise_std=0.01, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a, b, atol=1e-4)


def test_channels_last_is_off_by_default_and_auto_is_on_for_the_cpu_only(monkeypatch):
    # off by default (it moved coopnets' digits FID beyond seed noise); auto: on where it was
    # measured to pay (the CPU's oneDNN), off on CUDA (unmeasured)
    assert resolve_config("short_run", "digits").channels_last == "off"
    assert not _model("short_run").switches_in_effect()["channels_last"]
    auto = _model("short_run", channels_last="auto").switches_in_effect()["channels_last"]
    assert auto == torch.backends.mkldnn.is_available()
    assert not channels_last_pays(torch.device("cuda"))
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert not _model("short_run", channels_last="auto").switches_in_effect()["channels_last"]
    assert _model("short_run", channels_last="on").switches_in_effect()["channels_last"]
    with pytest.raises(SuiteError, match="channels_last"):
        resolve_config("short_run", "digits", {"channels_last": "fast"})
    # YAML 1.1 reads on/off as booleans (a config file, --set channels_last=off): they mean on/off
    assert resolve_config("short_run", "digits", {"channels_last": False}).channels_last == "off"
    assert resolve_config("short_run", "digits", {"bf16": True}).bf16 == "on"


def test_bf16_choice_is_checked_and_auto_follows_the_hardware(monkeypatch):
    with pytest.raises(SuiteError, match="bf16"):  # with the config, before any network is built
        resolve_config("short_run", "digits", {"bf16": "fast"})
    seen = []
    model = _model("short_run", bf16="auto")

    def energy(x):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return model.energy(x)

    for native, expected in ((False, None), (True, torch.bfloat16)):
        monkeypatch.setattr("ebmbench.method_base.bf16_native", lambda device, native=native: native)
        seen.clear()
        model.langevin(energy, _batch(2), n_steps=1, step_size=1.0, noise_std=0.0)
        assert seen == [expected]
    assert isinstance(bf16_native(torch.device("cpu")), bool)


def test_checkpoints_from_before_the_switches_resume_as_the_plain_path():
    # A run identity written before the switches existed ran them all off: it matches a run with
    # them off (True/False read as on/off), not one with today's defaults, and rebuilds with them off.
    cfg = dataclasses.asdict(resolve_config("short_run", "digits"))
    old = {k: v for k, v in cfg.items() if k not in ("freeze_params", "channels_last", "compile", "bf16")}
    plain = {"method": "short_run", "config": {**cfg, "channels_last": "off", "compile": False, "bf16": "off"}}
    assert comparable({"method": "short_run", "config": old}) == comparable(plain)
    bools = {**plain["config"], "channels_last": False}  # the boolean switch of the previous version
    assert comparable({"method": "short_run", "config": bools}) == comparable(plain)
    assert comparable({"method": "short_run", "config": cfg}) == comparable(plain)  # today's defaults: off
    auto = {**plain["config"], "channels_last": "auto"}
    assert comparable({"method": "short_run", "config": auto}) != comparable(plain)
    model = build({"method": "short_run", "config": old, "image_shape": [32, 32, 3]}, torch.device("cpu"))
    assert model.cfg.freeze_params and model.switches_in_effect()["channels_last"] is False


PEAK = """
import resource, sys, torch
from ebmbench.registry import get_method, resolve_config
torch.manual_seed(0); torch.set_num_threads(1)
m = get_method("short_run")(resolve_config("short_run", "digits"), (3, 32, 32), torch.device("cpu"))
x = torch.rand(64, 3, 32, 32)
m.langevin(m.energy, x, n_steps=int(sys.argv[1]), step_size=1.0, noise_std=0.01)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_method_chain_peak_memory_is_flat_in_steps():
    # The chain as methods run it (switches at their defaults): 100 steps within 10 % of 10.
    peak = {n: int(subprocess.check_output([sys.executable, "-c", PEAK, str(n)], text=True)) for n in (10, 100)}
    assert peak[100] <= 1.10 * peak[10], peak


def test_second_score_reuses_the_cached_reference_features(digits_dir, digits_classifier, tmp_path, monkeypatch):
    # Reference features are cached per dataset x extractor (--cache): a second score sends only
    # the generated images through the extractor.
    from ebmbench.evaluate import extractors, scoring

    rng = np.random.default_rng(0)
    samples = tmp_path / "samples.npz"
    np.savez(samples, images=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))
    seen = []
    forward = extractors.DigitsFeatureExtractor.forward
    monkeypatch.setattr(
        extractors.DigitsFeatureExtractor, "forward", lambda self, x: seen.append(len(x)) or forward(self, x)
    )
    counts = []
    for _ in range(2):
        seen.clear()
        scoring.score(samples, digits_dir, "digits", weights=str(digits_classifier), cache_dir=tmp_path / "cache")
        counts.append(sum(seen))
    n_ref = len(np.load(digits_dir / "train.npy", mmap_mode="r"))
    assert counts == [40 + n_ref, 40]


HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _tsv(path, *rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        HEADER + "".join(f"{s}\t0:00:{int(s):02d}\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n" for s, rss, cpu in rows)
    )


def test_cost_table_sums_seeds_and_rules_from_snakemake_records(tmp_path):
    from ebmbench.cli import main
    from ebmbench.evaluate.cost import cost_table

    root = tmp_path / "benchmarks"
    _tsv(root / "train/digits/short_run/seed0.tsv", (100.0, 400.0, 190.0))
    _tsv(root / "train/digits/short_run/seed1.tsv", (120.0, 500.0, 230.0), (140.0, 300.0, 250.0))  # 2 repeats: mean
    _tsv(root / "sample/digits/short_run/seed0.tsv", (10.0, 350.0, "-"))  # '-': not measured
    _tsv(root / "score/digits/short_run/seed0.tsv", (5.0, 600.0, 9.0))
    _tsv(root / "score/digits/uniform_noise.tsv", (4.0, 590.0, 8.0))
    rows = {(r["method"], r["rule"]): r for r in cost_table(root)}
    train = rows["short_run", "train"]
    assert (train["jobs"], train["seconds"], train["seconds_per_job"], train["cpu_seconds"], train["max_rss_mb"]) == (
        2,
        230.0,
        115.0,
        430.0,
        500.0,
    )
    assert rows["short_run", "sample"]["cpu_seconds"] != rows["short_run", "sample"]["cpu_seconds"]  # NaN: unmeasured
    total = rows["short_run", "total"]
    assert (total["jobs"], total["seconds"], total["cpu_seconds"], total["max_rss_mb"]) == (4, 245.0, 439.0, 600.0)
    assert rows["uniform_noise", "score"]["seconds"] == 4.0
    assert rows["all", "total"]["seconds"] == 249.0
    out = tmp_path / "cost.csv"
    assert main(["cost", "--benchmarks", str(root), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "dataset,method,rule,jobs,seconds,seconds_per_job,cpu_seconds,max_rss_mb"
    assert main(["cost", "--benchmarks", str(tmp_path / "none"), "--out", str(out)]) == 2  # no records: one clear error


def test_preset_sweep_is_the_workflows_run_at_its_last_milestone(digits_dir, digits_classifier, tmp_path):
    """benchmarks/preset_sweep.py trains in the loop's order and random streams and samples with
    `sample`'s: at its last milestone its samples are bitwise those of `train` then `sample` with the
    same settings, and its scores are `score`'s of them. Here across short_run's lr decay."""
    import json
    from pathlib import Path

    from ebmbench.evaluate.scoring import score
    from ebmbench.loop import train
    from ebmbench.sampling import generate

    sets = {"n_steps": 3, "batch_size": 8, "lr_decay_fraction": 0.5, "checkpoint_every": 2}
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(root / "benchmarks/preset_sweep.py"), "--method", "short_run", "--data", str(digits_dir)]
    cmd += ["--weights", str(digits_classifier), "--seed", "3", "--at", "2,4", "--n", "40", "--threads", "2"]
    cmd += ["--label", "probe", "--out", str(tmp_path / "sweep")] + [f"--set={k}={v}" for k, v in sets.items()]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["iter"] for row in rows] == [2, 4]

    run = tmp_path / "run"
    train("short_run", digits_dir, run, seed=3, overrides={**sets, "n_iters": 4}, device="cpu", progress=False)
    generate(run, 40, run, seed=3, device="cpu", progress=False)
    swept = np.load(tmp_path / "sweep/probe/it4/samples.npz")["images"]
    assert np.array_equal(swept, np.load(run / "samples.npz")["images"])
    m = score(run / "samples.npz", digits_dir, "digits", weights=digits_classifier)
    assert rows[-1]["fid"] == round(m["fid"], 4) and rows[-1]["precision"] == round(m["precision"], 4)
