"""A local server that speaks Amazon SageMaker Feature Store's APIs, so unmodified boto3 code works.

Runtime (``sagemaker-featurestore-runtime``, REST-JSON): every operation botocore models — PutRecord,
GetRecord, BatchGetRecord, BatchWriteRecord, DeleteRecord, ListRecords, UpdateRecord. Control plane
(``sagemaker``, JSON 1.1 with ``X-Amz-Target``): Create/Describe/List/Update/DeleteFeatureGroup,
Describe/UpdateFeatureMetadata, and ListTags/AddTags/DeleteTags on feature groups. Both are served on one
port; point ``endpoint_url`` of either boto3 client at it (or set ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME``, as the SageMaker Python SDK needs).

Errors are AWS-shaped (``x-amzn-ErrorType`` + JSON body) so botocore raises the same exception classes
as against AWS: the runtime's ValidationError, the control plane's ValidationException, the documented
limits (record size, identifier size, batch sizes) as validation errors in the service's own wording. A request
that cannot reach an operation (not JSON, no such operation, too large, a body that stops arriving...) gets the
error AWS's protocols give it (wire.py) and the server keeps serving; the log has one line per such request.
``POST /_chainfeat/faults`` arms fault injection for the runtime API (tests of retries).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.atomic_files import atomic_write
from connectors.featurestore.local import wire
from connectors.featurestore.local.store import (
    DEFAULT_UPDATE_DELAY_S,
    OFFLINE_DIR,
    LocalFeatureStore,
    ResourceNotFound,
    StoreError,
    ValidationError,
)
from connectors.featurestore.model import FeatureGroupDefinition, FeatureValueError, format_iso_event_time

log = logging.getLogger(__name__)

DEFAULT_PORT = 8766
SERVER_INFO_FILE = "server.json"
LOCK_FILE = "LOCK"
# How often the serving loop looks whether stop() was called: stop() waits up to this long (socketserver's
# default, 0.5 s, was most of the time a bounded run took to exit after its job ended).
SHUTDOWN_POLL_S = 0.05
# How long an answered connection's unread body is drained before the connection closes (see _discard_unread_body).
DISCARD_TIMEOUT_S = 1.0


class FeatureStoreLocked(RuntimeError):
    """Another process (a server, or a compaction) holds this feature store's directory."""


