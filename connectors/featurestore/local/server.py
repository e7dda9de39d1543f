"""A local server that speaks Amazon SageMaker Feature Store's APIs, so unmodified boto3 code works.

Runtime (``sagemaker-featurestore-runtime``, REST-JSON): PutRecord, GetRecord, BatchGetRecord,
DeleteRecord, BatchWriteRecord, ListRecords. Control plane (``sagemaker``, JSON 1.1 with
``X-Amz-Target``): CreateFeatureGroup, DescribeFeatureGroup, ListFeatureGroups, DeleteFeatureGroup.
Both are served on one port; point ``endpoint_url`` of either boto3 client at it.

Errors are AWS-shaped (``x-amzn-ErrorType`` + JSON body) so botocore raises the same exception classes
as against AWS. ``POST /_chainfeat/faults`` arms fault injection for the runtime API (tests of retries).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.files import atomic_write
from connectors.featurestore.local.store import OFFLINE_DIR, LocalFeatureStore, StoreError, ValidationError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8766
SERVER_INFO_FILE = "server.json"
LOCK_FILE = "LOCK"


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


MAX_BATCH_WRITE_ENTRIES = 25  # as Amazon SageMaker Feature Store


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
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ---- plumbing ----------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        body = self._read_body()
        target = self.headers.get("X-Amz-Target", "")
        app = self.server.app
        try:
            if url.path.startswith("/_chainfeat/"):
                self._send_json(200, app.admin(method, url.path, body))
                return
            if target.startswith("SageMaker."):
                self._send_json(200, app.control_plane(target.split(".", 1)[1], body))
                return
            fault = app.faults.take(batch_write=url.path == "/BatchWriteRecord",
                                    write=method == "PUT" and url.path.startswith("/FeatureGroup/"))
            if fault and fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault and fault.kind == "error":
                raise _InjectedError(fault)
            if fault and fault.kind == "lose":
                self._send_json(200, {"Errors": [], "UnprocessedEntries": []} if url.path == "/BatchWriteRecord" else {})
                return
            answer = app.runtime(method, unquote(url.path), query, body, fault if fault and fault.kind == "unprocessed" else None)
            if fault and fault.kind == "slow":
                time.sleep(fault.delay_s)
            self._send_json(200, answer)
        except StoreError as error:
            self._send_error(error.status, error.code, error.message, json_protocol=bool(target))
        except _InjectedError as error:
            self._send_error(error.fault.status, error.fault.code, "injected fault", json_protocol=False)
        except (ValueError, KeyError, TypeError) as error:
            self._send_error(400, "ValidationError", f"Malformed request: {error}", json_protocol=bool(target))
        except Exception as error:  # the server must answer, never hang the client
            log.exception("internal error serving %s %s", method, self.path)
            self._send_error(500, "InternalFailure", str(error), json_protocol=bool(target))

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        return json.loads(raw)

    def _send_json(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, code: str, message: str, json_protocol: bool) -> None:
        body = {"__type": code, "message": message, "Message": message} if json_protocol else {"message": message}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1" if json_protocol else "application/json")
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _InjectedError(Exception):
    def __init__(self, fault: Fault) -> None:
        self.fault = fault


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    app: "FeatureStoreApp"


class FeatureStoreApp:
    """The API operations on top of LocalFeatureStore, independent of HTTP plumbing."""

    def __init__(self, store: LocalFeatureStore) -> None:
        self.store = store
        self.faults = FaultInjector()

    def control_plane(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        if operation == "CreateFeatureGroup":
            return {"FeatureGroupArn": store.create_feature_group(body)}
        if operation == "DescribeFeatureGroup":
            return store.describe_feature_group(_required(body, "FeatureGroupName"))
        if operation == "ListFeatureGroups":
            summaries = store.list_feature_groups(body.get("NameContains", ""))
            if body.get("SortOrder") == "Descending":
                summaries.reverse()
            return {"FeatureGroupSummaries": summaries}
        if operation == "DeleteFeatureGroup":
            store.delete_feature_group(_required(body, "FeatureGroupName"))
            return {}
        raise ValidationError(f"Operation {operation} is not supported by the local feature store")

    def runtime(
        self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any], fault: Fault | None
    ) -> dict[str, Any] | None:
        parts = [part for part in path.split("/") if part]
        handler: Callable[[], dict[str, Any] | None] | None = None
        if parts == ["BatchGetRecord"] and method == "POST":
            handler = lambda: self._batch_get(body)  # noqa: E731
        elif parts == ["BatchWriteRecord"] and method == "POST":
            handler = lambda: self._batch_write(body, unprocessed=fault is not None)  # noqa: E731
        elif len(parts) == 2 and parts[0] == "FeatureGroup":
            group = parts[1]
            if method == "PUT":
                handler = lambda: self.store.put_record(  # noqa: E731
                    group, _required(body, "Record"), body.get("TargetStores")
                )
            elif method == "GET":
                handler = lambda: self._get(group, query)  # noqa: E731
            elif method == "DELETE":
                handler = lambda: self.store.delete_record(  # noqa: E731
                    group,
                    _one(query, "RecordIdentifierValueAsString"),
                    _one(query, "EventTime"),
                    _one(query, "DeletionMode", "SoftDelete"),
                    query.get("TargetStores"),
                )
        elif len(parts) == 3 and parts[0] == "FeatureGroup" and parts[2] == "ListRecords" and method == "POST":
            handler = lambda: self._list_records(parts[1], body)  # noqa: E731
        if handler is None:
            raise ValidationError(f"No such operation: {method} {path}")
        return handler() or {}

    def admin(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == "/_chainfeat/health":
            return {"status": "ok", "pending_offline_rows": self.store.pending_offline_rows()}
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
        raise ValidationError(f"No such admin path: {path}")

    def _get(self, group: str, query: dict[str, list[str]]) -> dict[str, Any]:
        record = self.store.get_record(group, _one(query, "RecordIdentifierValueAsString"), query.get("FeatureName"))
        return {} if record is None else {"Record": record}

    def _batch_get(self, body: dict[str, Any]) -> dict[str, Any]:
        records, errors = [], []
        for identifier in _required(body, "Identifiers"):
            group = _required(identifier, "FeatureGroupName")
            for record_id in _required(identifier, "RecordIdentifiersValueAsString"):
                try:
                    record = self.store.get_record(group, record_id, identifier.get("FeatureNames"))
                except StoreError as error:
                    errors.append(_entry_error(group, record_id, error))
                    continue
                if record is not None:
                    records.append(
                        {"FeatureGroupName": group, "RecordIdentifierValueAsString": record_id, "Record": record}
                    )
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": []}

    def _batch_write(self, body: dict[str, Any], unprocessed: bool) -> dict[str, Any]:
        entries = _required(body, "Entries")
        if not 1 <= len(entries) <= MAX_BATCH_WRITE_ENTRIES:
            raise ValidationError(f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                                  f"Member must have length between 1 and {MAX_BATCH_WRITE_ENTRIES}")
        # An "unprocessed" fault leaves the second half of the batch unwritten, as a throttled service does.
        keep = (len(entries) + 1) // 2 if unprocessed else len(entries)
        errors = []
        for entry in entries[:keep]:
            try:
                self.store.put_record(_required(entry, "FeatureGroupName"), _required(entry, "Record"),
                                      entry.get("TargetStores"))
            except StoreError as error:
                errors.append({"Entry": entry, "ErrorCode": error.code, "ErrorMessage": error.message})
        return {"Errors": errors, "UnprocessedEntries": entries[keep:]}

    def _list_records(self, group: str, body: dict[str, Any]) -> dict[str, Any]:
        ids = self.store.list_records(group, bool(body.get("IncludeSoftDeletedRecords")))
        start = int(body.get("NextToken") or 0)
        size = int(body.get("MaxResults") or 1000)
        page = ids[start : start + size]
        response: dict[str, Any] = {"RecordIdentifiers": page}
        if start + size < len(ids):
            response["NextToken"] = str(start + size)
        return response


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

    Offline rows are flushed to Parquet every ``flush_interval_s`` and on ``stop()``.
    """

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        flush_interval_s: float = 2.0,
    ) -> None:
        self.root = Path(root)
        try:
            self._lock_handle = lock_store(self.root)
        except FeatureStoreLocked as error:
            raise FeatureStoreLocked(f"{error}; stop it or use another --data-dir") from None
        self.store = LocalFeatureStore(self.root)
        self.store.flush_offline()  # rows left pending by a crash go to Parquet first
        self.app = FeatureStoreApp(self.store)
        try:
            self._http = _HTTPServer((host, port), _Handler)
        except OSError as error:
            self.store.close()
            unlock_store(self._lock_handle)
            raise OSError(f"cannot listen on {host}:{port}: {error.strerror}; choose another port (or 0 for any free one)") from error
        self._http.app = self.app
        self.flush_interval_s = flush_interval_s
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalFeatureStoreServer":
        """Serve in background threads; returns self so ``with LocalFeatureStoreServer(...).start()`` works."""
        self._threads = [
            threading.Thread(target=self._http.serve_forever, name="featurestore-http", daemon=True),
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

    def __enter__(self) -> "LocalFeatureStoreServer":
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

