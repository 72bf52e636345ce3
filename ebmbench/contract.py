"""The method contract: what every method, built-in or plug-in, must do for the loop, the sampler
and the metrics to treat it like the others. One piece of code, run by `ebmbench check-method` and
by the project's own tests (tests/test_methods.py), on tiny CPU inputs.

Each check returns a `Result`: passed or not, what was seen, and the remedy when it failed.
"""

import dataclasses
import io
import math
from dataclasses import dataclass

import torch

from .method_base import TrainConfig
from .registry import get_method, preset_image_shape

CPU = torch.device("cpu")
SHAPE = (3, 32, 32)  # the embedded digits' shape, which every method's `digits` preset is written for
BATCH = 4


@dataclass(frozen=True)
class Result:
    check: str
    passed: bool
    detail: str
    remedy: str = ""


def fail(check: str, detail: str, remedy: str) -> Result:
    return Result(check, False, detail, remedy)


def tiny(cls, **extra):
    """The method's digits preset at batch 4: its own settings, cheap enough for a contract check."""
    return dataclasses.replace(cls.PRESETS["digits"], batch_size=BATCH, **extra)


def data_batch(seed: int = 1) -> torch.Tensor:
    return torch.rand(BATCH, *SHAPE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def build(cls, cfg, seed: int = 0, shape=SHAPE):
    torch.manual_seed(seed)  # network initialisation, as the loop seeds it
    return cls(cfg, shape, CPU)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": p.detach().clone() for n, net in model.nets.items() for k, p in net.named_parameters()}


def step(model, i: int, seed: int = 0) -> dict:
    """Iteration i as the loop runs it: its own data batch and generator, the global RNG reseeded."""
    model.train()
    torch.manual_seed(10_000 + 1000 * seed + i)
    return model.train_step(data_batch(100 + i), torch.Generator().manual_seed(1000 * seed + i))


def through_checkpoint(model) -> dict:
    """The model's state after torch.save and torch.load(weights_only=True), as the loop stores it."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def same_parameters(a, b) -> bool:
    sa, sb = snapshot(a), snapshot(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------------------------
# The checks, each a function of the method class.


def declares_config_and_presets(cls) -> Result:
    name = "config and presets"
    cfg_cls = getattr(cls, "Config", None)
    if not (isinstance(cfg_cls, type) and issubclass(cfg_cls, TrainConfig) and dataclasses.is_dataclass(cfg_cls)):
        return fail(
            name,
            "Config is not a dataclass subclass of TrainConfig",
            "declare `@dataclass(frozen=True) class Config(TrainConfig)` and set `Config = Config` on the class",
        )
    if not cfg_cls.__dataclass_params__.frozen:
        return fail(name, "Config is not frozen", "use @dataclass(frozen=True): a run's config must not change")
    if "digits" not in cls.PRESETS:
        return fail(
            name,
            f"presets {sorted(cls.PRESETS)} lack 'digits'",
            "add a CPU-sized 'digits' preset: the suite's default run and this check use it",
        )
    wrong = [p for p, c in cls.PRESETS.items() if not isinstance(c, cfg_cls)]
    if wrong:
        return fail(
            name, f"presets {wrong} are not instances of the method's Config", "build every preset as Config(...)"
        )
    return Result(name, True, f"frozen Config; presets: {', '.join(sorted(cls.PRESETS))}")


def presets_build(cls) -> Result:
    name = "each preset builds"
    counts = []
    for preset, cfg in cls.PRESETS.items():
        shape = preset_image_shape(preset)
        try:
            model = build(cls, cfg, shape=shape)
        except Exception as err:
            return fail(
                name,
                f"preset '{preset}' at {shape[1]}x{shape[2]}: {type(err).__name__}: {err}",
                "the networks must accept the preset's resolution (a constructor argument)",
            )
        if not model.nets:
            return fail(name, f"preset '{preset}' builds no networks", "put every network in self.nets")
        params = sum(p.numel() for net in model.nets.values() for p in net.parameters())
        counts.append(f"{preset} {shape[1]}x{shape[2]}: {params:,}")
    return Result(name, True, "; ".join(counts))


def finite_losses(cls) -> Result:
    name = "finite losses"
    stats = step(build(cls, tiny(cls)), 0)
    if not isinstance(stats, dict) or not stats:
        return fail(name, f"train_step returned {stats!r}", "return a dict of float statistics (losses, energies)")
    bad = {k: v for k, v in stats.items() if not (isinstance(v, (int, float)) and math.isfinite(v))}
    if bad:
        return fail(name, f"not finite floats: {bad}", "return Python floats (.item()) and check the update")
    return Result(name, True, ", ".join(sorted(stats)))


def moves_every_network(cls) -> Result:
    name = "one step moves every network"
    model = build(cls, tiny(cls))
    before = snapshot(model)
    step(model, 0)
    after = snapshot(model)
    still = [
        n for n in model.nets if not any(not torch.equal(before[k], after[k]) for k in before if k.startswith(n + "."))
    ]
    if still:
        return fail(
            name,
            f"network(s) {still} unchanged after one step",
            "give each network an optimiser in self.opts and step it in train_step (or drop the network)",
        )
    return Result(name, True, ", ".join(model.nets))


def deterministic(cls) -> Result:
    name = "deterministic given a seed"
    a, b = build(cls, tiny(cls)), build(cls, tiny(cls))
    if step(a, 0) != step(b, 0) or not same_parameters(a, b):
        return fail(
            name,
            "two runs with the same seeds differ after one step",
            "draw every random number from the `gen` argument (or the seeded global RNG), never from time or os",
        )
    return Result(name, True, "two builds, same step: bitwise equal")


def checkpoint_round_trip(cls) -> Result:
    """The state through a checkpoint gives the same parameters and the same next step."""
    name = "checkpoint round trip"
    a = build(cls, tiny(cls))
    step(a, 0)
    try:
        state = through_checkpoint(a)
    except Exception as err:
        return fail(
            name,
            f"state_dict does not load with weights_only=True: {err}",
            "keep only tensors, numbers, strings, lists and dicts in the state (state_dicts of nets/opts/scheds)",
        )
    b = build(cls, tiny(cls), seed=1)
    b.load_state_dict(state)
    if not same_parameters(a, b) or step(a, 1) != step(b, 1) or not same_parameters(a, b):
        return fail(
            name,
            "a model loaded from the checkpoint takes another next step",
            "put all training state (nets, optimisers, schedulers) in self.nets / self.opts / self.scheds",
        )
    return Result(name, True, "loaded model's next step is bitwise equal")


def resume_exact(cls) -> Result:
    """Four iterations straight, against two, a checkpoint, and two more in a fresh process's model."""
    name = "resume-exact from a checkpoint"
    straight = build(cls, tiny(cls))
    for i in range(4):
        step(straight, i)
    first = build(cls, tiny(cls))
    for i in range(2):
        step(first, i)
    resumed = build(cls, tiny(cls), seed=7)
    resumed.load_state_dict(through_checkpoint(first))
    for i in range(2, 4):
        step(resumed, i)
    if not same_parameters(straight, resumed):
        return fail(
            name,
            "iterations 0-3 straight differ from 0-1, checkpoint, 2-3",
            "keep no state outside self.nets / self.opts / self.scheds (e.g. a persistent chain buffer)",
        )
    return Result(name, True, "4 straight == 2 + checkpoint + 2")


def samples(cls) -> Result:
    name = "sample shape, dtype and range"
    model = build(cls, tiny(cls))
    model.train(False)
    x = model.sample(3, torch.Generator().manual_seed(0))
    want = (3, *SHAPE)
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != want or x.dtype != torch.float32:
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        return fail(
            name,
            f"sample(3) gave {got}, expected {want} float32",
            "return a float32 tensor N x C x H x W in the data's scale [-1, 1]",
        )
    if not torch.isfinite(x).all():
        return fail(name, "samples hold NaN or Inf", "check the sampler's step size and the energy's scale")
    outside = float(((x < -1) | (x > 1)).float().mean())
    if float(x.min()) >= 0 and float(x.max()) > 0:  # an untrained model's images straddle 0 in [-1, 1]
        return fail(
            name,
            f"no negative pixel (range {float(x.min()):.3g} .. {float(x.max()):.3g}): images in [0, 1] or [0, 255]?",
            "images are in [-1, 1] (the loop's data scale, x * 2 - 1); values outside are clamped when written",
        )
    return Result(name, True, f"{want} float32, {outside:.0%} of pixels outside [-1, 1] (clamped when written)")


def reconstructions(cls) -> Result:
    name = "reconstruct (optional)"
    model = build(cls, tiny(cls))
    model.train(False)
    x = data_batch()
    r = model.reconstruct(x, torch.Generator().manual_seed(0))
    if r is None:
        return Result(name, True, "no inference path (reconstruct returns None)")
    if not isinstance(r, torch.Tensor) or r.shape != x.shape or not torch.isfinite(r).all():
        return fail(
            name,
            f"reconstruct gave {getattr(r, 'shape', type(r).__name__)}, expected finite {tuple(x.shape)}",
            "return the reconstruction of x in x's shape, or None when the model has no inference path",
        )
    return Result(name, True, f"{tuple(r.shape)}, finite")


CHECKS = (
    declares_config_and_presets,
    presets_build,
    finite_losses,
    moves_every_network,
    deterministic,
    checkpoint_round_trip,
    resume_exact,
    samples,
    reconstructions,
)


def run_check(cls, check) -> Result:
    """One check; an exception inside the method is a failed check naming it, not a crash."""
    try:
        return check(cls)
    except Exception as err:
        label = check.__name__.replace("_", " ")
        return fail(
            label, f"{type(err).__name__}: {err}", "see the error; the check ran the method on 4 digits-shaped images"
        )


def check_method(name: str) -> list[Result]:
    """Every check on the registered method `name` (an id or package.module:Class)."""
    cls = get_method(name)  # an id or package.module:Class; refuses what is not a Method
    first = run_check(cls, declares_config_and_presets)
    if not first.passed:  # every other check builds the digits preset
        return [first]
    return [first] + [run_check(cls, c) for c in CHECKS[1:]]


def format_results(name: str, results: list[Result]) -> str:
    width = max(len(r.check) for r in results)
    lines = [f"check-method {name}"]
    for r in results:
        lines.append(f"  {'PASS' if r.passed else 'FAIL'}  {r.check:<{width}}  {r.detail}")
        if not r.passed:
            lines.append(f"        {'':<{width}}  remedy: {r.remedy}")
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
