"""Loading the job's SQL: files under sql/, ``${name}`` placeholders filled from configuration.

Values are substituted with string.Template (never by concatenating user input into SQL), and a
placeholder without a value is an error that names the file and the placeholder.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Mapping

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
FEATURES_DIR = SQL_DIR / "features"
_COMMENT = re.compile(r"--[^\n]*")


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


def statements(path: Path, params: Mapping[str, object] | None = None) -> list[str]:
    """The statements of a .sql file (separated by a ';' that ends a line), comments stripped."""
    text = render(path, params or {})
    chunks = re.split(r";\s*(?:\n|$)", text)
    return [chunk.strip() for chunk in chunks if _COMMENT.sub("", chunk).strip()]


def feature_files() -> list[Path]:
    """One file per feature group; the file's stem is the view's and the group's name."""
    return sorted(FEATURES_DIR.glob("*.sql"))
