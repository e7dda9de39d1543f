"""The poller and its sources against a real local HTTP server playing the blockchain.com API."""

from __future__ import annotations

import subprocess
import threading

import pytest

from connectors.blockchain.poller import Poller
from connectors.blockchain.source import (
    LiveSource,
    Poll,
    RecordingWriter,
    ReplaySource,
    SourceUnavailable,
    read_recording,
)
from connectors.blockchain.synthetic import PAGE_SIZE, SyntheticProfile, polls
from tests.conftest import CHAINFEAT
from tests.support.fake_api import FakeApi, page

T0 = 1714521600


@pytest.fixture
def api_factory():
    servers = []

    def make(responses):
        server = FakeApi(responses)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


class ListWriter:
    def __init__(self) -> None:
        self.polls: list[Poll] = []

    def write(self, poll: Poll) -> None:
        self.polls.append(poll)


def test_live_source_reads_pages_and_retries_server_errors(api_factory) -> None:
    api = api_factory([503, 500, page("a", "b")])
    poll = LiveSource(api.url, retries=3).fetch()
    assert [tx["hash"] for tx in poll.txs] == ["a", "b"]
    assert api.requests == 3


@pytest.mark.parametrize("response", [b"<html>oops</html>", {"no": "txs"}, 404])
def test_live_source_reports_bad_answers(api_factory, response) -> None:
    api = api_factory([response])
    with pytest.raises(SourceUnavailable):
        LiveSource(api.url, retries=0).fetch()


def test_unreachable_network_is_a_clear_error() -> None:
    with pytest.raises(SourceUnavailable, match="cannot reach .*is the network up"):
        LiveSource("http://127.0.0.1:9/unconfirmed", retries=0, connect_timeout_s=1).fetch()


def test_gap_shortens_the_interval_until_polls_overlap_again(api_factory) -> None:
    api = api_factory([page("a", "b"), page("b", "c"), page("x", "y"), page("z", "w"), page("w", "v"), page("v", "u")])
    writer = ListWriter()
    poller = Poller(LiveSource(api.url), writer, interval_s=16, min_interval_s=5)
    intervals = []
    for _ in range(6):
        poller.poll_once()
        intervals.append(poller.stats.interval_s)
    assert poller.stats.gaps == 2  # b,c -> x,y and x,y -> z,w share nothing
    assert intervals == [16, 16, 8, 5, 7.5, 11.25]
    assert poller.stats.polls == 6 and poller.stats.transactions == 12


def test_failed_polls_are_counted_and_the_poller_goes_on(api_factory) -> None:
    api = api_factory([b"not json", page("a")])
    poller = Poller(LiveSource(api.url, retries=0), ListWriter(), interval_s=1, min_interval_s=1)
    assert poller.poll_once() is None
    assert poller.poll_once() is not None
    assert (poller.stats.errors, poller.stats.polls) == (1, 1)
    assert "not" in poller.stats.last_error or "txs" in poller.stats.last_error


