"""The verdicts as a reader holds them beside the papers: each source table of the paper numbers in
the shape its paper printed it, and the comparison table coloured by verdict.

For every source (e.g. "Pang et al. 2020 Table 1"): the paper's rows (its methods and baselines,
in the order they appear in the paper-number data) x its columns (dataset x metric), each cell
  `measured ± half-width (paper value) verdict`   where the suite has a run,
  `not run (paper value)`                         where it has none,
  `-`                                             where the paper printed no number.
Written as CSV and Markdown into the folder `table --paper-tables` names; `table --verdicts-html`
names the coloured page (the report shows it first, after the comparison page). The colour is the
verdict's class; the table's `status` (what ran) is not a comparison with the paper.
"""

import html
import re
from pathlib import Path

import pandas as pd

from ..io import atomic_path, write_text
from .verdicts import verdict_class

COLOURS = {
    "reproduced": "#c8e6c9",
    "better": "#bbdefb",
    "worse": "#ffcdd2",
    "inconclusive": "#fff9c4",
    "not run": "#eeeeee",
    "not comparable": "#eeeeee",
    "diverged": "#e1bee7",
}


def slug(source: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")


def _cell(p, row) -> str:
    if row is None or pd.isna(row.get("estimate")):  # not run, or diverged: no number
        v = "not run" if row is None or pd.isna(row.get("verdict")) else verdict_class(row["verdict"])
        return f"{v} ({p.value:g})" + ("" if p.verified else " [unverified]")
    return f"{row['estimate']:.4g} ± {row['half_width']:.2g} ({p.value:g}) {row['verdict']}"


def paper_table(df: pd.DataFrame, numbers: list, source: str) -> pd.DataFrame:
    """One source table: index = the paper's row labels, columns = "dataset metric"."""
    mine = [p for p in numbers if p.source == source]
    rows = list(dict.fromkeys(p.method for p in mine))
    cols = list(dict.fromkeys(f"{p.dataset} {p.metric.upper()}" for p in mine))
    table = pd.DataFrame("-", index=pd.Index(rows, name=source), columns=cols)
    for p in mine:
        hit = df[
            (df["paper_source"] == source)
            & (df["paper_method"] == p.method)
            & (df["dataset"] == p.dataset)
            & (df["metric"] == p.metric)
            & (df["paper"] == p.value)
        ]
        table.loc[p.method, f"{p.dataset} {p.metric.upper()}"] = _cell(p, None if hit.empty else hit.iloc[0])
    return table


def _markdown(table: pd.DataFrame) -> str:
    head = [table.index.name] + list(table.columns)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [
        "| " + " | ".join([str(i)] + [str(v) for v in r]) + " |" for i, r in zip(table.index, table.values, strict=True)
    ]
    return "\n".join(lines) + "\n"


def write_paper_tables(df: pd.DataFrame, numbers: list, out_dir) -> list[Path]:
    """Each source table as <slug>.csv and <slug>.md in out_dir; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in dict.fromkeys(p.source for p in numbers):
        table = paper_table(df, numbers, source)
        with atomic_path(out_dir / f"{slug(source)}.csv") as tmp:
            table.to_csv(tmp)
        write_text(out_dir / f"{slug(source)}.md", f"# {source}\n\n" + _markdown(table))
        written += [out_dir / f"{slug(source)}.csv", out_dir / f"{slug(source)}.md"]
    return written


def write_verdicts_html(df: pd.DataFrame, path) -> None:
    """The page `verdict_html` makes, written to path."""
    write_text(path, verdict_html(df))


def verdict_html(df: pd.DataFrame) -> str:
    """The measured rows and every paper number's verdict, each row coloured by its verdict class."""
    cols = [
        "method",
        "dataset",
        "metric",
        "status",
        "measured",
        "n_generated",
        "estimate",
        "estimator",
        "half_width",
        "interval",
        "paper",
        "paper_method",
        "paper_source",
        "verdict",
    ]
    cols = [c for c in cols if c in df.columns]
    fmt = lambda v: "" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    body = []
    for _, r in df.iterrows():
        colour = COLOURS[verdict_class(r["verdict"])] if isinstance(r.get("verdict"), str) else "#ffffff"
        body.append(f'<tr style="background:{colour}">' + "".join(f"<td>{fmt(r[c])}</td>" for c in cols) + "</tr>")
    legend = " ".join(f'<span style="background:{c};padding:2px 6px">{k}</span>' for k, c in COLOURS.items())
    return (
        "<html><head><meta charset='utf-8'><title>Verdicts</title></head><body>"
        f"<p>Verdict per paper number (95 % interval over seeds and generated samples): {legend}</p>"
        "<table border='1' cellspacing='0' cellpadding='3' style='border-collapse:collapse;font-size:12px'>"
        "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>" + "".join(body) + "</table></body></html>\n"
    )
