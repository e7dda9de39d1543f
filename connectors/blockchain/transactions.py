"""The transaction stream's line format: what the poller hands to the Flink job (locally through the spool
and the feed, on AWS through Kinesis), one JSON object per line. This module is its one definition.

A poll's page is split into lines, and each field is checked for its JSON type here, where JSON types are
seen as they are; the job checks what the values mean (sql/parse.sql) and reads the lines with Flink's json
format, typed, parsed once:

- a transaction line per entry of ``txs``: the API's scalar fields under their own names and types
  (``hash`` and ``relayed_by`` strings; ``ver, vin_sz, vout_sz, size, weight`` 32-bit and ``fee, lock_time,
  tx_index, time, block_index, block_height`` 64-bit integers; ``double_spend, rbf`` booleans; any may be
  missing or null), ``input_count`` / ``output_count`` for the lengths of ``inputs`` / ``out`` (the lists
  themselves stay in the raw archive), and ``polled_at``;
- a rejected line for what cannot be such a transaction (a page that is not JSON or has no ``txs`` list, an
  entry that is not a JSON object, a field of another type, ``inputs`` or ``out`` that is not a list):
  ``{"rejected": <the raw text>, "rejection": <why>, "polled_at": ...}`` — the job sends it to the dead letter;
- a heartbeat last: ``{"heartbeat": true, "time": <poll time>, "polled_at": ...}``. It carries the job's
  event-time clock forward when a poll brings nothing new; the feed publisher adds ``"publication": N``
  to the heartbeat that ends each feed file (connectors/spool.py).

The fast path decodes a whole page with msgspec into only these fields, typed (inputs and outputs are
counted, not decoded): ~300k transactions/s on one core. A page with anything unexpected takes a slower,
tolerant path that judges entry by entry.
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
COUNTED_LISTS = {"inputs": "input_count", "out": "output_count"}
# A rejected line keeps at most this much of the raw text (Kinesis takes records up to 1 MiB); the whole
# input stays in the recording or the raw archive.
MAX_REJECTED_TEXT = 256 * 1024

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class _Counted(msgspec.Struct):
    """An input or output: only counted, never decoded."""


class _Transaction(msgspec.Struct):
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
    inputs: list[_Counted] | Unset = UNSET
    out: list[_Counted] | Unset = UNSET


class _Page(msgspec.Struct):
    txs: list[_Transaction]


class TransactionLine(msgspec.Struct, omit_defaults=True):
    hash: str | None | Unset = UNSET
    ver: int | None | Unset = UNSET
    vin_sz: int | None | Unset = UNSET
    vout_sz: int | None | Unset = UNSET
    size: int | None | Unset = UNSET
    weight: int | None | Unset = UNSET
    fee: int | None | Unset = UNSET
    relayed_by: str | None | Unset = UNSET
    lock_time: int | None | Unset = UNSET
    tx_index: int | None | Unset = UNSET
    double_spend: bool | None | Unset = UNSET
    time: int | None | Unset = UNSET
    block_index: int | None | Unset = UNSET
    block_height: int | None | Unset = UNSET
    rbf: bool | None | Unset = UNSET
    input_count: int | Unset = UNSET
    output_count: int | Unset = UNSET
    polled_at: float | Unset = UNSET


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
_ANY = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


@dataclass
class PollLines:
    """A poll as stream lines. ``keys`` gives, line by line, the transaction's raw ``hash`` value (None for
    other lines); ``hashes`` holds them as a set, for gap detection (raw bytes: hashable whatever their
    JSON type)."""

    polled_at: float
    lines: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    transactions: int = 0
    rejected: int = 0

    @property
    def hashes(self) -> set[bytes]:
        return {key for key in self.keys if key is not None}

    def add(self, line: bytes, key: bytes | None = None) -> None:
        self.lines.append(line)
        self.keys.append(key)

    def text(self) -> bytes:
        """The lines as one block, each ending in a newline."""
        return b"".join(line + b"\n" for line in self.lines)


def split_poll(page: bytes, polled_at: float) -> PollLines:
    """The stream lines of one poll: its page's raw JSON (``{"txs": [...], ...}``) taken at ``polled_at``."""
    polled_at = float(polled_at)
    result = PollLines(polled_at=polled_at)
    try:
        transactions = _PAGE.decode(page).txs
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        _split_tolerantly(page, result)
    else:
        for tx in transactions:
            result.add(_ENCODER.encode(_line(tx, polled_at)), None if tx.hash is UNSET else _ENCODER.encode(tx.hash))
        result.transactions = len(transactions)
    result.add(heartbeat_line(polled_at))
    return result


