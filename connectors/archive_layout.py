"""The raw archive's layout, one definition for everyone who writes or reads it: the spool and the Firehose delivery
of the CDK app (infra/stacks/ingestion.py) write it, the backfill's batch source (sql/sources/archive_batch.sql) and
the S3 staging (connectors/s3_archive.py) read it.

    <archive root>/date=YYYY-MM-DD/hour=HH/<object>     (UTC)

Locally the root is the data dir's spool; on AWS it is FIREHOSE_ARCHIVE_ROOT in the raw-archive bucket, where
Firehose names each object ``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>.gz`` (gzip: a line per poll).
"""

from __future__ import annotations

import re

__all__ = [
    "ARCHIVE_HOUR_FORMAT",
    "FIREHOSE_ARCHIVE_ROOT",
    "FIREHOSE_BUFFERING_INTERVAL_S",
    "FIREHOSE_BUFFERING_MIB",
    "FIREHOSE_DATA_OUTPUT_PREFIX",
    "PARTITION_LEAD_S",
    "partition_hour",
]

# Where Firehose writes the archive in its bucket: what `chainfeat backfill --archive s3://<bucket>/raw` names.
FIREHOSE_ARCHIVE_ROOT = "raw"
# The stack's data output prefix: the archive's partitions, by Firehose's timestamp of an object (see below).
FIREHOSE_DATA_OUTPUT_PREFIX = f"{FIREHOSE_ARCHIVE_ROOT}/date=!{{timestamp:yyyy-MM-dd}}/hour=!{{timestamp:HH}}/"
# Firehose delivers an object when its buffer is this old or this full, whichever comes first.
FIREHOSE_BUFFERING_INTERVAL_S = 300
FIREHOSE_BUFFERING_MIB = 64
# Firehose dates an object by the arrival of its oldest record, so a poll can sit in the partition of an earlier hour
# by up to the buffering interval (the spool dates each poll by itself). A reader of a time range starts its
# partitions this much earlier.
PARTITION_LEAD_S = FIREHOSE_BUFFERING_INTERVAL_S

# A partition as a string that sorts in time order, 'YYYY-MM-DD HH' (what --from/--to select by).
ARCHIVE_HOUR_FORMAT = "%Y-%m-%d %H"
_PARTITION = re.compile(r"date=(\d{4}-\d\d-\d\d)/hour=(\d\d)")


def partition_hour(directory: str) -> str | None:
    """'YYYY-MM-DD HH' of a partition directory ``date=YYYY-MM-DD/hour=HH`` (relative to the archive root), or None
    for any other path."""
    match = _PARTITION.fullmatch(directory.strip("/"))
    return f"{match[1]} {match[2]}" if match else None
