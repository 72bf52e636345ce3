"""Benchmark every method at a preset: training iteration, Langevin step against its floor, throughput,
peak memory. Prints a table and writes benchmarks.csv + benchmarks.png.

    python benchmarks/run.py [--presets digits] [--methods short_run ...] [--device cpu]
                             [--set channels_last=true ...] --out benchmarks/results/

Per method and preset, each measured in a fresh process (so peak memory is that method's alone):
  s_per_iter_plain  one training iteration with every speed switch off: the paper-faithful fp32 eager
                    loop the released codes run;
  s_per_iter        the same with the switches of this run (the Config defaults, plus --set);
  first_iter_s      its first iteration (with torch.compile on: the compile time);
  per chain the method runs in an iteration (energy, batch, steps as the method calls them):
  step_ms           one Langevin step as the method runs it (ebmbench.Method.langevin);
  step_speedup      a step of the bare sampler (switches off, parameters in autograd) over step_ms;
  floor_ms          one forward plus one input-gradient backward of the same energy on the same batch,
                    parameters frozen: what no sampler can go below;
  steps_per_s, net_images_per_s (forward only through the chain's energy, or generator, network),
  sample_images_per_s (model.sample: the whole sampler), peak_mem_mb (max RSS on CPU, max allocated
  on CUDA).
Every ratio comes from interleaved repeats in one process (medians), so a shared machine's load
hits both sides alike. The data batch is uniform noise in [-1, 1] of the preset's image shape: the
cost of an iteration does not depend on its content, and paper presets run without the datasets.
"""

import argparse
import csv
import dataclasses
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from ebmbench.checks import parse_sets
from ebmbench.langevin import frozen, langevin, recording
from ebmbench.method_base import apply_overrides
from ebmbench.registry import get_method, method_ids, preset_image_shape, resolve_config

