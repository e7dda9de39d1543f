"""The local feature store's wire contract: which operation a request is, how big and how slow its body may be, what it
must be to reach an operation, and the AWS error every other request gets.

Operations come from botocore's own service models (the runtime's REST routes, the control plane's ``X-Amz-Target``
names), so the server routes exactly what the SDKs send. A request that cannot reach an operation is answered with
the errors AWS's JSON protocols use (the Smithy framework errors, which botocore parses from ``__type`` /
``x-amzn-ErrorType`` like any other): ``UnknownOperationException`` (no such operation, 404; a known path with another
method, 405), ``UnsupportedMediaTypeException`` (a body without the protocol's Content-Type, 415),
``SerializationException`` (a body that is not a JSON object in UTF-8, 400), as the Smithy protocol test suite
specifies for servers (smithy-lang/smithy, smithy-aws-protocol-tests/model/restJson1/malformedRequests/
malformed-request-body.smithy and malformed-content-type.smithy). Two more bound what one request can cost:
``RequestEntityTooLargeException`` (413, answered from the Content-Length before any of the body is read) and
``RequestTimeoutException`` (408: the body stopped arriving; botocore retries it as a transient error).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, BinaryIO

import botocore.session

from connectors.featurestore.model import MAX_RECORD_BYTES

# Error codes of malformed requests (the operations' own errors, e.g. ValidationError, are the store's).
SERIALIZATION = "SerializationException"
UNKNOWN_OPERATION = "UnknownOperationException"
UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaTypeException"
REQUEST_TOO_LARGE = "RequestEntityTooLargeException"
REQUEST_TIMEOUT = "RequestTimeoutException"

# The Content-Type of a request body, per protocol (what botocore sends).
RUNTIME_CONTENT_TYPE = "application/json"  # sagemaker-featurestore-runtime: REST-JSON
CONTROL_PLANE_CONTENT_TYPE = "application/x-amz-json-1.1"  # sagemaker: JSON 1.1
CONTROL_PLANE_PREFIX = "SageMaker."  # X-Amz-Target = prefix + operation

MAX_BATCH_WRITE_ENTRIES = 25  # BatchWriteRecord's limit (the runtime's service model)
# The largest body a valid request can have: a BatchWriteRecord of 25 records at the 350 KB record limit
# (Feature Store quotas, https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-quotas.html), with as much
# again for the JSON around the values (names, quotes, escapes). Every other operation's valid bodies are smaller.
MAX_REQUEST_BYTES = MAX_BATCH_WRITE_ENTRIES * 2 * MAX_RECORD_BYTES
# How long a body may take to arrive once its headers have: a client that announces more than it sends is
# answered (408) and its connection closed instead of holding a server thread forever.
BODY_TIMEOUT_S = 10.0
# How deep a request's JSON may nest; the deepest valid request (a BatchWriteRecord entry's ValueAsStringList) is 6.
MAX_JSON_DEPTH = 32


@dataclass
class WireError(Exception):
    """A request that cannot reach an operation: the HTTP status, the AWS error code and what was wrong.
    ``close``: the connection cannot carry another request (its body was not read to its end)."""

    status: int
    code: str
    message: str
    close: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class Route:
    """The operation a request is for: its name, the API (``runtime``, ``control``, ``admin``) and, for runtime
    operations, the feature group named in the path."""

    api: str
    operation: str
    group: str = ""


@cache
def _runtime_routes() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    """(method, path pattern, operation) of every runtime operation, from botocore's model."""
    model = botocore.session.get_session().get_service_model("sagemaker-featurestore-runtime")
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        pattern = re.sub(r"\\\{[^/]+\\\}", "(?P<group>[^/]+)", re.escape(http["requestUri"].split("?")[0]))
        routes.append((http["method"], re.compile(f"{pattern}/?"), name))
    return tuple(routes)


@cache
def control_plane_operations() -> frozenset[str]:
    """Every operation of SageMaker's control plane (botocore's model): an X-Amz-Target outside them is unknown."""
    return frozenset(botocore.session.get_session().get_service_model("sagemaker").operation_names)


