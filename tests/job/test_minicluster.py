"""What a local Flink gets from job/local/minicluster.py that no job setting gives: its dashboard's port."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
from rich.console import Console

from job.cli.live_view import RunView
from job.local import minicluster


def test_a_free_port_lies_below_the_ephemeral_range_where_outgoing_connections_take_theirs() -> None:
    ephemeral_from = int(minicluster.EPHEMERAL_PORTS.read_text().split()[0])
    if ephemeral_from <= minicluster.LOWEST_FREE_PORT:
        pytest.skip(f"this system's ephemeral ports start at {ephemeral_from}: no room below them")
    ports = {minicluster.free_port() for _ in range(20)}
    assert all(minicluster.LOWEST_FREE_PORT <= port < ephemeral_from for port in ports), ports
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))  # free indeed


def test_without_a_stated_ephemeral_range_a_free_port_is_any_the_kernel_gives(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(minicluster, "EPHEMERAL_PORTS", tmp_path / "absent")
    port = minicluster.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))


def test_the_live_view_shows_the_dashboard_port_the_run_chose_when_any_free_one_was_asked_for() -> None:
    local = SimpleNamespace(options=SimpleNamespace(dashboard_port=0), dashboard_port=23456)
    view = RunView(local, Console(record=True, width=120))
    view.snapshot = lambda: ({}, {})  # type: ignore[method-assign]  # no run behind it: only the title is looked at
    view.console.print(view.render())
    assert "Flink dashboard http://127.0.0.1:23456" in " ".join(view.console.export_text().split())  # title wraps