def lock_store(root: Path) -> TextIO:
    """Take the lock of the store in ``root``, held by one process at a time: a server, or a compaction
    (a server's flush could rewrite a file that a compaction removed). Release it with ``unlock_store``."""
    root.mkdir(parents=True, exist_ok=True)
    handle = open(root / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        running = read_server_info(root)
        holder = (f"a feature store server at {running['url']} (pid {running['pid']})" if running
                  else "another chainfeat process")
        raise FeatureStoreLocked(f"{holder} holds {root}") from None
    return handle


def unlock_store(handle: TextIO) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()


@contextlib.contextmanager
def exclusive_offline_store(root: Path) -> Iterator[Path]:
    """The offline Parquet root of the store in ``root``, with no server on it meanwhile and every accepted row flushed:
    an interrupted flush is redone under its original file names, so it must finish before a compaction
    may remove those files."""
    handle = lock_store(root)
    try:
        LocalFeatureStore(root).close()
        yield root / OFFLINE_DIR
    finally:
        unlock_store(handle)


@dataclass
class Fault:
    # "error" (HTTP status + AWS error code), "drop" (close the connection), "unprocessed" (half of a
    # BatchWriteRecord left unprocessed), "slow" (answer after delay_s, having done the request), "lose"
    # (acknowledge a write and keep nothing: a store that loses data, which a bounded run must detect)
    kind: str
    status: int = 503
    code: str = "ServiceUnavailable"
    delay_s: float = 0.0


# Request limits of Amazon SageMaker Feature Store (botocore's service models; BatchWriteRecord's is wire.py's).
MAX_BATCH_GET_IDENTIFIERS = 100  # feature groups per BatchGetRecord, and record identifiers per group
MAX_LIST_RECORDS = 100
MAX_LIST_FEATURE_GROUPS = 100
# Runtime operations whose model has no ResourceNotFound: the service answers a missing group with a
# ValidationError ("Resource Not Found: ...").
_NOT_FOUND_AS_VALIDATION = ("PUT", "DELETE")


class FaultInjector:
    """Fails the next N runtime requests in a chosen way; thread-safe."""

    KINDS = ("error", "drop", "unprocessed", "slow", "lose")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._fault = Fault("error")
        self._writes_only = False
        self.injected = 0

    def arm(self, count: int, kind: str = "error", status: int = 503, code: str = "ServiceUnavailable",
            writes_only: bool = False, delay_s: float = 0.0) -> None:
        """Fail the next ``count`` requests; ``writes_only``: only PutRecord/BatchWriteRecord ones (an outage
        that the job's writer sees while readers, e.g. a dashboard, would not use it up)."""
        if kind not in self.KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        with self._lock:
            self._remaining, self._fault = max(0, int(count)), Fault(kind, int(status), code, float(delay_s))
            self._writes_only = bool(writes_only)

    def take(self, batch_write: bool, write: bool = False) -> Fault | None:
        """The fault for this request, if one is armed; "unprocessed" faults wait for a BatchWriteRecord,
        "lose" faults for a write."""
        with self._lock:
            if self._remaining <= 0 or (self._fault.kind == "unprocessed" and not batch_write):
                return None
            if self._fault.kind == "lose" and not (write or batch_write):
                return None
            if self._writes_only and not (write or batch_write):
                return None
            self._remaining -= 1
            self.injected += 1
            return self._fault

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"remaining": self._remaining, "injected": self.injected, "writes_only": self._writes_only,
                    **self._fault.__dict__}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses connections
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall on a response written in more than one piece
    # An answer's status line, headers and body gathered and sent in one write when the request is done (http.server
    # flushes after each request and before closing): one send instead of two, and the client wakes once.
    wbufsize = 64 * 1024
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the interim answer goes out at once (the client waits for it to send its body)."""
        answered = super().handle_expect_100()
        self.wfile.flush()
        return answered

    def __getattr__(self, name: str) -> Any:
        # Every HTTP method reaches the router (BaseHTTPRequestHandler looks up do_<METHOD>), which answers the
        # ones no operation takes with AWS's UnknownOperationException instead of a bare 501.
        if name.startswith("do_"):
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # What http.server itself refuses (a request line or headers it cannot read), in AWS's shape.
        self.close_connection = True
        self.request_version = self.protocol_version  # not HTTP/0.9's bare body, whatever the request line was
        error_code = wire.REQUEST_TOO_LARGE if code in (414, 431) else wire.SERIALIZATION
        log.warning("malformed HTTP request -> %d %s: %s", code, error_code, message)
        self._send_error(code, error_code, message or "malformed HTTP request", json_protocol=True)

    # ---- plumbing ----------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        target = self.headers.get("X-Amz-Target")
        route: wire.Route | None = None
        try:
            route = wire.route(method, unquote(url.path), target)
            operation = route.operation
        except wire.WireError as error:
            # Answered once the body is read (the connection can then carry the next request).
            unroutable, operation = error, target or f"{method} {url.path[:100]}"
        try:
            length = wire.content_length(self.headers)
            self.connection.settimeout(self.server.body_timeout_s)
            body = wire.read_body(self.rfile, length)
            self.connection.settimeout(None)
            if body is None:  # the client went away mid-body: no one to answer
                log.warning("%s: the client closed the connection before its %d-byte body arrived", operation, length)
                self.close_connection = True
                return
            if route is None:
                raise unroutable
            wire.check_content_type(route, self.headers, body)
            self._serve(method, url, query=parse_qs(url.query, keep_blank_values=True), route=route,
                        document=wire.parse_body(body))
        except wire.WireError as error:
            log.warning("%s -> %d %s: %s", operation, error.status, error.code, error.message)
            if error.close:
                self.close_connection = True
            self._send_error(error.status, error.code, error.message, json_protocol=target is not None)
            if error.close:
                self._discard_unread_body()

    def _serve(self, method: str, url: Any, query: dict[str, list[str]], route: wire.Route, document: dict) -> None:
        """Answer a well-formed request: its operation's result, or the operation's own AWS error."""
        app, control = self.server.app, route.api == "control"
        try:
            if route.api == "admin":
                self._send_json(200, app.admin(method, url.path, document))
                return
            if control:
                self._send_json(200, app.control_plane(route.operation, document))
                return
            fault = app.faults.take(batch_write=route.operation == "BatchWriteRecord",
                                    write=route.operation == "PutRecord")
            if fault and fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault and fault.kind == "error":
                raise _InjectedError(fault)
            if fault and fault.kind == "lose":
                self._send_json(200, {"Errors": [], "UnprocessedEntries": []} if route.operation == "BatchWriteRecord" else {})
                return
            answer = app.runtime(route, query, document, fault if fault and fault.kind == "unprocessed" else None)
            if fault and fault.kind == "slow":
                time.sleep(fault.delay_s)
            self._send_json(200, answer)
        except StoreError as error:
            code, status = error.code, error.status
            if control and code == "ValidationError":
                code = "ValidationException"  # the control plane's name for it
            elif not control and isinstance(error, ResourceNotFound) and method in _NOT_FOUND_AS_VALIDATION:
                code, status = "ValidationError", 400
            log.info("%s -> %d %s: %s", route.operation, status, code, error.message[:200])
            self._send_error(status, code, error.message, json_protocol=control)
        except _InjectedError as error:
            self._send_error(error.fault.status, error.fault.code, "injected fault", json_protocol=False)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # A document of the wrong shape for its operation (a list where an object goes, a number for a name...)
            code = "ValidationException" if control else "ValidationError"
            log.info("%s -> 400 %s: malformed request: %s", route.operation, code, error)
            self._send_error(400, code, f"Malformed request: {error}", json_protocol=control)
        except Exception as error:  # the server must answer, never hang the client
            log.exception("internal error serving %s %s", method, self.path)
            self._send_error(500, "InternalFailure", str(error), json_protocol=control)

    def _discard_unread_body(self) -> None:
        """Read (and drop) what the client is still sending, briefly, before the connection closes: closing a socket
        with unread data resets it, and the client would lose the answer it was sent."""
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(DISCARD_TIMEOUT_S)
            deadline = time.monotonic() + DISCARD_TIMEOUT_S
            while time.monotonic() < deadline and self.connection.recv(65536):
                pass

    def _send_json(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_error(self, status: int, code: str, message: str, json_protocol: bool) -> None:
        body = {"__type": code, "message": message, "Message": message} if json_protocol else {"message": message}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1" if json_protocol else "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _InjectedError(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's listen backlog of 5 dropped the connections of 32 clients starting at once: each waited for
    # its SYN to be sent again, a second later (bench/store.py)
    request_queue_size = 128
    app: FeatureStoreApp
    body_timeout_s: float = wire.BODY_TIMEOUT_S


class FeatureStoreApp:
    """The API operations on top of LocalFeatureStore, independent of HTTP plumbing."""

    def __init__(self, store: LocalFeatureStore) -> None:
        self.store = store
        self.faults = FaultInjector()
        self.calls: Counter[str] = Counter()  # runtime operations served, by name (the health answer shows them)
        self._calls_lock = threading.Lock()

    def control_plane(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        if operation == "CreateFeatureGroup":
            _check_create(body)
            return {"FeatureGroupArn": store.create_feature_group(body)}
        if operation == "DescribeFeatureGroup":
            return store.describe_feature_group(_required(body, "FeatureGroupName"))
        if operation == "ListFeatureGroups":
            return self._list_feature_groups(body)
        if operation == "UpdateFeatureGroup":
            _required(body, "FeatureGroupName")
            return {"FeatureGroupArn": store.update_feature_group(body)}
        if operation == "DeleteFeatureGroup":
            store.delete_feature_group(_required(body, "FeatureGroupName"))
            return {}
        if operation == "DescribeFeatureMetadata":
            return store.describe_feature_metadata(_required(body, "FeatureGroupName"), _required(body, "FeatureName"))
        if operation == "UpdateFeatureMetadata":
            _required(body, "FeatureName")
            store.update_feature_metadata(body)
            return {}
        if operation == "ListTags":
            return {"Tags": store.tags(_feature_group_arn(body, "ResourceArn"))}
        if operation == "AddTags":
            arn = _feature_group_arn(body, "ResourceArn")
            tags = {tag["Key"]: tag for tag in store.tags(arn)}
            tags.update({tag["Key"]: tag for tag in _required(body, "Tags")})
            store.set_tags(arn, list(tags.values()))
            return {"Tags": _required(body, "Tags")}
        if operation == "DeleteTags":
            arn = _feature_group_arn(body, "ResourceArn")
            removed = set(_required(body, "TagKeys"))
            store.set_tags(arn, [tag for tag in store.tags(arn) if tag["Key"] not in removed])
            return {}
        raise ValidationError(f"Operation {operation} is not supported by the local feature store")

    def _list_feature_groups(self, body: dict[str, Any]) -> dict[str, Any]:
        summaries = self.store.list_feature_groups(body.get("NameContains", ""))
        if body.get("FeatureGroupStatusEquals"):
            summaries = [s for s in summaries if s["FeatureGroupStatus"] == body["FeatureGroupStatusEquals"]]
        if body.get("OfflineStoreStatusEquals"):
            summaries = [s for s in summaries if s["OfflineStoreStatus"]["Status"] == body["OfflineStoreStatusEquals"]]
        if body.get("CreationTimeAfter") is not None:
            summaries = [s for s in summaries if s["CreationTime"] > _epoch(body["CreationTimeAfter"])]
        if body.get("CreationTimeBefore") is not None:
            summaries = [s for s in summaries if s["CreationTime"] < _epoch(body["CreationTimeBefore"])]
        sort_key = {"Name": lambda s: s["FeatureGroupName"], "FeatureGroupStatus": lambda s: s["FeatureGroupStatus"],
                    "OfflineStoreStatus": lambda s: s["OfflineStoreStatus"]["Status"],
                    "CreationTime": lambda s: s["CreationTime"]}.get(body.get("SortBy") or "CreationTime")
        if sort_key is None:
            raise ValidationError("SortBy must be one of Name, FeatureGroupStatus, OfflineStoreStatus, CreationTime")
        summaries.sort(key=sort_key, reverse=body.get("SortOrder") == "Descending")
        return _page(summaries, "FeatureGroupSummaries", body, MAX_LIST_FEATURE_GROUPS)

    def runtime(self, route: wire.Route, query: dict[str, list[str]], body: dict[str, Any],
                fault: Fault | None) -> dict[str, Any] | None:
        group, operation = route.group, route.operation
        handlers: dict[str, Callable[[], dict[str, Any] | None]] = {
            "BatchGetRecord": lambda: self._batch_get(body),
            "BatchWriteRecord": lambda: self._batch_write(body, unprocessed=fault is not None),
            "PutRecord": lambda: self.store.put_record(
                group, _required(body, "Record"), body.get("TargetStores"), ttl_duration=body.get("TtlDuration")),
            "GetRecord": lambda: self._get(group, query),
            "DeleteRecord": lambda: self.store.delete_record(
                group, _one(query, "RecordIdentifierValueAsString"), _one(query, "EventTime"),
                _one(query, "DeletionMode", "SoftDelete"), query.get("TargetStores")),
            "ListRecords": lambda: self._list_records(group, body),
            "UpdateRecord": lambda: self.store.update_record(
                group, _required(body, "RecordIdentifierValueAsString"), _required(body, "Features"),
                body.get("TargetStores"), body.get("TtlDuration")),
        }
        with self._calls_lock:
            self.calls[operation] += 1
        return handlers[operation]() or {}

    def admin(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/_chainfeat/health":
            with self._calls_lock:
                calls = dict(self.calls)
            return {"status": "ok", "pending_offline_rows": self.store.pending_offline_rows(), "calls": calls}
        if path == "/_chainfeat/faults":
            if method == "POST":
                self.faults.arm(
                    body.get("count", 1),
                    body.get("kind", "error"),
                    body.get("status", 503),
                    body.get("code", "ServiceUnavailable"),
                    body.get("writes_only", False),
                    body.get("delay_s", 0.0),
                )
            return self.faults.state()
        if path == "/_chainfeat/flush" and method == "POST":
            return {"rows_written": self.store.flush_offline()}
        if path == "/_chainfeat/online" and method == "POST":  # what a run's summary reads (process.py)
            group = _required(body, "FeatureGroupName")
            return {"online_count": self.store.online_count(group),
                    "newest_record_id": self.store.newest_record_id(group)}
        raise ValidationError(f"No such admin path: {path}")

    def _get(self, group: str, query: dict[str, list[str]]) -> dict[str, Any]:
        record, expires_at = self.store.get_online(group, _one(query, "RecordIdentifierValueAsString"),
                                                   query.get("FeatureName"))
        if record is None:
            return {}
        response: dict[str, Any] = {"Record": record}
        if _one(query, "ExpirationTimeResponse", "Disabled") == "Enabled" and expires_at is not None:
            response["ExpiresAt"] = _expires_at(expires_at)
        return response

    def _batch_get(self, body: dict[str, Any]) -> dict[str, Any]:
        identifiers = _required(body, "Identifiers")
        _check_length(identifiers, "identifiers", MAX_BATCH_GET_IDENTIFIERS)
        with_expiry = body.get("ExpirationTimeResponse") == "Enabled"
        records, errors = [], []
        for position, identifier in enumerate(identifiers, 1):
            group = _required(identifier, "FeatureGroupName")
            record_ids = _required(identifier, "RecordIdentifiersValueAsString")
            _check_length(record_ids, f"identifiers.{position}.member.recordIdentifiersValueAsString",
                          MAX_BATCH_GET_IDENTIFIERS)
            for record_id in record_ids:
                try:
                    record, expires_at = self.store.get_online(group, record_id, identifier.get("FeatureNames"))
                except StoreError as error:
                    errors.append(_entry_error(group, record_id, error))
                    continue
                if record is not None:
                    found = {"FeatureGroupName": group, "RecordIdentifierValueAsString": record_id, "Record": record}
                    if with_expiry and expires_at is not None:
                        found["ExpiresAt"] = _expires_at(expires_at)
                    records.append(found)
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def _batch_write(self, body: dict[str, Any], unprocessed: bool) -> dict[str, Any]:
        entries = _required(body, "Entries")
        if not 1 <= len(entries) <= wire.MAX_BATCH_WRITE_ENTRIES:
            raise ValidationError(f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                                  f"Member must have length between 1 and {wire.MAX_BATCH_WRITE_ENTRIES}")
        # An "unprocessed" fault leaves the second half of the batch unwritten, as a throttled service does.
        keep = (len(entries) + 1) // 2 if unprocessed else len(entries)
        taken = entries[:keep]
        checked = self.store.put_records([(_required(entry, "FeatureGroupName"), _required(entry, "Record"),
                                           entry.get("TargetStores"), entry.get("TtlDuration") or body.get("TtlDuration"))
                                          for entry in taken])
        errors = [{"Entry": entry, "ErrorCode": error.code, "ErrorMessage": error.message}
                  for entry, error in zip(taken, checked, strict=True) if error is not None]
        return {"Errors": errors, "UnprocessedEntries": entries[keep:]}

    def _list_records(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        ids = self.store.list_records(group, bool(body.get("IncludeSoftDeletedRecords")))
        return _page(ids, "RecordIdentifiers", body, MAX_LIST_RECORDS)


def _page(items: list[Any], key: str, body: dict[str, Any], max_results: int) -> dict[str, Any]:
    """One page of a List call: MaxResults (1 to ``max_results``, the most by default) from NextToken on."""
    size = body.get("MaxResults") or max_results
    if not isinstance(size, int) or not 1 <= size <= max_results:
        raise ValidationError(f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
                              f"constraint: Member must have value less than or equal to {max_results}")
    token = body.get("NextToken") or "0"
    if not token.isdigit():
        raise ValidationError(f"NextToken {token!r} is not one this server returned")
    start = int(token)
    response: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        response["NextToken"] = str(start + size)
    return response


def _check_length(items: list[Any], where: str, most: int) -> None:
    if len(items) > most:
        raise ValidationError(f"1 validation error detected: Value at '{where}' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {most}")


def _check_create(body: dict[str, Any]) -> None:
    """CreateFeatureGroup's own rule beyond the definition's (the definition is checked first, as the
    service does): a group needs an online or an offline store."""
    try:
        FeatureGroupDefinition.from_api(body)
    except FeatureValueError as error:
        raise ValidationError(str(error)) from None
    if not body.get("OnlineStoreConfig") and not body.get("OfflineStoreConfig"):
        raise ValidationError("You must include at least one of OnlineStoreConfig and OfflineStoreConfig "
                              "to create a FeatureGroup")


def _expires_at(epoch_seconds: float) -> str:
    """ExpiresAt as the service returns it: an ISO-8601 UTC time."""
    return format_iso_event_time(datetime.fromtimestamp(epoch_seconds, tz=timezone.utc))


def _epoch(value: Any) -> float:
    """A timestamp from a JSON-protocol request (botocore sends epoch seconds)."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _feature_group_arn(body: dict[str, Any], name: str) -> str:
    arn = _required(body, name)
    if ":feature-group/" not in arn:
        raise ValidationError(f"{name} {arn} is not a feature group: the local feature store only has feature groups")
    return arn


