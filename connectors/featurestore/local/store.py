"""Storage behind the local feature store: SQLite for the online store, Parquet for the offline store.

Semantics mirror Amazon SageMaker Feature Store (its developer guide: online and offline stores):
- online keeps, per record identifier, the record with the newest event time (equal: the later write wins);
- offline appends every accepted record with ``write_time``, ``api_invocation_time`` and ``is_deleted``,
  as Parquet under ``offline/<group>/year=YYYY/month=MM/day=DD/hour=HH/`` by event time.

Durability: an accepted write is committed to SQLite (the online row and a pending offline row in one
transaction) before the server answers, so a crash or SIGKILL loses nothing. Pending rows are moved to
Parquet in batches; a batch's boundaries are committed before its files are written and its file names
derive from them, so a flush interrupted at any point is redone with the same names and never duplicates.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from connectors import DEFAULT_REGION
from connectors.files import atomic_write
from connectors.featurestore.model import (
    FeatureGroupDefinition,
    FeatureType,
    FeatureValueError,
    format_value,
    parse_value,
)

ACCOUNT_ID = "000000000000"
_ARROW_TYPES = {FeatureType.INTEGRAL: pa.int64(), FeatureType.FRACTIONAL: pa.float64(), FeatureType.STRING: pa.string()}
_FLUSH_BATCH_ROWS = 50_000


# The layout of a store directory.
ONLINE_DATABASE = "online.sqlite3"
OFFLINE_DIR = "offline"

class StoreError(Exception):
    """An error the API reports to the caller, with the AWS error code and HTTP status."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(StoreError):
    code, status = "ValidationError", 400


class ResourceNotFound(StoreError):
    code, status = "ResourceNotFound", 404


class ResourceInUse(StoreError):
    code, status = "ResourceInUse", 400


