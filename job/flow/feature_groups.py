"""Feature groups from the feature SQL: each features/*.sql view's output schema is its group's definition (the
first column the record identifier, ``event_time`` the event time), and a file Flink rejects is one message
naming its file, line and column. Creating and evolving the groups in a feature store is here too, for every
runner alike."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError

from connectors.featurestore.client import FeatureStoreClient, FeatureStoreError, SchemaChangeRefused
from connectors.featurestore.model import (
    RESERVED_FEATURE_NAMES,
    Collection,
    CollectionType,
    FeatureGroupDefinition,
    FeatureType,
    FeatureValueError,
)
from job.flow import sql_files

if TYPE_CHECKING:  # PyFlink is imported where the job is built, not by the runners that only need the groups
    from pyflink.table import TableEnvironment

log = logging.getLogger(__name__)

EVENT_TIME_COLUMN = "event_time"


class FeatureFileError(ValueError):
    """A feature file Flink cannot run, as one message: ``file:line:column: what is wrong``."""




def _scalar_type(data_type: object) -> FeatureType | None:
    """The Feature Store type of a Flink column type, if it has one."""
    type_name = str(data_type).upper()
    if type_name.startswith(("VARCHAR", "STRING", "CHAR")):
        return FeatureType.STRING
    if type_name.startswith(("BIGINT", "INT", "SMALLINT", "TINYINT")):
        return FeatureType.INTEGRAL
    if type_name.startswith(("DOUBLE", "FLOAT", "DECIMAL")):
        return FeatureType.FRACTIONAL
    return None


def feature_group_definition(table_env: TableEnvironment, path: Path) -> FeatureGroupDefinition:
    """The feature group a features/*.sql view defines, derived from its output schema: an ARRAY of one of the
    scalar types is a List of it (a collection feature, so the group's online store is InMemory)."""
    view = path.stem
    schema = table_env.from_path(view).get_resolved_schema()
    features: dict[str, FeatureType] = {}
    collections: dict[str, Collection] = {}
    for name, data_type in zip(schema.get_column_names(), schema.get_column_data_types()):
        is_array = str(data_type).upper().startswith("ARRAY")
        kind = _scalar_type(data_type.element_type if is_array else data_type)  # type: ignore[attr-defined]
        if kind is None:
            raise FeatureFileError(
                f"{file_position(path, _line_naming(path, name))}: column {name} has type {data_type}"
                f"{f'<{data_type.element_type}>' if is_array else ''}; feature columns must be STRING, an integer "  # type: ignore[attr-defined]
                "type, DOUBLE or an ARRAY of one of them (cast it in the SELECT)"
            )
        features[name] = kind
        if is_array:
            collections[name] = Collection(CollectionType.LIST)
    names = list(features)
    if EVENT_TIME_COLUMN not in features:
        raise FeatureFileError(f"{file_position(path)}: the view must output a column named {EVENT_TIME_COLUMN} "
                               "(the window end in unix seconds, DOUBLE)")
    if names[0] == EVENT_TIME_COLUMN:
        raise FeatureFileError(f"{file_position(path)}: the first column is the record identifier; it cannot be "
                               f"{EVENT_TIME_COLUMN}")
    for name in names:
        if name in RESERVED_FEATURE_NAMES:
            raise FeatureFileError(f"{file_position(path, _line_naming(path, name))}: column {name} has a name the "
                                   f"offline store keeps for its own column ({', '.join(RESERVED_FEATURE_NAMES)}); "
                                   "give it another alias")
    try:
        return FeatureGroupDefinition(
            name=view,
            record_identifier=names[0],
            event_time_feature=EVENT_TIME_COLUMN,
            features=features,
            description=f"Features computed by chainfeat from sql/features/{path.name}",
            collections=collections,
        )
    except FeatureValueError as error:  # a name SageMaker refuses: say which file holds it
        raise FeatureFileError(f"{file_position(path)}: {error}") from None


_VIEW_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def refuse_unusable_file_name(path: Path) -> None:
    """A feature file's name is its view's and its group's: one Flink SQL takes without quotes."""
    if not _VIEW_NAME.fullmatch(path.stem):
        fixed = re.sub(r"\W", "_", path.stem)
        fixed = fixed if _VIEW_NAME.fullmatch(fixed) else f"_{fixed}"
        raise FeatureFileError(f"{file_position(path)}: a feature file's name is its view's and its feature group's "
                               f"(letters, digits and _, not starting with a digit): rename it to {fixed}.sql and its "
                               f"view to {fixed}")


def file_position(path: Path, line: int | None = None, column: int | None = None) -> str:
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shown + (f":{line}" if line else "") + (f":{column}" if line and column else "")


def _lines_matching(path: Path, pattern: str, flags: int = 0) -> list[int]:
    """The lines of a feature file (comments aside) that match ``pattern``."""
    regex = re.compile(pattern, flags)
    return [number for number, text in enumerate(path.read_text().splitlines(), start=1)
            if regex.search(text.split("--")[0])]


def _line_naming(path: Path, name: str) -> int | None:
    """The last line of a feature file that names ``name`` (its alias in the SELECT, as a rule)."""
    found = _lines_matching(path, rf"\b{re.escape(name)}\b")
    return found[-1] if found else None


_POSITION = re.compile(r"(?:From line|at line) (\d+), column (\d+)")


_JAVA_EXCEPTION = re.compile(r"^: ([\w.$]+(?:Exception|Error)): (.*)$", re.MULTILINE)
_WINDOW_FUNCTION = re.compile(r"\b(TUMBLE|HOP|CUMULATE)\b")
_GROUP_BY = r"\bGROUP\s+BY\b"


def view_error(path: Path, error: Exception) -> FeatureFileError:
    """Flink's refusal to plan or run a feature view, as ``file:line: message``: the line of the window function the
    message names, else of the view's GROUP BY, else its first."""
    match = _JAVA_EXCEPTION.search(str(error))
    message = match.group(2) if match else str(error).strip().splitlines()[0]
    message = re.sub(r"^[\w.$]+(?:Exception|Error): ", "", message)
    named = _WINDOW_FUNCTION.search(message)
    line = (_line_matching(path, rf"\b{named.group(1)}\s*\(") if named else None) or _line_matching(path, _GROUP_BY)
    return FeatureFileError(f"{file_position(path, line)}: {message}")


def updating_view_error(path: Path) -> FeatureFileError:
    """A feature view whose rows change as transactions arrive (an aggregate without a window)."""
    return FeatureFileError(
        f"{file_position(path, _line_matching(path, _GROUP_BY))}: the view's rows change as transactions "
        "arrive (it aggregates without a window), and a feature group takes rows that are final: aggregate over a "
        "TUMBLE, HOP or CUMULATE window of unique_transactions and GROUP BY window_start, window_end (and any keys), "
        "as sql/features/tx_minute_features.sql does")


def _line_matching(path: Path, pattern: str) -> int | None:
    """The first line of a feature file (comments aside) that matches ``pattern`` (case-insensitive)."""
    found = _lines_matching(path, pattern, re.IGNORECASE)
    return found[0] if found else None


def sql_error(statement: sql_files.Statement, error: Exception) -> FeatureFileError:
    """Flink's error for one statement as ``file:line:column: message`` (the Java exception's first line,
    positions moved from the statement to the file), without the stack trace."""
    text = str(error)
    match = _JAVA_EXCEPTION.search(text)
    message = match.group(2) if match else text.strip().splitlines()[0]
    if match and "SqlParserException" in match.group(1):
        following = text[match.end():].split("\n\tat ")[0].strip().splitlines()
        expected = [line.strip().strip('"').rstrip(" .") for line in following[1:] if line.strip()]
        if expected:
            message += " Expected one of: " + ", ".join(expected[:8]) + (", ..." if len(expected) > 8 else "")
    message = re.sub(r"^(SQL (?:parse|validation) failed\. )", "", message)
    position = _POSITION.search(message)
    line = column = None
    if position:
        line, column = statement.file_line(int(position.group(1))), int(position.group(2))
        message = re.sub(r"^From line \d+, column \d+ to line \d+, column \d+: ", "", message)
        message = re.sub(r" at line \d+, column \d+", "", message)
    return FeatureFileError(f"{file_position(statement.path, line or statement.line, column)}: {message}")


def ensure_feature_groups(client: FeatureStoreClient, definitions: Iterable[FeatureGroupDefinition],
                          managed_elsewhere: bool = False) -> list[str]:
    """Create every group the store lacks and add the features a feature file gained; returns the groups created.
    A removed or retyped feature raises SchemaChangeRefused (a FeatureStoreError) before anything runs.
    ``managed_elsewhere``: the groups may belong to infrastructure code (a cluster's job), so a store that refuses
    or cannot be reached is logged, not raised; a schema change is refused all the same."""
    created = []
    for definition in definitions:
        try:
            if client.ensure_feature_group(definition):
                created.append(definition.name)
                log.info("created feature group %s", definition.name)
        except SchemaChangeRefused:
            raise
        except (FeatureStoreError, BotoCoreError) as error:
            if not managed_elsewhere:
                raise
            log.warning("could not ensure feature group %s: %s", definition.name, error)
    return created
