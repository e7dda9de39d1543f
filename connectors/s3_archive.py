"""Staging the raw archive from S3 into a local cache with boto3, so that the backfill's batch job reads it from
local files (PyFlink ships no S3 filesystem).

Only the partitions ``date=YYYY-MM-DD/hour=HH`` of an hour range are staged (connectors/archive_layout.py), into
``<cache>/<bucket>/<prefix>/`` in the same layout. Resumable: each object is written atomically with its ETag beside
it (a hidden ``.<name>.etag``, which Flink does not read); an object already cached with S3's size and ETag is not
downloaded again, any other one is, and a cached file S3 no longer lists in a staged hour is removed. Each download
is checked against S3's size, and against its ETag where the ETag is the object's MD5 (not for SSE-KMS objects,
multipart uploads or SSE-C, whose ETags are not). The endpoint is boto3's: AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL set another one (moto's server in the tests).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from connectors import DEFAULT_REGION
from connectors.archive_layout import FIREHOSE_ARCHIVE_ROOT, partition_hour
from connectors.atomic_files import atomic_write

__all__ = ["S3Archive", "StagingError", "StagingInterrupted", "StagingProgress", "is_s3_uri", "stage_archive"]

DOWNLOAD_WORKERS = 8  # S3 GETs wait on the network, not on the 2 cores: a few in flight fill the link
FREE_SPACE_MARGIN_BYTES = 1 << 30  # left free on the cache's disk after staging (Flink's spill files need room)
_CHUNK_BYTES = 1 << 20
_MD5_ETAG = re.compile(r'"?([0-9a-f]{32})"?')
_ETAG_NOT_MD5 = ("aws:kms", "aws:kms:dsse")  # ServerSideEncryption values whose ETags are not the data's MD5


class StagingError(RuntimeError):
    """Staging cannot go on: the message says what and what to do."""


class StagingInterrupted(StagingError):
    """Stopped on request; what was staged is kept and the next staging resumes from it."""


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


@dataclass(frozen=True)
class S3Archive:
    """An archive root in S3: ``s3://bucket/prefix`` (the prefix holds the date= partitions)."""

    bucket: str
    prefix: str  # without slashes at either end; "" for the bucket's root

    @classmethod
    def parse(cls, uri: str) -> S3Archive:
        match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", uri.strip())
        if not match:
            raise StagingError(f"{uri!r} is not an S3 archive: give s3://BUCKET/PREFIX (the CDK app's Firehose writes "
                               f"s3://<raw-archive bucket>/{FIREHOSE_ARCHIVE_ROOT})")
        return cls(match[1], (match[2] or "").strip("/"))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key_prefix(self, relative: str = "") -> str:
        return "/".join(part for part in (self.prefix, relative) if part)

    def local_root(self, cache: Path) -> Path:
        """Where the staged copy of this archive lives in ``cache``."""
        return cache.joinpath(self.bucket, *self.prefix.split("/")) if self.prefix else cache / self.bucket


@dataclass(frozen=True)
class _Object:
    key: str
    relative: str  # date=.../hour=.../name
    size: int
    etag: str


@dataclass
class StagingProgress:
    """What staging has done so far (read by a progress view while it runs)."""

    objects: int = 0  # in the range
    bytes: int = 0
    cached_objects: int = 0  # already in the cache, as S3 has them: not downloaded
    cached_bytes: int = 0
    downloaded_objects: int = 0
    downloaded_bytes: int = 0  # so far, including the objects being downloaded
    hours: tuple[str, str] = ("", "")  # the first and last partition staged
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def done_bytes(self) -> int:
        return self.cached_bytes + self.downloaded_bytes

    def _add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


