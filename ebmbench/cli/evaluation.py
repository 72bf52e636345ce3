"""The evaluation wing's commands: the digits extractor, scoring, the table and its gate, the
extractor-agreement check, the cost table and the comparison page."""

import argparse
import json

from ..checks import at_least, device, input_file, out_file, out_folder, prepared
from ..io import SuiteError
from .command import Command, set_threads


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
        if a.recon is not None:
            input_file(a.recon, "reconstruction file (--recon)")
        if a.cache is not None:
            out_folder(a.cache, "--cache")
            cache_entries(a.cache, info)
        if a.features is not None:
            out_file(a.features, "--features")
        out_file(a.out)

    @staticmethod
    def run(a):
        set_threads(a.threads)
        from ..evaluate.scoring import features_record, score
        from ..io import write_json
        from ..provenance import provenance

        m = score(a.samples, a.data, a.extractor, a.weights, a.cache, a.device, a.recon, a.precision_recall, a.features)
        if a.features is not None:
            m["features"] = features_record(a.features, a.out)
        write_json(a.out, {**m, "provenance": provenance(a.samples, a.device)})
        print(json.dumps(m))


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
        p.add_argument("--orderings", help="also write the papers' method-vs-baseline orderings, measured, to this CSV")
        p.add_argument("--verdicts-html", help="also write the table coloured by verdict to this HTML page")
        p.add_argument(
            "--paper-tables",
            help="also write each paper's source table with the verdicts (CSV, Markdown) into this folder",
        )

    @staticmethod
    def check(a):
        from ..evaluate.scoring import metrics_record

        if not a.metrics:
            raise SuiteError("table needs at least one metrics.json file; none were given (did the score steps run?).")
        seen = {}
        for f in a.metrics:
            m = metrics_record(f)
            key = (m["method"], m["dataset"], m.get("seed"))
            if key in seen:  # counted twice it would pass for two seeds with std 0
                raise SuiteError(
                    f"{f} and {seen[key]} are both method {key[0]}, dataset {key[1]}, seed {key[2]}; "
                    f"give each run once (is a seed, dataset or method listed twice in the config?)."
                )
            seen[key] = f
        out_file(a.out)
        if a.orderings is not None:  # checked before the table is written, not after
            out_file(a.orderings, "--orderings")
        if a.verdicts_html is not None:
            out_file(a.verdicts_html, "--verdicts-html")
        if a.paper_tables is not None:
            out_folder(a.paper_tables, "--paper-tables")

    @staticmethod
    def run(a):
        import pandas as pd

        from ..evaluate.orderings import build_orderings, format_orderings
        from ..evaluate.table import build_table

        df = build_table(a.metrics, a.datasets, a.out, a.verdicts_html, a.paper_tables)
        shown = ["method", "ablates", "dataset", "metric", "measured", "half_width", "n_seeds", "paper", "verdict"]
        with pd.option_context("display.width", 220, "display.max_columns", 20):
            # empty cells print blank, not NaN: a reader of the log sees "no value", not a broken number
            print(df[shown].to_string(index=False, na_rep=""))
        print(format_orderings(build_orderings(df, a.orderings)))


class Check(Command):
    """regression gate: fail when a metric got worse than expected (or than the paper, by its verdict)"""

    name = "check"

    @staticmethod
    def arguments(p):
        p.add_argument("table")
        p.add_argument("--against", required=True, help="expected-values CSV, or 'paper' for the paper numbers")

    @staticmethod
    def check(a):
        input_file(a.table, "table")
        if a.against != "paper":
            input_file(a.against, "expected values (--against)")

    @staticmethod
    def run(a):
        from ..evaluate.gate import check

        failures = check(a.table, a.against)
        for f in failures:
            band = "paper" if f["tolerance"] is None else "expected"
            band += f" {f['expected']:.6g}" + ("" if f["tolerance"] is None else f" +- {f['tolerance']:.0%}")
            print(
                f"REGRESSION {f['method']}/{f['dataset']}/{f['metric']}: measured {f['measured']:.6g}, "
                f"{band}: {f['problem']} ({f['reason']})"
            )
        if failures:
            print(f"{len(failures)} regression(s)")
        else:
            print("no verdict worse than the paper" if a.against == "paper" else "all metrics within tolerance")
        return 1 if failures else 0


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
