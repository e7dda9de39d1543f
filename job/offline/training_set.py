"""Point-in-time training sets: a labels table joined to feature groups' offline stores, without leaking the future.

Each label row (an entity, a label time in epoch seconds, any label columns) gets, per feature group, the
group's record for that entity with the newest event time at or before the label time; on equal event times
the newest write wins. A delete marker as that record means no features (the record did not exist then). The
join is ONE SQL statement (sql/training_set.sql, one sql/training_set_group.sql step per group) that runs on
DuckDB over the local offline store, under the Athena names DescribeFeatureGroup gives
(connectors/featurestore/local/offline.py), and on Athena unchanged: this module fills in quoted identifiers.

Output columns: the label columns as they are, then per group ``<group>__<feature>`` for every feature of the
group but its record identifier (which is the label's entity), its event time included.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from connectors.atomic_files import atomic_write
from connectors.featurestore.glue import data_catalog
from connectors.featurestore.local.offline import connect, group_descriptions
from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from job.flow.sql_files import SQL_DIR, fragment, identifier, statements

STATEMENT = "training_set.sql"
GROUP_STEP = "training_set_group.sql"
FEATURE_COLUMN = "training_set_feature.sql"
LABELS_VIEW = SQL_DIR / "training_set_labels.sql"
LABELS_INPUT = "chainfeat_labels_input"  # the labels file as DuckDB sees it before it gets the table's name
# What --print-sql prints when no --labels-table is given: a valid identifier, plainly one to replace.
DEFAULT_LABELS_TABLE = "LABELS_DATABASE.LABELS_TABLE"
DEFAULT_TIME_COLUMN = "label_time"
COLUMN_SEPARATOR = "__"
FORMATS = (".parquet", ".csv")


class TrainingSetError(ValueError):
    """A training set that cannot be built; the message says why and what to do."""


class LabelsError(TrainingSetError):
    """The labels (file, columns) or the options naming them do not fit: a usage error."""


class UnknownGroup(TrainingSetError):
    """A feature group the store does not have (yet)."""


@dataclass(frozen=True)
class GroupTable:
    """A feature group as the join needs it: its definition and the Glue table Athena reads its offline store as."""

    definition: FeatureGroupDefinition
    catalog: str
    database: str
    table: str

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> GroupTable:
        """From DescribeFeatureGroup's answer (AWS's or the local store's)."""
        definition = FeatureGroupDefinition.from_api(description)
        catalog = data_catalog(description)
        if not catalog:
            raise TrainingSetError(f"feature group {definition.name} has no offline store (DescribeFeatureGroup shows "
                                   "no OfflineStoreConfig.DataCatalogConfig): a training set reads the offline store")
        if definition.features[definition.event_time_feature] is FeatureType.STRING:
            raise TrainingSetError(f"feature group {definition.name} has a String event time "
                                   f"({definition.event_time_feature}); training sets compare epoch seconds and "
                                   "support Fractional event times only")
        return cls(definition, catalog["Catalog"], catalog["Database"], catalog["TableName"])

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def athena_table(self) -> str:
        return identifier(self.catalog, self.database, self.table)

    def feature_columns(self) -> list[tuple[str, str]]:
        """(feature, output column) of every feature the training set takes from this group."""
        return [(feature, f"{self.name}{COLUMN_SEPARATOR}{feature}")
                for feature in self.definition.features if feature != self.definition.record_identifier]


def table_name(text: str) -> tuple[str, ...]:
    """``DATABASE.TABLE`` or ``TABLE`` as its parts."""
    parts = tuple(text.split("."))
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise LabelsError(f"--labels-table must be DATABASE.TABLE or TABLE, not {text!r}")
    return parts


def entity_columns(groups: Sequence[GroupTable], entity_column: str | None) -> dict[str, str]:
    """The labels' column each group is joined on: --entity-column, else the group's record identifier."""
    return {group.name: entity_column or group.definition.record_identifier for group in groups}


def statement(groups: Sequence[GroupTable], labels_table: str = DEFAULT_LABELS_TABLE,
              entity_column: str | None = None, time_column: str = DEFAULT_TIME_COLUMN) -> str:
    """The one statement that builds the training set, for DuckDB (locally) and Athena alike."""
    if not groups:
        raise LabelsError("give at least one --group")
    names = [group.name for group in groups]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise LabelsError(f"--group {', '.join(repeated)} is given more than once; give each group once")
    entities = entity_columns(groups, entity_column)
    steps = []
    for number, group in enumerate(groups, start=1):
        columns = ",\n           ".join(
            fragment(FEATURE_COLUMN, {"feature": identifier(feature), "output_column": identifier(output)})
            for feature, output in group.feature_columns())
        steps.append(fragment(GROUP_STEP, {
            "step": identifier(f"step_{number}"), "previous": identifier(f"step_{number - 1}"),
            "feature_columns": columns, "feature_table": group.athena_table,
            "record_identifier": identifier(group.definition.record_identifier),
            "event_time": identifier(group.definition.event_time_feature),
            "entity": identifier(entities[group.name]), "label_time": identifier(time_column),
        }))
    return fragment(STATEMENT, {
        "labels_table": identifier(*table_name(labels_table)), "group_steps": ",\n".join(steps),
        "last_step": identifier(f"step_{len(groups)}"), "label_time": identifier(time_column),
    })