def route(method: str, path: str, target: str | None) -> Route:
    """The operation of a request, from its method, its (unquoted) path and its X-Amz-Target header."""
    if path.startswith("/_chainfeat/"):
        return Route("admin", path)
    if target is not None:
        operation = target.removeprefix(CONTROL_PLANE_PREFIX)
        if not target.startswith(CONTROL_PLANE_PREFIX) or operation not in control_plane_operations():
            raise WireError(404, UNKNOWN_OPERATION, f"X-Amz-Target {target[:100]!r} is no SageMaker operation")
        if method != "POST" or path not in ("", "/"):
            raise WireError(404, UNKNOWN_OPERATION, f"SageMaker operations are POST / (got {method} {path[:100]})")
        return Route("control", operation)
    allowed = []
    for route_method, pattern, operation in _runtime_routes():
        matched = pattern.fullmatch(path)
        if matched and route_method == method:
            return Route("runtime", operation, matched.groupdict().get("group", ""))
        if matched:
            allowed.append(route_method)
    if allowed:
        raise WireError(405, UNKNOWN_OPERATION, f"{path[:100]} takes {', '.join(sorted(allowed))}, not {method}")
    raise WireError(404, UNKNOWN_OPERATION, f"no operation at {method} {path[:100]}")


def content_length(headers: Any) -> int:
    """The body's length the headers announce; a body must have one (botocore always sends it) and be within
    MAX_REQUEST_BYTES, checked before any of it is read."""
    if headers.get("Transfer-Encoding"):
        raise WireError(400, SERIALIZATION, "a request body must come with a Content-Length, not chunked", close=True)
    announced = headers.get_all("Content-Length") or ["0"]
    if len(set(announced)) != 1 or not announced[0].strip().isdigit():
        raise WireError(400, SERIALIZATION, f"invalid Content-Length {', '.join(announced)[:100]!r}", close=True)
    length = int(announced[0])
    if length > MAX_REQUEST_BYTES:
        raise WireError(413, REQUEST_TOO_LARGE, f"the request body of {length:,} bytes is over the limit of "
                        f"{MAX_REQUEST_BYTES:,} bytes (25 records of 350 KB)", close=True)
    return length


def read_body(stream: BinaryIO, length: int) -> bytes | None:
    """``length`` bytes of body from ``stream`` (whose socket times out after the body timeout); None if the client
    closed the connection before sending them all (there is no one to answer)."""
    try:
        body = stream.read(length)
    except TimeoutError:
        raise WireError(408, REQUEST_TIMEOUT, f"the body stopped arriving before its {length:,} bytes",
                        close=True) from None
    return body if len(body) == length else None


def check_content_type(route_: Route, headers: Any, body: bytes) -> None:
    """A body must be labelled as its protocol's JSON (parameters such as charset are ignored)."""
    if not body or route_.api == "admin":
        return
    expected = CONTROL_PLANE_CONTENT_TYPE if route_.api == "control" else RUNTIME_CONTENT_TYPE
    given = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if given != expected:
        raise WireError(415, UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {expected}, got {given[:100] or 'none'}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(body: bytes) -> dict[str, Any]:
    """The request document: a JSON object in UTF-8, nested at most MAX_JSON_DEPTH deep; an empty body is ``{}``."""
    if not body:
        return {}
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise WireError(400, SERIALIZATION, f"the body is not UTF-8 (byte {error.start})") from None
    except RecursionError:
        raise WireError(400, SERIALIZATION, f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:
        raise WireError(400, SERIALIZATION, f"the body is not JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise WireError(400, SERIALIZATION, f"the body must be a JSON object, not {type(document).__name__}")
    if _depth(document) > MAX_JSON_DEPTH:
        raise WireError(400, SERIALIZATION, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth(value: Any) -> int:
    """How deep ``value`` nests (at most MAX_JSON_DEPTH + 1: deeper is not looked at), level by level without
    recursion (the parser's own limit is Python's recursion limit). json.loads makes plain dicts and lists only."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            break
        level = [child for node in level if type(node) is dict or type(node) is list
                 for child in (node.values() if type(node) is dict else node)
                 if type(child) is dict or type(child) is list]
    return depth