def _line(tx: _Transaction, polled_at: float) -> TransactionLine:
    return TransactionLine(
        tx.hash, tx.ver, tx.vin_sz, tx.vout_sz, tx.size, tx.weight, tx.fee, tx.relayed_by, tx.lock_time,
        tx.tx_index, tx.double_spend, tx.time, tx.block_index, tx.block_height, tx.rbf,
        UNSET if tx.inputs is UNSET else len(tx.inputs),
        UNSET if tx.out is UNSET else len(tx.out),
        polled_at,
    )


def _split_tolerantly(page: bytes, result: PollLines) -> None:
    """The slow path: a page that is not the expected shape, judged entry by entry."""
    try:
        decoded = _ANY.decode(page)
    except (msgspec.DecodeError, RecursionError):
        result.add(rejected_line(page, "poll is not valid JSON", result.polled_at))
        result.rejected += 1
        return
    txs = decoded.get("txs") if isinstance(decoded, dict) else None
    if not isinstance(txs, list):
        result.add(rejected_line(page, "poll is not a JSON object with a txs list", result.polled_at))
        result.rejected += 1
        return
    for tx in txs:
        result.transactions += 1
        problem = type_problem(tx)
        if problem:
            result.add(rejected_line(_ENCODER.encode(tx), problem, result.polled_at))
            result.rejected += 1
            continue
        line: dict[str, Any] = {name: tx[name] for name in TRANSACTION_FIELDS if name in tx}
        for name, count in COUNTED_LISTS.items():
            if name in tx:
                line[count] = len(tx[name])
        line["polled_at"] = result.polled_at
        result.add(_ENCODER.encode(line), _ENCODER.encode(tx["hash"]) if "hash" in tx else None)


_TYPE_NAMES = {str: "a string", bool: "a boolean", Int32: "an integer", Int64: "an integer"}
_RANGES = {Int32: 2**31, Int64: 2**63}


def type_problem(tx: Any) -> str | None:
    """Why an entry of ``txs`` cannot be a transaction line, or None: the first field (in API order) whose
    JSON type is not its own (null always passes), or inputs/out that is not a list."""
    if not isinstance(tx, dict):
        return "not a JSON object"
    for name, kind in FIELD_TYPES.items():
        value = tx.get(name)
        if value is None:
            continue
        if kind in _RANGES:
            valid = isinstance(value, int) and not isinstance(value, bool) and -_RANGES[kind] <= value < _RANGES[kind]
        else:
            valid = isinstance(value, kind)
        if not valid:
            return f"{name} is not {_TYPE_NAMES[kind]}"
    for name in COUNTED_LISTS:
        if name in tx and not isinstance(tx[name], list):
            return f"{name} is not a list"
    return None


def rejected_line(raw: bytes, reason: str, polled_at: float | None = None) -> bytes:
    text = raw[:MAX_REJECTED_TEXT].decode("utf-8", errors="replace")
    if len(raw) > MAX_REJECTED_TEXT:
        reason = f"{reason}; first {MAX_REJECTED_TEXT} of {len(raw)} bytes kept"
    return _ENCODER.encode(RejectedLine(text, reason, UNSET if polled_at is None else polled_at))


def partition_key(key: bytes | None) -> str:
    """A Kinesis partition key for a line: its transaction's hash (the text of a JSON string), else
    "heartbeat" (also for heartbeats and rejected lines)."""
    if not key:
        return "heartbeat"
    text = key.decode("utf-8", errors="replace")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text[:256] or "heartbeat"


def heartbeat_line(polled_at: float, publication: int | None = None) -> bytes:
    return _ENCODER.encode(
        HeartbeatLine(True, int(polled_at), float(polled_at), UNSET if publication is None else publication)
    )


def encode_json(value: Any) -> bytes:
    """Compact JSON, the same encoder as the lines (for pages and recordings built from decoded data)."""
    return _ENCODER.encode(value)


def decode_json(data: bytes | str) -> Any:
    return _ANY.decode(data)
