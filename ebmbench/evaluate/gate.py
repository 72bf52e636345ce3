"""The metric regression gate: compare a table with expected values, or with the papers through
their verdicts, and list every metric that fails.

--against EXPECTED.csv: method, dataset, metric, expected, tolerance, reason -- tolerance relative
(0.5 = 50 %), reason says how it was measured. A measured value past its tolerance in the bad
direction fails; a better value never does; a missing or diverged row does.

--against paper: every paper number the suite ran (status other than `not run`) is judged by its
verdict (ebmbench.evaluate.verdicts), the table's one comparison with the paper: `worse` fails, and
so do a diverged run and a row without a measured value; reproduced, better and inconclusive pass.
"""

import math

import pandas as pd

from ..io import SuiteError
from ..schemas import METRIC_RANGES
from .scoring import LOWER_IS_BETTER
from .verdicts import VERDICTS, verdict_class

EXPECTED_COLUMNS = {"method", "dataset", "metric", "expected", "tolerance", "reason"}


def _worse(metric: str, measured: float, expected: float, tolerance: float) -> bool:
    band = tolerance * abs(expected)
    return measured > expected + band if LOWER_IS_BETTER[metric] else measured < expected - band


STATUSES = ("done", "diverged", "not run", "reference", "unavailable")  # a table row's status (ebmbench.evaluate.table)


def _read(path, what: str, columns: set) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SuiteError(f"{what} {path} cannot be read as CSV ({err}).") from None
    missing = columns - set(df.columns)
    if missing:
        raise SuiteError(f"{what} {path} lacks the columns {sorted(missing)}.")
    return df


def _read_table(path, columns: set) -> pd.DataFrame:
    """The table through its row contract: a measured value is empty or a number within its metric's
    range (ebmbench.schemas.METRIC_RANGES), a status one of STATUSES."""
    table = _read(path, "table", columns)
    measured = pd.to_numeric(table["measured"], errors="coerce")
    for line, r in table.iterrows():
        where = f"table {path}, line {line + 2} ({r['method']}/{r['dataset']}/{r['metric']})"
        lo, hi = METRIC_RANGES.get(r["metric"], (-math.inf, math.inf))
        m, raw = measured[line], r["measured"]
        if (pd.isna(m) and not pd.isna(raw)) or (not pd.isna(m) and not lo <= m <= hi):
            raise SuiteError(
                f"{where}: field 'measured' = {raw!r} is not a number within [{lo:g}, {hi:g}]; "
                f"rebuild the table with `ebmbench table` (do not edit it by hand)."
            )
        if not str(r["status"]).startswith(STATUSES):
            raise SuiteError(
                f"{where}: field 'status' = {r['status']!r} is not one of {', '.join(STATUSES)}; rebuild it."
            )
    table["measured"] = measured
    return table


def _one_row(table, path, e: dict):
    """The one measured row an expected value compares with (rows repeated per paper number carry
    the same measurement); two different measurements of one metric are refused, not picked by order."""
    hit = table[
        (table["method"] == e["method"]) & (table["dataset"] == e["dataset"]) & (table["metric"] == e["metric"])
    ]
    distinct = hit.drop_duplicates(subset=["measured", "status"])
    if len(distinct) > 1:
        lines = ", ".join(str(i + 2) for i in distinct.index)
        raise SuiteError(
            f"table {path} has {len(distinct)} different measured rows for {e['method']}/{e['dataset']}/{e['metric']} "
            f"(lines {lines}); the gate compares each expected value with exactly one. Rebuild the table."
        )
    return distinct.iloc[0] if len(distinct) else None


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
    lo, hi = METRIC_RANGES.get(e["metric"], (-math.inf, math.inf))
    if not lo <= e["expected"] <= hi:
        raise SuiteError(
            f"expected values {path}, line {line}: expected {e['expected']!r} is outside the possible range "
            f"[{lo:g}, {hi:g}] of {e['metric']}; fix that row."
        )


def check_paper(table_path) -> list[dict]:
    """The paper gate: each paper number with a run here, failing on a `worse` verdict, a diverged
    run or a missing value (tolerance None: the verdict's interval is the band)."""
    table = _read_table(table_path, {"method", "dataset", "metric", "measured", "status", "paper", "verdict"})
    rows = table[table["paper"].notna() & (table["status"] != "not run")]
    if rows.empty:  # "no verdict worse" over nothing would pass any table
        raise SuiteError(
            f"the gate compared zero rows: {table_path} has no paper number with a run here. Check that the "
            f"table was built from runs on the papers' datasets."
        )
    failures = []
    for line, r in rows.iterrows():
        e = {
            "method": r["method"],
            "dataset": r["dataset"],
            "metric": r["metric"],
            "expected": r["paper"],
            "tolerance": None,
            "reason": f"paper: {r.get('paper_source', '?')}",
        }
        v = r["verdict"] if isinstance(r["verdict"], str) else ""
        if v and not v.startswith(VERDICTS):
            raise SuiteError(
                f"table {table_path}, line {line + 2}: verdict {v!r} is not one of {', '.join(VERDICTS)}; "
                f"rebuild the table with `ebmbench table`."
            )
        estimate = r.get("estimate", math.nan)
        measured = r["measured"] if pd.isna(estimate) else estimate
        if not v:
            failures.append(
                {**e, "measured": measured, "problem": "no verdict; rebuild the table with `ebmbench table`"}
            )
        elif verdict_class(v) == "diverged" or pd.isna(r["measured"]):
            failures.append({**e, "measured": measured, "problem": f"no measured value (status: {r['status']})"})
        elif verdict_class(v) in ("worse", "not comparable"):  # no answer is no pass
            failures.append({**e, "measured": measured, "problem": f"verdict: {v}"})
    return failures


def check(table_path, against) -> list[dict]:
    if against == "paper":
        return check_paper(table_path)
    table = _read_table(table_path, {"method", "dataset", "metric", "measured", "status"})
    expected = _read(against, "expected values", EXPECTED_COLUMNS).to_dict("records")
    seen = {}
    for i, e in enumerate(expected, start=2):  # line 1 is the header
        _check_expected(against, i, e)
        key = (e["method"], e["dataset"], e["metric"])
        if key in seen:
            raise SuiteError(
                f"expected values {against}, lines {seen[key]} and {i}: both give {'/'.join(key)}; keep one row."
            )
        seen[key] = i
    if not expected:  # "all within tolerance" over nothing would pass any table
        raise SuiteError(
            f"the gate compared zero rows: {table_path} has no rows: {against}. Check that the table and the "
            f"expected values name the same methods and datasets."
        )
    failures = []
    for e in expected:
        hit = _one_row(table, table_path, e)
        measured = hit["measured"] if hit is not None else math.nan
        status = hit["status"] if hit is not None else "missing"
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
