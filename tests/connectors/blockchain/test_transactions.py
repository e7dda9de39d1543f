"""Splitting a poll's page into stream lines: every API field as written, inputs/outputs counted and carried as
{address, value}, what cannot be a transaction rejected with its raw text, never a crash; the fast path and the
tolerant one write the same lines."""

from __future__ import annotations

import json

import pytest

from connectors.blockchain.synthetic import SyntheticProfile, polls
from connectors.blockchain.transactions import TRANSACTION_FIELDS, split_poll

T0 = 1714521600


def lines_of(page: bytes, polled_at: float = T0 + 15.5) -> list[dict]:
    return [json.loads(line) for line in split_poll(page, polled_at).lines]


def test_a_page_of_the_api_becomes_one_line_per_transaction_then_a_heartbeat() -> None:
    poll = next(iter(polls(SyntheticProfile(duration_s=30))))
    split = split_poll(poll.page, poll.polled_at)
    lines = [json.loads(line) for line in split.lines]
    assert len(lines) == len(poll.txs) + 1 and split.transactions == len(poll.txs) and split.rejected == 0
    for tx, line in zip(poll.txs, lines):
        assert line == {**{k: tx[k] for k in TRANSACTION_FIELDS if k in tx}, "input_count": len(tx["inputs"]),
                        "output_count": len(tx["out"]),
                        "inputs": [{"address": i["prev_out"]["addr"], "value": i["prev_out"]["value"]} for i in tx["inputs"]],
                        "outputs": [{"address": o["addr"], "value": o["value"]} for o in tx["out"]],
                        "polled_at": poll.polled_at}
    assert lines[-1] == {"heartbeat": True, "time": int(poll.polled_at), "polled_at": poll.polled_at}
    assert split.hashes == {tx["hash"] for tx in poll.txs}


def test_fields_keep_their_values_and_unknown_ones_are_left_out() -> None:
    page = b'{"txs": [{"hash": "a", "fee": 150, "time": 1000, "size": 12, "rbf": null, "odd": 1}]}'
    (line, _heartbeat) = split_poll(page, T0).lines
    assert line == b'{"hash":"a","size":12,"fee":150,"time":1000,"rbf":null,"polled_at":1714521600.0}'


@pytest.mark.parametrize(("tx", "reason"), [
    ({"hash": 5}, "hash is not a string"),
    ({"hash": "a", "fee": 1.5}, "fee is not an integer"),
    ({"hash": "a", "fee": "12"}, "fee is not an integer"),
    ({"hash": "a", "fee": 2**63}, "fee is not an integer"),
    ({"hash": "a", "size": 2**31}, "size is not an integer"),
    ({"hash": "a", "ver": True}, "ver is not an integer"),
    ({"hash": "a", "rbf": 1}, "rbf is not a boolean"),
    ({"hash": "a", "relayed_by": {"ip": 1}}, "relayed_by is not a string"),
    ({"hash": "a", "out": {}}, "out is not a list"),
    ({"hash": "a", "inputs": [{"prev_out": {"addr": "x", "value": 1}}, 5]}, "inputs[] is not a JSON object"),
    ({"hash": "a", "inputs": [None]}, "inputs[] is not a JSON object"),
    ({"hash": "a", "inputs": [{"prev_out": [1]}]}, "inputs[].prev_out is not a JSON object"),
    ({"hash": "a", "inputs": [{"prev_out": {"addr": 12, "value": 1}}]}, "inputs[].prev_out.addr is not a string"),
    ({"hash": "a", "inputs": [{"prev_out": {"addr": "x", "value": "1"}}]}, "inputs[].prev_out.value is not an integer"),
    ({"hash": "a", "inputs": [{"prev_out": {"value": True}}]}, "inputs[].prev_out.value is not an integer"),
    ({"hash": "a", "out": ["bc1q"]}, "out[] is not a JSON object"),
    ({"hash": "a", "out": [{"addr": ["x"], "value": 1}]}, "out[].addr is not a string"),
    ({"hash": "a", "out": [{"addr": "x", "value": 0.5}]}, "out[].value is not an integer"),
    ({"hash": "a", "out": [{"addr": "x", "value": 2**63}]}, "out[].value is not an integer"),
    ({"hash": "a", "fee": "1", "out": [5]}, "fee is not an integer"),  # the scalar fields are judged first
])
def test_a_field_of_another_json_type_rejects_the_transaction(tx: dict, reason: str) -> None:
    page = json.dumps({"txs": [{"hash": "ok", "fee": 1}, tx]}).encode()
    good, rejected, _heartbeat = lines_of(page)
    assert good == {"hash": "ok", "fee": 1, "polled_at": T0 + 15.5}
    assert rejected == {"rejected": json.dumps(tx, separators=(",", ":")), "rejection": reason, "polled_at": T0 + 15.5}


