"""The job's SQL: files under sql/, their ``${name}`` placeholders filled from configuration, in one place.

A value is rendered for where the SQL files put it: strings go inside quotes ('${feed_uri}') and are escaped
as SQL string literals, numbers as they are, and a ``Fragment`` (the text of another .sql file, such as the
shared column list) as SQL. A placeholder without a value is an error naming the file and the placeholder.
Settings that change a statement's shape (a bounded source, a custom endpoint) pick a file, never a clause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from connectors.featurestore.glue import quote_identifier
from job.paths import CODE_ROOT

SQL_DIR = CODE_ROOT / "sql"
FEATURES_DIR = SQL_DIR / "features"
_COMMENT = re.compile(r"--[^\n]*")
_SEPARATOR = re.compile(r";[ \t]*(?:\n|$)")


class SqlTemplateError(ValueError):
    pass


class _SqlTemplate(Template):
    """Only ``${name}`` is a placeholder, so JSON paths such as '$.fee' stay as they are."""

    pattern = r"""
        \$(?:
          (?P<escaped>\$) |
          \{(?P<braced>[_a-z][_a-z0-9]*)\} |
          (?P<named>(?!)) |
          (?P<invalid>(?!))
        )
    """


class Fragment(str):
    """SQL text from another .sql file, filled in as SQL (not as a quoted value)."""


def identifier(*parts: str) -> Fragment:
    """A (qualified) SQL identifier, every part double-quoted with its quotes doubled: standard SQL, read the
    same by Flink's planner, DuckDB and Athena (Trino)."""
    return Fragment(quote_identifier(*parts))


def sql_value(value: object) -> str:
    """``value`` as the SQL files expect it: a Fragment as it is, a number as written, anything else as the
    inside of a SQL string literal (quotes doubled)."""
    if isinstance(value, Fragment):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return str(value).replace("'", "''")


def render(path: Path, params: Mapping[str, object]) -> str:
    text = path.read_text()
    try:
        return _SqlTemplate(text).substitute({key: sql_value(value) for key, value in params.items()})
    except KeyError as missing:
        raise SqlTemplateError(f"{_shown(path)} needs a value for ${{{missing.args[0]}}}") from None
    except ValueError as error:
        raise SqlTemplateError(f"{_shown(path)}: {error}") from None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(SQL_DIR.parent))
    except ValueError:
        return str(path)


def fragment(name: str, params: Mapping[str, object]) -> Fragment:
    """A .sql file that other files include (a column list): its lines without the leading comment."""
    text = render(SQL_DIR / name, params)
    return Fragment("\n".join(line for line in text.splitlines() if not line.startswith("--")).rstrip())


# Where a run reads and writes: values the .sql files use only in tables' WITH options. A compiled plan holds
# tables by name, not their options, so one plan serves every data dir (job/flow/plan_cache.py).
LOCATION_PARAMETERS = ("feed_uri", "dead_letter_uri", "late_uri", "progress_uri", "computed_uri",
                       "kinesis_stream_arn", "kinesis_endpoint_url", "aws_region")


def locations(params: Mapping[str, object]) -> list[str]:
    """The run's locations as the .sql files hold them (rendered), the empty ones left out."""
    return [rendered for name in LOCATION_PARAMETERS if name in params and (rendered := sql_value(params[name]))]


@dataclass(frozen=True)
class Statement:
    """One statement of a .sql file and the file line it starts on (Flink's error positions are relative
    to the statement; adding ``line - 1`` makes them the file's)."""

    text: str
    path: Path
    line: int

    def file_line(self, statement_line: int) -> int:
        return self.line + statement_line - 1


def located_statements(path: Path, params: Mapping[str, object] | None = None) -> list[Statement]:
    """The statements of a .sql file (separated by a ';' that ends a line), each with its first line."""
    text = render(path, params or {})
    located: list[Statement] = []
    start = 0
    for separator in [*_SEPARATOR.finditer(text), None]:
        end = separator.start() if separator else len(text)
        chunk = text[start:end]
        if without_comments(chunk).strip():
            first = start + len(chunk) - len(chunk.lstrip())
            located.append(Statement(chunk.strip(), path, text.count("\n", 0, first) + 1))
        start = separator.end() if separator else len(text)
    return located


def without_comments(statement: str) -> str:
    return _COMMENT.sub("", statement)


def statements(path: Path, params: Mapping[str, object] | None = None) -> list[str]:
    """The statements of a .sql file (separated by a ';' that ends a line)."""
    return [statement.text for statement in located_statements(path, params)]


def feature_files(directory: Path = FEATURES_DIR) -> list[Path]:
    """One file per feature group; the file's stem is the view's and the group's name."""
    return sorted(Path(directory).glob("*.sql"))
