"""Writing files so that a reader or a crash never sees half of one. (The Glue compaction script keeps its
own copy: it runs alone, without this package.)"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: Path, data: bytes | Iterable[bytes | Path], durable: bool = True) -> None:
    """Write ``data`` (bytes, or chunks of them: bytes, or a file's path for the whole file, copied by the kernel)
    to ``path`` so readers see all of it or nothing (hidden temp file, rename). ``durable``: fsync before the
    rename, so the file also survives a power loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp"
    try:
        with open(temporary, "wb", buffering=0) as handle:  # unbuffered: kernel copies and writes share one offset
            for chunk in [data] if isinstance(data, bytes) else data:
                if isinstance(chunk, Path):
                    _append_file(chunk, handle)
                else:
                    _write_all(chunk, handle)
            if durable:
                os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def _write_all(chunk: bytes, handle: BinaryIO) -> None:
    """An unbuffered write may take only part of a chunk: write the rest until all of it is written."""
    view = memoryview(chunk)
    while view:
        view = view[handle.write(view):]


def _append_file(source: Path, handle: BinaryIO) -> None:
    """Append ``source`` to ``handle`` without passing its bytes through Python (copy_file_range), or with a
    plain copy where the kernel cannot."""
    with open(source, "rb") as reading:
        remaining = os.fstat(reading.fileno()).st_size
        try:
            while remaining > 0:
                copied = os.copy_file_range(reading.fileno(), handle.fileno(), remaining)
                if copied == 0:
                    break  # its end came sooner than its size said
                remaining -= copied
        except OSError:
            if remaining != os.fstat(reading.fileno()).st_size:
                raise  # part was copied: no second copy on top of it
        shutil.copyfileobj(reading, handle)  # nothing left, unless the kernel could not copy
