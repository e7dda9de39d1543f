"""`chainfeat package`: the application zip for Amazon Managed Service for Apache Flink (and any cluster).

Layout (what the service requires: a zip with the Python entry point, the code, every dependency, and
the connector jar; the run options point into it):

    main.py                      entry point (job/flow/zip_main.py)
    job/ connectors/ udfs/       the code the job runs: job/flow/ and what it imports (not the local rooms)
    sql/                         every SQL file
    worker-code/                 job/ connectors/ udfs/ again: what the Python UDF workers import (run option
                                 pyFiles puts this folder on their PYTHONPATH; on Managed Flink the job's code
                                 may not set python.files itself, see job/flow/managed_keys.py)
    site-packages/               pure-Python runtime dependencies (boto3 & co.), copied from this venv; pure
                                 Python only, so they run on the service's Python 3.12 as on our 3.11
    lib/<connector>.jar          the Kinesis SQL connector (uber jar)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import urllib3

from job.paths import CODE_PACKAGES, CODE_ROOT, WORKER_CODE

DEFAULT_ZIP = Path("dist") / "chainfeat-flink-app.zip"  # where `chainfeat package` writes it, relative to the checkout
# Never run on a cluster, so not shipped: the rooms of job/ beside flow/ (the import contract keeps flow/ from
# importing them), the local feature-store emulator and the synthetic recordings.
LOCAL_ONLY = ("job/local/", "job/cli/", "job/deploy/", "job/offline/", "connectors/featurestore/local/",
              "connectors/blockchain/synthetic.py")
# What the job imports at run time beyond PyFlink (which the service provides). Each must be pure Python
# (checked when packaging), so the copies installed here run on any Python 3 and host: Managed Flink's 2.x
# runtimes run PyFlink on Python 3.12, this project on 3.11 (tests/job/test_package.py runs the zip on both).
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")
MAVEN_CENTRAL = os.environ.get("CHAINFEAT_MAVEN_URL", "https://repo1.maven.org/maven2")  # a mirror, if you have one


class PackageError(RuntimeError):
    pass


@dataclass(frozen=True)
class MavenJar:
    group: str
    artifact: str
    version: str
    sha256: str | None = None  # pinned once known; without it the download is checked against Maven's .sha1

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{MAVEN_CENTRAL}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"


# The Kinesis source/sink for Flink 2.x (apache/flink-connector-aws, connector line 6.0.0-2.0).
KINESIS_CONNECTOR = MavenJar("org.apache.flink", "flink-sql-connector-aws-kinesis-streams", "6.0.0-2.0")


def fetch_jar(jar: MavenJar, cache: Path, http: urllib3.PoolManager | None = None) -> Path:
    """The jar from the cache, else downloaded from Maven Central and verified; offline: a clear error."""
    target = cache / jar.file_name
    if target.exists() and (jar.sha256 is None or _sha256(target) == jar.sha256):
        return target
    http = http or urllib3.PoolManager(timeout=urllib3.Timeout(connect=10, read=120), retries=urllib3.Retry(2))
    try:
        response = http.request("GET", jar.url, preload_content=True)
        checksum = http.request("GET", jar.url + ".sha1") if jar.sha256 is None else None
    except urllib3.exceptions.HTTPError as error:
        raise PackageError(
            f"cannot download {jar.file_name} ({error.__class__.__name__}). Download {jar.url} yourself "
            f"and run: chainfeat package --jar /path/to/{jar.file_name}"
        ) from None
    if response.status != 200:
        raise PackageError(f"{jar.url} answered HTTP {response.status}; download it and pass --jar PATH")
    data = response.data
    if jar.sha256 is not None and hashlib.sha256(data).hexdigest() != jar.sha256:
        raise PackageError(f"{jar.file_name} does not match its pinned sha256; not using it")
    if checksum is not None and checksum.data.decode().split()[0] != hashlib.sha1(data).hexdigest():
        raise PackageError(f"{jar.file_name} does not match Maven Central's .sha1; not using it")
    cache.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".part")
    temporary.write_bytes(data)
    temporary.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_options(jar_names: list[str]) -> dict[str, str]:
    """The `kinesis.analytics.flink.run.options` property group for the zip's layout."""
    # pyFiles folders go on the workers' PYTHONPATH as they are.
    options = {"python": "main.py", "pyFiles": f"site-packages/,{WORKER_CODE}/"}
    if jar_names:
        options["jarfile"] = f"lib/{jar_names[0]}"
    return options


def zip_run_options(zip_path: Path) -> dict[str, str]:
    """The run options of a zip `build_zip` wrote (its jar is read from the zip's lib/)."""
    with zipfile.ZipFile(zip_path) as archive:
        jars = sorted(Path(name).name for name in archive.namelist() if name.startswith("lib/") and name.endswith(".jar"))
    return run_options(jars)


def _code_files() -> list[tuple[Path, str]]:
    files = [(CODE_ROOT / "job" / "flow" / "zip_main.py", "main.py")]
    packages = []
    for package in CODE_PACKAGES:
        for path in sorted((CODE_ROOT / package).rglob("*")):
            name = str(path.relative_to(CODE_ROOT))
            if (path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".json")
                    and not name.startswith(LOCAL_ONLY)):
                packages.append((path, name))
    files += packages + [(path, f"{WORKER_CODE}/{name}") for path, name in packages]
    for path in sorted((CODE_ROOT / "sql").rglob("*.sql")):
        files.append((path, str(path.relative_to(CODE_ROOT))))
    return files


def _dependency_files() -> list[tuple[Path, str]]:
    files = []
    for name in RUNTIME_DISTRIBUTIONS:
        distribution = importlib.metadata.distribution(name)
        compiled = [str(entry) for entry in distribution.files or [] if entry.name.endswith(_COMPILED_SUFFIXES)]
        if compiled or "Root-Is-Purelib: true" not in (distribution.read_text("WHEEL") or ""):
            raise PackageError(f"{name} is not pure Python ({', '.join(compiled[:3]) or 'not a purelib wheel'}): "
                               "a copy built for this Python would not run on Managed Flink's Python 3.12")
        for entry in distribution.files or []:
            if entry.parts[0] in ("..", "__pycache__") or "__pycache__" in entry.parts or entry.parts[0].endswith(".dist-info"):
                continue
            files.append((Path(distribution.locate_file(entry)), f"site-packages/{entry.as_posix()}"))
    return files


def build_zip(output: Path, jars: list[Path]) -> dict[str, str]:
    """Write the application zip; returns its run options."""
    if len(jars) > 1:
        raise PackageError("Managed Flink loads a single jarfile: pass one (uber) jar")
    for jar in jars:
        if not jar.is_file() or jar.suffix != ".jar":
            raise PackageError(f"{jar} is not a .jar file")
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".zip.part")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source, name in _code_files() + _dependency_files():
            archive.write(source, name)
        for jar in jars:
            archive.write(jar, f"lib/{jar.name}")
    temporary.replace(output)
    return run_options([jar.name for jar in jars])


def unpack(zip_path: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(target)
    return target
