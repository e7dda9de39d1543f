"""How chainfeat shows a moment in its live views and summaries: ISO 8601 in UTC, to the second
(2024-05-01T00:01:00Z)."""

from __future__ import annotations

from datetime import datetime, timezone

ISO_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso_utc(epoch_s: float | None) -> str | None:
    """``epoch_s`` (unix seconds) as ISO 8601 UTC; None stays None (a moment not known)."""
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime(ISO_UTC_FORMAT)