def stage_archive(archive: S3Archive, cache: Path, first_hour: str, last_hour: str,
                  progress: StagingProgress | None = None, interrupted: threading.Event | None = None,
                  client: Any = None) -> Path:
    """Stage the archive's partitions from ``first_hour`` to ``last_hour`` ('YYYY-MM-DD HH', both included; "" and
    a far-future hour for open ends) into ``cache``; returns the local archive root. Raises StagingError when the
    archive is missing, holds no object in the range, or does not fit on the cache's disk, and StagingInterrupted
    when ``interrupted`` is set (the objects staged so far stay; the next call resumes)."""
    progress = progress if progress is not None else StagingProgress()
    interrupted = interrupted or threading.Event()
    client = client or s3_client()
    root = archive.local_root(cache)
    try:
        objects = _objects_in_range(client, archive, first_hour, last_hour)
        progress.objects, progress.bytes = len(objects), sum(item.size for item in objects)
        progress.hours = (_object_hour(objects[0]), _object_hour(objects[-1]))
        _remove_stale(root, objects, first_hour, last_hour)
        missing = [item for item in objects if not _cached(root, item)]
        progress.cached_objects = len(objects) - len(missing)
        progress.cached_bytes = progress.bytes - sum(item.size for item in missing)
        _check_space(root, missing)
        _download_all(client, archive, root, missing, progress, interrupted)
    except (BotoCoreError, ClientError) as error:
        raise StagingError(f"cannot read {archive.uri}: {_aws_message(error, archive)}") from None
    return root


def s3_client() -> Any:
    """boto3's S3 client with its own configuration (credentials, AWS_ENDPOINT_URL_S3) and retries."""
    region = boto3.session.Session().region_name or DEFAULT_REGION
    return boto3.client("s3", region_name=region,
                        config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=DOWNLOAD_WORKERS))


# ---- which objects -----------------------------------------------------------------------------------------

def _objects_in_range(client: Any, archive: S3Archive, first_hour: str, last_hour: str) -> list[_Object]:
    """The archive's objects in the hours, in time order. One LIST of the root's date= folders, then one per day
    (a page holds 1,000 keys: Firehose writes ~300 a day at its 5-min buffer)."""
    folders = _folders(client, archive.bucket, archive.key_prefix() + "/" if archive.prefix else "")
    days = sorted(folder for folder in folders if re.fullmatch(r"date=\d{4}-\d\d-\d\d", folder))
    if not days:
        held = ", ".join(f"{folder}/" for folder in sorted(folders)[:5]) or "nothing"
        raise StagingError(f"no archive at {archive.uri}: it holds no date=YYYY-MM-DD/ partition (it holds {held}); "
                           f"the CDK app's Firehose writes s3://<raw-archive bucket>/{FIREHOSE_ARCHIVE_ROOT}")
    selected = [day for day in days if first_hour[:10] <= day[5:] <= last_hour[:10]]
    objects = []
    for day in selected:
        for item in _list(client, archive.bucket, archive.key_prefix(day) + "/"):
            relative = item["Key"][len(archive.key_prefix()) + 1 if archive.prefix else 0:]
            directory, _, name = relative.rpartition("/")
            hour = partition_hour(directory)
            if hour and first_hour <= hour <= last_hour and name and not name.startswith((".", "_")):
                objects.append(_Object(item["Key"], relative, item["Size"], item["ETag"]))
    if not objects:
        raise StagingError(f"no objects in {archive.uri} from hour {first_hour or 'the first'} to {last_hour} UTC "
                           f"(what --from/--to can need); its partitions run from {days[0]} to {days[-1]}")
    return sorted(objects, key=lambda item: item.relative)


