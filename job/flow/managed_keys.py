"""What the job's code may set on Managed Service for Apache Flink, and the check that it sets nothing else.

From MSF 2.2 the service throws an exception when application code sets a Flink configuration key that is
not on its "Programmatic Flink configuration properties" list. That list is kept in
job/flow/managed_flink_programmatic_keys.json with its source and the date it was read. What the job needs beyond
it is the service's to set: parallelism and checkpointing are the application's configuration (the CDK app,
``chainfeat submit --application``: job/deploy/managed_flink.py), restart strategy and state backend the service's
own defaults. The job checks its keys against the list before it submits, so a key outside it fails here,
by name, not on the service.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

PROGRAMMATIC_KEYS_FILE = Path(__file__).resolve().parent / "managed_flink_programmatic_keys.json"
# Written into the table config by Flink's own batch planner when it plans any batch job (measured with PyFlink 2.3:
# a backfill's plan adds them), not by the job's code: every Table API batch job on the service carries them. Whether
# the service's check tells them apart is not verified here (no AWS account).
PLANNER_BATCH_KEYS = frozenset({
    "execution.batch.adaptive.stream-graph-optimization.strategies",
    "$internal.execution.batch.adaptive.skewed-optimization.skewed-factor",
    "$internal.execution.batch.adaptive.skewed-optimization.skewed-threshold",
})


class UnlistedSetting(ValueError):
    """The job would set a Flink key Managed Flink does not let application code set."""


@lru_cache(maxsize=1)
def programmatic_keys() -> frozenset[str]:
    """Every key of the service's list (all sections)."""
    document = json.loads(PROGRAMMATIC_KEYS_FILE.read_text())
    return frozenset(key for section in document["keys"].values() for key in section)


def refuse_unlisted(keys: Iterable[str]) -> None:
    unlisted = sorted(set(keys) - programmatic_keys() - PLANNER_BATCH_KEYS)
    if unlisted:
        raise UnlistedSetting(
            f"Managed Flink does not let application code set {', '.join(unlisted)} (MSF 2.2+ throws); set it in "
            f"the application's configuration instead, or leave it out. The allowed keys: {PROGRAMMATIC_KEYS_FILE.name}"
        )