def offline_schema(definition: FeatureGroupDefinition) -> pa.Schema:
    fields = [pa.field(name, _ARROW_TYPES[kind]) for name, kind in definition.features.items()]
    fields += [
        pa.field("write_time", pa.timestamp("ms")),
        pa.field("api_invocation_time", pa.timestamp("ms")),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema(fields)


def partition_path(event_time: float) -> str:
    moment = datetime.fromtimestamp(event_time, tz=timezone.utc)
    return f"year={moment:%Y}/month={moment:%m}/day={moment:%d}/hour={moment:%H}"


class LocalFeatureStore:
    """Thread-safe storage for the local server. ``root`` holds ``online.sqlite3`` and ``offline/``."""

    def __init__(self, root: Path, region: str = DEFAULT_REGION) -> None:
        self.root = Path(root)
        self.offline_root = self.root / OFFLINE_DIR
        self.region = region
        self.root.mkdir(parents=True, exist_ok=True)
        self.offline_root.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.root / ONLINE_DATABASE, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS feature_groups (
                name TEXT PRIMARY KEY, request TEXT NOT NULL, created_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS online (
                feature_group TEXT NOT NULL, record_id TEXT NOT NULL, event_time REAL NOT NULL,
                record TEXT, deleted INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (feature_group, record_id));
            CREATE TABLE IF NOT EXISTS pending_offline (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, feature_group TEXT NOT NULL, event_time REAL NOT NULL,
                api_invocation_time REAL NOT NULL, is_deleted INTEGER NOT NULL, record TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS flush_in_progress (first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
                write_time REAL NOT NULL);
            """
        )
        self._definitions: dict[str, FeatureGroupDefinition] = {}
        for name, request in self._db.execute("SELECT name, request FROM feature_groups"):
            self._definitions[name] = FeatureGroupDefinition.from_api(json.loads(request))

    # ---- control plane -------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:feature-group/{name.lower()}"

    def create_feature_group(self, request: Mapping[str, Any]) -> str:
        try:
            definition = FeatureGroupDefinition.from_api(request)
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        with self._lock:
            if definition.name in self._definitions:
                raise ResourceInUse(f"Resource Already Exists: FeatureGroup with name {definition.name} already exists")
            self._db.execute(
                "INSERT INTO feature_groups (name, request, created_at) VALUES (?, ?, ?)",
                (definition.name, json.dumps(dict(request)), time.time()),
            )
            self._definitions[definition.name] = definition
        return self.arn(definition.name)

    def definition(self, name_or_arn: str) -> FeatureGroupDefinition:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        definition = self._definitions.get(name)
        if definition is None:
            if name_or_arn.startswith("arn:"):  # ARNs carry the lower-cased name
                definition = next((d for n, d in self._definitions.items() if n.lower() == name), None)
            if definition is None:
                raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}")
        return definition

    def definitions(self) -> list[FeatureGroupDefinition]:
        with self._lock:
            return list(self._definitions.values())

    def describe_feature_group(self, name: str) -> dict[str, Any]:
        definition = self.definition(name)
        request, created_at = self._db.execute(
            "SELECT request, created_at FROM feature_groups WHERE name = ?", (definition.name,)
        ).fetchone()
        request = json.loads(request)
        offline_uri = (self.offline_root / definition.name).resolve().as_uri()
        description = {
            "FeatureGroupArn": self.arn(definition.name),
            "FeatureGroupName": definition.name,
            "RecordIdentifierFeatureName": definition.record_identifier,
            "EventTimeFeatureName": definition.event_time_feature,
            "FeatureDefinitions": definition.feature_definitions(),
            "CreationTime": created_at,
            "OnlineStoreConfig": request.get("OnlineStoreConfig") or {"EnableOnlineStore": True},
            "OfflineStoreConfig": {
                **(request.get("OfflineStoreConfig") or {}),
                "S3StorageConfig": {
                    **((request.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}),
                    "S3Uri": self.offline_root.resolve().as_uri(),
                    "ResolvedOutputS3Uri": offline_uri,
                },
            },
            "FeatureGroupStatus": "Created",
            "OfflineStoreStatus": {"Status": "Active"},
            "NextToken": "",
        }
        for optional in ("RoleArn", "Description", "ThroughputConfig"):
            if optional in request:
                description[optional] = request[optional]
        return description

    def list_feature_groups(self, name_contains: str = "") -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT name, created_at FROM feature_groups ORDER BY created_at").fetchall()
        return [
            {
                "FeatureGroupName": name,
                "FeatureGroupArn": self.arn(name),
                "CreationTime": created_at,
                "FeatureGroupStatus": "Created",
                "OfflineStoreStatus": {"Status": "Active"},
            }
            for name, created_at in rows
            if name_contains in name
        ]

    def delete_feature_group(self, name: str) -> None:
        """Removes the group and its online records; its offline Parquet stays, as S3 data does on AWS."""
        definition = self.definition(name)
        with self._lock:
            self.flush_offline()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM online WHERE feature_group = ?", (definition.name,))
            self._db.execute("DELETE FROM feature_groups WHERE name = ?", (definition.name,))
            self._db.execute("COMMIT")
            del self._definitions[definition.name]

    # ---- runtime: writes ---------------------------------------------------------------------------

    def put_record(
        self,
        group: str,
        record: list[Mapping[str, Any]],
        target_stores: Iterable[str] | None = None,
        invoked_at: float | None = None,
    ) -> None:
        definition = self.definition(group)
        stores = _target_stores(target_stores)
        try:
            values, record_id, event_time = definition.parse_record(record)
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        invoked_at = time.time() if invoked_at is None else invoked_at
        stored = json.dumps(values)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if "OnlineStore" in stores:
                    # Newest event time wins; an equal event time is overwritten by the later write.
                    self._db.execute(
                        """INSERT INTO online (feature_group, record_id, event_time, record, deleted)
                           VALUES (?, ?, ?, ?, 0)
                           ON CONFLICT (feature_group, record_id) DO UPDATE SET
                             event_time = excluded.event_time, record = excluded.record, deleted = 0
                           WHERE excluded.event_time >= online.event_time""",
                        (definition.name, record_id, event_time, stored),
                    )
                if "OfflineStore" in stores:
                    self._append_offline(definition.name, event_time, invoked_at, False, stored)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete_record(
        self,
        group: str,
        record_id: str,
        event_time_text: str,
        deletion_mode: str = "SoftDelete",
        target_stores: Iterable[str] | None = None,
        invoked_at: float | None = None,
    ) -> None:
        """SageMaker's DeleteRecord: the delete applies online only when its event time is newer than the
        stored record's; a marker (identifier, event time, is_deleted) is appended offline either way,
        except for a HardDelete that fails."""
        definition = self.definition(group)
        if deletion_mode not in ("SoftDelete", "HardDelete"):
            raise ValidationError(f"DeletionMode must be SoftDelete or HardDelete, got {deletion_mode!r}")
        if not record_id:
            raise ValidationError("RecordIdentifierValueAsString must not be empty")
        try:
            event_time = definition.parse_event_time(event_time_text)
            marker = {
                name: parse_value(name, definition.features[name], text)
                for name, text in (
                    (definition.record_identifier, record_id),
                    (definition.event_time_feature, event_time_text),
                )
            }
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        stores = _target_stores(target_stores)
        invoked_at = time.time() if invoked_at is None else invoked_at
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if "OnlineStore" in stores:
                    row = self._db.execute(
                        "SELECT event_time FROM online WHERE feature_group = ? AND record_id = ?",
                        (definition.name, record_id),
                    ).fetchone()
                    newer = row is None or event_time > row[0]
                    if deletion_mode == "HardDelete":
                        if not newer:
                            raise ValidationError(
                                f"EventTime {event_time_text} is not later than the stored record's event time"
                            )
                        self._db.execute(
                            "DELETE FROM online WHERE feature_group = ? AND record_id = ?",
                            (definition.name, record_id),
                        )
                    elif newer:
                        self._db.execute(
                            """INSERT INTO online (feature_group, record_id, event_time, record, deleted)
                               VALUES (?, ?, ?, NULL, 1)
                               ON CONFLICT (feature_group, record_id) DO UPDATE SET
                                 event_time = excluded.event_time, record = NULL, deleted = 1""",
                            (definition.name, record_id, event_time),
                        )
                if "OfflineStore" in stores:
                    self._append_offline(definition.name, event_time, invoked_at, True, json.dumps(marker))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _append_offline(self, group: str, event_time: float, invoked_at: float, deleted: bool, record: str) -> None:
        self._db.execute(
            "INSERT INTO pending_offline (feature_group, event_time, api_invocation_time, is_deleted, record) "
            "VALUES (?, ?, ?, ?, ?)",
            (group, event_time, invoked_at, int(deleted), record),
        )

    # ---- runtime: reads ----------------------------------------------------------------------------

    def get_record(
        self, group: str, record_id: str, feature_names: Iterable[str] | None = None
    ) -> list[dict[str, str]] | None:
        definition = self.definition(group)
        if not record_id:
            raise ValidationError("RecordIdentifierValueAsString must not be empty")
        wanted = _wanted_features(definition, feature_names)
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM online WHERE feature_group = ? AND record_id = ? AND deleted = 0",
                (definition.name, record_id),
            ).fetchone()
        if row is None:
            return None
        values = json.loads(row[0])
        return [
            {"FeatureName": name, "ValueAsString": format_value(values[name])}
            for name in definition.features
            if name in values and (wanted is None or name in wanted)
        ]

    def list_records(self, group: str, include_deleted: bool = False) -> list[str]:
        definition = self.definition(group)
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id FROM online WHERE feature_group = ? AND (deleted = 0 OR ?) ORDER BY record_id",
                (definition.name, int(include_deleted)),
            ).fetchall()
        return [record_id for (record_id,) in rows]

    def newest_record_id(self, group: str) -> str | None:
        """The online record with the newest event time (ties: the greatest identifier)."""
        definition = self.definition(group)
        with self._lock:
            row = self._db.execute(
                "SELECT record_id FROM online WHERE feature_group = ? AND deleted = 0 "
                "ORDER BY event_time DESC, record_id DESC LIMIT 1", (definition.name,)
            ).fetchone()
        return row[0] if row else None

    def online_count(self, group: str) -> int:
        definition = self.definition(group)
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM online WHERE feature_group = ? AND deleted = 0", (definition.name,)
            ).fetchone()
        return count

    def pending_offline_rows(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM pending_offline").fetchone()[0]

    # ---- offline flush -----------------------------------------------------------------------------

    def flush_offline(self) -> int:
        """Move pending offline rows into Parquet; returns how many rows were written."""
        written = 0
        with self._lock:
            while True:
                batch = self._db.execute("SELECT first_seq, last_seq, write_time FROM flush_in_progress").fetchone()
                if batch is None:
                    bounds = self._db.execute(
                        "SELECT min(seq), max(seq) FROM (SELECT seq FROM pending_offline ORDER BY seq LIMIT ?)",
                        (_FLUSH_BATCH_ROWS,),
                    ).fetchone()
                    if bounds[0] is None:
                        return written
                    batch = (*bounds, time.time())
                    self._db.execute("INSERT INTO flush_in_progress VALUES (?, ?, ?)", batch)
                written += self._write_batch(*batch)
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM pending_offline WHERE seq BETWEEN ? AND ?", batch[:2])
                self._db.execute("DELETE FROM flush_in_progress")
                self._db.execute("COMMIT")

    def _write_batch(self, first_seq: int, last_seq: int, write_time: float) -> int:
        rows = self._db.execute(
            "SELECT feature_group, event_time, api_invocation_time, is_deleted, record FROM pending_offline "
            "WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first_seq, last_seq),
        ).fetchall()
        by_file: dict[tuple[str, str], list[tuple]] = defaultdict(list)
        for row in rows:
            by_file[(row[0], partition_path(row[1]))].append(row)
        written_at = datetime.fromtimestamp(write_time, tz=timezone.utc).replace(tzinfo=None)
        for (group, partition), group_rows in by_file.items():
            definition = self._definitions.get(group)
            if definition is None:  # the group was deleted with rows still pending: keep them as JSON
                definition = FeatureGroupDefinition(group, "_", "_", {"_": FeatureType.STRING})
            schema = offline_schema(definition)
            columns: dict[str, list] = {name: [] for name in schema.names}
            for _group, _event_time, invoked_at, deleted, record in group_rows:
                values = json.loads(record)
                for name in definition.features:
                    columns[name].append(values.get(name))
                columns["write_time"].append(written_at)
                columns["api_invocation_time"].append(
                    datetime.fromtimestamp(invoked_at, tz=timezone.utc).replace(tzinfo=None)
                )
                columns["is_deleted"].append(bool(deleted))
            table = pa.table(columns, schema=schema)
            directory = self.offline_root / group / partition
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / f"part-{first_seq:012d}-{last_seq:012d}.parquet"
            buffer = pa.BufferOutputStream()
            pq.write_table(table, buffer)
            atomic_write(target, buffer.getvalue().to_pybytes())
        return len(rows)

    def close(self) -> None:
        with self._lock:
            self.flush_offline()
            self._db.close()


def _target_stores(target_stores: Iterable[str] | None) -> set[str]:
    stores = set(target_stores or ("OnlineStore", "OfflineStore"))
    unknown = stores - {"OnlineStore", "OfflineStore"}
    if unknown or not stores:
        raise ValidationError(f"TargetStores must be OnlineStore and/or OfflineStore, got {sorted(unknown)}")
    return stores


def _wanted_features(definition: FeatureGroupDefinition, feature_names: Iterable[str] | None) -> set[str] | None:
    if not feature_names:
        return None
    wanted = set(feature_names)
    unknown = wanted - set(definition.features)
    if unknown:
        raise ValidationError(f"Feature '{sorted(unknown)[0]}' is not defined in feature group '{definition.name}'")
    return wanted
