"""The metric regression gate: compare a table with expected values (or with the paper numbers)
and list every metric that moved past its tolerance in the bad direction.

Expected file (CSV): method, dataset, metric, expected, tolerance, reason -- tolerance relative
(0.5 = 50 %), reason says how it was measured. A better value never fails; a missing or diverged
row does.
"""
import math

import pandas as pd

from .io import SuiteError
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


def check(table_path, against) -> list[dict]:
    table = _read(table_path, "table", {"method", "dataset", "metric", "measured", "status"})
    if against == "paper":
        rows = table[table["paper"].notna() & table["measured"].notna()]
        expected = [{"method": r.method, "dataset": r.dataset, "metric": r.metric, "expected": r.paper,
                     "tolerance": r.paper_tolerance, "reason": f"paper: {r.paper_source}"} for r in rows.itertuples()]
    else:
        expected = _read(against, "expected values", EXPECTED_COLUMNS).to_dict("records")
    failures = []
    for e in expected:
        hit = table[(table["method"] == e["method"]) & (table["dataset"] == e["dataset"]) & (table["metric"] == e["metric"])]
        if against == "paper":
            hit = hit[hit["paper"] == e["expected"]]
        measured = hit["measured"].iloc[0] if len(hit) else math.nan
        status = hit["status"].iloc[0] if len(hit) else "missing"
        if status == "diverged" or math.isnan(measured):
            failures.append({**e, "measured": measured, "problem": f"no measured value (status: {status})"})
        elif _worse(e["metric"], measured, e["expected"], e["tolerance"]):
            failures.append({**e, "measured": measured,
                             "problem": f"{'above' if LOWER_IS_BETTER[e['metric']] else 'below'} expected by more than {e['tolerance']:.0%}"})
    return failures
