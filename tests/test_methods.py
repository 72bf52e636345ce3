"""The contract every registered method keeps, checked on tiny CPU inputs."""

import dataclasses

import pytest
import torch

from ebmbench.registry import get_method, method_ids, preset_image_shape

CPU = torch.device("cpu")


def tiny(cls, preset="digits", **extra):
    """The digits preset with batch 4: the method's own settings, cheap enough for a unit test."""
    return dataclasses.replace(cls.PRESETS[preset], batch_size=4, **extra)


def snapshot(model):
    return {f"{n}.{k}": p.detach().clone() for n, net in model.nets.items() for k, p in net.named_parameters()}


def one_step(cls, cfg, shape, seed=0):
    torch.manual_seed(seed)
    model = cls(cfg, shape, CPU)
    x = torch.rand(cfg.batch_size, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    before = snapshot(model)
    stats = model.train_step(x, torch.Generator().manual_seed(2))
    return model, before, stats


@pytest.mark.parametrize("name", method_ids())
def test_train_step_is_finite_and_moves_every_network(name):
    cls = get_method(name)
    model, before, stats = one_step(cls, tiny(cls), (3, 32, 32))
    assert stats and all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
    after = snapshot(model)
    for net_name in model.nets:
        moved = [k for k in before if k.startswith(net_name + ".") and not torch.equal(before[k], after[k])]
        assert moved, f"{name}: one training step left every parameter of network '{net_name}' unchanged"


@pytest.mark.parametrize("name", method_ids())
def test_sample_shape_and_range(name):
    cls = get_method(name)
    model = cls(tiny(cls), (3, 32, 32), CPU)
    x = model.sample(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(x).all()


@pytest.mark.parametrize("name", method_ids())
def test_reconstruction_has_input_shape(name):
    cls = get_method(name)
    model = cls(tiny(cls), (3, 32, 32), CPU)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    r = model.reconstruct(x, torch.Generator().manual_seed(0))
    assert r is None or (r.shape == x.shape and torch.isfinite(r).all())


@pytest.mark.parametrize("name", method_ids())
def test_checkpoint_roundtrip_gives_identical_next_step(name):
    cls = get_method(name)
    cfg = tiny(cls)
    a, _, _ = one_step(cls, cfg, (3, 32, 32))
    b = cls(cfg, (3, 32, 32), CPU)
    b.load_state_dict(a.state_dict())
    x = torch.rand(cfg.batch_size, 3, 32, 32) * 2 - 1
    sa = a.train_step(x, torch.Generator().manual_seed(5))
    sb = b.train_step(x, torch.Generator().manual_seed(5))
    assert sa == sb


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
    _, _, stats = one_step(cls, short_chains(cls.PRESETS[preset]), shape)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values()), stats
