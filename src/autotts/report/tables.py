"""The paper-layout main table as Markdown, CSV and HTML, plus small table helpers."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence

from autotts.evaluation.presets import PaperTable


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` is one of ``l``/``r`` per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)

    def esc(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    lines.append("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "", cls: str = "", align: str | None = None
) -> str:
    """An HTML table (every cell escaped); numeric columns right-aligned via ``align``."""
    align = align or "l" + "r" * (len(header) - 1)
    out = [f'<table class="{html.escape(cls)}">' if cls else "<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="{"num" if a == "r" else "txt"}">{html.escape(str(c))}</td>'
            for c, a in zip(row, align, strict=False)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def main_table_markdown(tables: Sequence[PaperTable]) -> str:
    """Every per-model table, with its model as a heading and its caption below."""
    parts = []
    for t in tables:
        if t.model:
            parts.append(f"### {t.model}\n")
        parts.append(markdown_table(t.header(), t.text_rows()))
        parts.append(f"\n_{t.caption()}_\n")
    return "\n".join(parts)


def main_table_html(tables: Sequence[PaperTable]) -> str:
    """The per-model tables as HTML fragments."""
    parts = []
    for t in tables:
        title = t.model or "all stores"
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(html_table(t.header(), t.text_rows(), caption=t.caption(), cls="main"))
    return "\n".join(parts)


def main_table_csv(tables: Sequence[PaperTable]) -> str:
    """One long CSV: model, method, store, role, accuracy, tokens (full precision, no formatting).

    Long rather than wide so that tables of different stores concatenate and load
    straight into a data frame; the held-out average is a row with store ``held-out``.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "method", "controller", "params", "store", "role", "accuracy", "tokens"])
    for t in tables:
        model = t.model or ""
        for row in t.rows:
            params = ";".join(f"{k}={v}" for k, v in row.params.items())
            for store, is_search, score in zip(t.stores, t.search, row.scores, strict=True):
                if score is None:
                    continue
                role = "search" if is_search else "heldout"
                w.writerow(
                    [model, row.method, row.controller, params, store, role, repr(score.accuracy), repr(score.tokens)]
                )
            if row.heldout is not None:
                w.writerow(
                    [
                        model,
                        row.method,
                        row.controller,
                        params,
                        "held-out",
                        "average",
                        repr(row.heldout.accuracy),
                        repr(row.heldout.tokens),
                    ]
                )
    return buf.getvalue()
