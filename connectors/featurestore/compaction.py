"""Compaction of the offline store: each hour partition's small Parquet files become one file.

One module for both deployments: ``chainfeat compact`` runs it on the local offline store, and it is
uploaded as-is as the script of an AWS Glue Python shell job (Python 3.9 and whatever pyarrow Glue ships),
so it imports only the standard library and pyarrow, and keeps to long-standing pyarrow APIs.

Partitions are SageMaker's ``.../year=YYYY/month=MM/day=DD/hour=HH/*.parquet``, at any depth under the root.
Hours that ended less than ``min_age`` ago are left alone: they may still be written to.

No row is lost or doubled whatever the moment of a crash: the output's name derives from its inputs' names,
it records them (with their row counts) in its Parquet metadata, it is written whole under a temporary name
and moved into place (a rename locally; on S3 a CopyObject, which creates the object whole or not at all),
and only then are the inputs deleted. A run that finds a compacted file whose inputs still exist checks
their row counts and finishes the deletes instead of compacting again.

Readers may briefly see a compacted file next to its inputs: SageMaker's offline store is at-least-once
anyway, and queries dedupe by (record id, event_time, write_time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

COMPACTED_PREFIX = "compacted-"
COMPACTED_FROM_KEY = b"chainfeat.compacted_from"  # JSON list of {"file": name, "rows": count}
_PARTITION = re.compile(r"(?:^|/)year=(\d{4})/month=(\d\d?)/day=(\d\d?)/hour=(\d\d?)$")
# pyarrow 14 replaced concat_tables(promote=True) by promote_options; Glue's pyarrow may predate it.
_PROMOTE = {"promote_options": "default"} if int(pa.__version__.split(".")[0]) >= 14 else {"promote": True}


class CompactionError(Exception):
    """A partition that cannot be compacted safely; it is left as it was."""


@dataclass
class CompactionReport:
    partitions_seen: int = 0
    partitions_compacted: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0  # 0 in a dry run: nothing is written
    redone: int = 0  # compactions that an earlier run left between the write and the deletes, finished
    skipped_young: int = 0
    dry_run: bool = False
    failed: List[str] = field(default_factory=list)  # "partition: reason"; those partitions are unchanged


def compact(
    root_uri: str,
    *,
    min_age: timedelta = timedelta(hours=2),
    now: Optional[datetime] = None,
    dry_run: bool = False,
    filesystem: Optional[pafs.FileSystem] = None,
) -> CompactionReport:
    """Compact every hour partition under ``root_uri`` (a local path, ``file://`` or ``s3://`` URI; with
    ``filesystem``, a path in it) whose hour ended at least ``min_age`` before ``now`` into one file.

    A partition that fails is named in ``report.failed`` and left as it was; the others go on.
    """
    fs, root = _resolve(str(root_uri), filesystem)
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    report = CompactionReport(dry_run=dry_run)
    for directory, (hour_end, files) in sorted(_partitions(fs, root).items()):
        report.partitions_seen += 1
        if now - hour_end < min_age:
            report.skipped_young += 1
            continue
        try:
            _compact_partition(fs, directory, files, report, dry_run)
        except (CompactionError, OSError, pa.ArrowException) as error:
            report.failed.append(f"{directory}: {error}")
    return report


def _resolve(root_uri: str, filesystem: Optional[pafs.FileSystem]) -> Tuple[pafs.FileSystem, str]:
    if filesystem is not None:
        return filesystem, root_uri.split("://", 1)[-1].rstrip("/")
    if "://" not in root_uri:
        return pafs.LocalFileSystem(), os.path.abspath(root_uri)
    fs, path = pafs.FileSystem.from_uri(root_uri)
    return fs, path.rstrip("/")


def _partitions(fs: pafs.FileSystem, root: str) -> Dict[str, Tuple[datetime, Dict[str, int]]]:
    """{partition directory: (end of its hour, {Parquet file name: size})} for every hour partition."""
    partitions: Dict[str, Tuple[datetime, Dict[str, int]]] = {}
    for info in fs.get_file_info(pafs.FileSelector(root, allow_not_found=True, recursive=True)):
        directory, _, name = info.path.rpartition("/")
        # Names starting with "." or "_" are temporary or hidden (Athena skips them too).
        if info.type != pafs.FileType.File or not name.endswith(".parquet") or name.startswith((".", "_")):
            continue
        if directory not in partitions:
            match = _PARTITION.search(directory)
            try:
                start = datetime(*map(int, match.groups()), tzinfo=timezone.utc) if match else None
            except ValueError:  # month=13 and the like: not an hour partition
                start = None
            if start is None:
                continue
            partitions[directory] = (start + timedelta(hours=1), {})
        partitions[directory][1][name] = info.size
    return partitions


def _compact_partition(
    fs: pafs.FileSystem, directory: str, files: Dict[str, int], report: CompactionReport, dry_run: bool
) -> None:
    files = dict(files)
    for name in sorted(files):
        if name.startswith(COMPACTED_PREFIX) and name in files:
            finished = _finish_interrupted(fs, directory, name, files, dry_run)
            if finished:
                report.redone += 1
                for done in finished:
                    del files[done]
    if len(files) < 2:
        return
    names = sorted(files)  # the output keeps this order of rows
    footers = [_footer(fs, f"{directory}/{name}") for name in names]
    try:
        pa.unify_schemas([footer.schema.to_arrow_schema() for footer in footers])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise CompactionError(f"its files have incompatible schemas ({error}); merge them by hand") from None
    rows = sum(footer.num_rows for footer in footers)
    bytes_after = 0
    if not dry_run:
        table = pa.concat_tables([_read(fs, f"{directory}/{name}") for name in names], **_PROMOTE)
        sources = [{"file": name, "rows": footer.num_rows} for name, footer in zip(names, footers)]
        table = table.replace_schema_metadata({COMPACTED_FROM_KEY: json.dumps(sources).encode()})
        int96 = any(_has_int96(footer) for footer in footers)
        bytes_after = _publish(fs, directory, compacted_name(names), table, int96)
        _delete_inputs(fs, directory, names)
    report.partitions_compacted += 1
    report.files_in += len(names)
    report.files_out += 1
    report.rows += rows
    report.bytes_before += sum(files.values())
    report.bytes_after += bytes_after


def compacted_name(input_names: List[str]) -> str:
    """The output's name, the same for the same inputs: a rerun after a crash finds what it wrote."""
    digest = hashlib.sha256("\n".join(sorted(input_names)).encode()).hexdigest()
    return f"{COMPACTED_PREFIX}{digest[:16]}.parquet"


