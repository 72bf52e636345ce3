"""Training health: the chain signals against known answers, the early-warning rule on made-up
signal paths, and a diverging run replayed: the warning comes before the divergence."""

import json

import pytest
import torch

from ebmbench.divergence import DivergenceError
from ebmbench.health import EarlyWarning, health_figure, iteration_signals
from ebmbench.langevin import diagnosing, langevin
from ebmbench.loop import train


def test_chain_signals_of_a_quadratic_energy_are_known():
    # E(x) = |x|^2 / 2: dE/dx = x. Without noise a step multiplies x by (1 - step).
    x0 = torch.full((4, 1, 2, 2), 3.0)  # every chain's norm: sqrt(4 * 9) = 6
    with diagnosing() as chains:
        langevin(lambda x: (x**2).flatten(1).sum(1) / 2, x0, n_steps=3, step_size=0.5, noise_std=0.0)
        langevin(
            lambda x: (x**2).flatten(1).sum(1) / 2,
            x0,
            n_steps=2,
            step_size=0.5,
            noise_std=0.1,
            chain="revise",
            data_range=(-1.0, 1.0),
            generator=torch.Generator().manual_seed(0),
        )
    first, second = chains
    assert first["chain"] == "chain" and first["grad_first"] == pytest.approx(6.0)
    assert first["grad_last"] == pytest.approx(6.0 * 0.5**2)  # at the third step (k = 2)
    assert "drift_noise" not in first and "out_of_range" not in first  # noiseless; no data range given
    # last update at k = 1: |step * g| = 0.5 * 3 = 1.5 (mean norm, noise aside), noise 0.1 * sqrt(4) = 0.2
    assert second["grad_last"] == pytest.approx(3.0, rel=0.05)
    assert second["drift_noise"] == pytest.approx(0.5 * second["grad_last"] / 0.2)
    assert 0 <= second["out_of_range"] <= 1


def test_no_signals_are_collected_outside_diagnosing():
    with diagnosing() as chains:
        pass
    langevin(lambda x: (x**2).sum(1), torch.ones(2, 3), n_steps=2, step_size=0.1, noise_std=0.1)
    assert chains == []


def test_iteration_signals_name_each_chain_and_the_signed_energy_gap():
    stats = {"loss": 1.0, "energy_data": -3.0, "energy_sample": 2.0}
    chains = [{"chain": "infer", "grad_first": 1.0}, {"chain": "infer", "grad_first": 2.0}, {"chain": "revise"}]
    assert iteration_signals(stats, chains) == {"energy_gap": -5.0, "infer/grad_first": 1.0, "infer#2/grad_first": 2.0}
    assert iteration_signals({"energy_posterior": 1.0, "energy_prior": 0.5}, []) == {"energy_gap": 0.5}


def feed(rule, values, key="x/grad_first"):
    """The first iteration at which the rule fires on the value path, or None."""
    for i, v in enumerate(values):
        if rule.update(i, {key: v}) is not None:
            return i
    return None


def test_the_rule_fires_on_sustained_growth_only():
    flat_noisy = [1.0 + 0.3 * (-1) ** i for i in range(200)]  # a steep batch every other iteration
    assert feed(EarlyWarning(2.0, 10), flat_noisy) is None
    slow = [1.01**i for i in range(200)]  # 22 % per 20 iterations: a model still learning
    assert feed(EarlyWarning(2.0, 10), slow) is None
    # flat until 100, then 10 % per iteration. The window 20 iterations back is still flat (mean 1);
    # the last window's mean, over 1.1^k for k = i-108 .. i-99, first exceeds 2 at i = 111 (2.12;
    # 1.93 at i = 110)
    runaway = [1.0] * 100 + [1.1**k for k in range(1, 101)]
    assert feed(EarlyWarning(2.0, 10), runaway) == 111
    assert feed(EarlyWarning(0.0, 10), runaway) is None  # off
    assert feed(EarlyWarning(2.0, 10, after=150), runaway) == 179  # armed at 150, three windows later
    assert feed(EarlyWarning(2.0, 10), runaway, key="x/drift_noise") is None  # gradient norms only


# A schedule known to run away on digits: a 4-wide short-run EBM at lr 1e-2. The suite's own
# divergence stop (max_energy_gap) ends it; the warning must come first.
RUNAWAY = dict(
    n_f=4, n_steps=5, lr=1e-2, batch_size=8, n_iters=150, checkpoint_every=25, max_energy_gap=1000.0,
    warn_after=10, warn_window=5, on_warning="record", divergence_retries=0,
    lr_decay_fraction=0.0,  # a constant rate: the rewinds' halvings are the only changes to it
)  # fmt: skip


def events(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"event"' in line]


def test_a_diverging_run_is_warned_before_it_diverges(digits_dir, tmp_path):
    with pytest.raises(DivergenceError, match="diverged at iteration"):
        train("short_run", digits_dir, tmp_path / "run", overrides=RUNAWAY, device="cpu", progress=False)
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    assert summary["status"] == "diverged" and summary["quantity"] == "energy gap"
    first_warning = summary["warnings"][0]["iter"]
    assert first_warning < summary["iter"]  # the warning came first
    assert [e["iter"] for e in events(tmp_path / "run") if e["event"] == "warning"][0] == first_warning
    assert (tmp_path / "run" / "health.png").stat().st_size > 0


def test_on_warning_rewind_halves_the_learning_rate_and_stop_stops(digits_dir, tmp_path):
    rewind = {**RUNAWAY, "on_warning": "rewind", "divergence_retries": 3, "max_energy_gap": 0.0, "checkpoint_every": 5}
    try:  # whether the lowered rates save the run or the retries run out, each rewind halves them
        train("short_run", digits_dir, tmp_path / "rewind", overrides=rewind, device="cpu", progress=False)
    except DivergenceError as err:
        assert "early warning" in str(err)
    rewinds = [e for e in events(tmp_path / "rewind") if e["event"] == "rewind"]
    assert rewinds and [e["lr_scale"] for e in rewinds] == [0.5**k for k in range(1, len(rewinds) + 1)]
    state = torch.load(tmp_path / "rewind" / "model.pt", weights_only=True)  # saved after a rewind
    lr = state["method_state"]["opts"]["f"]["param_groups"][0]["lr"]
    assert state["progress"]["lr_scale"] < 1 and lr == pytest.approx(1e-2 * state["progress"]["lr_scale"])
    with pytest.raises(DivergenceError, match="on_warning: stop"):
        train("short_run", digits_dir, tmp_path / "stop", overrides={**RUNAWAY, "on_warning": "stop"}, progress=False)
    summary = json.loads((tmp_path / "stop" / "train.json").read_text())
    assert summary["quantity"].startswith("early warning: short_run/")


def test_health_figure_draws_a_log_with_events(tmp_path):
    log = [{"iter": i, "energy_gap": 0.1 * i, "f/grad_first": 1.0 + i, "f/out_of_range": 0.01} for i in range(5)]
    log.append({"iter": 3, "event": "warning", "signal": "f/grad_first", "message": "m"})
    health_figure(log, tmp_path / "health.png", title="t")
    assert (tmp_path / "health.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
