"""What every method provides, and the generic parts of a method (checkpoint state, schedules).

A method is a subclass of `Method` in `methods/<name>.py` with
  - `Config`: a frozen dataclass of hyperparameters, defaults from the paper;
  - `PRESETS`: dataset name -> Config (the paper's settings per dataset, a CPU preset for digits);
  - `__init__(cfg, image_shape, device)`: builds networks into `self.nets`, optimisers into
    `self.opts`, per-epoch schedulers into `self.scheds`;
  - `train_step(x, gen) -> dict of floats`: one iteration on a data batch in [-1, 1];
  - `sample(n, gen) -> images in [-1, 1]`;
optionally `reconstruct(x, gen)` (models with an inference path) and `figures(x, gen, out_dir)`
(its paper's mechanism); `VARIANTS` (name -> description: other ways to sample the same model,
drawn by `sample_variant`, scored as "<method>@<variant>" by `ebmbench sample --variant`); and
`measurements(x_test, gen)` (metric -> value, names from ebmbench.evaluate.scoring.METRICS: written
to measurements.json by `ebmbench sample --data`, merged by `ebmbench score --measurements`).
Methods never touch files other than in `figures`, seeds or logging: the training loop owns those.
Its paper's published numbers live in methods/paper_numbers.csv, not in the method file.
"""

import contextlib
import copy
import dataclasses
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import torch

from .io import SuiteError
from .langevin import frozen, langevin


@dataclass(frozen=True)
class TrainConfig:
    """Fields every method's Config has (the loop reads them)."""

    batch_size: int = 64
    n_iters: int = 1000
    checkpoint_every: int = 500  # iterations between resumable checkpoints
    max_energy_gap: float = 0.0  # divergence if the logged energies spread wider (0: no bound)
    divergence_retries: int = 0  # restarts from the last good checkpoint, each with a new seed
    # Early warning of a runaway (ebmbench.health.EarlyWarning): growth factor (0: off), window, armed
    # after; then record it, rewind (last checkpoint, lr halved; counts as a retry) or stop the run.
    warn_growth: float = 2.0
    warn_window: int = 10
    warn_after: int = 100
    on_warning: typing.Literal["record", "rewind", "stop"] = "record"
    # The paper's own data protocol, stated by its preset (the workflow and the loop apply it):
    n_train: int = 0  # train on the first n images of the prepared train split (0: all of it)
    n_samples: int = 0  # generated images to score (0: the workflow's n_samples)
    hflip: bool = False  # random horizontal flips of the training batches (a paper's augmentation)
    # Speed switches (benchmarks/run.py measures them). All off is the paper-faithful fp32 eager
    # path of the released codes. `auto` turns a switch on where it pays on such hardware
    # (`switch_on`). A switch that changes float rounding is on by default only if the default
    # run's metrics stay within seed noise with it (docs/performance.md).
    freeze_params: bool = True  # parameters out of autograd during a chain: bitwise the same chain
    # NHWC conv nets and chain states; auto: on the CPU (oneDNN), off on CUDA (unmeasured there).
    # Off by default: its rounding moves coopnets' digits FID beyond seed noise (docs/performance.md).
    channels_last: typing.Literal["off", "on", "auto"] = "off"
    compile: bool = False  # torch.compile every network (compile time is paid once per process)
    bf16: typing.Literal["off", "on", "auto"] = "off"  # bf16 autocast inside chains (auto: where the hardware has bf16)


def bf16_native(device: torch.device) -> bool:
    """Whether the hardware computes bf16 natively: CUDA with bf16, or a CPU with AMX or AVX512-BF16.
    Without it (e.g. an AVX2-only CPU) autocast emulates bf16 and a chain step is several times
    slower (docs/performance.md), so `auto` must not enable it there."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return any(p is not None and p() for p in probes)


def channels_last_pays(device: torch.device) -> bool:
    """Where NHWC pays: the CPU's oneDNN convolutions (docs/performance.md). On CUDA, fp32 NHWC
    is unmeasured."""
    return device.type == "cpu" and torch.backends.mkldnn.is_available()


def on_off(value):
    """True/False as "on"/"off", anything else as it is: YAML 1.1 (PyYAML, --set) reads on/off as
    booleans, and run identities written before the switches had three values hold booleans."""
    return ("on" if value else "off") if isinstance(value, bool) else value


def switch_on(choice, device: torch.device, pays) -> bool:
    """An off/on/auto switch's value on `device`; `pays(device)` decides `auto`."""
    choice = on_off(choice)
    return choice == "on" or (choice == "auto" and pays(device))