@pytest.mark.parametrize(("page", "reason"), [
    (b"this is not json {", "poll is not valid JSON"),
    (b"\xff\xfe not utf-8", "poll is not valid JSON"),
    (b"[1, 2]", "poll is not a JSON object with a txs list"),
    (b'{"txs": "none"}', "poll is not a JSON object with a txs list"),
    (b"[" * 100_000 + b"]" * 100_000, "poll is not"),  # deep nesting: rejected, no RecursionError
])
def test_a_page_that_is_not_a_poll_becomes_one_rejected_line(page: bytes, reason: str) -> None:
    rejected, heartbeat = lines_of(page)
    assert rejected["rejection"].startswith(reason) and rejected["polled_at"] == T0 + 15.5
    assert rejected["rejected"].encode("utf-8", errors="replace")[:50] == page.decode("utf-8", "replace").encode()[:50]
    assert heartbeat["heartbeat"] is True


def test_entries_that_cannot_be_transactions_are_rejected_one_by_one() -> None:
    page = json.dumps({"txs": [{"hash": "a", "fee": 1, "inputs": []}, 5, "text", [1], None,
                               {"hash": "b", "inputs": "none"}, {"hash": "c", "out": [1, 2]},
                               {"hash": "d", "out": [{}, {"addr": None, "value": 7}]}]}).encode()
    split = split_poll(page, T0)
    lines = [json.loads(line) for line in split.lines]
    assert lines[0] == {"hash": "a", "fee": 1, "input_count": 0, "inputs": [], "polled_at": T0}
    assert [(line.get("rejected"), line.get("rejection")) for line in lines[1:7]] == [
        ("5", "not a JSON object"), ('"text"', "not a JSON object"), ("[1]", "not a JSON object"),
        ("null", "not a JSON object"), ('{"hash":"b","inputs":"none"}', "inputs is not a list"),
        ('{"hash":"c","out":[1,2]}', "out[] is not a JSON object"),
    ]
    assert lines[7] == {"hash": "d", "output_count": 2, "outputs": [{}, {"address": None, "value": 7}], "polled_at": T0}
    assert split.transactions == 8 and split.rejected == 6
    assert split.hashes == {"a", "d"}


# An input or output may lack an address (a non-standard output), a value, or (an input) the output it spends; a
# value may be any 64-bit integer; nothing but the address and value of an entry is kept.
UNUSUAL_LISTS = {"hash": "u", "fee": 3, "inputs": [
    {"prev_out": {"addr": "bc1qa", "value": 2**63 - 1, "n": 4, "script": "0014"}, "sequence": 1},
    {"prev_out": {"value": 5}}, {"prev_out": {"addr": None, "value": None}}, {"prev_out": None}, {"witness": ""},
], "out": [{"addr": "bc1qb", "value": 0, "n": 0}, {"value": 9, "script": "6a"}, {}, {"addr": "bc1qc", "value": -1}]}
UNUSUAL_LINE = {"hash": "u", "fee": 3, "input_count": 5, "output_count": 4, "inputs": [
    {"address": "bc1qa", "value": 2**63 - 1}, {"value": 5}, {"address": None, "value": None}, {}, {},
], "outputs": [{"address": "bc1qb", "value": 0}, {"value": 9}, {}, {"address": "bc1qc", "value": -1}], "polled_at": T0}


def test_inputs_and_outputs_keep_address_and_value_whichever_path_splits_the_page() -> None:
    fast = split_poll(json.dumps({"txs": [UNUSUAL_LISTS]}).encode(), T0)
    assert fast.rejected == 0 and json.loads(fast.lines[0]) == UNUSUAL_LINE
    # One entry that cannot be a transaction sends the page down the tolerant path: the same line, byte for byte.
    tolerant = split_poll(json.dumps({"txs": [UNUSUAL_LISTS, 5]}).encode(), T0)
    assert tolerant.rejected == 1 and tolerant.lines[0] == fast.lines[0]
    poll = next(iter(polls(SyntheticProfile(duration_s=30))))
    page = json.loads(poll.page)
    fast_lines = split_poll(poll.page, poll.polled_at).lines
    tolerant_lines = split_poll(json.dumps({"txs": [*page["txs"], "x"]}).encode(), poll.polled_at).lines
    assert tolerant_lines[:-2] == fast_lines[:-1] and len(fast_lines) > 50


def test_a_huge_rejected_entry_keeps_its_beginning() -> None:
    page = b'{"txs": ["' + b"x" * 1_000_000 + b'"]}'
    rejected, _heartbeat = lines_of(page)
    assert len(rejected["rejected"]) == 256 * 1024 and "of 1000002 bytes kept" in rejected["rejection"]
