"""The local JVM's options: a class-data-sharing (CDS) archive of the classes a chainfeat job loads, the
serial garbage collector, and a later start for the optimising (C2) JIT compiler.

Starting PyFlink's JVM and planning the job loads some 20,000 classes; from an archive the JVM maps them
instead (measured: the local run's start-up 21.5 s → 14.4 s). The archive belongs to one Java and one
PyFlink install: `chainfeat prepare` (part of `make setup`) builds it once by running the bundled replay
with -XX:ArchiveClassesAtExit; every later local JVM uses it. A missing or stale archive is ignored by the
JVM (-Xshare:auto), so this never stops a run. Each install (each venv) has its own, ~160 MB: a local JVM that
maps one marks it used, and building one deletes those unused for UNUSED_ARCHIVE_DAYS.

The collector: on these 2-core machines G1's concurrent threads and write barriers compete with the job's own
two busy threads; the serial collector ran `bench/end_to_end.py --transactions 1000000` in 21.2-21.7 s instead of
25.0-26.2 s (reading 10-11 s instead of 13.5), with a JVM peak of ~600 MiB instead of 1.1-1.6 GiB. A collector
named in JVM_ARGS is kept.

The JIT: on 2 cores the C2 compiler thread took ~3 of the ~11 CPU-seconds of a 6-second stretch of a 1 M
replay (per-thread CPU from /proc), compiling planner and start-up code that runs for a moment and the job's
methods as soon as they are warm. With C2's thresholds 20× Java's defaults (LOCAL_JIT), only code that stays
hot is compiled by it; the rest stays with C1. Measured with `chainfeat run --speed 0 --exit-when-done`, same
machine, runs alternating: 1 M 14.8-15.6 s instead of 17.3-17.7 s; 10 M (`bench/end_to_end.py --peers none`)
74.3 s instead of 92.3 s. 5× was in between (15.8-16.3 s), 60× about the same as 20× (15.8-15.9 s), 200× slower
(18.9-19.7 s: hot code stays in C1), C1 alone slower (17.9-19.8 s). Any -XX:Tier or CompileThreshold option in
JVM_ARGS replaces these. (Managed Flink and Flink clusters run their own JVMs: this is the local one only.)
A local run starts this JVM in the background (start_local_flink) while it does its own start-up work.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyflink

log = logging.getLogger(__name__)

# What a local job imports before it can plan: PyFlink's Table API and its loopback Python worker (which imports
# Apache Beam). About 1.5 s of imports, the JVM's launch about 1 s more: start_local_flink overlaps the two.
LOCAL_JOB_MODULES = ("pyflink.table", "pyflink.datastream", "pyflink.fn_execution.beam.beam_worker_pool_service")


class ClassArchiveError(RuntimeError):
    pass


CACHE = Path(os.environ.get("CHAINFEAT_CACHE", Path.home() / ".cache" / "chainfeat"))
_QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"
LOCAL_COLLECTOR = "-XX:+UseSerialGC"
ARCHIVE_NAME = "flink-classes-{identity}.jsa"  # one per Java + PyFlink install (archive_path)
UNUSED_ARCHIVE_DAYS = 30  # an archive no JVM mapped for this long belongs to a venv deleted or reinstalled
LOCAL_JIT = ("-XX:Tier4InvocationThreshold=100000", "-XX:Tier4MinInvocationThreshold=10000",
             "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=800000")  # Java 17's defaults / 20


def archive_path() -> Path:
    """Where the archive for this Java and PyFlink install lives (its name changes when either does)."""
    flink_home = Path(pyflink.__file__).resolve().parent
    java = shutil.which("java") or ""
    identity = [str(Path(java).resolve()) if java else ""]
    for jar in sorted([*flink_home.glob("lib/*.jar"), *flink_home.glob("opt/*.jar")]):
        stat = jar.stat()
        identity.append(f"{jar}:{stat.st_size}:{stat.st_mtime_ns}")
    if java:
        identity.append(str(Path(java).resolve().stat().st_mtime_ns))
    digest = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
    return CACHE / "jvm" / ARCHIVE_NAME.format(identity=digest)


def configure_local_jvm() -> None:
    """Have the JVM PyFlink starts in this process map the archive, if there is one, use the serial collector
    and start C2 later (call before PyFlink launches its gateway; options already in JVM_ARGS are kept)."""
    path = archive_path()
    options = os.environ.get("JVM_ARGS", "").split()
    if not any(re.fullmatch(r"-XX:\+Use\w+GC", option) for option in options):
        options.append(LOCAL_COLLECTOR)
    if not any(re.match(r"-XX:(Tier|CompileThreshold)", option) for option in options):
        options += LOCAL_JIT
    if path.exists() and not any("SharedArchiveFile" in option or "ArchiveClassesAtExit" in option for option in options):
        options += [f"-XX:SharedArchiveFile={path}", *_QUIET.split()]
        with contextlib.suppress(OSError):  # in use: kept by prune_unused_archives (a read-only cache just skips it)
            os.utime(path)
    os.environ["JVM_ARGS"] = " ".join(options)


def prune_unused_archives(keep: Path, unused_days: float = UNUSED_ARCHIVE_DAYS) -> list[Path]:
    """Delete the class archives beside ``keep`` that no local JVM mapped for ``unused_days`` (each Java or PyFlink
    install, each venv, has its own, ~160 MB); returns what was deleted."""
    cutoff = time.time() - unused_days * 86400
    deleted = []
    for archive in keep.parent.glob(ARCHIVE_NAME.format(identity="*")):
        with contextlib.suppress(OSError):
            if archive != keep and archive.stat().st_mtime < cutoff:
                archive.unlink()
                deleted.append(archive)
    return deleted


def start_local_flink() -> threading.Thread:
    """Launch this process's JVM (PyFlink's gateway, with configure_local_jvm's options) in one thread while
    another imports LOCAL_JOB_MODULES, so the JVM starts while Python imports. Returns a thread that ends when
    both are done: join it before this thread imports PyFlink (concurrent imports of one package can see it half
    initialised), and before the process exits (a JVM still waiting for its Python side prints that it gave up,
    on stdout). If the launch failed, the next get_gateway() launches again and raises the error itself."""
    configure_local_jvm()
    from pyflink.java_gateway import get_gateway

    def launch() -> None:
        try:
            get_gateway()
        except Exception as error:  # the next get_gateway() raises it where the run can report it
            log.debug("the JVM did not start in the background: %s", error)

    launching = threading.Thread(target=launch, name="jvm-launch", daemon=True)
    launching.start()

    def import_modules() -> None:
        try:
            for module in LOCAL_JOB_MODULES:
                importlib.import_module(module)
        finally:
            launching.join()

    started = threading.Thread(target=import_modules, name="pyflink-import", daemon=True)
    started.start()
    return started


def archive_creation_args(partial: Path) -> str:
    """JVM options that write the archive when the JVM exits."""
    return f"-XX:ArchiveClassesAtExit={partial} {LOCAL_COLLECTOR} {_QUIET}"


def jvms_writing(partial: Path) -> list[int]:
    """The JVMs still alive that will write ``partial`` when they exit (they outlive the Python process
    that started them by the time the dump takes)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"ArchiveClassesAtExit={partial}".encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def build_class_archive(path: Path, dump_timeout_s: float = 300) -> None:
    """Write the archive to ``path``: replay the bundled recording once (a real local run) with a JVM that
    dumps the classes it loaded when it exits, wait for the dump, then move it into place whole."""
    from job.local_run import free_port

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chainfeat-prepare-") as scratch:
        warm_up = subprocess.run(
            [sys.executable, "-m", "job.cli", "run", "--data-dir", scratch, "--speed", "0", "--exit-when-done",
             "--dashboard-port", str(free_port()), "--featurestore-port", "0", "--format", "json"],
            env={**os.environ, "JVM_ARGS": archive_creation_args(partial)}, capture_output=True, text=True,
        )
        if warm_up.returncode != 0:
            stderr = warm_up.stderr.strip()
            raise ClassArchiveError("the warm-up run failed, so no archive was built: "
                                    f"{stderr.splitlines()[-1] if stderr else warm_up.returncode}")
        deadline = time.monotonic() + dump_timeout_s
        while jvms_writing(partial) and time.monotonic() < deadline:
            time.sleep(0.5)
    if jvms_writing(partial) or not partial.exists():
        raise ClassArchiveError("the JVM did not write its class archive")
    os.replace(partial, path)
    prune_unused_archives(path)
