"""Command line: python -m ebmbench prepare|classifier|train|sample|noise|score|table|check|agreement|cost|params ...

Every workflow step is one of these calls, so each runs by hand, in a test, or in a container
exactly as Snakemake runs it. Errors the user can fix print one paragraph, no traceback.
"""

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from .io import SuiteError, folder_lock


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ebmbench", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"ebmbench {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("prepare", help="load a dataset and write train.npy/test.npy/info.json")
    s.add_argument("--dataset", required=True)
    s.add_argument("--spec", default="{}", help="the dataset's config entry as JSON")
    s.add_argument("--data-root", default="data")
    s.add_argument("--out", required=True)

    s = sub.add_parser("classifier", help="train the digits feature extractor")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int)

    s = sub.add_parser("train", help="train one method on one prepared dataset")
    s.add_argument("--method", required=True)
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--out", required=True, help="run folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--preset", help="preset name (default: the dataset's name)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a Config field")
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int)
    s.add_argument("--no-progress", action="store_true")
    s.add_argument(
        "--other-run",
        choices=("refuse", "restart"),
        default="refuse",
        help="a checkpoint of another run (other config, seed or data) in --out: stop (default) or set it aside and start afresh",
    )
    s.add_argument(
        "--allow-divergence",
        action="store_true",
        help="exit 0 after a divergence (the workflow goes on and reports the run as diverged)",
    )

    s = sub.add_parser("sample", help="samples, grid, reconstructions and figures from a run")
    s.add_argument("--run", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--data", help="prepared dataset folder (enables reconstructions and figures)")
    s.add_argument("--n-recon", type=int, default=300, help="test images to reconstruct")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int)
    s.add_argument("--no-progress", action="store_true")

    s = sub.add_parser("noise", help="uniform-noise images shaped like a dataset (the FID ceiling)")
    s.add_argument("--data", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("score", help="FID/IS/KID, precision/recall (+ reconstruction MSE) of a sample file")
    s.add_argument("--samples", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--extractor", choices=["digits", "inception"], required=True)
    s.add_argument("--weights", help="extractor weights (digits classifier, or local Inception weights)")
    s.add_argument("--recon", help="recon.npz for reconstruction MSE")
    s.add_argument("--cache", help="folder for cached reference statistics")
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int)
    s.add_argument(
        "--precision-recall",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also compute precision and recall (k=3 nearest neighbours on the FID features; default: on)",
    )
    s.add_argument("--out", required=True)

    s = sub.add_parser("table", help="aggregate metrics.json files into the comparison table")
    s.add_argument("metrics", nargs="*", help="metrics.json files (results/<dataset>/<method>/seed<k>/...)")
    s.add_argument("--datasets", nargs="*", default=[], help="datasets whose paper-only rows to list")
    s.add_argument("--out", required=True)
    s.add_argument("--orderings", help="also write the papers' method-vs-baseline orderings, measured, to this CSV")

    s = sub.add_parser("check", help="regression gate: fail when a metric got worse than expected")
    s.add_argument("table")
    s.add_argument("--against", required=True, help="expected-values CSV, or 'paper' for the paper numbers")

    s = sub.add_parser("agreement", help="do independently trained digits extractors rank the runs alike?")
    s.add_argument("samples", nargs="+", help="samples.npz of each run (one seed per method) and of uniform_noise")
    s.add_argument("--data", required=True, help="prepared digits dataset folder")
    s.add_argument("--weights", required=True, help="the default digits classifier (resources/digits_classifier.pt)")
    s.add_argument("--work", help="folder to keep the two extra classifiers in (default: a temporary folder)")
    s.add_argument("--out", help="write the FIDs, rankings and Spearman's rho here as JSON")
    s.add_argument("--epochs", type=int, default=12, help="training epochs of the two extra classifiers")
    s.add_argument("--threads", type=int)

    s = sub.add_parser("cost", help="cost table from Snakemake's benchmark records (wall s, CPU s, peak RSS)")
    s.add_argument("--benchmarks", default="results/benchmarks", help="folder of <rule>/<dataset>/<method>/seed<k>.tsv")
    s.add_argument("--out", required=True)

    s = sub.add_parser("params", help="parameter counts of every method's networks per preset")
    s.add_argument("--methods", nargs="*")

    a = p.parse_args(argv)
    from .loop import DivergenceError

    try:
        from . import validate

        validate.command(a)  # every input and output path is checked before any work starts
        return _run(a)
    except DivergenceError as err:
        print(f"ebmbench {a.cmd}: diverged: {err}", file=sys.stderr)
        return 0 if a.allow_divergence else 3
    except SuiteError as err:
        print(f"ebmbench {a.cmd}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ebmbench params | head`: the reader has what it wanted; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at the exit flush
        return 0
    except OSError as err:  # a fault no check could foresee (disk failing mid-run, a download): still one paragraph
        from .io import os_fault

        print(f"ebmbench {a.cmd}: error: {os_fault(err, action='read or write')}", file=sys.stderr)
        return 2


def _run(a) -> int:
    if a.cmd == "prepare":
        from .data import prepare

        with folder_lock(a.out):
            info = prepare(a.dataset, a.spec_dict, Path(a.data_root), Path(a.out))
        print(json.dumps(info, indent=2))
    elif a.cmd == "classifier":
        _threads(a.threads)
        from .evaluate.metrics import train_digits_classifier

        print(json.dumps(train_digits_classifier(a.data, a.out)))
    elif a.cmd == "train":
        _threads(a.threads)
        from .loop import train

        with folder_lock(a.out):  # one writer per run folder
            summary = train(
                a.method, a.data, a.out, a.seed, a.preset, a.overrides, a.device, not a.no_progress, a.other_run
            )
        print(json.dumps(summary))
    elif a.cmd == "sample":
        _threads(a.threads)
        from .sampling import generate

        with folder_lock(a.out):
            print(
                json.dumps(
                    generate(a.run, a.n, a.out, a.seed, a.data, a.n_recon, device=a.device, progress=not a.no_progress)
                )
            )
    elif a.cmd == "noise":
        from .sampling import uniform_noise

        with folder_lock(a.out):
            uniform_noise(a.data, a.n, a.out, a.seed)
    elif a.cmd == "score":
        _threads(a.threads)
        from .evaluate.metrics import score
        from .io import write_json
        from .provenance import provenance

        m = score(a.samples, a.data, a.extractor, a.weights, a.cache, a.device, a.recon, a.precision_recall)
        write_json(a.out, {**m, "provenance": provenance(a.samples, a.device)})
        print(json.dumps(m))
    elif a.cmd == "table":
        from .evaluate.table import build_orderings, build_table, format_orderings

        df = build_table(a.metrics, a.datasets, a.out)
        shown = ["method", "ablates", "dataset", "metric", "measured", "half_width", "n_seeds", "paper", "verdict"]
        with __import__("pandas").option_context("display.width", 220, "display.max_columns", 20):
            # empty cells print blank, not NaN: a reader of the log sees "no value", not a broken number
            print(df[shown].to_string(index=False, na_rep=""))
        print(format_orderings(build_orderings(df, a.orderings)))
    elif a.cmd == "check":
        from .evaluate.gate import check

        failures = check(a.table, a.against)
        for f in failures:
            print(
                f"REGRESSION {f['method']}/{f['dataset']}/{f['metric']}: measured {f['measured']:.6g}, "
                f"expected {f['expected']:.6g} +- {f['tolerance']:.0%}: {f['problem']} ({f['reason']})"
            )
        print(f"{len(failures)} regression(s)" if failures else "all metrics within tolerance")
        return 1 if failures else 0
    elif a.cmd == "agreement":
        _threads(a.threads)
        from .evaluate.agreement import agreement, report
        from .io import write_json

        result = agreement(a.samples, a.data, a.weights, a.work, a.epochs)
        if a.out:
            write_json(a.out, result)
        print(report(result))
    elif a.cmd == "cost":
        from .evaluate.cost import cost_table, format_cost, write_cost

        rows = cost_table(a.benchmarks)
        write_cost(rows, a.out)
        print(format_cost(rows))
    elif a.cmd == "params":
        from .registry import parameter_counts

        for r in parameter_counts(a.methods):
            print(f"{r['method']:<16} {r['preset']:<10} {r['network']:<12} {r['params']:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