def test_record_command_writes_one_line_per_poll(api_factory, tmp_path, cli_env) -> None:
    pages = [Poll(p.polled_at, p.txs).txs for p in polls(SyntheticProfile(duration_s=60))][:3]
    api = api_factory([{"txs": txs} for txs in pages])
    output = tmp_path / "capture.jsonl.gz"
    result = subprocess.run([*CHAINFEAT, "record", "--output", str(output), "--polls", "3", "--interval", "0.2",
                             "--url", api.url], env=cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    recorded = list(read_recording(output))
    assert [poll.txs for poll in recorded] == pages
    assert "recorded 3 polls" in result.stderr


def test_replay_speed_zero_keeps_times_and_speed_one_shifts_whole_minutes(tmp_path) -> None:
    path = tmp_path / "rec.jsonl"
    writer = RecordingWriter(path)
    for number in range(3):
        writer.write(Poll(T0 + 15 * number + 0.5, [{"hash": f"h{number}", "time": T0 + 15 * number - 3, "fee": 1}]))
    as_recorded = ReplaySource(path, speed=0)
    assert [as_recorded.fetch().polled_at for _ in range(3)] == [T0 + 0.5, T0 + 15.5, T0 + 30.5]

    clock = [T0 + 10_000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    live = ReplaySource(path, speed=1, clock=lambda: clock[0], sleep=sleep)
    shifted = [live.fetch() for _ in range(3)]
    assert live.shift_s == 9960  # 10,000 s rounded down to whole minutes
    assert [p.polled_at for p in shifted] == [T0 + 0.5 + 9960, T0 + 15.5 + 9960, T0 + 30.5 + 9960]
    assert [p.txs[0]["time"] for p in shifted] == [T0 - 3 + 9960, T0 + 12 + 9960, T0 + 27 + 9960]
    assert slept == [15.0, 15.0]  # paced like the recording
    with pytest.raises(StopIteration):
        live.fetch()

    resumed = ReplaySource(path, speed=1, start_index=2, origin=live.origin, clock=lambda: clock[0], sleep=sleep)
    assert resumed.fetch().polled_at == shifted[2].polled_at


def test_a_replay_that_ran_out_is_told_apart_from_a_stopped_one(tmp_path) -> None:
    """ran_out (the feed publisher closes a bounded run's windows on it) only when the source has no more polls."""
    path = tmp_path / "rec.jsonl"
    writer = RecordingWriter(path)
    for number in range(3):
        writer.write(Poll(T0 + 15 * number + 0.5, [{"hash": f"h{number}", "time": T0 + 15 * number, "fee": 1}]))
    to_the_end = Poller(ReplaySource(path, speed=0), ListWriter())
    to_the_end.run(threading.Event())
    assert to_the_end.stats.finished and to_the_end.stats.ran_out and to_the_end.stats.polls == 3

    stop = threading.Event()
    stopped_writer = ListWriter()
    stopped = Poller(ReplaySource(path, speed=0), stopped_writer, on_poll=lambda _poll: stop.set())
    stopped.run(stop)
    assert stopped.stats.finished and not stopped.stats.ran_out and len(stopped_writer.polls) == 1


def test_read_recording_skips_a_truncated_last_line(tmp_path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(Poll(T0, [{"hash": "a"}]).to_json() + "\n" + '{"polled_at": 17145216')
    assert [p.polled_at for p in read_recording(path)] == [T0]


def test_a_resumed_replay_reads_on_as_the_whole_replay_does(tmp_path) -> None:
    """Polls passed over by a resumed replay are not split, yet what follows is the same: a line that is not a poll
    right after them is still stamped with the last one's time, blank lines are not counted as polls."""
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join([Poll(T0, [{"hash": "a"}]).to_json(), "", Poll(T0 + 15, [{"hash": "b"}]).to_json(),
                               "not a poll", Poll(T0 + 30, [{"hash": "c"}]).to_json()]) + "\n")
    whole = list(read_recording(path))
    assert [(p.polled_at, p.problem is not None) for p in whole] == [(T0, False), (T0 + 15, False), (T0 + 15, True),
                                                                     (T0 + 30, False)]
    for skip in range(len(whole) + 2):
        resumed = list(read_recording(path, skip=skip))
        assert [(p.polled_at, p.page, p.problem, p.lines.text) for p in resumed] == [
            (p.polled_at, p.page, p.problem, p.lines.text) for p in whole[skip:]]
    assert ReplaySource(path, speed=0, start_index=2).fetch().problem is not None
    assert ReplaySource(path, speed=0, start_index=3).fetch().txs == [{"hash": "c"}]


def test_synthetic_pages_look_like_the_api() -> None:
    generated = list(polls(SyntheticProfile(duration_s=300)))
    assert len(generated) == 21
    for poll in generated:
        times = [tx["time"] for tx in poll.txs]
        assert len(poll.txs) == PAGE_SIZE
        assert times == sorted(times, reverse=True) and max(times) <= poll.polled_at  # newest first
        assert {"hash", "fee", "size", "weight", "inputs", "out", "time", "tx_index"} <= set(poll.txs[0])
    assert generated == list(polls(SyntheticProfile(duration_s=300)))  # deterministic
