"""Reading what Flink's filesystem sink wrote (the job's outputs on a local data dir: dead letter, late, read
progress, computed windows, a backfill's report): only committed files, one JSON row per line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def committed_files(directory: Path) -> list[Path]:
    """The files a Flink file sink has committed (in-progress ones are hidden: '.' or '_'), oldest first."""
    if not directory.is_dir():
        return []
    files = [path for path in directory.rglob("*") if path.is_file() and not path.name.startswith((".", "_"))]
    return sorted(files, key=lambda path: path.stat().st_mtime)


def sink_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of one file a Flink file sink wrote (a line that is not JSON is logged and skipped)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            log.warning("%s: not a JSON row: %r", path, line[:200])
    return rows
