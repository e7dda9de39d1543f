"""Loading the job's SQL: files under sql/, ``${name}`` placeholders filled from configuration.

Values are substituted with string.Template (never by concatenating user input into SQL), and a
placeholder without a value is an error that names the file and the placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Mapping

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
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


def render(path: Path, params: Mapping[str, object]) -> str:
    text = path.read_text()
    try:
        return _SqlTemplate(text).substitute({key: str(value) for key, value in params.items()})
    except KeyError as missing:
        raise SqlTemplateError(f"{path.relative_to(SQL_DIR.parent)} needs a value for ${{{missing.args[0]}}}") from None
    except ValueError as error:
        raise SqlTemplateError(f"{path.relative_to(SQL_DIR.parent)}: {error}") from None


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
