"""The one feature-store client (boto3) used by the Flink sink, the CLI and the notebook alike.

It talks to Amazon SageMaker Feature Store, or to the local server when ``endpoint_url`` is set.
Writes are batched (BatchWriteRecord) and retried with exponential backoff and full jitter on 5xx,
throttling and connection errors, never on ValidationError, within a bounded total wait; when that runs
out the error says what failed and where. botocore's own retries are off so that this policy is the
only one (botocore's modes cannot bound the total wait nor re-send a batch's unprocessed entries).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from connectors import DEFAULT_REGION
from connectors.featurestore.model import (
    COLLECTION_STORAGE_TYPE,
    FeatureGroupDefinition,
    from_api_record,
    to_api_record,
)
from connectors.retry import RETRYABLE_AWS_CODES, RetriesExhausted, RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

# Credentials for the local server only; it does not check them, but botocore will not sign without some.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


# The IAM actions of every call the job makes on Amazon SageMaker Feature Store, where the CDK app creates its
# groups: job/flow/entrypoint.py describes each group and adds the features a feature file gained; the writer
# (udfs/feature_store_writer.py) writes in batches and first reads what is already written. The Flink role is
# granted exactly these (infra/stacks/processing.py; tests/infra/test_app.py records the calls).
JOB_IAM_ACTIONS = ("sagemaker:BatchGetRecord", "sagemaker:BatchWriteRecord", "sagemaker:DescribeFeatureGroup",
                   "sagemaker:UpdateFeatureGroup")


class FeatureStoreError(RuntimeError):
    """A feature-store call that failed for good (after retries, or on a non-retryable error)."""


class SchemaChangeRefused(FeatureStoreError):
    """The job's feature group differs from the existing one in a way SageMaker cannot apply (a feature
    removed or retyped, another identifier or event time): the message says what it allows and what to do."""


UNLIMITED_ATTEMPTS = 2**31  # retries bounded by total_timeout_s alone


@dataclass(frozen=True)
class FeatureStoreConfig:
    """Where the feature store is and how hard to try. ``endpoint_url=None`` means Amazon SageMaker."""

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    batch_size: int = 25  # BatchWriteRecord takes at most 25 entries
    # Batches in flight at once (BatchWriteRecord, BatchGetRecord): a call waits on the network, so several
    # overlap this process's work with the store's.
    concurrency: int = 4
    max_attempts: int = 10
    base_delay_s: float = 0.05
    max_delay_s: float = 5.0
    total_timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    group_wait_timeout_s: float = 900.0  # creating a group or adding features takes minutes on the service
    extra_client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    shown_as: str | None = None  # how messages name the store (default: its endpoint, or SageMaker and the region)
    # Sign requests (SigV4)? None: yes, unless the endpoint is on this machine (a loopback address: the local store,
    # which checks no signature; no AWS endpoint answers there).
    sign_requests: bool | None = None

    @property
    def signs_requests(self) -> bool:
        if self.sign_requests is not None:
            return self.sign_requests
        return not (self.endpoint_url and _is_loopback(urlsplit(self.endpoint_url).hostname))

    def boto3_clients(self) -> tuple[Any, Any]:
        """(runtime client, control-plane client), with botocore's retries off. The runtime client skips
        botocore's parameter validation: this client builds every runtime request itself from typed values, the
        store validates each one anyway, and botocore's walk of a 25-record batch cost more CPU than the rest of
        the call (bench/writes.py). Requests to a store on this machine are not signed (sign_requests): it checks no
        signature, and signing is CPU the writer spends on every call (bench/HISTORY.md)."""
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            max_pool_connections=32,
        )
        if not self.signs_requests:
            config = config.merge(Config(signature_version=UNSIGNED))
        kwargs: dict[str, Any] = {"region_name": self.region, **self.extra_client_kwargs}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
            session = boto3.Session()
            if session.get_credentials() is None:
                kwargs.update(_LOCAL_CREDENTIALS)
        return (
            boto3.client("sagemaker-featurestore-runtime",
                         config=config.merge(Config(parameter_validation=False)), **kwargs),
            boto3.client("sagemaker", config=config, **kwargs),
        )


class FeatureStoreClient:
    def __init__(self, config: FeatureStoreConfig | None = None, sleep: Callable[[float], None] = time.sleep):
        self.config = config or FeatureStoreConfig()
        self.runtime, self.control = self.config.boto3_clients()
        self._sleep = sleep
        self._definitions: dict[str, FeatureGroupDefinition] = {}
        self.retries = 0  # how many calls were retried, for progress displays and tests
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _in_parallel(self, work: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
        """``work`` over ``items``, up to config.concurrency at once; results in order. The first failure is
        raised once every item has ended (none is left running behind the caller's back)."""
        if len(items) <= 1 or self.config.concurrency <= 1:
            return [work(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="featurestore")
        futures = [self._pool.submit(work, item) for item in items]
        errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error
        return [future.result() for future in futures]

    @property
    def where(self) -> str:
        return (self.config.shown_as or self.config.endpoint_url
                or f"Amazon SageMaker Feature Store ({self.config.region})")

    # ---- retry policy ------------------------------------------------------------------------------

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation`` with the retry policy; ``what`` names it in the final error."""
        policy = RetryPolicy(self.config.max_attempts, self.config.base_delay_s, self.config.max_delay_s,
                             self.config.total_timeout_s)
        try:
            return policy.call(what, operation, sleep=self._sleep, on_retry=self._count_retry)
        except RetriesExhausted as error:
            raise FeatureStoreError(
                f"{error} (against {self.where}). Check that the feature store is running and reachable "
                "(`chainfeat featurestore serve` locally), then retry."
            ) from error.__cause__
        except ClientError as error:
            raise FeatureStoreError(f"{what} was rejected by {self.where}: {error}") from error

    def _count_retry(self) -> None:
        self.retries += 1

    # ---- control plane -----------------------------------------------------------------------------

    def describe(self, group: str, fresh: bool = False) -> FeatureGroupDefinition:
        if fresh or group not in self._definitions:
            response = self._describe(group)
            self._definitions[group] = FeatureGroupDefinition.from_api(response)
        return self._definitions[group]

    def _describe(self, group: str) -> dict[str, Any]:
        return self.call(f"DescribeFeatureGroup {group}",
                         lambda: self.control.describe_feature_group(FeatureGroupName=group))

    def description(self, group: str) -> dict[str, Any] | None:
        """DescribeFeatureGroup's whole answer (e.g. OfflineStoreConfig.DataCatalogConfig), None if no such group."""
        try:
            return self._describe(group)
        except FeatureStoreError as error:
            if _code(error.__cause__) == "ResourceNotFound":
                return None
            raise

    def exists(self, group: str) -> bool:
        try:
            self.describe(group)
        except FeatureStoreError as error:
            if _code(error.__cause__) == "ResourceNotFound":
                return False
            raise
        return True

    def group_names(self) -> list[str]:
        """Every feature group's name (ListFeatureGroups, every page), sorted."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MaxResults": 100, **({"NextToken": token} if token else {})}
            response = self.call("ListFeatureGroups", lambda: self.control.list_feature_groups(**kwargs))
            names += [summary["FeatureGroupName"] for summary in response.get("FeatureGroupSummaries") or []]
            token = response.get("NextToken")
            if not token:
                return sorted(names)

    def delete_group(self, group: str) -> None:
        """DeleteFeatureGroup: the group and its online records go; its offline data stays (as on AWS)."""
        self.call(f"DeleteFeatureGroup {group}", lambda: self.control.delete_feature_group(FeatureGroupName=group))
        # On AWS the group is Deleting for a while: a group of the same name can be created once it is gone.
        deadline = time.monotonic() + self.config.group_wait_timeout_s
        while self.description(group) is not None:
            if time.monotonic() > deadline:
                raise FeatureStoreError(f"{group} is still being deleted at {self.where}; try again later")
            self._sleep(2.0)
        self._definitions.pop(group, None)

    def ensure_feature_group(self, definition: FeatureGroupDefinition, **create_kwargs: Any) -> bool:
        """Make the group ``definition`` describes exist; True when it was created. An existing group gains
        the features the definition adds (UpdateFeatureGroup FeatureAdditions, then a wait until its
        LastUpdateStatus is Successful), as SageMaker allows; any other difference (a feature removed or
        retyped, another record identifier or event time) raises SchemaChangeRefused, before anything is
        written. Returns once the group is ready for writes (status Created)."""
        if self.exists(definition.name):
            existing = self.describe(definition.name, fresh=True)
            change = existing.change_to(definition)
            if not change.allowed:
                raise SchemaChangeRefused(change.refusal(existing, definition))
            if change.additions:
                self.add_features(definition.name, definition.feature_definitions(change.additions))
            return False
        online = {"EnableOnlineStore": True, **({"StorageType": COLLECTION_STORAGE_TYPE} if definition.collections else {})}
        request = {**definition.to_api(), "OnlineStoreConfig": online, **create_kwargs}
        self.call(f"CreateFeatureGroup {definition.name}", lambda: self.control.create_feature_group(**request))
        self._wait_for(definition.name, "to be created", _created)
        self._definitions[definition.name] = definition
        return True

    def add_features(self, group: str, features: list[dict[str, Any]]) -> None:
        """UpdateFeatureGroup FeatureAdditions (FeatureDefinitions), then wait until the update is applied (the
        service applies it asynchronously; writing a new feature before that is refused). An update already in
        progress (another job adding the same features) is waited for first."""
        additions = [feature["FeatureName"] for feature in features]
        self._wait_for(group, "to finish its update in progress", _no_update_in_progress)
        if all(name in self.describe(group, fresh=True).features for name in additions):
            return  # someone else added them meanwhile
        self.call(f"UpdateFeatureGroup {group} (add {', '.join(additions)})",
                  lambda: self.control.update_feature_group(FeatureGroupName=group, FeatureAdditions=features))
        self._wait_for(group, f"to add {', '.join(additions)}", _update_applied)
        self.describe(group, fresh=True)

    def _wait_for(self, group: str, what: str, ready: Callable[[dict[str, Any]], str | None]) -> None:
        """Poll DescribeFeatureGroup until ``ready(description)`` is true; it returns an error text when
        the wait can never succeed (a failed creation or update)."""
        deadline = time.monotonic() + self.config.group_wait_timeout_s
        delay = 0.1
        while True:
            description = self._describe(group)
            verdict = ready(description)
            if verdict is True:
                return
            if isinstance(verdict, str):
                raise FeatureStoreError(f"feature group {group} at {self.where}: {verdict}")
            if time.monotonic() >= deadline:
                raise FeatureStoreError(f"feature group {group} at {self.where} did not get {what} within "
                                        f"{self.config.group_wait_timeout_s:g} s (status "
                                        f"{description.get('FeatureGroupStatus')}, last update "
                                        f"{(description.get('LastUpdateStatus') or {}).get('Status', 'none')})")
            self._sleep(delay)
            delay = min(delay * 2, 5.0)

    # ---- writes ------------------------------------------------------------------------------------

    def put_record(self, group: str, values: Mapping[str, Any]) -> None:
        record = to_api_record(values)
        self.call(f"PutRecord {group}", lambda: self.runtime.put_record(FeatureGroupName=group, Record=record))

    def put_records(self, group: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows in BatchWriteRecord batches, several in flight; re-sends unprocessed or retryable entries.
        Returns count. Batches may land in any order: online keeps the newest event time whatever the order."""
        return self.write_records(group, [to_api_record(row) for row in rows])

    def write_records(self, group: str, records: Sequence[list[dict[str, Any]]]) -> int:
        """put_records of rows already in the API's form (each a ``Record``: FeatureName and ValueAsString or
        ValueAsStringList per feature, as to_api_record makes them)."""
        entries = [{"FeatureGroupName": group, "Record": record} for record in records]
        size = self.config.batch_size
        batches = [entries[start:start + size] for start in range(0, len(entries), size)]
        return sum(self._in_parallel(lambda batch: self._write_batch(group, batch), batches))

    def put_new_records(self, group: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Write the rows the online store does not already hold as they are (same identifier, same values,
        event time included), so a window re-emitted after a restore is not appended to the offline store
        twice. One BatchGetRecord per 100 rows. Returns how many rows were written.

        Online keeps one record per identifier (the newest event time): a re-emitted row that is older than
        the record online (an entity-keyed group that wrote a newer window since) is written again."""
        return self.write_new_records(group, [to_api_record(row) for row in rows])

    def write_new_records(self, group: str, records: Sequence[list[dict[str, Any]]]) -> int:
        """put_new_records of rows already in the API's form (write_records)."""
        identifier = self.describe(group).record_identifier
        wanted = [_record_strings(record) for record in records]
        ids = list(dict.fromkeys(str(strings[identifier]) for strings in wanted))  # an entity may have several rows
        held = {strings[identifier]: strings for strings in map(_as_strings, self.get_records(group, ids))}
        new = [record for record, strings in zip(records, wanted, strict=True)
               if held.get(strings[identifier]) != strings]
        return self.write_records(group, new) if new else 0

    def _write_batch(self, group: str, entries: list[dict[str, Any]]) -> int:
        remaining = entries
        rejected: list[str] = []

        def attempt() -> None:
            nonlocal remaining
            response = self.runtime.batch_write_record(Entries=remaining)
            retry = list(response.get("UnprocessedEntries") or [])
            for error in response.get("Errors") or []:
                if error.get("ErrorCode") in RETRYABLE_AWS_CODES:
                    retry.append(error["Entry"])
                else:
                    rejected.append(
                        f"{self._identifier(group, error['Entry'])}: {error['ErrorCode']}: {error['ErrorMessage']}"
                    )
            remaining = retry
            if retry:
                # Surface as a retryable error so the shared backoff policy re-sends just these entries.
                raise ClientError(
                    {"Error": {"Code": "ServiceUnavailable", "Message": f"{len(retry)} entries not written yet"}},
                    "BatchWriteRecord",
                )

        self.call(f"BatchWriteRecord of {len(entries)} records to {group}", attempt)
        if rejected:
            raise FeatureStoreError(
                f"{len(rejected)} of {len(entries)} records were rejected by {self.where} "
                f"(feature group {group}): " + "; ".join(rejected[:5])
            )
        return len(entries)

    def _identifier(self, group: str, entry: Mapping[str, Any]) -> str:
        """The record identifier of a batch entry, for error messages."""
        name = self._definitions[group].record_identifier if group in self._definitions else None
        values = {item["FeatureName"]: item.get("ValueAsString") for item in entry.get("Record") or []}
        return f"{name}={values.get(name)}" if name else str(values)

    def delete_record(self, group: str, record_id: str, event_time: str, hard: bool = False) -> None:
        self.call(
            f"DeleteRecord {group}/{record_id}",
            lambda: self.runtime.delete_record(
                FeatureGroupName=group,
                RecordIdentifierValueAsString=record_id,
                EventTime=event_time,
                DeletionMode="HardDelete" if hard else "SoftDelete",
            ),
        )

    # ---- reads -------------------------------------------------------------------------------------

    def get_record(self, group: str, record_id: str) -> dict[str, Any] | None:
        response = self.call(
            f"GetRecord {group}/{record_id}",
            lambda: self.runtime.get_record(FeatureGroupName=group, RecordIdentifierValueAsString=record_id),
        )
        if "Record" not in response:
            return None
        return from_api_record(response["Record"], self.describe(group))

    def get_records(self, group: str, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        """BatchGetRecord in chunks of 100, several in flight; missing records are left out."""
        definition = self.describe(group)
        chunks = [list(record_ids[start : start + 100]) for start in range(0, len(record_ids), 100)]

        def read(chunk: list[str]) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            pending = [{"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk}]
            while pending:
                response = self.call(
                    f"BatchGetRecord {group}", lambda: self.runtime.batch_get_record(Identifiers=pending)
                )
                errors = response.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise FeatureStoreError(
                        f"BatchGetRecord {group}: {first['ErrorCode']}: {first['ErrorMessage']}"
                        f" ({len(errors)} errors)"
                    )
                found += [from_api_record(item["Record"], definition) for item in response.get("Records") or []]
                pending = response.get("UnprocessedIdentifiers") or []
            return found

        return [record for found in self._in_parallel(read, chunks) for record in found]

    def list_record_identifiers(self, group: str) -> list[str]:
        identifiers: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"FeatureGroupName": group, "MaxResults": 100}  # the API's maximum
            if token:
                kwargs["NextToken"] = token
            response = self.call(f"ListRecords {group}", lambda: self.runtime.list_records(**kwargs))
            identifiers += response.get("RecordIdentifiers") or []
            token = response.get("NextToken")
            if not token:
                return identifiers

    def newest_record(self, group: str) -> dict[str, Any] | None:
        """The online record with the newest event time, whatever the group is keyed by (every identifier
        is read: for a group with very many records, prefer the local store's own index)."""
        definition = self.describe(group)
        records = self.get_records(group, self.list_record_identifiers(group))
        if not records:
            return None
        return max(records, key=lambda row: (row[definition.event_time_feature], str(row[definition.record_identifier])))


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def minute_key(moment: datetime) -> str:
    """The record identifier of the shipped per-minute group for the window starting at ``moment`` (the notebook
    reads the last hour's windows by these keys)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _created(description: Mapping[str, Any]) -> bool | str:
    status = description.get("FeatureGroupStatus")
    if status == "CreateFailed":
        return f"creation failed: {description.get('FailureReason', 'no reason given')}"
    return status == "Created"


def _no_update_in_progress(description: Mapping[str, Any]) -> bool:
    return (description.get("LastUpdateStatus") or {}).get("Status") != "InProgress"


def _update_applied(description: Mapping[str, Any]) -> bool | str:
    update = description.get("LastUpdateStatus") or {}
    if update.get("Status") == "Failed":
        return f"UpdateFeatureGroup failed: {update.get('FailureReason', 'no reason given')}"
    return update.get("Status") == "Successful"


def _code(error: BaseException | None) -> str:
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code", "")
    return ""


def _as_strings(values: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """A record as the API holds it (every value as its string, a collection's as strings), to compare a row with
    what is online."""
    return _record_strings(to_api_record(values))


def _record_strings(record: list[Mapping[str, Any]]) -> dict[str, str | list[str]]:
    return {entry["FeatureName"]: entry.get("ValueAsString", entry.get("ValueAsStringList")) for entry in record}
