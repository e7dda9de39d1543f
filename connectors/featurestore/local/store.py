"""Storage behind the local feature store: SQLite for the online store, Parquet for the offline store.

Semantics mirror Amazon SageMaker Feature Store (its developer guide: online and offline stores):
- online keeps, per record identifier, the record with the newest event time (equal: the later write wins);
- offline appends every accepted record with ``write_time``, ``api_invocation_time`` and ``is_deleted``,
  as Parquet under ``offline/<group>/year=YYYY/month=MM/day=DD/hour=HH/`` by event time;
- a record with a time to live (its own TtlDuration or the group's) is not served after ExpiresAt and is then
  hard-deleted with a deleted marker offline; UpdateFeatureGroup applies ``update_delay_s`` after it is asked
  (LastUpdateStatus InProgress meanwhile). Group configuration rules are groups.py's.

Durability: an accepted write is committed to SQLite (the online row and a pending offline row in one
transaction) before the server answers, so a crash or SIGKILL loses nothing. Pending rows are moved to
Parquet in batches; a batch's boundaries are committed before its files are written and its file names
derive from them, so a flush interrupted at any point is redone with the same names and never duplicates.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from connectors import DEFAULT_REGION
from connectors.atomic_files import atomic_write
from connectors.featurestore.glue import data_catalog
from connectors.featurestore.local.groups import (
    ACCOUNT_ID,
    PARTIAL_UPDATE_STORAGE_TYPES,
    GroupLimitExceeded,
    apply_update,
    check_update,
    group_ttl_seconds,
    normalize_create,
    online_enabled,
    storage_type,
    ttl_seconds,
    update_metadata,
)
from connectors.featurestore.model import (
    FeatureGroupDefinition,
    FeatureType,
    FeatureValueError,
    check_record_identifier,
    format_iso_event_time,
    parse_value,
    to_api_value,
)

DEFAULT_UPDATE_DELAY_S = 0.5  # how long an UpdateFeatureGroup takes to apply (the service takes a while too)
MAX_UPDATE_FEATURES = 100  # UpdateRecord's limit
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


class ResourceLimitExceeded(StoreError):
    code, status = "ResourceLimitExceeded", 400


class ConflictException(StoreError):
    code, status = "ConflictException", 409


def offline_type(definition: FeatureGroupDefinition, feature: str) -> pa.DataType:
    """A feature's Parquet column type: its type's, or a list of it for a collection (List, Set, Vector)."""
    scalar = _ARROW_TYPES[definition.features[feature]]
    return pa.list_(scalar) if feature in definition.collections else scalar


def offline_schema(definition: FeatureGroupDefinition) -> pa.Schema:
    fields = [pa.field(name, offline_type(definition, name)) for name in definition.features]
    fields += [
        pa.field("write_time", pa.timestamp("ms")),
        pa.field("api_invocation_time", pa.timestamp("ms")),
        pa.field("is_deleted", pa.bool_()),
    ]
    return pa.schema(fields)


# A BatchWriteRecord entry as put_records takes it: (group name or ARN, Record, TargetStores, TtlDuration).
PutEntry = tuple[str, list[Mapping[str, Any]], "Iterable[str] | None", "Mapping[str, Any] | None"]


class _Write(NamedTuple):
    """A checked PutRecord, ready to commit."""

    group: str
    record_id: str
    event_time: float
    record: str  # the values as JSON
    expires_at: float | None
    ttl_s: float | None
    online: bool
    offline: bool


@dataclass
class _Group:
    """A feature group as the store keeps it: its configuration (what DescribeFeatureGroup reports, defaults
    filled in), when it was created, and its state (a pending update, LastUpdateStatus, feature metadata)."""

    config: dict[str, Any]
    created_at: float
    state: dict[str, Any]
    definition: FeatureGroupDefinition = field(init=False)

    def __post_init__(self) -> None:
        self.definition = FeatureGroupDefinition.from_api(self.config)

    @property
    def name(self) -> str:
        return self.config["FeatureGroupName"]


def _new_state(config: Mapping[str, Any], created_at: float) -> dict[str, Any]:
    return {"features": {}, "pending": None, "last_update": None, "last_modified": None}


def _add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    if column not in [row[1] for row in db.execute(f"PRAGMA table_info({table})")]:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _event_time_value(definition: FeatureGroupDefinition, event_time: float) -> float | str:
    """An event time (epoch seconds) as the group's event-time feature holds it."""
    if definition.features[definition.event_time_feature] is FeatureType.FRACTIONAL:
        return event_time
    return format_iso_event_time(datetime.fromtimestamp(event_time, tz=timezone.utc))


