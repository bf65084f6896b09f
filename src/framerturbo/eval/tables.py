"""Rows of metrics as Markdown and HTML tables, and one self-contained HTML page — the one
renderer of every metrics report (``evaluate``, ``hand-eval``, the ``stitch`` report), so a
column reads the same everywhere."""

from __future__ import annotations

import html
from pathlib import Path

Column = tuple[str, str, str]  # (key in a row, header, format spec; "" = str)
ABSENT = "—"


def cell(row: dict, key: str, fmt: str) -> str:
    """One value formatted, or "—" when the row lacks it or it could not be computed (NaN)."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):
        return ABSENT
    return format(value, fmt) if fmt else str(value)


def markdown_table(rows: dict[str, dict], columns: list[Column], first: str = "row") -> str:
    lines = [f"| {first} | " + " | ".join(h for _, h, _ in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for label, row in rows.items():
        lines.append(f"| {label} | " + " | ".join(cell(row, k, f) for k, _, f in columns)
                     + " |")
    return "\n".join(lines)


def html_table(rows: dict[str, dict], columns: list[Column], first: str = "row") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (first, *(c[1] for c in columns)))
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{html.escape(cell(row, k, f))}</td>" for k, _, f in columns) + "</tr>"
        for label, row in rows.items())
    return f"<table><tr>{head}</tr>{body}</table>"


def html_list(items) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in items) + "</ul>"


def html_conditions(conditions: dict) -> str:
    return html_list(f"{k}: {v}" for k, v in conditions.items())


def write_page(path: str | Path, title: str, parts: list[str]) -> Path:
    """``parts`` (HTML fragments) under ``title`` as one page, written all-or-nothing."""
    from ..core.atomic import atomic_file

    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
th:first-child,td:first-child{{text-align:left}}</style>
</head><body><h1>{html.escape(title)}</h1>
{chr(10).join(parts)}
</body></html>"""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(page)
    return path
