"""The evaluation wing's commands: the digits extractor, scoring, the table and its gate, the
extractor-agreement check, the cost table and the comparison page."""

import argparse
import json
from pathlib import Path

from ..checks import apart, at_least, device, input_file, out_file, out_folder, prepared
from ..io import SuiteError
from .command import Command, set_threads
from .gating import Check


class Classifier(Command):
    """train the digits feature extractor"""

    name = "classifier"

    @staticmethod
    def arguments(p):
        p.add_argument("--data", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--threads", type=int)

    @staticmethod
    def check(a):
        at_least("--threads", a.threads)
        info = prepared(a.data)
        if info["kind"] != "digits":
            raise SuiteError(
                f"the digits classifier needs the prepared digits dataset, got '{info['name']}' ({a.data})."
            )
        out_file(a.out)

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..evaluate.digits_classifier import train_digits_classifier

        print(json.dumps(train_digits_classifier(a.data, a.out)))


class Score(Command):
    """FID/IS/KID, precision/recall (+ reconstruction MSE) of a sample file"""

    name = "score"

    @staticmethod
    def arguments(p):
        p.add_argument("--samples", required=True)
        p.add_argument("--data", required=True)
        p.add_argument("--extractor", choices=["digits", "inception"], required=True)
        p.add_argument("--weights", help="extractor weights (digits classifier, or local Inception weights)")
        p.add_argument("--recon", help="recon.npz for reconstruction MSE")
        p.add_argument("--measurements", help="measurements.json of `sample`: the method's own numbers, as metrics")
        p.add_argument("--nearest", help="also draw samples beside their nearest training images in this PNG")
        p.add_argument("--cache", help="folder for cached reference statistics")
        p.add_argument("--device", default="cpu")
        p.add_argument("--threads", type=int)
        p.add_argument(
            "--precision-recall",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also compute precision and recall (k=3 nearest neighbours on the FID features; default: on)",
        )
        p.add_argument(
            "--features",
            help="also keep the features behind FID and IS in this .npz, for the table's bootstrap "
            "(recorded in metrics.json relative to its folder); not given: nothing extra is written",
        )
        p.add_argument("--out", required=True)

    @staticmethod
    def check(a):
        from ..evaluate.digits_classifier import digits_weights
        from ..evaluate.scoring import cache_entries, samples_match_data

        at_least("--threads", a.threads)
        device(a.device)
        samples = input_file(a.samples, "sample file")
        info = prepared(a.data)
        samples_match_data(samples, info)
        if a.extractor == "digits":
            if a.weights is None:
                raise SuiteError(
                    "--extractor digits needs --weights, the digits classifier written by `ebmbench classifier` "
                    "(resources/digits_classifier.pt in the workflow)."
                )
            digits_weights(a.weights)
        elif a.weights is not None:
            input_file(a.weights, "Inception weights file")
        for path, what in ((a.recon, "reconstruction file (--recon)"), (a.measurements, "measurements file")):
            if path is not None:
                input_file(path, what)
        if a.cache is not None:
            out_folder(a.cache, "--cache")
            cache_entries(a.cache, info)
        if a.features is not None:
            out_file(a.features, "--features")
            if Path(a.out).resolve().parent not in Path(a.features).resolve().parents:
                # beside the samples, a second score into another file would change the first one's interval
                raise SuiteError(
                    f"--features {a.features} must lie in (or below) the folder of --out {a.out}, which records it: "
                    f"give e.g. --features {Path(a.out).with_name('features.npz')}."
                )
        if a.nearest is not None:
            out_file(a.nearest, "--nearest")
        out_file(a.out)
        ins = {"--samples": a.samples, "the samples' labels": samples.with_name("samples.json"), "--data": a.data}
        ins |= {"--weights": a.weights, "--recon": a.recon, "--cache": a.cache}
        outs = {"--out": a.out, "--features": a.features, "--nearest": a.nearest}
        apart(outs, ins | {"--measurements": getattr(a, "measurements", None)})

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..commit import committed_files
        from ..evaluate.scoring import features_record, score, write_metrics
        from ..provenance import provenance

        with committed_files("score", [p for p in (a.out, a.features, a.nearest) if p]) as tmp:  # all new or all old
            files = (a.recon, a.precision_recall, tmp[Path(a.features)] if a.features else None, a.measurements)
            near = tmp[Path(a.nearest)] if a.nearest else None
            m = score(a.samples, a.data, a.extractor, a.weights, a.cache, a.device, *files, nearest_path=near)
            if a.features is not None:
                m["features"] = features_record(a.features, a.out)
            m |= {"provenance": provenance(a.samples, a.device)}
            m = write_metrics(tmp[Path(a.out)], m, a.samples, a.data, shown=a.out)
        print(json.dumps(m))


# every file or folder `table` writes (options' attribute names), committed as one set
TABLE_OUTPUTS = ("out", "claims", "verdicts_html", "paper_tables")


class Table(Command):
    """aggregate metrics.json files into the comparison table"""

    name = "table"

    @staticmethod
    def arguments(p):
        p.add_argument("metrics", nargs="*", help="metrics.json files (results/<dataset>/<method>/seed<k>/...)")
        p.add_argument(
            "--datasets", nargs="*", default=[], help="list these datasets' paper numbers without a run (not run)"
        )
        p.add_argument("--out", required=True)
        p.add_argument(
            "--claims",
            help="also write the claims ledger (methods/claims.csv and the papers' method-vs-baseline orderings), "
            "measured over seeds with intervals and verdicts, to this CSV",
        )
        p.add_argument("--verdicts-html", help="also write the table coloured by verdict to this HTML page")
        p.add_argument(
            "--compare-changed-presets",
            action="store_true",
            help="give verdicts for runs of a paper preset with changed fields too (the verdict names them); "
            "default: such runs are `not comparable`",
        )
        p.add_argument(
            "--paper-tables",
            help="also write each paper's source table with the verdicts (CSV, Markdown) into this folder",
        )

    @staticmethod
    def check(a):
        from ..evaluate.claims import load as load_claims
        from ..evaluate.table import read_runs

        if not a.metrics:
            raise SuiteError("table needs at least one metrics.json file; none were given (did the score steps run?).")
        runs = read_runs(a.metrics)  # contracts, each run once, seeds combinable
        out_file(a.out)
        ins = {f"input {f}": f for f in a.metrics} | {f"features of {r['method']}": r.get("features") for r in runs}
        apart({f"--{k.replace('_', '-')}": getattr(a, k, None) for k in TABLE_OUTPUTS}, ins)
        load_claims()  # a bad ledger row stops here, before the table is written
        if a.claims is not None:  # checked before the table is written, not after
            out_file(a.claims, "--claims")
        if a.verdicts_html is not None:
            out_file(a.verdicts_html, "--verdicts-html")
        if a.paper_tables is not None:
            out_folder(a.paper_tables, "--paper-tables")

    @staticmethod
    def run(a):
        from ..commit import committed_files

        # the table's files are one set: written aside, swapped in together (ebmbench.commit)
        outs = {k: Path(getattr(a, k)) for k in TABLE_OUTPUTS if getattr(a, k, None) is not None}
        with committed_files("table", list(outs.values())) as tmp:
            Table.write(argparse.Namespace(**{**vars(a), **{k: tmp[p] for k, p in outs.items()}}))

    @staticmethod
    def write(a):
        import pandas as pd

        from ..evaluate.claims import build_claims, format_claims
        from ..evaluate.table import build_table, read_runs

        df = build_table(a.metrics, a.datasets, a.out, a.verdicts_html, a.paper_tables, a.compare_changed_presets)
        shown = ["method", "ablates", "dataset", "metric", "measured", "half_width", "n_seeds", "paper", "verdict"]
        with pd.option_context("display.width", 220, "display.max_columns", 20):
            # empty cells print blank, not NaN: a reader of the log sees "no value", not a broken number
            print(df[shown].to_string(index=False, na_rep=""))
        print(format_claims(build_claims(read_runs(a.metrics), a.claims)))


class Agreement(Command):
    """do independently trained digits extractors rank the runs alike?"""

    name = "agreement"

    @staticmethod
    def arguments(p):
        p.add_argument("samples", nargs="+", help="samples.npz of each run (one seed per method) and of uniform_noise")
        p.add_argument("--data", required=True, help="prepared digits dataset folder")
        p.add_argument(
            "--weights", required=True, help="the default digits classifier (resources/digits_classifier.pt)"
        )
        p.add_argument("--work", help="folder to keep the two extra classifiers in (default: a temporary folder)")
        p.add_argument("--out", help="write the FIDs, rankings and Spearman's rho here as JSON")
        p.add_argument("--epochs", type=int, default=12, help="training epochs of the two extra classifiers")
        p.add_argument("--threads", type=int)

    @staticmethod
    def check(a):
        from ..evaluate.digits_classifier import digits_weights

        at_least("--threads", a.threads)
        at_least("--epochs", a.epochs)
        for f in a.samples:
            input_file(f, "sample file")
        info = prepared(a.data)
        if info["kind"] != "digits":
            raise SuiteError(
                f"agreement compares digits extractors: --data {a.data} holds '{info['name']}', not digits."
            )
        digits_weights(a.weights)
        if a.work is not None:
            out_folder(a.work, "--work")
        if a.out is not None:
            out_file(a.out)

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..evaluate.agreement import agreement, report
        from ..io import write_json

        result = agreement(a.samples, a.data, a.weights, a.work, a.epochs)
        if a.out:
            write_json(a.out, result)
        print(report(result))


class Cost(Command):
    """cost table from Snakemake's benchmark records (wall s, CPU s, peak RSS)"""

    name = "cost"

    @staticmethod
    def arguments(p):
        p.add_argument(
            "--benchmarks", default="results/benchmarks", help="folder of <rule>/<dataset>/<method>/seed<k>.tsv"
        )
        p.add_argument("--out", required=True)

    @staticmethod
    def run(a):
        from ..evaluate.cost import cost_table, format_cost, write_cost

        rows = cost_table(a.benchmarks)
        write_cost(rows, a.out)
        print(format_cost(rows))


class Comparison(Command):
    """one page of every model's samples side by side, with its headline numbers"""

    name = "comparison"

    @staticmethod
    def arguments(p):
        p.add_argument("runs", nargs="+", help="run folders holding samples.npz and metrics.json")
        p.add_argument("--out", required=True, help="the page (PNG)")
        p.add_argument("--n", type=int, default=36, help="images per model")

    @staticmethod
    def check(a):
        at_least("--n", a.n)
        out_file(a.out)

    @staticmethod
    def run(a):
        from ..evaluate.comparison import comparison_page

        comparison_page(a.runs, a.out, a.n)


COMMANDS = (Classifier, Score, Table, Check, Agreement, Cost, Comparison)