PLAIN = {"freeze_params": False, "channels_last": "off", "compile": False, "bf16": "off"}
COLUMNS = [
    "method",
    "preset",
    "device",
    "switches",
    "batch",
    "s_per_iter_plain",
    "s_per_iter",
    "iter_speedup",
    "first_iter_s",
    "sample_images_per_s",
    "peak_mem_mb",
    "chain",
    "chain_batch",
    "chain_steps",
    "step_ms",
    "floor_ms",
    "step_over_floor",
    "step_speedup",
    "steps_per_s",
    "net_images_per_s",
]


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = (
        next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return f"{cpu}, torch threads={torch.get_num_threads()}, {torch.backends.cpu.get_cpu_capability()}"


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def interleaved(cases: dict, repeats: int, device) -> dict:
    """Median seconds of each case, the cases taking turns so that load drifts hit all alike."""
    times = {k: [] for k in cases}
    for _ in range(repeats):
        for k, fn in cases.items():
            times[k].append(timed(fn, device))
    return {k: statistics.median(v) for k, v in times.items()}


def chain_name(energy) -> str:
    q = getattr(energy, "__qualname__", type(energy).__name__)
    return q.split(".<locals>")[0].split(".")[-1]


def bench_one(method: str, preset: str, device: str, overrides: dict, repeats: int) -> list[dict]:
    dev = torch.device(device)
    cls = get_method(method)
    cfg = apply_overrides(resolve_config(method, preset), overrides, where="--set")
    shape = preset_image_shape(preset)

    def make(c):
        torch.manual_seed(0)
        m = cls(c, shape, dev)
        m.speed_up()
        return m

    plain, fast = make(dataclasses.replace(cfg, **PLAIN)), make(cfg)
    fast.load_state_dict(plain.state_dict())
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.rand((cfg.batch_size, *shape), generator=gen, device=dev) * 2 - 1
    plain.train_step(x, gen)  # warm-up
    first = timed(lambda: fast.train_step(x, gen), dev)  # includes compilation, when on
    it = interleaved({"plain": lambda: plain.train_step(x, gen), "fast": lambda: fast.train_step(x, gen)}, repeats, dev)
    n_sample = fast.sample_chunk()
    fast.train(False)
    t_sample = interleaved({"s": lambda: fast.sample(n_sample, gen)}, max(1, repeats // 2), dev)["s"]
    fast.train(True)
    with recording() as chains:
        fast.train_step(x, gen)
    base = {
        "method": method,
        "preset": preset,
        "device": machine(device),
        "switches": " ".join(f"{k}={v}" for k, v in fast.switches_in_effect().items()),
        "batch": cfg.batch_size,
        "s_per_iter_plain": it["plain"],
        "s_per_iter": it["fast"],
        "first_iter_s": first,
        "iter_speedup": it["plain"] / it["fast"],
        "sample_images_per_s": n_sample / t_sample,
    }
    rows, seen = [], set()
    for rec in chains:
        name = chain_name(rec["energy"])
        if name in seen:
            continue
        seen.add(name)
        energy, x0 = rec["energy"], rec["x"]
        k = max(1, min(rec["n_steps"], 10))

        def step():
            fast.langevin(energy, x0, n_steps=k, step_size=rec["step_size"], noise_std=rec["noise_std"], generator=gen)

        def step_plain():  # the shared sampler alone: parameters in autograd, fp32, as the input comes
            langevin(energy, x0, n_steps=k, step_size=rec["step_size"], noise_std=rec["noise_std"], generator=gen)

        def contexts(stack):  # the floor runs under the same switches as the chain
            stack.enter_context(frozen(fast.nets.values()))
            if fast.switches_in_effect()["bf16"]:
                stack.enter_context(torch.autocast(dev.type, dtype=torch.bfloat16))

        def floor():
            with ExitStack() as stack:
                contexts(stack)
                for _ in range(k):
                    v = x0.detach().requires_grad_(True)
                    torch.autograd.grad(energy(v).sum(), v)

        def forward():
            with ExitStack() as stack, torch.no_grad():
                contexts(stack)
                energy(x0)

        # a chain's k steps are cheap beside an iteration: three times the repeats steady the ratio
        t = interleaved({"step": step, "step_plain": step_plain, "floor": floor, "forward": forward}, 3 * repeats, dev)
        rows.append(
            {
                **base,
                "chain": name,
                "chain_batch": len(x0),
                "chain_steps": rec["n_steps"],
                "step_ms": 1e3 * t["step"] / k,
                "floor_ms": 1e3 * t["floor"] / k,
                "step_over_floor": t["step"] / t["floor"],
                "step_speedup": t["step_plain"] / t["step"],
                "steps_per_s": k / t["step"],
                "net_images_per_s": len(x0) / t["forward"],
            }
        )
    rows = rows or [dict(base)]  # a method without chains (vae)
    peak = (
        torch.cuda.max_memory_allocated(dev)
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ) / 2**20
    return [{**r, "peak_mem_mb": peak} for r in rows]


def fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chains = [r for r in rows if r.get("step_over_floor")]
    runs = list({(r["method"], r["preset"]): r for r in rows}.values())
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.barh([f"{r['method']}/{r['chain']}" for r in chains], [r["step_over_floor"] for r in chains])
    a.axvline(1.15, color="r", ls="--", label="1.15x target")
    a.set_xlabel("Langevin step / floor (fwd + input-grad bwd)")
    a.legend()
    ys = range(len(runs))
    b.barh([y + 0.2 for y in ys], [r["s_per_iter_plain"] for r in runs], 0.4, label="plain fp32 eager")
    b.barh([y - 0.2 for y in ys], [r["s_per_iter"] for r in runs], 0.4, label="with switches")
    b.set_yticks(list(ys), [f"{r['method']}/{r['preset']}" for r in runs])
    b.set_xlabel("seconds per training iteration")
    b.legend()
    fig.suptitle(rows[0]["device"] if rows else "")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["digits"])
    p.add_argument("--methods", nargs="+", default=None, help="default: every method")
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a switch (or any Config field) for the run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--one", nargs=2, metavar=("METHOD", "PRESET"), help=argparse.SUPPRESS)  # the child process
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.one:
        print(json.dumps(bench_one(*a.one, a.device, parse_sets(a.set), a.repeats)))
        return 0
    rows = []
    for preset in a.presets:
        for method in a.methods or method_ids():
            cmd = [sys.executable, __file__, "--one", method, preset, "--device", a.device, "--repeats", str(a.repeats)]
            cmd += [arg for s in a.set or [] for arg in ("--set", s)] + (
                ["--threads", str(a.threads)] if a.threads else []
            )
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"{method}/{preset}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
                continue
            new = json.loads(res.stdout.strip().splitlines()[-1])
            rows += new
            for r in new:
                print("  ".join(f"{k}={fmt(r.get(k))}" for k in COLUMNS if k not in ("device", "switches")), flush=True)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "benchmarks.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows({k: fmt(r.get(k)) for k in COLUMNS} for r in rows)
    if rows:
        plot(rows, out / "benchmarks.png")
        print(f"machine: {rows[0]['device']}; switches: {rows[0]['switches']}")
    print(f"wrote {out / 'benchmarks.csv'} and {out / 'benchmarks.png'}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
