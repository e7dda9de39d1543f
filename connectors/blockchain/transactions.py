"""The transaction stream's line format: what the poller hands to the Flink job (locally through the spool
and the feed, on AWS through Kinesis), one JSON object per line. This module is its one definition.

A poll's page is split into lines, and each field is checked for its JSON type here, where JSON types are
seen as they are; the job checks what the values mean (sql/parse.sql) and reads the lines with Flink's json
format, typed, parsed once:

- a transaction line per entry of ``txs``: the API's scalar fields under their own names and types
  (``hash`` and ``relayed_by`` strings; ``ver, vin_sz, vout_sz, size, weight`` 32-bit and ``fee, lock_time,
  tx_index, time, block_index, block_height`` 64-bit integers; ``double_spend, rbf`` booleans; any may be
  missing or null), ``input_count`` / ``output_count`` for the lengths of ``inputs`` / ``out``, the lists
  themselves as ``inputs`` / ``outputs``: one ``{"address": ..., "value": ...}`` per entry, in the API's order
  (an input's are its ``prev_out.addr`` / ``prev_out.value``, an output's its ``addr`` / ``value``; the address a
  string, the value satoshis as a 64-bit integer; either may be missing or null, e.g. a non-standard output has no
  address; an input without ``prev_out`` is ``{}``), and ``polled_at``. The job reads them as
  ``ARRAY<ROW<address STRING, `value` BIGINT>>`` (sql/sources/transaction_fields.sql; sql/inputs_outputs.sql);
- a rejected line for what cannot be such a transaction (a page that is not JSON or has no ``txs`` list, an
  entry that is not a JSON object, a field of another type, ``inputs`` or ``out`` that is not a list or holds an
  entry of another shape): ``{"rejected": <the raw text>, "rejection": <why>, "polled_at": ...}`` — the job
  sends it to the dead letter;
- a heartbeat last: ``{"heartbeat": true, "time": <poll time>, "polled_at": ...}``. It carries the job's
  event-time clock forward when a poll brings nothing new; the feed publisher adds ``"publication": N``
  to the heartbeat that ends each feed file (connectors/spool.py).

The fast path decodes a whole page with msgspec into only these fields, typed (of an input or output only its
address and value): ~400k transactions/s on one core (bench/poller_lines.py). A page with anything unexpected
takes a slower, tolerant path that judges entry by entry (type_problem) and writes the same lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
# Each scalar field of the API and the JSON type it must have (null is allowed for all).
FIELD_TYPES: dict[str, Any] = {
    "hash": str, "ver": Int32, "vin_sz": Int32, "vout_sz": Int32, "size": Int32, "weight": Int32, "fee": Int64,
    "relayed_by": str, "lock_time": Int64, "tx_index": Int64, "double_spend": bool, "time": Int64,
    "block_index": Int64, "block_height": Int64, "rbf": bool,
}
TRANSACTION_FIELDS = tuple(FIELD_TYPES)
# The API's lists: each one's length and its entries' (address, value) in the line, under these names.
COUNTED_LISTS = {"inputs": "input_count", "out": "output_count"}
LIST_FIELDS = {"inputs": "inputs", "out": "outputs"}
# A rejected line keeps at most this much of the raw text (Kinesis takes records up to 1 MiB); the whole
# input stays in the recording or the raw archive.
MAX_REJECTED_TEXT = 256 * 1024

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


# The structs of inputs and outputs are made by the million and never hold a cycle: gc=False keeps them out of the
# garbage collector's way (~5 % of a page's split).
class _Spent(msgspec.Struct, gc=False):
    """An output as the API gives it (``out[]``, or an input's ``prev_out``): only its address and value decoded."""

    addr: str | None | Unset = UNSET
    value: Int64 | None | Unset = UNSET


class _Input(msgspec.Struct, gc=False):
    """An input as the API gives it: the output it spends."""

    prev_out: _Spent | None | Unset = UNSET


class _Endpoint(msgspec.Struct, omit_defaults=True, gc=False):
    """An input or output in a line: its address and value (satoshis)."""

    address: str | None | Unset = UNSET
    value: int | None | Unset = UNSET


_NO_ENDPOINT = _Endpoint()  # an input without prev_out


class _Transaction(msgspec.Struct, omit_defaults=True):
    """A transaction as decoded from a page and, once its lists are replaced by their lengths and entries and the
    poll time added (_to_line), as encoded into its line: one object, no copy of its scalar fields."""

    hash: str | None | Unset = UNSET
    ver: Int32 | None | Unset = UNSET
    vin_sz: Int32 | None | Unset = UNSET
    vout_sz: Int32 | None | Unset = UNSET
    size: Int32 | None | Unset = UNSET
    weight: Int32 | None | Unset = UNSET
    fee: Int64 | None | Unset = UNSET
    relayed_by: str | None | Unset = UNSET
    lock_time: Int64 | None | Unset = UNSET
    tx_index: Int64 | None | Unset = UNSET
    double_spend: bool | None | Unset = UNSET
    time: Int64 | None | Unset = UNSET
    block_index: Int64 | None | Unset = UNSET
    block_height: Int64 | None | Unset = UNSET
    rbf: bool | None | Unset = UNSET
    input_count: int | Unset = UNSET
    output_count: int | Unset = UNSET
    inputs: list[_Input] | Unset = UNSET  # decoded as the API's; in the line, a list of _Endpoint
    out: list[_Spent] | Unset = UNSET  # decoded only: the line has outputs
    outputs: list[_Endpoint] | Unset = UNSET
    polled_at: float | Unset = UNSET


class _Page(msgspec.Struct):
    txs: list[_Transaction]


class _RecordedPage(msgspec.Struct):
    """A recording line: a page with the moment it was polled."""

    polled_at: float
    txs: list[_Transaction]


class RejectedLine(msgspec.Struct, omit_defaults=True):
    rejected: str
    rejection: str
    polled_at: float | Unset = UNSET


class HeartbeatLine(msgspec.Struct, omit_defaults=True):
    heartbeat: bool
    time: int
    polled_at: float
    publication: int | Unset = UNSET


_PAGE = msgspec.json.Decoder(_Page)
_RECORDED_PAGE = msgspec.json.Decoder(_RecordedPage)
_ANY = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


@dataclass
class PollLines:
    """A poll as stream lines: ``text`` holds them all, each ending in a newline; ``keys`` gives, line by
    line, the transaction's hash (None for other lines); ``hashes`` holds them as a set, for gap detection."""

    polled_at: float
    text: bytes = b""
    keys: list[str | None] = field(default_factory=list)
    transactions: int = 0
    rejected: int = 0

    @property
    def lines(self) -> list[bytes]:
        return self.text.splitlines()

    @property
    def hashes(self) -> set[str]:
        return {key for key in self.keys if key is not None}


class _LineCollector:
    """Builds a PollLines line by line (the slow path)."""

    def __init__(self, polled_at: float) -> None:
        self.result = PollLines(polled_at)
        self._lines: list[bytes] = []

    def add(self, line: bytes, key: str | None = None) -> None:
        self._lines.append(line + b"\n")
        self.result.keys.append(key)

    def done(self) -> PollLines:
        self.add(heartbeat_line(self.result.polled_at))
        self.result.text = b"".join(self._lines)
        return self.result


def split_poll(page: bytes, polled_at: float) -> PollLines:
    """The stream lines of one poll: its page's raw JSON (``{"txs": [...], ...}``) taken at ``polled_at``."""
    polled_at = float(polled_at)
    try:
        transactions = _PAGE.decode(page).txs
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        collector = _LineCollector(polled_at)
        _split_tolerantly(page, collector)
        return collector.done()
    return _split_decoded(transactions, polled_at)


def split_recorded_poll(line: bytes) -> PollLines | None:
    """A recording line (a page with ``polled_at``) split in one decode; None when it is not of the expected
    shape (read_recording then judges it the slow way)."""
    try:
        recorded = _RECORDED_PAGE.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    return _split_decoded(recorded.txs, float(recorded.polled_at))


def _split_decoded(transactions: list[_Transaction], polled_at: float) -> PollLines:
    for tx in transactions:
        _to_line(tx, polled_at)
    return PollLines(
        polled_at=polled_at,
        text=_ENCODER.encode_lines(transactions) + heartbeat_line(polled_at) + b"\n",
        keys=[None if tx.hash is UNSET else tx.hash for tx in transactions] + [None],
        transactions=len(transactions),
    )


def _to_line(tx: _Transaction, polled_at: float) -> None:
    inputs = tx.inputs
    if inputs is UNSET:
        tx.input_count = UNSET
    else:
        tx.input_count = len(inputs)
        tx.inputs = [_Endpoint(spent.addr, spent.value) if (spent := entry.prev_out) else _NO_ENDPOINT
                     for entry in inputs]
    out = tx.out
    if out is UNSET:
        tx.output_count = tx.outputs = UNSET
    else:
        tx.output_count, tx.out = len(out), UNSET
        tx.outputs = [_Endpoint(entry.addr, entry.value) for entry in out]
    tx.polled_at = polled_at


def _split_tolerantly(page: bytes, result: _LineCollector) -> None:
    """The slow path: a page that is not the expected shape, judged entry by entry."""
    try:
        decoded = _ANY.decode(page)
    except (msgspec.DecodeError, RecursionError):
        result.add(rejected_line(page, "poll is not valid JSON", result.result.polled_at))
        result.result.rejected += 1
        return
    txs = decoded.get("txs") if isinstance(decoded, dict) else None
    if not isinstance(txs, list):
        result.add(rejected_line(page, "poll is not a JSON object with a txs list", result.result.polled_at))
        result.result.rejected += 1
        return
    for tx in txs:
        result.result.transactions += 1
        problem = type_problem(tx)
        if problem:
            result.add(rejected_line(_ENCODER.encode(tx), problem, result.result.polled_at))
            result.result.rejected += 1
            continue
        line: dict[str, Any] = {name: tx[name] for name in TRANSACTION_FIELDS if name in tx}
        for name, count in COUNTED_LISTS.items():
            if name in tx:
                line[count] = len(tx[name])
        if "inputs" in tx:
            line["inputs"] = [_endpoint(entry.get("prev_out")) for entry in tx["inputs"]]
        if "out" in tx:
            line["outputs"] = [_endpoint(entry) for entry in tx["out"]]
        line["polled_at"] = result.result.polled_at
        result.add(_ENCODER.encode(line), tx.get("hash"))


def _endpoint(spent: dict[str, Any] | None) -> dict[str, Any]:
    """An input's prev_out or an output as its line's entry (the slow path's _Endpoint)."""
    if spent is None:
        return {}
    return {name: spent[key] for key, name in (("addr", "address"), ("value", "value")) if key in spent}


_TYPE_NAMES = {str: "a string", bool: "a boolean", Int32: "an integer", Int64: "an integer"}
_RANGES = {Int32: 2**31, Int64: 2**63}
# The fields of an output (an entry of out, or an input's prev_out) that the line keeps, and their JSON types.
_SPENT_FIELDS = {"addr": str, "value": Int64}


def _type_of(value: Any, kind: Any) -> bool:
    """Whether ``value`` has the JSON type FIELD_TYPES / _SPENT_FIELDS name (integers within their range)."""
    if kind in _RANGES:
        return isinstance(value, int) and not isinstance(value, bool) and -_RANGES[kind] <= value < _RANGES[kind]
    return isinstance(value, kind)


def type_problem(tx: Any) -> str | None:
    """Why an entry of ``txs`` cannot be a transaction line, or None: the first field (in API order) whose
    JSON type is not its own (null always passes), then inputs/out that is not a list, or the first entry of one
    that is not a JSON object, whose prev_out (inputs) is not one, or whose addr / value is not a string / an
    integer (a missing or null prev_out, addr or value passes)."""
    if not isinstance(tx, dict):
        return "not a JSON object"
    for name, kind in FIELD_TYPES.items():
        value = tx.get(name)
        if value is not None and not _type_of(value, kind):
            return f"{name} is not {_TYPE_NAMES[kind]}"
    for name in COUNTED_LISTS:
        if name not in tx:
            continue
        entries = tx[name]
        if not isinstance(entries, list):
            return f"{name} is not a list"
        for entry in entries:
            if not isinstance(entry, dict):
                return f"{name}[] is not a JSON object"
            where = f"{name}[]"
            if name == "inputs":
                entry, where = entry.get("prev_out"), "inputs[].prev_out"
                if entry is None:
                    continue
                if not isinstance(entry, dict):
                    return f"{where} is not a JSON object"
            for field_name, kind in _SPENT_FIELDS.items():
                value = entry.get(field_name)
                if value is not None and not _type_of(value, kind):
                    return f"{where}.{field_name} is not {_TYPE_NAMES[kind]}"
    return None


def rejected_line(raw: bytes, reason: str, polled_at: float | None = None) -> bytes:
    text = raw[:MAX_REJECTED_TEXT].decode("utf-8", errors="replace")
    if len(raw) > MAX_REJECTED_TEXT:
        reason = f"{reason}; first {MAX_REJECTED_TEXT} of {len(raw)} bytes kept"
    return _ENCODER.encode(RejectedLine(text, reason, UNSET if polled_at is None else polled_at))


def heartbeat_line(polled_at: float, publication: int | None = None) -> bytes:
    return _ENCODER.encode(
        HeartbeatLine(True, int(polled_at), float(polled_at), UNSET if publication is None else publication)
    )


def encode_json(value: Any) -> bytes:
    """Compact JSON, the same encoder as the lines (for pages and recordings built from decoded data)."""
    return _ENCODER.encode(value)


def decode_json(data: bytes | str) -> Any:
    return _ANY.decode(data)
