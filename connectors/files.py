"""Writing files so that a reader or a crash never sees half of one. (The Glue compaction script keeps its
own copy: it runs alone, without this package.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def atomic_write(path: Path, data: bytes | Iterable[bytes], durable: bool = True) -> None:
    """Write ``data`` (bytes, or chunks of them) to ``path`` so readers see all of it or nothing (hidden
    temp file, rename). ``durable``: fsync before the rename, so the file also survives a power loss."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp"
    with open(temporary, "wb") as handle:
        for chunk in [data] if isinstance(data, bytes) else data:
            handle.write(chunk)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)
