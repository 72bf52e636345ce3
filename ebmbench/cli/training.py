"""The training wing's commands: prepare a dataset, train a method, sample a run, the noise
ceiling, parameter counts."""

import json
from pathlib import Path

from ..checks import (
    apart,
    at_least,
    dataset_spec,
    device,
    fits,
    input_dir,
    input_file,
    out_folder,
    parse_sets,
    prepared,
    seed,
)
from ..commit import committed_folder
from ..io import folder_lock
from .command import Command, set_threads

PREPARED = ("train.npy", "test.npy", "info.json")
# what a new set of samples makes stale beside it: the score of the samples it replaces
SCORED = ("metrics.json", "features.npz")


def _image_bytes(n: int, shape) -> int:
    h, w, c = shape
    return n * h * w * c


class Prepare(Command):
    """load a dataset and write train.npy/test.npy/info.json"""

    name = "prepare"

    @staticmethod
    def arguments(p):
        p.add_argument("--dataset", required=True)
        p.add_argument("--spec", default="{}", help="the dataset's config entry as JSON")
        p.add_argument("--data-root", default="data")
        p.add_argument("--out", required=True)

    @staticmethod
    def check(a):
        a.spec_dict = dataset_spec(a.dataset, a.spec)
        out_folder(a.out)
        apart({"--out": a.out}, {"the spec's path": a.spec_dict.get("path")})

    @staticmethod
    def run(a):
        from ..data import prepare

        # the three files are one set: a kill leaves the old set or the new one, never a mixture
        with folder_lock(a.out), committed_folder("prepare", a.out, PREPARED) as stage:
            info = prepare(a.dataset, a.spec_dict, Path(a.data_root), stage)
        print(json.dumps(info, indent=2))


class Train(Command):
    """train one method on one prepared dataset"""

    name = "train"

    @staticmethod
    def arguments(p):
        p.add_argument("--method", required=True)
        p.add_argument("--data", required=True, help="prepared dataset folder")
        p.add_argument("--out", required=True, help="run folder")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--preset", help="preset name (default: the dataset's name)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a Config field (YAML value)")
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int)
        p.add_argument("--no-progress", action="store_true")
        p.add_argument(
            "--other-run",
            choices=("refuse", "restart"),
            default="refuse",
            help="a checkpoint of another run (other config, seed or data) in --out: stop (default) or set it aside and start afresh",
        )
        p.add_argument(
            "--allow-divergence",
            action="store_true",
            help="exit 0 after a divergence (the workflow goes on and reports the run as diverged)",
        )

    @staticmethod
    def check(a):
        from ..registry import resolve_config

        seed("--seed", a.seed)
        at_least("--seed", a.seed, 0)
        at_least("--threads", a.threads)
        device(a.device)
        info = prepared(a.data)
        a.overrides = parse_sets(a.set)
        resolve_config(a.method, a.preset or info["name"], a.overrides)  # method, preset, keys, types, ranges
        out_folder(a.out)

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..loop import train

        with folder_lock(a.out):  # one writer per run folder
            summary = train(
                a.method, a.data, a.out, a.seed, a.preset, a.overrides, a.device, not a.no_progress, a.other_run
            )
        print(json.dumps(summary))


class Sample(Command):
    """samples, grid, reconstructions, figures and measurements from a run (or a sampling variant's samples)"""

    name = "sample"

    @staticmethod
    def arguments(p):
        p.add_argument("--run", required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--data", help="prepared dataset folder (enables reconstructions and figures)")
        p.add_argument("--n-recon", type=int, default=300, help="test images to reconstruct")
        p.add_argument(
            "--variant",
            help="draw with this sampling variant of the method (its VARIANTS) instead: samples, grid and labels only",
        )
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int)
        p.add_argument("--no-progress", action="store_true")

    @staticmethod
    def check(a):
        at_least("--n", a.n)
        at_least("--n-recon", a.n_recon)
        seed("--seed", a.seed)
        at_least("--seed", a.seed, 0)
        at_least("--threads", a.threads)
        device(a.device)
        run = input_dir(a.run, "--run (run folder)")
        input_file(run / "model.pt", "trained model")
        if a.data is not None:
            prepared(a.data)  # that it is the run's own data, `generate` checks from the model's identity
        out_folder(a.out)
        apart({"--out": a.out}, {"--data": a.data})
        from ..runs import FINAL, load_checkpoint

        shape = load_checkpoint(run / FINAL)["identity"]["image_shape"]
        size = _image_bytes(a.n, shape)  # the chunks and their concatenation in memory, the .npz on disk
        fits("--n", f"{a.n:,} images of {'x'.join(map(str, shape))}", 2 * size, size, a.out)

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..sampling import SAMPLE_OUTPUTS, generate

        # written aside and swapped in whole; the previous samples' score goes with them (ebmbench.commit)
        with folder_lock(a.out), committed_folder("sample", a.out, (*SAMPLE_OUTPUTS, *SCORED)) as stage:
            summary = generate(
                a.run,
                a.n,
                stage,
                a.seed,
                a.data,
                a.n_recon,
                device=a.device,
                progress=not a.no_progress,
                variant=a.variant,
            )
        print(json.dumps(summary).replace(str(stage), str(a.out)))


class Noise(Command):
    """uniform-noise images shaped like a dataset (the FID ceiling)"""

    name = "noise"

    @staticmethod
    def arguments(p):
        p.add_argument("--data", required=True)
        p.add_argument("--n", type=int, required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--seed", type=int, default=0)

    @staticmethod
    def check(a):
        at_least("--n", a.n)
        seed("--seed", a.seed, 32)  # NumPy's RandomState
        at_least("--seed", a.seed, 0)
        info = prepared(a.data)
        out_folder(a.out)
        apart({"--out": a.out}, {"--data": a.data})
        what = f"{a.n:,} noise images of {'x'.join(map(str, info['image_shape']))}"
        fits("--n", what, _image_bytes(a.n, info["image_shape"]), _image_bytes(a.n, info["image_shape"]), a.out)

    @staticmethod
    def run(a):
        from ..sampling import uniform_noise

        with (
            folder_lock(a.out),
            committed_folder("noise", a.out, ("samples.npz", "samples.json", "grid.png", *SCORED)) as stage,
        ):
            uniform_noise(a.data, a.n, stage, a.seed)


class Params(Command):
    """parameter counts of every method's networks per preset"""

    name = "params"

    @staticmethod
    def arguments(p):
        p.add_argument("--methods", nargs="*")

    @staticmethod
    def check(a):
        from ..registry import get_method

        for m in a.methods or []:
            get_method(m)

    @staticmethod
    def run(a):
        from ..registry import parameter_counts

        for r in parameter_counts(a.methods):
            print(f"{r['method']:<16} {r['preset']:<10} {r['network']:<12} {r['params']:>12,}")


COMMANDS = (Prepare, Train, Sample, Noise, Params)