def _folders(client: Any, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
    return [common["Prefix"][len(prefix):].rstrip("/") for page in pages for common in page.get("CommonPrefixes", [])]


def _list(client: Any, bucket: str, prefix: str) -> Iterator[dict]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def _object_hour(item: _Object) -> str:
    return partition_hour(item.relative.rpartition("/")[0]) or ""


# ---- the cache ---------------------------------------------------------------------------------------------

def _etag_path(path: Path) -> Path:
    return path.parent / f".{path.name}.etag"


def _cached(root: Path, item: _Object) -> bool:
    path = root / item.relative
    try:
        return path.stat().st_size == item.size and _etag_path(path).read_text() == item.etag
    except FileNotFoundError:
        return False


def _remove_stale(root: Path, objects: list[_Object], first_hour: str, last_hour: str) -> None:
    """In the hours staged, the cache holds what S3 lists and nothing else (the job reads every file there)."""
    listed = {item.relative for item in objects}
    for path in root.glob("date=*/hour=*/*"):
        relative = path.relative_to(root).as_posix()
        hour = partition_hour(relative.rpartition("/")[0])
        if hour and first_hour <= hour <= last_hour and path.is_file() and not path.name.startswith((".", "_")) \
                and relative not in listed:
            path.unlink()
            _etag_path(path).unlink(missing_ok=True)


def _check_space(root: Path, missing: list[_Object]) -> None:
    needed = sum(item.size for item in missing)
    existing = next(parent for parent in (root, *root.parents) if parent.exists())
    free = shutil.disk_usage(existing).free
    if needed + FREE_SPACE_MARGIN_BYTES > free:
        raise StagingError(f"staging needs {_gib(needed)} GiB more in {root} (plus {_gib(FREE_SPACE_MARGIN_BYTES)} GiB "
                           f"left free) and its disk has {_gib(free)} GiB free: narrow --from/--to, or give --data-dir "
                           "on a larger disk")


def _gib(amount: int) -> str:
    return f"{amount / (1 << 30):.1f}"


# ---- downloading -------------------------------------------------------------------------------------------

def _download_all(client: Any, archive: S3Archive, root: Path, missing: list[_Object], progress: StagingProgress,
                  interrupted: threading.Event) -> None:
    stop = _Either(interrupted, threading.Event())  # the caller's Ctrl-C, or a failed download

    def download(item: _Object) -> None:
        if not stop.is_set() and _download(client, archive, root / item.relative, item, progress, stop):
            progress._add(downloaded_objects=1)

    with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS, thread_name_prefix="s3-stage") as pool:
        futures = [pool.submit(download, item) for item in missing]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((future.exception() for future in done if future.exception()), None)
        if failed is not None:
            stop.second.set()  # the others stop before their next object (or chunk)
            for future in futures:
                future.cancel()
            raise failed
    if progress.downloaded_objects < len(missing):
        raise StagingInterrupted(f"staging from {archive.uri} interrupted: {progress.cached_objects + progress.downloaded_objects} "
                                 f"of {progress.objects} objects are in the cache")


@dataclass(frozen=True)
class _Either:
    first: threading.Event
    second: threading.Event

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


def _download(client: Any, archive: S3Archive, path: Path, item: _Object, progress: StagingProgress,
              interrupted: threading.Event | _Either) -> bool:
    """One object, written atomically once its bytes check out, then its ETag beside it; False if interrupted."""
    try:
        response = client.get_object(Bucket=archive.bucket, Key=item.key, IfMatch=item.etag)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            raise StagingError(f"s3://{archive.bucket}/{item.key} changed while it was being staged: run the same "
                               "command again") from None
        raise
    md5 = _MD5_ETAG.fullmatch(item.etag)
    check_md5 = md5 is not None and response.get("ServerSideEncryption") not in _ETAG_NOT_MD5 \
        and "SSECustomerAlgorithm" not in response

    received = 0

    def chunks() -> Iterator[bytes]:
        nonlocal received
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in response["Body"].iter_chunks(_CHUNK_BYTES):
            if interrupted.is_set():
                raise StagingInterrupted("interrupted")  # atomic_write removes the partial file
            digest.update(chunk)
            received += len(chunk)
            progress._add(downloaded_bytes=len(chunk))
            yield chunk
        size = received
        if size != item.size or (check_md5 and digest.hexdigest() != md5[1]):
            raise StagingError(f"s3://{archive.bucket}/{item.key} arrived with {size} bytes (MD5 {digest.hexdigest()}) "
                               f"where S3 lists {item.size} bytes (ETag {item.etag}): run the same command again")

    try:
        atomic_write(path, chunks())
    except BaseException as error:
        progress._add(downloaded_bytes=-received)  # nothing of it was kept
        if isinstance(error, StagingInterrupted):
            return False
        raise
    atomic_write(_etag_path(path), item.etag.encode(), durable=False)
    return True


def _aws_message(error: Exception, archive: S3Archive) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    at = f" at {endpoint} (AWS_ENDPOINT_URL_S3)" if endpoint else ""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        if details.get("Code") == "NoSuchBucket":
            return f"there is no bucket {archive.bucket}{at}"
        return f"{details.get('Code', '')}: {details.get('Message', error)}{at}"
    return f"{error}{at}"