def resolve_groups(names: Sequence[str], descriptions: Mapping[str, Mapping[str, Any] | None]) -> list[GroupTable]:
    """The groups ``names`` from their DescribeFeatureGroup answers (None: no such group)."""
    unknown = [name for name in names if descriptions.get(name) is None]
    if unknown:
        known = ", ".join(sorted(name for name, found in descriptions.items() if found)) or "none yet"
        raise UnknownGroup(f"no feature group {', '.join(unknown)} (feature groups: {known}); name one of them "
                           "with --group, or create it first (`chainfeat run`)")
    return [GroupTable.from_description(descriptions[name]) for name in names]  # type: ignore[arg-type]


def _lists_as_json(table: pa.Table) -> pa.Table:
    """``table`` with every list column as a string column of JSON arrays (nulls stay null)."""
    for position, field in enumerate(table.schema):
        if pa.types.is_list(field.type):
            texts = [None if value is None else json.dumps(value) for value in table.column(position).to_pylist()]
            table = table.set_column(position, pa.field(field.name, pa.string()), pa.array(texts, pa.string()))
    return table


def read_labels(path: Path, text_columns: Sequence[str]) -> pa.Table:
    """The labels file (CSV or Parquet); in a CSV the entity columns stay text, as the records' identifiers are."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LabelsError(f"labels file {path} must be .csv or .parquet")
    if not path.is_file():
        raise LabelsError(f"labels file {path} not found")
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        options = pa_csv.ConvertOptions(column_types={name: pa.string() for name in text_columns})
        return pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as error:
        raise TrainingSetError(f"cannot read labels file {path}: {error}") from None


def check_labels(labels: pa.Table, path: Path, groups: Sequence[GroupTable], entity_column: str | None,
                 time_column: str) -> None:
    """Every column the join needs is there, the label time is epoch seconds, no output column is taken."""
    present = ", ".join(labels.column_names)
    if time_column not in labels.column_names:
        raise LabelsError(f"labels file {path} has no label time column {time_column!r} (its columns: {present}); "
                          "name it with --time-column")
    for group, column in entity_columns(groups, entity_column).items():
        if column not in labels.column_names:
            how = "--entity-column" if entity_column else f"--entity-column (default: {group}'s record identifier)"
            raise LabelsError(f"labels file {path} has no entity column {column!r} for feature group {group} "
                              f"(its columns: {present}); name it with {how}")
    kind = labels.schema.field(time_column).type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)):
        raise TrainingSetError(f"label time column {time_column!r} of {path} holds {kind}, not numbers: give label "
                               "times in epoch seconds, as the feature groups' event times are")
    taken = sorted(set(labels.column_names) & {output for group in groups for _, output in group.feature_columns()})
    if taken:
        raise TrainingSetError(f"labels file {path} already has column(s) {', '.join(taken)}, which the training "
                               "set adds as features; rename them in the labels")


def build(store_root: Path, labels_path: Path, group_names: Sequence[str], output: Path,
          entity_column: str | None = None, time_column: str = DEFAULT_TIME_COLUMN,
          labels_table: str = DEFAULT_LABELS_TABLE) -> dict[str, Any]:
    """Join the labels file to the local offline store in ``store_root``; write ``output``; a summary."""
    if output.suffix.lower() not in FORMATS:
        raise LabelsError(f"--output {output} must end in .parquet or .csv")
    groups = resolve_groups(group_names, group_descriptions(store_root))
    sql = statement(groups, labels_table, entity_column, time_column)
    labels = read_labels(labels_path, sorted(set(entity_columns(groups, entity_column).values())))
    check_labels(labels, labels_path, groups, entity_column, time_column)
    parts = table_name(labels_table)
    connection = connect(store_root)
    try:
        connection.register(LABELS_INPUT, labels)
        for ddl in statements(LABELS_VIEW, {"labels_schema": identifier(*parts[:-1] or ("main",)),
                                            "labels_table": identifier(*parts), "labels_input": identifier(LABELS_INPUT)}):
            connection.execute(ddl)
        result = connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:  # e.g. an entity or label value the join cannot compare
        raise TrainingSetError(f"the join failed on {labels_path}: {error}") from None
    finally:
        connection.close()
    write_table(result, output)
    return {
        "output": str(output), "rows": result.num_rows, "columns": result.num_columns,
        "labels_with_features": {
            group.name: result.num_rows - result.column(f"{group.name}{COLUMN_SEPARATOR}"
                                                        f"{group.definition.event_time_feature}").null_count
            for group in groups},
    }


def write_table(table: pa.Table, output: Path) -> None:
    """Parquet or CSV by the suffix, written atomically (a reader never sees half a file). CSV has no arrays: a
    collection feature's column is written as JSON arrays there (Parquet keeps them as lists)."""
    buffer = io.BytesIO()
    if output.suffix.lower() == ".parquet":
        pq.write_table(table, buffer)
    else:
        pa_csv.write_csv(_lists_as_json(table), buffer)
    atomic_write(output, buffer.getvalue())
