"""The regression gate's command: a table against expected values, or against the papers' numbers
through their verdicts (ebmbench.evaluate.gate)."""

from ..checks import input_file
from ..commit import refuse_unfinished
from .command import Command


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
        refuse_unfinished(a.table, "the table step that writes it")
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
