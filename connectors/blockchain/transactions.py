"""The transaction stream's line format: what the poller hands to the Flink job (locally through the spool
and the feed, on AWS through Kinesis), one JSON object per line. This module is its one definition.

A poll's page is split into lines, without judging their content (the job validates every field, in
sql/parse.sql, and sends what it rejects to the dead letter):

- a transaction line per entry of ``txs``: the API's scalar fields under their own names, each value
  exactly as the API wrote it (``hash, ver, vin_sz, vout_sz, size, weight, fee, relayed_by, lock_time,
  tx_index, double_spend, time, block_index, block_height, rbf``), ``input_count`` / ``output_count`` for
  the lengths of ``inputs`` / ``out`` (the lists themselves stay in the raw archive), and ``polled_at``;
- a rejected line for what cannot be a transaction (a page that is not JSON or has no ``txs`` list, an
  entry that is not a JSON object, ``inputs`` or ``out`` that is not a list):
  ``{"rejected": <the raw text>, "rejection": <why>, "polled_at": ...}``;
- a heartbeat last: ``{"heartbeat": true, "time": <poll time>, "polled_at": ...}``. It carries the job's
  event-time clock forward when a poll brings nothing new; the feed publisher adds ``"publication": N``
  to the heartbeat that ends each feed file (connectors/spool.py).

The fast path decodes a page with msgspec into only these fields (inputs and outputs are counted, not
decoded) and re-emits each value's raw bytes: ~340k transactions/s on one core. A page that does not fit
that shape takes a slower, tolerant path that rejects entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

TRANSACTION_FIELDS = (
    "hash", "ver", "vin_sz", "vout_sz", "size", "weight", "fee", "relayed_by", "lock_time", "tx_index",
    "double_spend", "time", "block_index", "block_height", "rbf",
)
COUNTED_LISTS = {"inputs": "input_count", "out": "output_count"}
# A rejected line keeps at most this much of the raw text (Kinesis takes records up to 1 MiB); the whole
# input stays in the recording or the raw archive.
MAX_REJECTED_TEXT = 256 * 1024

Raw = msgspec.Raw | msgspec.UnsetType
UNSET = msgspec.UNSET


class _Counted(msgspec.Struct):
    """An input or output: only counted, never decoded."""


class _Transaction(msgspec.Struct):
    hash: Raw = UNSET
    ver: Raw = UNSET
    vin_sz: Raw = UNSET
    vout_sz: Raw = UNSET
    size: Raw = UNSET
    weight: Raw = UNSET
    fee: Raw = UNSET
    relayed_by: Raw = UNSET
    lock_time: Raw = UNSET
    tx_index: Raw = UNSET
    double_spend: Raw = UNSET
    time: Raw = UNSET
    block_index: Raw = UNSET
    block_height: Raw = UNSET
    rbf: Raw = UNSET
    inputs: list[_Counted] | msgspec.UnsetType = UNSET
    out: list[_Counted] | msgspec.UnsetType = UNSET


class _Page(msgspec.Struct):
    txs: list[_Transaction]


class TransactionLine(msgspec.Struct, omit_defaults=True):
    hash: Raw = UNSET
    ver: Raw = UNSET
    vin_sz: Raw = UNSET
    vout_sz: Raw = UNSET
    size: Raw = UNSET
    weight: Raw = UNSET
    fee: Raw = UNSET
    relayed_by: Raw = UNSET
    lock_time: Raw = UNSET
    tx_index: Raw = UNSET
    double_spend: Raw = UNSET
    time: Raw = UNSET
    block_index: Raw = UNSET
    block_height: Raw = UNSET
    rbf: Raw = UNSET
    input_count: int | msgspec.UnsetType = UNSET
    output_count: int | msgspec.UnsetType = UNSET
    polled_at: float | msgspec.UnsetType = UNSET


class RejectedLine(msgspec.Struct, omit_defaults=True):
    rejected: str
    rejection: str
    polled_at: float | msgspec.UnsetType = UNSET


class HeartbeatLine(msgspec.Struct, omit_defaults=True):
    heartbeat: bool
    time: int
    polled_at: float
    publication: int | msgspec.UnsetType = UNSET


_PAGE = msgspec.json.Decoder(_Page)
_ANY = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()


@dataclass
class PollLines:
    """A poll as stream lines. ``hashes`` holds each transaction's raw ``hash`` value (for gap detection:
    whatever its JSON type, it is hashable)."""

    polled_at: float
    lines: list[bytes] = field(default_factory=list)
    hashes: set[bytes] = field(default_factory=set)
    transactions: int = 0
    rejected: int = 0

    def text(self) -> bytes:
        """The lines as one block, each ending in a newline."""
        return b"".join(line + b"\n" for line in self.lines)


def split_poll(page: bytes, polled_at: float) -> PollLines:
    """The stream lines of one poll: its page's raw JSON (``{"txs": [...], ...}``) taken at ``polled_at``."""
    result = PollLines(polled_at=polled_at)
    try:
        transactions = _PAGE.decode(page).txs
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        _split_tolerantly(page, result)
    else:
        for tx in transactions:
            result.lines.append(_ENCODER.encode(_line(tx, polled_at)))
            if tx.hash is not UNSET:
                result.hashes.add(bytes(tx.hash))
        result.transactions = len(transactions)
    result.lines.append(heartbeat_line(polled_at))
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
        result.lines.append(rejected_line(page, "poll is not valid JSON", result.polled_at))
        result.rejected += 1
        return
    txs = decoded.get("txs") if isinstance(decoded, dict) else None
    if not isinstance(txs, list):
        result.lines.append(rejected_line(page, "poll is not a JSON object with a txs list", result.polled_at))
        result.rejected += 1
        return
    for tx in txs:
        result.transactions += 1
        if not isinstance(tx, dict):
            result.lines.append(rejected_line(_ENCODER.encode(tx), "not a JSON object", result.polled_at))
            result.rejected += 1
            continue
        not_lists = [name for name in COUNTED_LISTS if name in tx and not isinstance(tx[name], list)]
        if not_lists:
            result.lines.append(rejected_line(_ENCODER.encode(tx), f"{not_lists[0]} is not a list", result.polled_at))
            result.rejected += 1
            continue
        line: dict[str, Any] = {name: tx[name] for name in TRANSACTION_FIELDS if name in tx}
        for name, count in COUNTED_LISTS.items():
            if name in tx:
                line[count] = len(tx[name])
        line["polled_at"] = result.polled_at
        result.lines.append(_ENCODER.encode(line))
        if "hash" in tx:
            result.hashes.add(_ENCODER.encode(tx["hash"]))


def rejected_line(raw: bytes, reason: str, polled_at: float | None = None) -> bytes:
    text = raw[:MAX_REJECTED_TEXT].decode("utf-8", errors="replace")
    if len(raw) > MAX_REJECTED_TEXT:
        reason = f"{reason}; first {MAX_REJECTED_TEXT} of {len(raw)} bytes kept"
    return _ENCODER.encode(RejectedLine(text, reason, UNSET if polled_at is None else polled_at))


def heartbeat_line(polled_at: float, publication: int | None = None) -> bytes:
    return _ENCODER.encode(
        HeartbeatLine(True, int(polled_at), polled_at, UNSET if publication is None else publication)
    )


def encode_json(value: Any) -> bytes:
    """Compact JSON, the same encoder as the lines (for pages and recordings built from decoded data)."""
    return _ENCODER.encode(value)


def decode_json(data: bytes | str) -> Any:
    return _ANY.decode(data)
