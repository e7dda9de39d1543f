"""Rendering rows for the CLI: ``--format table|json|csv``, the same for every command."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from job.timestamps import iso_utc


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def to_json(value: Any) -> str:
    return json.dumps(value, default=_jsonable, indent=2)


def render_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat, title: str = "") -> str:
    if fmt is OutputFormat.json:
        return to_json([dict(zip(columns, row)) for row in rows])
    if fmt is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_jsonable(value) for value in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    table = Table(title=title or None, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if value is None else str(_jsonable(value)) for value in row])
    return _render_rich(table)


def render_record(record: dict[str, Any] | None, fmt: OutputFormat, title: str = "") -> str:
    """One record: a two-column table, a JSON object (``null`` when there is none), or CSV."""
    if fmt is OutputFormat.json:
        return to_json(record)
    if record is None:
        return ""
    if fmt is OutputFormat.csv:
        return render_rows(list(record), [list(record.values())], fmt)
    table = Table(title=title or None, show_header=False)
    table.add_column("feature", style="bold")
    table.add_column("value")
    for name, value in record.items():
        table.add_row(name, shown(value))
    return _render_rich(table)


def shown(value: Any) -> str:
    """A value as a table cell or a live-view value; a nested record (e.g. a count per feature group) as
    ``key: value, ...``."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {shown(item)}" for key, item in value.items())
    return str(_jsonable(value))


def with_moment_shown(row: dict[str, Any], event_time_feature: str) -> dict[str, Any]:
    """A feature row for people to read: its event time (unix seconds) as ISO 8601 UTC (a String event time, already
    ISO 8601, as it is)."""
    value = row.get(event_time_feature)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {**row, event_time_feature: iso_utc(value)}
    return row


def _render_rich(renderable: Any) -> str:
    # On a terminal, fit its width; into a pipe or file, never truncate cells.
    width = Console(file=sys.stdout).width if sys.stdout.isatty() else 10_000
    console = Console(file=io.StringIO(), width=width, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue().rstrip("\n")
