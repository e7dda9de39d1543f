"""Malformed requests to the local feature store, by kind, as raw bytes on a socket, each with the answer AWS's
protocols give it (connectors/featurestore/local/wire.py): the wire-level fuzz of tests/connectors/featurestore/
test_wire_fuzz.py. Bodies that are not a JSON object come partly from the recording fuzz corpus (fuzz.py).

A kind builds one request from a random generator and the name of an existing feature group; ``send_partial`` is how
many bytes of it go out when the request announces more than it sends (a body cut short, or one over the size limit
that the server must refuse before reading it).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

from botocore.parsers import create_parser

from connectors.featurestore.local import wire
from tests.support.fuzz import LINE_KINDS

CONTROL = wire.CONTROL_PLANE_CONTENT_TYPE
RUNTIME = wire.RUNTIME_CONTENT_TYPE


@dataclass(frozen=True)
class Malformed:
    request: bytes
    status: int
    code: str
    control_plane: bool  # answered in the JSON 1.1 shape (``__type`` in the body) rather than REST-JSON's
    send_partial: int | None = None  # send only this many bytes, then wait for the answer


def _request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None or body:
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _control(body: bytes, operation: str = "CreateFeatureGroup", content_type: str | None = CONTROL,
             method: str = "POST", status: int = 400, code: str = wire.SERIALIZATION) -> Malformed:
    headers = {"X-Amz-Target": f"SageMaker.{operation}"}
    if content_type:
        headers["Content-Type"] = content_type
    return Malformed(_request(method, "/", body, headers), status, code, control_plane=True)


def _put(group: str, body: bytes, content_type: str | None = RUNTIME, status: int = 400,
         code: str = wire.SERIALIZATION) -> Malformed:
    headers = {"Content-Type": content_type} if content_type else {}
    return Malformed(_request("PUT", f"/FeatureGroup/{group}", body, headers), status, code, control_plane=False)


def _runtime(method: str, path: str, status: int, code: str = wire.UNKNOWN_OPERATION, body: bytes = b"") -> Malformed:
    headers = {"Content-Type": RUNTIME} if body else {}
    return Malformed(_request(method, path, body, headers), status, code, control_plane=False)


def _line(kind: str) -> Callable[[random.Random], bytes]:
    return lambda rng: LINE_KINDS[kind](rng, 0.0)


def _record(group: str, value: str) -> bytes:
    return json.dumps({"Record": [{"FeatureName": "tx_minute", "ValueAsString": value},
                                  {"FeatureName": "event_time", "ValueAsString": "60"}]}).encode()


def _too_large(group: str) -> Malformed:
    body = b"x" * 65536  # the first of 50 MB: the answer must come before the rest is sent
    request = _request("PUT", f"/FeatureGroup/{group}", body, {"Content-Type": RUNTIME}, length=50 * 2**20)
    return Malformed(request, 413, wire.REQUEST_TOO_LARGE, control_plane=False, send_partial=len(request))


def _truncated(group: str, rng: random.Random) -> Malformed:
    body = _record(group, "2024-01-01 00:00:00")
    request = _request("PUT", f"/FeatureGroup/{group}", body, {"Content-Type": RUNTIME})
    cut = len(request) - rng.randint(1, len(body))
    return Malformed(request, 408, wire.REQUEST_TIMEOUT, control_plane=False, send_partial=cut)


# Malformed requests, by kind: (rng, an existing group) -> the request and its expected answer.
KINDS: dict[str, Callable[[random.Random, str], Malformed]] = {
    "control: body not JSON": lambda rng, g: _control(b"{{{"),
    "control: body not UTF-8": lambda rng, g: _control(_line("line is invalid UTF-8")(rng)),
    "control: body has NUL bytes": lambda rng, g: _control(_line("line has NUL bytes")(rng)),
    "control: body a JSON list": lambda rng, g: _control(_line("line is a JSON list")(rng)),
    "control: body JSON with NaN": lambda rng, g: _control(b'{"FeatureGroupName": NaN}'),
    "control: body with a trailing comma": lambda rng, g: _control(b'{"FeatureGroupName": "g",}'),
    "control: body nested 100,000 deep": lambda rng, g: _control(_line("line nested 100,000 deep")(rng)),
    "control: body nested 40 deep": lambda rng, g: _control(b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}"),
    "control: operation SageMaker does not have": lambda rng, g: _control(
        b"{}", operation="DropEverything", status=404, code=wire.UNKNOWN_OPERATION),
    "control: X-Amz-Target of another service": lambda rng, g: Malformed(
        _request("POST", "/", b"{}", {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": CONTROL}),
        404, wire.UNKNOWN_OPERATION, control_plane=True),
    "control: wrong Content-Type": lambda rng, g: _control(
        b"{}", content_type=rng.choice(["text/plain", "application/xml", "application/json"]), status=415,
        code=wire.UNSUPPORTED_MEDIA_TYPE),
    "control: no Content-Type": lambda rng, g: _control(b"{}", content_type=None, status=415,
                                                        code=wire.UNSUPPORTED_MEDIA_TYPE),
    "control: GET instead of POST": lambda rng, g: _control(b"", method="GET", status=404, code=wire.UNKNOWN_OPERATION),
    "control: an operation the local store does not serve": lambda rng, g: _control(
        b"{}", operation="CreateTrainingJob", code="ValidationException"),
    "control: fields of the wrong type": lambda rng, g: _control(
        json.dumps({"FeatureGroupName": "fuzzed", "FeatureDefinitions": "none", "RecordIdentifierFeatureName": 5,
                    "EventTimeFeatureName": ["x"]}).encode(), code="ValidationException"),
    "runtime: POST / without X-Amz-Target": lambda rng, g: _runtime("POST", "/", 404, body=b"{}"),
    "runtime: unknown path": lambda rng, g: _runtime(rng.choice(["GET", "POST"]),
                                                     rng.choice(["/Nope", "/FeatureGroup", "/a/b/c/d"]), 404),
    "runtime: POST to a record path": lambda rng, g: _runtime("POST", f"/FeatureGroup/{g}", 405, body=b"{}"),
    "runtime: PATCH": lambda rng, g: _runtime("PATCH", f"/FeatureGroup/{g}", 405, body=b"{}"),
    "runtime: an invented method": lambda rng, g: _runtime("FROBNICATE", f"/FeatureGroup/{g}", 405),
    "runtime: body not JSON": lambda rng, g: _put(g, _line("line is not JSON")(rng)),
    "runtime: body a JSON string": lambda rng, g: _put(g, b'"a record"'),
    "runtime: body not UTF-8": lambda rng, g: _put(g, b'{"Record": "\xc3\x28"}'),
    "runtime: body of 5 MB that is not JSON": lambda rng, g: _put(g, _line("line of 5 MB")(rng)),
    "runtime: wrong Content-Type": lambda rng, g: _put(g, _record(g, "2024-01-01 00:00:00"),
                                                       content_type="text/csv", status=415,
                                                       code=wire.UNSUPPORTED_MEDIA_TYPE),
    "runtime: Record of the wrong shape": lambda rng, g: _put(
        g, json.dumps({"Record": rng.choice(["abc", 5, {"a": 1}, [1, 2], [{"FeatureName": 3}]])}).encode(),
        code="ValidationError"),
    "runtime: a value with a lone surrogate": lambda rng, g: _put(
        g, _record(g, "2024-01-01 00:00:00").replace(b"2024-01-01 00:00:00", b"\\ud800"), code="ValidationError"),
    "runtime: BatchGetRecord of the wrong shape": lambda rng, g: _runtime(
        "POST", "/BatchGetRecord", 400, "ValidationError", body=json.dumps({"Identifiers": {"a": 1}}).encode()),
    "body over the request limit": lambda rng, g: _too_large(g),
    "body cut short": lambda rng, g: _truncated(g, rng),
    "Content-Length not a number": lambda rng, g: Malformed(
        _request("PUT", f"/FeatureGroup/{g}", headers={"Content-Length": "lots", "Content-Type": RUNTIME}),
        400, wire.SERIALIZATION, control_plane=False),
    "chunked body": lambda rng, g: Malformed(
        _request("PUT", f"/FeatureGroup/{g}", headers={"Transfer-Encoding": "chunked", "Content-Type": RUNTIME})
        + b"2\r\n{}\r\n0\r\n\r\n", 400, wire.SERIALIZATION, control_plane=False),
    "request line not HTTP": lambda rng, g: Malformed(b"HELLO THERE\r\n\r\n", 400, wire.SERIALIZATION,
                                                      control_plane=True),
    "header line of 70 KB": lambda rng, g: Malformed(
        _request("GET", f"/FeatureGroup/{g}", headers={"X-Padding": "p" * 70_000}), 431, wire.REQUEST_TOO_LARGE,
        control_plane=True),
}
# Kinds that are slow or big: at most this many of each.
RARE = {"control: body nested 100,000 deep": 3, "runtime: body of 5 MB that is not JSON": 3, "body cut short": 4,
        "body over the request limit": 10, "header line of 70 KB": 10}


@dataclass
class Answer:
    status: int
    code: str  # the error code as botocore reads it
    shaped: bool  # the body is what AWS's protocol puts in an error: a JSON object with the message
    closes: bool


def exchange(sock: socket.socket, malformed: Malformed) -> Answer:
    """Send ``malformed`` on ``sock`` (all of it, or its first ``send_partial`` bytes) and read the answer."""
    sock.sendall(malformed.request[: malformed.send_partial])
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    headers = {name.lower(): value for name, value in response.getheaders()}
    parser = create_parser("json" if malformed.control_plane else "rest-json")
    parsed = parser.parse({"status_code": response.status, "headers": headers, "body": body}, None)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    key = "__type" if malformed.control_plane else "message"
    shaped = isinstance(document, dict) and isinstance(document.get(key), str) and "message" in document
    return Answer(response.status, parsed.get("Error", {}).get("Code", ""), shaped, response.will_close)