def partition_path(event_time: float) -> str:
    moment = datetime.fromtimestamp(event_time, tz=timezone.utc)
    return f"year={moment:%Y}/month={moment:%m}/day={moment:%d}/hour={moment:%H}"


class LocalFeatureStore:
    """Thread-safe storage for the local server. ``root`` holds ``online.sqlite3`` and ``offline/``.

    ``update_delay_s``: how long an UpdateFeatureGroup takes to apply (its LastUpdateStatus is InProgress
    meanwhile, as on the service, where it takes a while); ``clock`` is the store's idea of now.
    """

    def __init__(self, root: Path, region: str = DEFAULT_REGION, update_delay_s: float = DEFAULT_UPDATE_DELAY_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.offline_root = self.root / OFFLINE_DIR
        self.region = region
        self.update_delay_s = update_delay_s
        self.clock = clock
        self.root.mkdir(parents=True, exist_ok=True)
        self.offline_root.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()  # one offline flush at a time (taken before _lock, never inside it)
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
            CREATE TABLE IF NOT EXISTS catalog_tables (
                database TEXT NOT NULL, table_name TEXT NOT NULL, feature_group TEXT NOT NULL,
                definition TEXT NOT NULL, PRIMARY KEY (database, table_name));
            """
        )
        # Columns added since the first release: stores written before them are upgraded in place.
        _add_column(self._db, "feature_groups", "state", "TEXT")
        _add_column(self._db, "online", "expires_at", "REAL")
        _add_column(self._db, "online", "ttl_s", "REAL")
        self._db.execute("CREATE INDEX IF NOT EXISTS online_expiry ON online (expires_at) WHERE expires_at IS NOT NULL")
        self._groups: dict[str, _Group] = {}
        for name, request, created_at, state in self._db.execute(
                "SELECT name, request, created_at, state FROM feature_groups").fetchall():
            config = json.loads(request)
            if "ResolvedOutputS3Uri" not in json.dumps(config.get("OfflineStoreConfig") or {}):
                config = normalize_create(config, self.region, created_at)  # a group from an older store
            group = _Group(config, created_at, json.loads(state) if state else _new_state(config, created_at))
            self._groups[name] = group
            self._save(group)

    # ---- control plane -------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT_ID}:feature-group/{name.lower()}"

    def create_feature_group(self, request: Mapping[str, Any]) -> str:
        created_at = self.clock()
        try:
            config = normalize_create(request, self.region, created_at)
        except GroupLimitExceeded as error:
            raise ResourceLimitExceeded(str(error)) from None
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        name = config["FeatureGroupName"]
        with self._lock:
            if name in self._groups:
                raise ResourceInUse(f"Resource Already Exists: FeatureGroup with name {name} already exists. "
                                    "Choose a different name.")
            group = _Group(config, created_at, _new_state(config, created_at))
            self._db.execute("INSERT INTO feature_groups (name, request, created_at, state) VALUES (?, ?, ?, ?)",
                             (name, json.dumps(config), created_at, json.dumps(group.state)))
            self._groups[name] = group
            self._save(group)
        return self.arn(name)

    def _group(self, name_or_arn: str) -> _Group:
        """The group by name or ARN, with any update that is due applied first."""
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        with self._lock:
            group = self._groups.get(name)
            if group is None and name_or_arn.startswith("arn:"):  # ARNs carry the lower-cased name
                group = next((g for n, g in self._groups.items() if n.lower() == name), None)
            if group is None:
                raise ResourceNotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup with name {name}")
            pending = group.state.get("pending")
            if pending and self.clock() >= pending["applies_at"]:
                self._apply(group, pending)
            return group

    def definition(self, name_or_arn: str) -> FeatureGroupDefinition:
        return self._group(name_or_arn).definition

    def definitions(self) -> list[FeatureGroupDefinition]:
        with self._lock:
            return [self._group(name).definition for name in list(self._groups)]

    def describe_feature_group(self, name: str) -> dict[str, Any]:
        group = self._group(name)
        config, state = group.config, group.state
        description: dict[str, Any] = {
            "FeatureGroupArn": self.arn(group.name),
            "FeatureGroupName": group.name,
            "RecordIdentifierFeatureName": config["RecordIdentifierFeatureName"],
            "EventTimeFeatureName": config["EventTimeFeatureName"],
            "FeatureDefinitions": group.definition.feature_definitions(),
            "CreationTime": group.created_at,
            "OfflineStoreConfig": config["OfflineStoreConfig"],
            "ThroughputConfig": config["ThroughputConfig"],
            "FeatureGroupStatus": "Created",
            "OfflineStoreStatus": {"Status": "Active"},
            "NextToken": "",
        }
        if config.get("OnlineStoreConfig"):
            description["OnlineStoreConfig"] = config["OnlineStoreConfig"]
            with self._lock:
                (size,) = self._db.execute("SELECT coalesce(sum(length(record_id) + length(record)), 0) FROM online "
                                           "WHERE feature_group = ? AND deleted = 0", (group.name,)).fetchone()
            description["OnlineStoreTotalSizeBytes"] = size
        if state.get("last_update"):
            description["LastUpdateStatus"] = state["last_update"]
        if state.get("last_modified"):
            description["LastModifiedTime"] = state["last_modified"]
        for optional in ("RoleArn", "Description"):
            if optional in config:
                description[optional] = config[optional]
        return description

    def list_feature_groups(self, name_contains: str = "") -> list[dict[str, Any]]:
        with self._lock:
            groups = sorted(self._groups.values(), key=lambda group: group.created_at)
        return [
            {
                "FeatureGroupName": group.name,
                "FeatureGroupArn": self.arn(group.name),
                "CreationTime": group.created_at,
                "FeatureGroupStatus": "Created",
                "OfflineStoreStatus": {"Status": "Active"},
            }
            for group in groups
            if name_contains in group.name
        ]

    def update_feature_group(self, request: Mapping[str, Any]) -> str:
        """UpdateFeatureGroup: accepted now, applied ``update_delay_s`` later (LastUpdateStatus InProgress
        meanwhile); a second update while one is in progress is refused, as on the service."""
        group = self._group(request.get("FeatureGroupName") or "")
        with self._lock:
            if group.state.get("pending"):
                raise ResourceInUse(f"FeatureGroup {group.name} has an update in progress (LastUpdateStatus "
                                    "InProgress); wait until it is Successful, then update again")
            try:
                change = check_update(group.config, request)
            except GroupLimitExceeded as error:
                raise ResourceLimitExceeded(str(error)) from None
            except FeatureValueError as error:
                raise ValidationError(str(error)) from None
            now = self.clock()
            group.state["pending"] = {"change": change, "applies_at": now + self.update_delay_s}
            group.state["last_update"] = {"Status": "InProgress"}
            group.state["last_modified"] = now
            self._save(group)
            if self.update_delay_s <= 0:
                self._apply(group, group.state["pending"])
        return self.arn(group.name)

    def _apply(self, group: _Group, pending: Mapping[str, Any]) -> None:
        change = pending["change"]
        group.config = apply_update(group.config, change)
        group.definition = FeatureGroupDefinition.from_api(group.config)
        for feature in change.get("FeatureAdditions") or []:
            group.state["features"][feature["FeatureName"]] = {"CreationTime": pending["applies_at"]}
        group.state["pending"] = None
        group.state["last_update"] = {"Status": "Successful"}
        self._save(group)

    def _save(self, group: _Group) -> None:
        """Persist a group's configuration and state, and the Glue table its offline store is catalogued as."""
        with self._lock:
            self._db.execute("UPDATE feature_groups SET request = ?, state = ? WHERE name = ?",
                             (json.dumps(group.config), json.dumps(group.state), group.name))
            catalog = data_catalog(group.config)
            if catalog:
                self._db.execute("INSERT OR REPLACE INTO catalog_tables VALUES (?, ?, ?, ?)",
                                 (catalog["Database"], catalog["TableName"], group.name,
                                  json.dumps({**group.config, "FeatureDefinitions":
                                              group.definition.feature_definitions()})))

    def describe_feature_metadata(self, group_name: str, feature: str) -> dict[str, Any]:
        group = self._group(group_name)
        if feature not in group.definition.features:
            raise ResourceNotFound(f"Resource Not Found: feature {feature} is not in FeatureGroup {group.name}")
        metadata = group.state["features"].get(feature) or {"CreationTime": group.created_at}
        response: dict[str, Any] = {
            "FeatureGroupArn": self.arn(group.name),
            "FeatureGroupName": group.name,
            "FeatureName": feature,
            "FeatureType": group.definition.features[feature].value,
            "CreationTime": metadata["CreationTime"],
            "LastModifiedTime": metadata.get("LastModifiedTime", metadata["CreationTime"]),
            "Parameters": [{"Key": key, "Value": value} for key, value in (metadata.get("Parameters") or {}).items()],
        }
        if "Description" in metadata:
            response["Description"] = metadata["Description"]
        return response

    def update_feature_metadata(self, request: Mapping[str, Any]) -> None:
        group = self._group(request.get("FeatureGroupName") or "")
        feature = request.get("FeatureName") or ""
        if feature not in group.definition.features:
            raise ResourceNotFound(f"Resource Not Found: feature {feature} is not in FeatureGroup {group.name}")
        with self._lock:
            metadata = group.state["features"].get(feature) or {"CreationTime": group.created_at}
            try:
                updated = update_metadata(metadata, request)
            except FeatureValueError as error:
                raise ValidationError(str(error)) from None
            group.state["features"][feature] = {**updated, "LastModifiedTime": self.clock()}
            self._save(group)

    def tags(self, arn: str) -> list[dict[str, str]]:
        return list(self._group(arn).config.get("Tags") or [])

    def set_tags(self, arn: str, tags: list[Mapping[str, str]]) -> None:
        group = self._group(arn)
        with self._lock:
            group.config["Tags"] = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in tags]
            self._save(group)

    def catalog_tables(self) -> list[tuple[str, str, str, FeatureGroupDefinition]]:
        """(database, table, feature group, its definition) of every Glue table the store's groups were
        catalogued as; a deleted group's table stays, as on AWS."""
        with self._lock:
            rows = self._db.execute("SELECT database, table_name, feature_group, definition FROM catalog_tables").fetchall()
        return [(database, table, group, FeatureGroupDefinition.from_api(json.loads(definition)))
                for database, table, group, definition in rows]

    def delete_feature_group(self, name: str) -> None:
        """Removes the group and its online records; its offline Parquet and its Glue table stay, as on AWS."""
        group = self._group(name)
        with self._flush_lock, self._lock:
            self._flush_pending()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM online WHERE feature_group = ?", (group.name,))
            self._db.execute("DELETE FROM feature_groups WHERE name = ?", (group.name,))
            self._db.execute("COMMIT")
            del self._groups[group.name]

    # ---- runtime: writes ---------------------------------------------------------------------------

    def _stores(self, group: _Group, target_stores: Iterable[str] | None) -> set[str]:
        """The stores a write goes to: the ones asked for (TargetStores), by default every store the group has."""
        enabled = {"OfflineStore"} | ({"OnlineStore"} if online_enabled(group.config) else set())
        if target_stores is None:
            return enabled
        stores = _target_stores(target_stores)
        if stores - enabled:
            raise ValidationError(f"TargetStores {sorted(stores - enabled)[0]} is not enabled for FeatureGroup {group.name}")
        return stores

    def _online(self, group: _Group) -> None:
        if not online_enabled(group.config):
            raise ValidationError(f"FeatureGroup {group.name} has no OnlineStore (OnlineStoreConfig.EnableOnlineStore)")

    def _expiry(self, group: _Group, event_time: float, ttl: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
        """(TTL in seconds, ExpiresAt) of a record: its own TtlDuration, else the group's default."""
        try:
            seconds = ttl_seconds(ttl) if ttl else group_ttl_seconds(group.config)
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        if seconds is not None and not online_enabled(group.config):
            raise ValidationError(f"TtlDuration needs an online store; FeatureGroup {group.name} has none")
        return seconds, (event_time + seconds if seconds is not None else None)

    def put_record(
        self,
        group_name: str,
        record: list[Mapping[str, Any]],
        target_stores: Iterable[str] | None = None,
        invoked_at: float | None = None,
        ttl_duration: Mapping[str, Any] | None = None,
    ) -> None:
        write = self._checked_write(self._group(group_name), record, target_stores, ttl_duration)
        self._commit_writes([write], self.clock() if invoked_at is None else invoked_at)

    def put_records(self, entries: Sequence[PutEntry], invoked_at: float | None = None) -> list[StoreError | None]:
        """BatchWriteRecord's entries: each checked on its own (its error in its place, as AWS reports them per
        entry), the valid ones written in one transaction, in order (a later entry for the same record wins as
        it would as a later PutRecord)."""
        writes: list[_Write] = []
        errors: list[StoreError | None] = []
        groups: dict[str, _Group] = {}  # each group looked up once a batch (a lookup takes the store's lock)
        for group_name, *rest in entries:
            try:
                if group_name not in groups:
                    groups[group_name] = self._group(group_name)
                writes.append(self._checked_write(groups[group_name], *rest))
                errors.append(None)
            except StoreError as error:
                errors.append(error)
        if writes:
            self._commit_writes(writes, self.clock() if invoked_at is None else invoked_at)
        return errors

    def _checked_write(self, group: _Group, record: list[Mapping[str, Any]], target_stores: Iterable[str] | None,
                       ttl_duration: Mapping[str, Any] | None) -> _Write:
        """A PutRecord checked as AWS checks it, ready to commit (ValidationError otherwise)."""
        stores = self._stores(group, target_stores)
        try:
            values, record_id, event_time = group.definition.parse_record(record)
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        ttl, expires_at = self._expiry(group, event_time, ttl_duration)
        return _Write(group.name, record_id, event_time, json.dumps(values), expires_at, ttl,
                      "OnlineStore" in stores, "OfflineStore" in stores)

    def _commit_writes(self, writes: Sequence[_Write], invoked_at: float) -> None:
        """Each write's online row (newest event time wins; equal: the later write; an expired record is gone
        whatever its time) and its pending offline row, all in one SQLite transaction."""
        now = self.clock()
        with self._transaction():
            self._db.executemany(
                """INSERT INTO online (feature_group, record_id, event_time, record, deleted, expires_at, ttl_s)
                   VALUES (?, ?, ?, ?, 0, ?, ?)
                   ON CONFLICT (feature_group, record_id) DO UPDATE SET
                     event_time = excluded.event_time, record = excluded.record, deleted = 0,
                     expires_at = excluded.expires_at, ttl_s = excluded.ttl_s
                   WHERE excluded.event_time >= online.event_time OR online.expires_at <= ?""",
                [(w.group, w.record_id, w.event_time, w.record, w.expires_at, w.ttl_s, now) for w in writes if w.online],
            )
            self._db.executemany(
                "INSERT INTO pending_offline (feature_group, event_time, api_invocation_time, is_deleted, record) "
                "VALUES (?, ?, ?, 0, ?)",
                [(w.group, w.event_time, invoked_at, w.record) for w in writes if w.offline],
            )

    def update_record(
        self,
        group_name: str,
        record_id: str,
        features: list[Mapping[str, Any]],
        target_stores: Iterable[str] | None = None,
        ttl_duration: Mapping[str, Any] | None = None,
        invoked_at: float | None = None,
    ) -> None:
        """UpdateRecord: the given features change, the others stay; the record must exist online. An older
        event time is a conflict; TtlDuration needs an event time. The whole updated record goes offline."""
        group = self._group(group_name)
        definition = group.definition
        if storage_type(group.config) not in PARTIAL_UPDATE_STORAGE_TYPES:
            raise ValidationError(f"UpdateRecord needs an online store of StorageType Standard_V2 or InMemory; "
                                  f"FeatureGroup {group.name} has {storage_type(group.config) or 'no online store'} "
                                  "(migrate it with UpdateFeatureGroup OnlineStoreConfig.StorageType=Standard_V2)")
        if not record_id:
            raise ValidationError("RecordIdentifierValueAsString must not be empty")
        if len(features) > MAX_UPDATE_FEATURES:
            raise ValidationError(f"UpdateRecord takes at most {MAX_UPDATE_FEATURES} features, got {len(features)}")
        try:
            check_record_identifier(definition.record_identifier, record_id)
            values, _, event_time = definition.parse_record(features, partial=True)
        except FeatureValueError as error:
            raise ValidationError(str(error)) from None
        if definition.record_identifier in values and str(values[definition.record_identifier]) != record_id:
            raise ValidationError(f"Feature '{definition.record_identifier}' must equal RecordIdentifierValueAsString")
        if ttl_duration and event_time is None:
            raise ValidationError(f"TtlDuration needs an EventTime: include the event time feature "
                                  f"'{definition.event_time_feature}' in Features")
        stores = self._stores(group, target_stores)
        invoked_at = self.clock() if invoked_at is None else invoked_at
        with self._lock:
            row = self._db.execute(
                "SELECT event_time, record, ttl_s FROM online WHERE feature_group = ? AND record_id = ? AND deleted = 0 "
                "AND (expires_at IS NULL OR expires_at > ?)", (group.name, record_id, self.clock())).fetchone()
            if row is None:
                raise ResourceNotFound(f"Record {record_id} not found in FeatureGroup {group.name}: UpdateRecord "
                                       "changes an existing record (create it with PutRecord)")
            current_time, current, current_ttl = row
            if event_time is not None and event_time < current_time:
                raise ConflictException("EventTime of the update is older than the record's current EventTime; "
                                        "read the record again and resubmit with an equal or newer EventTime")
            event_time = current_time if event_time is None else event_time
            ttl = self._expiry(group, event_time, ttl_duration)[0] if ttl_duration else current_ttl
            merged = json.dumps({**json.loads(current), **values})
            with self._transaction():
                if "OnlineStore" in stores:
                    self._db.execute(
                        "UPDATE online SET event_time = ?, record = ?, expires_at = ?, ttl_s = ? "
                        "WHERE feature_group = ? AND record_id = ?",
                        (event_time, merged, event_time + ttl if ttl is not None else None, ttl, group.name, record_id))
                if "OfflineStore" in stores:
                    self._append_offline(group.name, event_time, invoked_at, False, merged)

    def delete_record(
        self,
        group_name: str,
        record_id: str,
        event_time_text: str,
        deletion_mode: str = "SoftDelete",
        target_stores: Iterable[str] | None = None,
        invoked_at: float | None = None,
    ) -> None:
        """SageMaker's DeleteRecord: the delete applies online only when its event time is newer than the
        stored record's; a marker (identifier, event time, is_deleted) is appended offline either way,
        except for a HardDelete that fails."""
        group = self._group(group_name)
        definition = group.definition
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
        stores = self._stores(group, target_stores)
        invoked_at = self.clock() if invoked_at is None else invoked_at
        with self._transaction():
            if "OnlineStore" in stores:
                row = self._db.execute(
                    "SELECT event_time, expires_at FROM online WHERE feature_group = ? AND record_id = ?",
                    (group.name, record_id),
                ).fetchone()
                newer = row is None or event_time > row[0] or (row[1] is not None and row[1] <= self.clock())
                if deletion_mode == "HardDelete":
                    if not newer:
                        raise ValidationError(
                            f"EventTime {event_time_text} is not later than the stored record's event time"
                        )
                    self._db.execute(
                        "DELETE FROM online WHERE feature_group = ? AND record_id = ?",
                        (group.name, record_id),
                    )
                elif newer:
                    self._db.execute(
                        """INSERT INTO online (feature_group, record_id, event_time, record, deleted)
                           VALUES (?, ?, ?, NULL, 1)
                           ON CONFLICT (feature_group, record_id) DO UPDATE SET
                             event_time = excluded.event_time, record = NULL, deleted = 1,
                             expires_at = NULL, ttl_s = NULL""",
                        (group.name, record_id, event_time),
                    )
            if "OfflineStore" in stores:
                self._append_offline(group.name, event_time, invoked_at, True, json.dumps(marker))

    def expire_records(self) -> int:
        """Hard-delete the online records whose ExpiresAt has passed, each with a deleted marker offline, as
        the service's TTL does (reads stop serving them at ExpiresAt already). Returns how many expired."""
        now = self.clock()
        with self._lock:
            expired = self._db.execute(
                "SELECT feature_group, record_id, event_time FROM online WHERE expires_at <= ?", (now,)).fetchall()
            if not expired:
                return 0
            with self._transaction():
                for group_name, record_id, event_time in expired:
                    self._db.execute("DELETE FROM online WHERE feature_group = ? AND record_id = ?", (group_name, record_id))
                    group = self._groups.get(group_name)
                    if group is not None:
                        definition = group.definition
                        marker = {definition.record_identifier: parse_value(
                            definition.record_identifier, definition.features[definition.record_identifier], record_id),
                                  definition.event_time_feature: _event_time_value(definition, event_time)}
                        self._append_offline(group_name, event_time, now, True, json.dumps(marker))
        return len(expired)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One SQLite transaction (the online row and its pending offline row commit together, or neither)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _append_offline(self, group: str, event_time: float, invoked_at: float, deleted: bool, record: str) -> None:
        self._db.execute(
            "INSERT INTO pending_offline (feature_group, event_time, api_invocation_time, is_deleted, record) "
            "VALUES (?, ?, ?, ?, ?)",
            (group, event_time, invoked_at, int(deleted), record),
        )

    # ---- runtime: reads ----------------------------------------------------------------------------

    def get_online(
        self, group_name: str, record_id: str, feature_names: Iterable[str] | None = None
    ) -> tuple[list[dict[str, str]] | None, float | None]:
        """(the online record, its ExpiresAt) — (None, None) when there is none, it was deleted or it expired."""
        group = self._group(group_name)
        self._online(group)
        definition = group.definition
        if not record_id:
            raise ValidationError("RecordIdentifierValueAsString must not be empty")
        wanted = _wanted_features(definition, feature_names)
        with self._lock:
            row = self._db.execute(
                "SELECT record, expires_at FROM online WHERE feature_group = ? AND record_id = ? AND deleted = 0 "
                "AND (expires_at IS NULL OR expires_at > ?)",
                (definition.name, record_id, self.clock()),
            ).fetchone()
        if row is None:
            return None, None
        values = json.loads(row[0])
        record = [to_api_value(name, values[name]) for name in definition.features
                  if values.get(name) is not None and (wanted is None or name in wanted)]
        return record, row[1]

    def get_record(
        self, group: str, record_id: str, feature_names: Iterable[str] | None = None
    ) -> list[dict[str, str]] | None:
        return self.get_online(group, record_id, feature_names)[0]

    def list_records(self, group_name: str, include_deleted: bool = False) -> list[str]:
        group = self._group(group_name)
        self._online(group)
        with self._lock:
            rows = self._db.execute(
                "SELECT record_id FROM online WHERE feature_group = ? AND (deleted = 0 OR ?) "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY record_id",
                (group.name, int(include_deleted), self.clock()),
            ).fetchall()
        return [record_id for (record_id,) in rows]

    def newest_record_id(self, group: str) -> str | None:
        """The online record with the newest event time (ties: the greatest identifier)."""
        definition = self.definition(group)
        with self._lock:
            row = self._db.execute(
                "SELECT record_id FROM online WHERE feature_group = ? AND deleted = 0 "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY event_time DESC, record_id DESC LIMIT 1",
                (definition.name, self.clock())
            ).fetchone()
        return row[0] if row else None

    def online_count(self, group: str) -> int:
        definition = self.definition(group)
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM online WHERE feature_group = ? AND deleted = 0 "
                "AND (expires_at IS NULL OR expires_at > ?)", (definition.name, self.clock())
            ).fetchone()
        return count

    def pending_offline_rows(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM pending_offline").fetchone()[0]

    # ---- offline flush -----------------------------------------------------------------------------

    def flush_offline(self) -> int:
        """Move pending offline rows into Parquet; returns how many rows were written. One flush at a time; the
        Parquet files are built and written outside the store's lock, so writes go on meanwhile (the rows a flush
        takes, flush_in_progress's range, change only by the flush's own delete)."""
        with self._flush_lock:
            return self._flush_pending()

    def _flush_pending(self) -> int:
        """flush_offline's work; the caller holds _flush_lock."""
        written = 0
        with self._lock:
            self.expire_records()
        while True:
            with self._lock:
                batch = self._db.execute("SELECT first_seq, last_seq, write_time FROM flush_in_progress").fetchone()
                if batch is None:
                    bounds = self._db.execute(
                        "SELECT min(seq), max(seq) FROM (SELECT seq FROM pending_offline ORDER BY seq LIMIT ?)",
                        (_FLUSH_BATCH_ROWS,),
                    ).fetchone()
                    if bounds[0] is None:
                        return written
                    batch = (*bounds, self.clock())
                    self._db.execute("INSERT INTO flush_in_progress VALUES (?, ?, ?)", batch)
                rows, definitions = self._batch_rows(*batch[:2])
            self._write_parquet(*batch, rows, definitions)
            written += len(rows)
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM pending_offline WHERE seq BETWEEN ? AND ?", batch[:2])
                self._db.execute("DELETE FROM flush_in_progress")
                self._db.execute("COMMIT")

    def _batch_rows(self, first_seq: int, last_seq: int) -> tuple[list[tuple], dict[str, FeatureGroupDefinition]]:
        """A flush batch's pending rows, and the definitions of their groups (those not deleted since)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT feature_group, event_time, api_invocation_time, is_deleted, record FROM pending_offline "
                "WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (first_seq, last_seq),
            ).fetchall()
            return rows, {group: self._groups[group].definition
                          for group in {row[0] for row in rows} if group in self._groups}

    def _write_parquet(self, first_seq: int, last_seq: int, write_time: float, rows: list[tuple],
                       definitions: Mapping[str, FeatureGroupDefinition]) -> None:
        """The Parquet files of one flush batch, one per group and partition, each written atomically."""
        by_file: dict[tuple[str, str], list[tuple]] = defaultdict(list)
        partitions: dict[float, str] = {}  # a batch's rows share few event times and invocation times: each once
        for row in rows:
            if row[1] not in partitions:
                partitions[row[1]] = partition_path(row[1])
            by_file[(row[0], partitions[row[1]])].append(row)
        for (group, partition), group_rows in by_file.items():
            definition = definitions.get(group)
            if definition is None:  # the group was deleted with rows still pending: keep them as JSON
                definition = FeatureGroupDefinition(group, "_", "_", {"_": FeatureType.STRING})
            try:
                table = _offline_table(definition, write_time, group_rows)
            except (pa.ArrowException, ValueError):  # what Arrow's JSON reader refuses (a lone surrogate...): by row
                table = _offline_table_by_row(definition, write_time, group_rows)
            directory = self.offline_root / group / partition
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / f"part-{first_seq:012d}-{last_seq:012d}.parquet"
            buffer = pa.BufferOutputStream()
            pq.write_table(table, buffer)
            atomic_write(target, buffer.getvalue().to_pybytes())

    def close(self) -> None:
        with self._flush_lock, self._lock:
            self._flush_pending()
            self._db.close()


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_ms(epoch_seconds: float) -> int:
    """A time in epoch seconds as a ``timestamp("ms")`` value: as the datetime Python makes of it (to the microsecond),
    whole milliseconds (what Arrow keeps of a datetime)."""
    return (datetime.fromtimestamp(epoch_seconds, tz=timezone.utc) - _EPOCH) // _MICROSECOND // 1000


def _offline_table(definition: FeatureGroupDefinition, write_time: float, rows: list[tuple]) -> pa.Table:
    """Pending offline rows (group, event time, invocation time, is_deleted, the record as JSON) as a table of
    offline_schema: the records parsed by Arrow's JSON reader, the offline store's own columns written into each."""
    schema = offline_schema(definition)
    times = {"write_time": pa.int64(), "api_invocation_time": pa.int64()}
    read_as = pa.schema([pa.field(f.name, times.get(f.name, f.type)) for f in schema])
    moments: dict[float, int] = {}
    lines = []
    written = f', "write_time": {_epoch_ms(write_time)}, "api_invocation_time": '
    for _group, _event_time, invoked_at, deleted, record in rows:
        if invoked_at not in moments:
            moments[invoked_at] = _epoch_ms(invoked_at)
        fields = record[1:-1] if record != "{}" else '"_": null'  # a JSON object's members, as json.dumps wrote them
        lines.append(f'{{{fields}{written}{moments[invoked_at]}, "is_deleted": {"true" if deleted else "false"}}}')
    table = pa_json.read_json(pa.py_buffer("\n".join(lines).encode()),
                              read_options=pa_json.ReadOptions(use_threads=False),  # a flush's few MB: one thread
                              parse_options=pa_json.ParseOptions(explicit_schema=read_as,
                                                                 unexpected_field_behavior="ignore"))
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def _offline_table_by_row(definition: FeatureGroupDefinition, write_time: float, rows: list[tuple]) -> pa.Table:
    """_offline_table, each record parsed by Python (for what Arrow's JSON reader refuses)."""
    schema = offline_schema(definition)
    columns: dict[str, list] = {name: [] for name in schema.names}
    written_at = datetime.fromtimestamp(write_time, tz=timezone.utc).replace(tzinfo=None)
    for _group, _event_time, invoked_at, deleted, record in rows:
        values = json.loads(record)
        for name in definition.features:
            columns[name].append(values.get(name))
        columns["write_time"].append(written_at)
        columns["api_invocation_time"].append(datetime.fromtimestamp(invoked_at, tz=timezone.utc).replace(tzinfo=None))
        columns["is_deleted"].append(bool(deleted))
    return pa.table(columns, schema=schema)


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
