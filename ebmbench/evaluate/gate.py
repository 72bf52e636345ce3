"""The metric regression gate: compare a table with expected values (or with the paper numbers)
and list every metric that moved past its tolerance in the bad direction.

Expected file (CSV): method, dataset, metric, expected, tolerance, reason -- tolerance relative
(0.5 = 50 %), reason says how it was measured. A better value never fails; a missing or diverged
row does.
"""

import math

import pandas as pd

from ..io import SuiteError
from .table import LOWER_IS_BETTER

EXPECTED_COLUMNS = {"method", "dataset", "metric", "expected", "tolerance", "reason"}


def _worse(metric: str, measured: float, expected: float, tolerance: float) -> bool:
    band = tolerance * abs(expected)
    return measured > expected + band if LOWER_IS_BETTER[metric] else measured < expected - band


def _read(path, what: str, columns: set) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SuiteError(f"{what} {path} cannot be read as CSV ({err}).") from None
    missing = columns - set(df.columns)
    if missing:
        raise SuiteError(f"{what} {path} lacks the columns {sorted(missing)}.")
    return df


def _check_expected(path, line: int, e: dict) -> None:
    if e["metric"] not in LOWER_IS_BETTER:
        raise SuiteError(
            f"expected values {path}, line {line}: unknown metric {e['metric']!r} "
            f"(known: {', '.join(LOWER_IS_BETTER)})."
        )
    for col in ("expected", "tolerance"):
        v = e[col]
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                v = math.nan
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or (col == "tolerance" and v < 0)
        ):
            raise SuiteError(
                f"expected values {path}, line {line}: {col} {e[col]!r} is not a "
                f"{'non-negative ' if col == 'tolerance' else ''}number; fix that row."
            )
        e[col] = float(v)


def check(table_path, against) -> list[dict]:
    table = _read(table_path, "table", {"method", "dataset", "metric", "measured", "status"})
    if against == "paper":
        rows = table[table["paper"].notna() & table["measured"].notna()]
        expected = [
            {
                "method": r.method,
                "dataset": r.dataset,
                "metric": r.metric,
                "expected": r.paper,
                "tolerance": r.paper_tolerance,
                "reason": f"paper: {r.paper_source}",
            }
            for r in rows.itertuples()
        ]
    else:
        expected = _read(against, "expected values", EXPECTED_COLUMNS).to_dict("records")
        for i, e in enumerate(expected, start=2):  # line 1 is the header
            _check_expected(against, i, e)
    if not expected:  # "all within tolerance" over nothing would pass any table
        what = "has no paper number with a measured value" if against == "paper" else f"has no rows: {against}"
        raise SuiteError(
            f"the gate compared zero rows: {table_path} {what}. Check that the table and the expected "
            f"values name the same methods and datasets."
        )
    failures = []
    for e in expected:
        hit = table[
            (table["method"] == e["method"]) & (table["dataset"] == e["dataset"]) & (table["metric"] == e["metric"])
        ]
        if against == "paper":
            hit = hit[hit["paper"] == e["expected"]]
        measured = hit["measured"].iloc[0] if len(hit) else math.nan
        status = hit["status"].iloc[0] if len(hit) else "missing"
        if status == "diverged" or math.isnan(measured):
            failures.append({**e, "measured": measured, "problem": f"no measured value (status: {status})"})
        elif _worse(e["metric"], measured, e["expected"], e["tolerance"]):
            failures.append(
                {
                    **e,
                    "measured": measured,
                    "problem": f"{'above' if LOWER_IS_BETTER[e['metric']] else 'below'} expected by more than {e['tolerance']:.0%}",
                }
            )
    return failures