def _required(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value in (None, "", []):
        raise ValidationError(f"{name} is required")
    return value


def _one(query: dict[str, list[str]], name: str, default: str | None = None) -> str:
    values = query.get(name)
    if not values:
        if default is not None:
            return default
        raise ValidationError(f"{name} is required")
    return values[0]


def _entry_error(group: str, record_id: str, error: StoreError) -> dict[str, str]:
    return {
        "FeatureGroupName": group,
        "RecordIdentifierValueAsString": record_id,
        "ErrorCode": error.code,
        "ErrorMessage": error.message,
    }


class LocalFeatureStoreServer:
    """The local feature store on ``host:port`` over the directory ``root`` (online SQLite, offline Parquet,
    the running server's URL); one server per directory (a file lock).

    Offline rows are flushed to Parquet every ``flush_interval_s`` and on ``stop()``; a request body that stops
    arriving for ``body_timeout_s`` is answered 408 and its connection closed.
    """

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        flush_interval_s: float = 2.0,
        update_delay_s: float = DEFAULT_UPDATE_DELAY_S,
        body_timeout_s: float = wire.BODY_TIMEOUT_S,
    ) -> None:
        self.root = Path(root)
        try:
            self._lock_handle = lock_store(self.root)
        except FeatureStoreLocked as error:
            raise FeatureStoreLocked(f"{error}; stop it or use another --data-dir") from None
        self.store = LocalFeatureStore(self.root, update_delay_s=update_delay_s)
        self.store.flush_offline()  # rows left pending by a crash go to Parquet first
        self.app = FeatureStoreApp(self.store)
        try:
            self._http = _HTTPServer((host, port), _Handler)
        except OSError as error:
            self.store.close()
            unlock_store(self._lock_handle)
            raise OSError(f"cannot listen on {host}:{port}: {error.strerror}; choose another port (or 0 for any free one)") from error
        self._http.app = self.app
        self._http.body_timeout_s = body_timeout_s
        self.flush_interval_s = flush_interval_s
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalFeatureStoreServer:
        """Serve in background threads; returns self so ``with LocalFeatureStoreServer(...).start()`` works."""
        self._threads = [
            threading.Thread(target=self._http.serve_forever, args=(SHUTDOWN_POLL_S,), name="featurestore-http",
                             daemon=True),
            threading.Thread(target=self._flush_loop, name="featurestore-flush", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        info = {"url": self.url, "pid": os.getpid(), "started_at": time.time()}
        atomic_write(self.root / SERVER_INFO_FILE, json.dumps(info).encode(), durable=False)
        return self

    def _flush_loop(self) -> None:
        while not self._stopping.wait(self.flush_interval_s):
            try:
                self.store.flush_offline()
            except Exception:  # keep serving; rows stay pending in SQLite and are retried next tick
                log.exception("offline flush failed; will retry")

    def stop(self) -> None:
        """Stop accepting requests, finish in-flight ones, flush every pending offline row."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self.store.close()
        (self.root / SERVER_INFO_FILE).unlink(missing_ok=True)
        unlock_store(self._lock_handle)

    # What a run reads of its store beyond the API (the same answers as process.StoreProcess gives).
    def online_count(self, group: str) -> int:
        return self.store.online_count(group)

    def newest_record_id(self, group: str) -> str | None:
        return self.store.newest_record_id(group)

    def flush_offline(self) -> int:
        return self.store.flush_offline()

    def __enter__(self) -> LocalFeatureStoreServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_server_info(root: Path) -> dict[str, Any] | None:
    """The URL and pid of the server running on the store in ``root``, if one is running."""
    path = root / SERVER_INFO_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return info

