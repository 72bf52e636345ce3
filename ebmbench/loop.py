"""The generic training loop: data order, logging, checkpointing, resume, and retry on divergence.

Determinism by design: iteration i draws every random number from a generator seeded with
(seed, i), and epoch e's data order from (seed, e) (ebmbench.seeding). A resumed run therefore
needs only the iteration counter and the state_dicts to continue exactly where an uninterrupted
run would be.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data import dataset_info, load_prepared
from .divergence import (
    DivergenceError,
    RewindRequest,
    WarningStop,
    check_parameters,
    check_stats,
    heed_warning,
    scale_learning_rates,
)
from .health import EarlyWarning, health_figure, is_health_field, iteration_signals
from .io import (
    SuiteError,
    append_jsonl,
    read_jsonl,
    remove_outputs,
    save_torch,
    to_float,
    write_json,
    write_text,
)
from .langevin import diagnosing
from .registry import resolve_config
from .runs import (
    CHECKPOINT,
    FINAL,
    REWRITTEN,
    OtherRunCheckpoint,
    build,
    checkpoint_record,
    load_checkpoint,
    pick_device,
    run_identity,
)
from .seeding import derive_seed, epoch_order, seeded_generator


def train(
    method: str,
    data_dir,
    out_dir,
    seed: int = 0,
    preset: str | None = None,
    overrides: dict | None = None,
    device: str = "auto",
    progress: bool = True,
    other_run: str = "refuse",
) -> dict:
    """Train one run into out_dir, resuming from out_dir/state-latest.pt when it exists.

    A checkpoint of another run there (other config, seed or data) stops with an error, or with
    other_run="restart" is set aside as state-latest.other-run.pt (its log as log.other-run.jsonl)
    and this run starts afresh: the workflow's choice, which reruns a job only when its config
    changed, so what it finds is the run it replaces.

    On divergence the run goes back to its last good checkpoint and, while the config allows
    (divergence_retries), continues with a new recorded seed; past that it writes model.pt with
    status 'diverged' (the last good weights, which nothing downstream scores) and raises."""
    out_dir, dev = Path(out_dir), pick_device(device)
    info = dataset_info(data_dir)
    preset = preset or info["name"]
    cfg = resolve_config(method, preset, overrides)
    identity = run_identity(method, preset, seed, cfg, info)
    images = load_prepared(data_dir, "train")
    if cfg.n_train:  # the paper's training subset (e.g. short-run's 40,000 images): the first n
        if cfg.n_train > len(images):
            raise SuiteError(
                f"n_train = {cfg.n_train} asks for more than the {len(images)} training images of "
                f"'{info['name']}'; lower n_train or set it to 0 (the whole split)."
            )
        images = images[: cfg.n_train]
    n, bs = len(images), cfg.batch_size
    if bs > n:
        raise SuiteError(f"batch_size {bs} is larger than the {n} training images of '{info['name']}'.")
    iters_per_epoch = n // bs  # drop_last, as the released codes do
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path, ckpt_path = out_dir / "log.jsonl", out_dir / CHECKPOINT

    def restore():
        """(model, iteration, progress) from the last checkpoint, or fresh; the log is cut to match."""
        torch.manual_seed(seed)  # network initialisation
        model = build(identity, dev)
        it, prog = 0, {"seed": seed, "restarts": []}
        if ckpt_path.exists():
            try:
                ckpt = load_checkpoint(ckpt_path, identity)
            except OtherRunCheckpoint:
                if other_run != "restart":
                    raise
                for f in (ckpt_path, log_path):
                    if f.exists():
                        f.replace(f.with_name(f.stem + ".other-run" + f.suffix))
                print(
                    f"{ckpt_path} was another run's (set aside as state-latest.other-run.pt): starting afresh",
                    file=sys.stderr,
                )
                ckpt = None
            if ckpt is not None:
                model.load_state_dict(ckpt["method_state"])
                it, prog = ckpt["iter"], ckpt["progress"]
        # log lines after the checkpoint are recomputed (identically, or with the new seed)
        kept = [r for r in read_jsonl(log_path) if r.get("iter", -1) < it]
        write_text(log_path, "".join(json.dumps(r) + "\n" for r in kept))
        return model, it, prog

    model, start, prog = restore()
    remove_outputs(out_dir, REWRITTEN)  # no model.pt or samples of a previous run beside this one's log
    write_json(out_dir / "config.json", identity)
    t0 = time.time()
    bar = tqdm(
        total=cfg.n_iters,
        initial=start,
        desc=f"{method}/{info['name']}/seed{seed}",
        unit="it",
        disable=not progress,
        dynamic_ncols=True,
    )
    i, perm = start, None
    warning = EarlyWarning(cfg.warn_growth, cfg.warn_window, cfg.warn_after)
    while i < cfg.n_iters:
        try:
            model.train()
            run_seed = prog["seed"]
            epoch, pos = divmod(i, iters_per_epoch)
            if perm is None or pos == 0:
                perm = epoch_order(run_seed, epoch, n)
            idx = np.sort(perm[pos * bs : (pos + 1) * bs].numpy())
            x = to_float(images[idx]).to(dev)
            if cfg.hflip:  # mirror a random half of the batch, drawn from its own (seed, i) stream
                flip = torch.rand(len(x), generator=seeded_generator(torch.device("cpu"), run_seed, "flip", i)) < 0.5
                x = torch.where(flip.to(dev)[:, None, None, None], x.flip(3), x)
            torch.manual_seed(derive_seed(run_seed, "global", i))  # stray uses of the global RNG reproduce too
            with diagnosing() as chains:
                stats = model.train_step(x, seeded_generator(dev, run_seed, "iteration", i))
            health = iteration_signals(stats, chains)
            check_stats(i, stats, cfg.max_energy_gap)
            check_stats(i, health, 0)
            append_jsonl(log_path, {"iter": i, "epoch": epoch, **stats, **health})
            flag = warning.update(i, health)
            if flag is not None:
                warning.reset()  # re-armed after another three windows
                heed_warning(i, *flag, cfg.on_warning, prog, log_path, bar)
            if pos == iters_per_epoch - 1:
                model.end_epoch()
            if (i + 1) % cfg.checkpoint_every == 0 or i + 1 == cfg.n_iters:
                check_parameters(i, model)  # never save a poisoned state as "good"
                save_torch(ckpt_path, checkpoint_record(i + 1, identity, model, prog))
            i += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(stats.items())[:3]})
        except DivergenceError as err:
            event = {
                "event": "diverged",
                "iter": i,
                "quantity": err.quantity,
                "message": str(err),
                "run_seed": prog["seed"],
            }
            if len(prog["restarts"]) >= cfg.divergence_retries or isinstance(err, WarningStop):
                bar.close()
                return _finish(out_dir, identity, model, prog, start, t0, dev, status={"status": "diverged", **event})
            # the checkpoint's own record predates this divergence: keep the counts
            past, warned, scale = prog["restarts"], prog.get("warnings", []), prog.get("lr_scale", 1.0)
            model, i, prog = restore()
            perm = None
            warning.reset()
            prog["restarts"], prog["warnings"] = past + [{**event, "resumed_at": i}], warned
            # the checkpoint may predate earlier rewinds: its learning rates are brought to the scale
            # in force, halved again for this rewind
            target = scale * (0.5 if isinstance(err, RewindRequest) else 1.0)
            scale_learning_rates(model, target / prog.get("lr_scale", 1.0))
            prog["lr_scale"] = target
            if isinstance(err, RewindRequest):  # the same seed, lower learning rates
                change = f"learning rates x{target:g}"
                append_jsonl(log_path, {"iter": i, "event": "rewind", "lr_scale": prog["lr_scale"]})
            else:
                prog["seed"] = seed + 1_000_003 * len(prog["restarts"])  # the recorded new seed
                change = f"seed {prog['seed']}"
                append_jsonl(log_path, {"iter": i, "event": "restart", "new_seed": prog["seed"]})
            bar.n = i
            print(
                f"warning: {err} Restarting from iteration {i} with {change} "
                f"(retry {len(prog['restarts'])} of {cfg.divergence_retries}).",
                file=sys.stderr,
            )
    bar.close()
    return _finish(out_dir, identity, model, prog, start, t0, dev, status={"status": "ok"})


def _finish(out_dir, identity, model, prog, start, t0, dev, status) -> dict:
    """model.pt, curves and train.json; a diverged run keeps its last good checkpoint as model.pt."""
    from .plots import training_curves

    cfg = model.cfg
    if status["status"] == "ok":
        final = checkpoint_record(cfg.n_iters, identity, model, prog)
    elif (out_dir / CHECKPOINT).exists():
        final = load_checkpoint(out_dir / CHECKPOINT, identity)
    else:
        final = checkpoint_record(0, identity, build(identity, dev), prog)
    save_torch(out_dir / FINAL, {**final, "status": status})
    log = read_jsonl(out_dir / "log.jsonl")
    title = f"{identity['method']} on {identity['dataset']} (seed {identity['seed']})" + (
        f" -- DIVERGED at iteration {status['iter']}" if status["status"] != "ok" else ""
    )
    # the chain signals have their own figure
    curves = [{k: v for k, v in r.items() if not is_health_field(k)} for r in log if "event" not in r]
    training_curves(curves, out_dir / "curves.png", title=title)
    health_figure(log, out_dir / "health.png", title=title)
    seconds = time.time() - t0
    reached = status.get("iter", final["iter"])  # iterations this process computed, the diverging one included
    summary = {
        **status,
        "iterations": final["iter"],
        "resumed_from": start,
        "seconds": round(seconds, 2),
        "seconds_per_iter": round(seconds / max(1, reached - start), 4),
        "device": str(dev),
        "speed_switches": model.switches_in_effect(),
        "restarts": prog["restarts"],
        "warnings": prog.get("warnings", []),
    }
    write_json(out_dir / "train.json", summary)
    if status["status"] != "ok":
        raise DivergenceError(
            status["message"] + f" Kept the last good checkpoint ({final['iter']} iterations) "
            f"as {out_dir / FINAL}; the run is reported as diverged.",
            status["iter"],
            status["quantity"],
        )
    return summary
