"""atomic_write: all or nothing, whole files appended by the kernel among the bytes."""

from __future__ import annotations

import os

import pytest

from connectors.atomic_files import _write_all, atomic_write


def test_files_and_bytes_are_written_in_order_under_a_hidden_name_then_renamed(tmp_path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"1\n" * 100_000)
    second.write_bytes(b"")  # an empty file adds nothing
    target = tmp_path / "out" / "feed-1.jsonl"
    atomic_write(target, [first, b"x\n", second, first, b"end\n"], durable=False)
    assert target.read_bytes() == b"1\n" * 100_000 + b"x\n" + b"1\n" * 100_000 + b"end\n"
    assert os.listdir(target.parent) == ["feed-1.jsonl"]


def test_where_the_kernel_cannot_copy_a_plain_copy_does(tmp_path, monkeypatch) -> None:
    def unsupported(*_args):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    source = tmp_path / "a.jsonl"
    source.write_bytes(b"line\n" * 1000)
    atomic_write(tmp_path / "out.jsonl", [b"head\n", source])
    assert (tmp_path / "out.jsonl").read_bytes() == b"head\n" + b"line\n" * 1000


def test_a_failed_write_leaves_no_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "out.jsonl", [b"head\n", tmp_path / "missing.jsonl"])
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary


def test_a_write_that_takes_part_of_a_chunk_is_continued() -> None:
    class ShortWrites:  # a raw file may take fewer bytes than asked (a signal, a full pipe, a huge chunk)
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, view) -> int:
            taken = bytes(view[:3])
            self.data += taken
            return len(taken)

    handle = ShortWrites()
    _write_all(b"0123456789", handle)
    assert bytes(handle.data) == b"0123456789"