def _finish_interrupted(
    fs: pafs.FileSystem, directory: str, name: str, files: Dict[str, int], dry_run: bool
) -> List[str]:
    """The inputs of compacted file ``name`` that still exist (a run stopped before deleting them all),
    deleted once their row counts prove the compacted file holds them."""
    footer = _footer(fs, f"{directory}/{name}")
    sources = json.loads((footer.metadata or {}).get(COMPACTED_FROM_KEY, b"[]"))
    leftovers = [source for source in sources if source["file"] in files]
    if not leftovers:
        return []
    if sum(source["rows"] for source in sources) != footer.num_rows or any(
        _footer(fs, f"{directory}/{source['file']}").num_rows != source["rows"] for source in leftovers
    ):
        raise CompactionError(f"{name} does not hold exactly the rows of its inputs still here; check it by hand")
    names = [source["file"] for source in leftovers]
    if not dry_run:
        _delete_inputs(fs, directory, names)
    return names


def _footer(fs: pafs.FileSystem, path: str) -> pq.FileMetaData:
    with fs.open_input_file(path) as source:
        return pq.ParquetFile(source).metadata


def _read(fs: pafs.FileSystem, path: str) -> pa.Table:
    # ParquetFile, not read_table: no partition columns added from the path, on every pyarrow version.
    with fs.open_input_file(path) as source:
        return pq.ParquetFile(source).read()


def _has_int96(footer: pq.FileMetaData) -> bool:
    return any(footer.schema.column(i).physical_type == "INT96" for i in range(footer.num_columns))


def _publish(fs: pafs.FileSystem, directory: str, name: str, table: pa.Table, int96: bool) -> int:
    """Write ``table`` as ``directory/name``: whole under a temporary name, then moved into place."""
    target, temporary = f"{directory}/{name}", f"{directory}/.{name}.tmp"
    # Parquet 1.0 types are what every Athena/Hive/Spark reader and every pyarrow accepts; timestamps that
    # SageMaker stored as INT96 are written back as INT96.
    options = {"version": "1.0", "use_deprecated_int96_timestamps": int96}
    if isinstance(fs, pafs.LocalFileSystem):
        with open(temporary, "wb") as sink:
            pq.write_table(table, sink, **options)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, target)
        _fsync_directory(directory)  # the rename is on disk before any input is deleted
    else:
        with fs.open_output_stream(temporary) as sink:
            pq.write_table(table, sink, **options)
        fs.move(temporary, target)  # S3: CopyObject, then the temporary object is deleted
    return fs.get_file_info(target).size


def _fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _delete_inputs(fs: pafs.FileSystem, directory: str, names: List[str]) -> None:
    # On S3, pyarrow then puts a zero-byte "directory" marker (".../hour=HH/") like the console's folders.
    for name in names:
        fs.delete_file(f"{directory}/{name}")


# ---- AWS Glue Python shell entry point -------------------------------------------------------------


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _s3_filesystem(endpoint_url: str) -> pafs.S3FileSystem:
    url = urlsplit(endpoint_url)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return pafs.S3FileSystem(endpoint_override=url.netloc, scheme=url.scheme or "https", region=region)


def main(argv: Optional[List[str]] = None) -> int:
    """Glue job: ``--offline_store_uri s3://BUCKET/PREFIX [--min_age_hours 2] [--dry_run true]``.

    Prints a one-line JSON summary; returns 0, or 1 when a partition (or the whole run) failed.
    """
    parser = argparse.ArgumentParser(
        description="Compact the offline store's small Parquet files into one per hour partition.",
        allow_abbrev=False,  # Glue adds arguments of its own; none may be taken for an abbreviation of ours
    )
    parser.add_argument("--offline_store_uri", required=True, help="s3://BUCKET/PREFIX or a local path")
    parser.add_argument("--min_age_hours", type=float, default=2.0, help="leave younger hours alone")
    parser.add_argument("--dry_run", type=_boolean, nargs="?", const=True, default=False)
    parser.add_argument("--s3_endpoint_url", help="another S3 endpoint (tests, a local S3)")
    args, _glue_arguments = parser.parse_known_args(argv)
    try:
        report = compact(
            args.offline_store_uri,
            min_age=timedelta(hours=args.min_age_hours),
            dry_run=args.dry_run,
            filesystem=_s3_filesystem(args.s3_endpoint_url) if args.s3_endpoint_url else None,
        )
    except (OSError, pa.ArrowException) as error:
        print(f"compaction of {args.offline_store_uri} failed: {error}; check the URI and the job role's "
              "S3 permissions (list, get, put, delete)", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)))
    if report.failed:
        print(f"{len(report.failed)} partition(s) were left as they were:\n  " + "\n  ".join(report.failed),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
