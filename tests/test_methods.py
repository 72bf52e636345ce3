"""The contract every registered method keeps (ebmbench.contract, the code `ebmbench check-method`
runs), checked on tiny CPU inputs, plus one iteration of every paper preset at paper resolution."""

import dataclasses

import pytest
import torch

from ebmbench.contract import CHECKS, format_results, run_check
from ebmbench.registry import get_method, method_ids, preset_image_shape

CPU = torch.device("cpu")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", method_ids())
def test_method_keeps_the_contract(name, check):
    result = run_check(get_method(name), check)
    assert result.passed, format_results(name, [result])


def one_step(cls, cfg, shape, seed=0):
    torch.manual_seed(seed)
    model = cls(cfg, shape, CPU)
    x = torch.rand(cfg.batch_size, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    stats = model.train_step(x, torch.Generator().manual_seed(2))
    return model, stats


PAPER_PRESETS = [(n, p) for n in method_ids() for p in get_method(n).PRESETS if p != "digits"]


def short_chains(cfg):
    """Batch 2 and chains of at most 2 steps (every int field named *steps*): the paper's networks and
    update at the paper's resolution, at a cost a CPU test can pay (a full Dual-MCMC CIFAR-10
    iteration is ~60 EBM Langevin steps through a 17M-parameter ResNet, over a minute on CPU)."""
    steps = {
        f.name: min(getattr(cfg, f.name), 2)
        for f in dataclasses.fields(cfg)
        if "steps" in f.name and isinstance(getattr(cfg, f.name), int)
    }
    return dataclasses.replace(cfg, batch_size=2, **steps)


@pytest.mark.parametrize("name,preset", PAPER_PRESETS)
def test_paper_preset_runs_one_iteration_at_paper_resolution(name, preset):
    """The paper networks and update at the paper resolution, on random tensors."""
    cls = get_method(name)
    shape = preset_image_shape(preset)
    _, stats = one_step(cls, short_chains(cls.PRESETS[preset]), shape)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