class Method:
    Config: type = TrainConfig
    PRESETS: dict = {}
    FIGURES: tuple[str, ...] = ()  # PNG names `figures` writes (the workflow declares them)
    VARIANTS: dict[str, str] = {}  # sampling variant -> one-line description (`sample_variant`)
    ABLATES: tuple[str, ...] = ()  # a baseline: the method ids it is an ablation of (table grouping)
    # A plug-in's own published numbers (a CSV in methods/paper_numbers.csv's columns), checked on
    # load like the suite's; the built-ins' numbers live in methods/paper_numbers.csv.
    PAPER_NUMBERS: Path | None = None

    def __init__(self, cfg, image_shape: tuple[int, int, int], device: torch.device):
        self.cfg, self.image_shape, self.device = cfg, tuple(image_shape), device
        self.nets: dict[str, torch.nn.Module] = {}
        self.opts: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}

    # -- what a method implements ------------------------------------------------------------
    def train_step(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def sample_chunk(self) -> int:
        """Images per `sample` call when many are drawn: the training batch, unless a method's
        networks depend on the batch (batch-norm statistics at test time) and it says otherwise."""
        return self.cfg.batch_size

    def reconstruct(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor | None:
        """Reconstruction of test images through the model's inference path; None if it has none."""
        return None

    def figures(self, x: torch.Tensor, gen: torch.Generator, out_dir: Path) -> list[Path]:
        """Write the paper's mechanism figures for a batch of data `x`; return the files written."""
        return []

    def sample_variant(self, variant: str, n: int, gen: torch.Generator) -> torch.Tensor:
        """n images in [-1, 1] drawn the way VARIANTS[variant] says."""
        raise SuiteError(
            f"{type(self).__name__} has no sampling variant '{variant}'; its variants: "
            f"{', '.join(self.VARIANTS) or 'none'}. Pass one of those to --variant, or none."
        )

    def measurements(self, x: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        """The model's own measured numbers on test images x (metric name -> value); {} if none."""
        return {}

    # -- generic ---------------------------------------------------------------------------
    def langevin(self, energy, x: torch.Tensor, **kw) -> torch.Tensor:
        """The shared sampler (ebmbench.langevin.langevin) under this run's speed switches; every
        chain of a method goes through here."""
        c = self.cfg  # bf16's value is checked with the config (apply_overrides: a Literal field)
        use_bf16 = switch_on(c.bf16, x.device, bf16_native)
        if x.dim() == 4 and switch_on(c.channels_last, x.device, channels_last_pays):
            x = x.contiguous(memory_format=torch.channels_last)
        with contextlib.ExitStack() as stack:
            if c.freeze_params:
                stack.enter_context(frozen(self.nets.values()))
            if use_bf16:
                stack.enter_context(torch.autocast(x.device.type, dtype=torch.bfloat16))
            # named after the method's function that runs it (revise_x, posterior_chain, ...) in the
            # health signals; an image chain also reports its pixels outside the data's [-1, 1]
            kw.setdefault("chain", sys._getframe(1).f_code.co_name)
            if tuple(x.shape[1:]) == self.image_shape:
                kw.setdefault("data_range", (-1.0, 1.0))
            return langevin(energy, x, **kw)

    def switches_in_effect(self) -> dict[str, bool]:
        """The speed switches as this run applies them on its device (`auto` resolved)."""
        c, dev = self.cfg, self.device
        return {
            "freeze_params": bool(c.freeze_params),
            "channels_last": switch_on(c.channels_last, dev, channels_last_pays),
            "compile": bool(c.compile),
            "bf16": switch_on(c.bf16, dev, bf16_native),
        }

    def speed_up(self) -> None:
        """Apply the network-level switches once the networks exist (the loop calls it after
        building): channels-last conv weights, torch.compile. Parameters stay the same objects, so
        the optimisers and state_dict keys are unaffected."""
        channels_last = self.switches_in_effect()["channels_last"]
        for net in self.nets.values():
            if channels_last and any(p.dim() == 4 for p in net.parameters()):
                net.to(memory_format=torch.channels_last)
            if self.cfg.compile:
                net.compile()  # in place: state_dict keys keep their names

    @classmethod
    def reconstructs(cls) -> bool:
        return cls.reconstruct is not Method.reconstruct

    @classmethod
    def measures(cls) -> bool:
        return cls.measurements is not Method.measurements

    def end_epoch(self) -> None:
        for s in self.scheds.values():
            s.step()

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    def state_dict(self) -> dict:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "opts": {k: v.state_dict() for k, v in self.opts.items()},
            "scheds": {k: v.state_dict() for k, v in self.scheds.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        # Optimizer.load_state_dict keeps the given moment tensors when dtype and device match, so
        # two models loaded from one in-memory state would share (and both advance) the same Adam
        # moments; a copy makes every load independent of its source.
        state = copy.deepcopy(state)
        for group in ("nets", "opts", "scheds"):
            mine, theirs = getattr(self, group), state.get(group, {})
            if set(mine) != set(theirs):
                raise SuiteError(
                    f"checkpoint holds {group} {sorted(theirs)} but this method builds {sorted(mine)}: "
                    f"it was written by another method or version."
                )
            for k, obj in mine.items():
                try:
                    obj.load_state_dict(theirs[k])
                except (RuntimeError, KeyError, ValueError) as err:
                    raise SuiteError(f"checkpoint {group}/{k} does not fit this configuration: {err}") from None


def config_fields(config_cls) -> dict[str, type]:
    return {f.name: typing.get_type_hints(config_cls)[f.name] for f in dataclasses.fields(config_cls)}


# Fields whose zero is no setting but a broken run: a 0 batch divides by zero in the
# loop, 0 iterations would be sampled and scored as a trained model. Fields not listed keep 0 as
# a real choice: divergence_retries, max_energy_gap (no bound), n_train / n_samples (all / the
# workflow's), z_steps (Dual-MCMC's amortized-only inference, its Table 3 "Inf" row).
_STEPS = "the method's Langevin chain is its sampler or its inference; 0 steps skips the model"
_FIGURE = "a figure of zero rows or columns"
ZERO_IS_MEANINGLESS = {
    "batch_size": "a batch of zero images",
    "n_iters": "a model of 0 iterations is untrained",
    "checkpoint_every": "checkpoints every 0 iterations",
    **dict.fromkeys(("n_f", "ebm_nf", "enc_nf", "dec_nf", "ngf", "ndf", "nif", "nz"), "a network of width 0"),
    "chains_per_obs": "zero MCMC chains",
    **dict.fromkeys(("n_steps", "n_steps_test", "x_steps", "sample_steps", "prior_steps", "post_steps"), _STEPS),
    "recon_iters": "a reconstruction of 0 optimisation steps",
    **dict.fromkeys(
        (
            "interp_pairs",
            "interp_points",
            "recon_images",
            "revision_rows",
            "revision_cols",
            "fig_rows",
            "fig_columns",
            "fig_images",
            "fig_cols",
        ),
        _FIGURE,
    ),
}


def apply_overrides(cfg, overrides: dict, where: str = "overrides"):
    """Return cfg with `overrides` applied; unknown keys and wrong types fail naming the key."""
    fields = config_fields(type(cfg))
    clean = {}
    for key, value in overrides.items():
        if key not in fields:
            raise SuiteError(
                f"unknown config key '{key}' in {where}; {type(cfg).__module__}.{type(cfg).__qualname__} "
                f"has: {', '.join(sorted(fields))}."
            )
        want = fields[key]
        if typing.get_origin(want) is typing.Literal:  # a field with named choices
            if {"on", "off"} <= set(typing.get_args(want)):
                value = on_off(value)
            if value not in typing.get_args(want):
                choices = ", ".join(map(str, typing.get_args(want)))
                raise SuiteError(f"config key '{key}' in {where} must be one of {choices}, got {value!r}.")
            clean[key] = value
            continue
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is float and isinstance(value, str):
            try:  # YAML 1.1 (PyYAML, Snakemake's config) reads 5e-4 as a string
                value = float(value)
            except ValueError:
                pass
        if typing.get_origin(want) is tuple and isinstance(value, list):
            value = tuple(value)
        base = typing.get_origin(want) or want
        if not isinstance(value, base) or (base is int and isinstance(value, bool)):
            raise SuiteError(f"config key '{key}' in {where} must be {getattr(want, '__name__', want)}, got {value!r}.")
        if base in (int, float) and value < 0:
            raise SuiteError(f"config key '{key}' in {where} must be >= 0, got {value!r}.")
        if key in ZERO_IS_MEANINGLESS and value == 0:
            raise SuiteError(f"config key '{key}' in {where} must be >= 1, got {value!r}: {ZERO_IS_MEANINGLESS[key]}.")
        clean[key] = value
    return dataclasses.replace(cfg, **clean)


def ablated(cfg, config_cls, **changes):
    """The ablated method's preset restricted to the baseline's fields (plus `changes`): the shared
    generator, chain and optimiser settings stay equal by construction."""
    keep = {f.name for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in keep}, **changes)
