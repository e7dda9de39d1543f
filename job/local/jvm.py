"""The local JVM's options: a class-data-sharing (CDS) archive of the classes a chainfeat job loads, the
serial garbage collector, a later start for the optimising (C2) JIT compiler, and the planner on the classpath.
Managed Flink and Flink clusters run their own JVMs: this is the local one only. (What each option gained, measured:
bench/HISTORY.md, "The local JVM".)

The archive: starting PyFlink's JVM and planning the job loads some 20,000 classes; from an archive the JVM maps
them instead. It belongs to one Java and one PyFlink install: `chainfeat prepare` (part of `make setup`) builds it
once by running the bundled replay with -XX:ArchiveClassesAtExit; every later local JVM uses it. A missing or stale
archive is ignored by the JVM (-Xshare:auto), so this never stops a run. Each install (each venv) has its own,
~160 MB: a local JVM that maps one marks it used, and building one deletes those unused for UNUSED_ARCHIVE_DAYS.

The collector: on 2 cores G1's concurrent threads and write barriers compete with the job's own two busy threads;
the serial collector is faster here and needs half the memory. A collector named in JVM_ARGS is kept.

The JIT: on 2 cores the C2 compiler thread takes a large share of the CPU compiling planner and start-up code that
runs for a moment. With C2's thresholds 20x Java's defaults (LOCAL_JIT) only code that stays hot is compiled by it;
the rest stays with C1. Any -XX:Tier or CompileThreshold option in JVM_ARGS replaces these.

The planner: PyFlink's lib/ holds Flink's planner loader, which on every JVM start writes the planner jar it wraps
to a temporary file and loads the planner's ~1,000 classes from there through a class loader of its own, so they can
never come from the archive (their jar's path is new each time). Locally the JVM instead gets a lib directory of its
own (planner_lib_dir: the same jars, with the planner jar itself in place of the loader, the layout Flink documents
for using the planner directly), built once per install by the first local JVM. A FLINK_HOME or FLINK_LIB_DIR the
user set is kept (and the archive is then one of that classpath's).

The temporary directory: a local Flink extracts its RPC system's jar (24 MB) and keeps its MiniCluster's working
directory in the JVM's temporary directory, and deletes them only when the cluster is closed, which a process that
exits (or is killed) with its JVM never does: every local run left ~24 MB in /tmp. Each process's JVM gets a directory
of its own instead (jvm_temp_dir), deleted when the process exits, or by the next local JVM if it was killed.

A local run starts this JVM in the background (start_local_flink) while it does its own start-up work. What the JVM
prints on its stdout goes to this process's stderr: stdout is the CLI's output (`--format json`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
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
import zipfile
from pathlib import Path
from typing import Any

import pyflink
import pyflink.pyflink_gateway_server as launcher
from pyflink.java_gateway import get_gateway

log = logging.getLogger(__name__)

# What a local job imports before it can plan: PyFlink's Table API and its loopback Python worker (which imports
# Apache Beam). About 1.5 s of imports, the JVM's launch about 1 s more: start_local_flink overlaps the two.
LOCAL_JOB_MODULES = ("pyflink.table", "pyflink.datastream", "pyflink.fn_execution.beam.beam_worker_pool_service")


class ClassArchiveError(RuntimeError):
    pass


CACHE = Path(os.environ.get("CHAINFEAT_CACHE", Path.home() / ".cache" / "chainfeat"))
STDERR_FD = 2
_QUIET = "-Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off"
LOCAL_COLLECTOR = "-XX:+UseSerialGC"
ARCHIVE_NAME = "flink-classes-{identity}.jsa"  # one per Java + PyFlink install (archive_path)
PLANNER_LIB_NAME = "flink-lib-{identity}"  # one per Java + PyFlink install, as the archive (planner_lib_dir)
PLANNER_LOADER = "flink-table-planner-loader-*.jar"
PLANNER_JAR = "flink-table-planner.jar"  # what the loader wraps
UNUSED_ARCHIVE_DAYS = 30  # an archive no JVM mapped for this long belongs to a venv deleted or reinstalled
JVM_TEMP_PREFIX = "chainfeat-jvm-"  # jvm_temp_dir's, in the system's temporary directory
JVM_TEMP_LOCK = ".owner.lock"  # held by the process whose JVM uses the directory
JVM_TEMP_GRACE_S = 60  # a directory younger than this may be one a process is still setting up
LOCAL_JIT = ("-XX:Tier4InvocationThreshold=100000", "-XX:Tier4MinInvocationThreshold=10000",
             "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=800000")  # Java 17's defaults / 20


def _flink_home() -> Path:
    return Path(pyflink.__file__).resolve().parent


def _install_identity(*extra: str) -> str:
    flink_home = _flink_home()
    java = shutil.which(launcher.find_java_executable()) or ""  # the java PyFlink launches: JAVA_HOME's, else PATH's
    identity = [str(Path(java).resolve()) if java else ""]
    for jar in sorted([*flink_home.glob("lib/*.jar"), *flink_home.glob("opt/*.jar")]):
        stat = jar.stat()
        identity.append(f"{jar}:{stat.st_size}:{stat.st_mtime_ns}")
    if java:
        identity.append(str(Path(java).resolve().stat().st_mtime_ns))
    return hashlib.sha256("\n".join([*identity, *extra]).encode()).hexdigest()[:16]


def archive_path() -> Path:
    """Where the archive for this Java, PyFlink install and classpath (the FLINK_HOME and FLINK_LIB_DIR the JVM
    gets: call use_planner_lib first) lives; its name changes when any does."""
    classpath = f"lib {os.environ.get('FLINK_LIB_DIR', '')} home {os.environ.get('FLINK_HOME', '')}"
    return CACHE / "jvm" / ARCHIVE_NAME.format(identity=_install_identity(classpath))


def planner_lib_dir() -> Path:
    """The local JVM's lib directory for this Java and PyFlink install: PyFlink's lib/ with the planner jar in place of
    the planner loader (see the module's docstring)."""
    return CACHE / "jvm" / PLANNER_LIB_NAME.format(identity=_install_identity())


def use_planner_lib() -> None:
    """Give the JVMs this process starts (and its children, which inherit the variables) the lib directory with the
    planner on the classpath, building it on first use; not when the user chose a FLINK_HOME or FLINK_LIB_DIR."""
    if "FLINK_HOME" in os.environ or "FLINK_LIB_DIR" in os.environ:
        return
    lib = planner_lib_dir()
    if lib.is_dir() or build_planner_lib(lib):
        os.environ["FLINK_HOME"] = str(_flink_home())  # what PyFlink finds itself; then it keeps FLINK_LIB_DIR
        os.environ["FLINK_LIB_DIR"] = str(lib)
        with contextlib.suppress(OSError):  # in use: kept by prune_unused_archives
            os.utime(lib)


def build_planner_lib(target: Path) -> bool:
    """Make ``target``: a link to each jar of PyFlink's lib/ but the planner loader, and the planner jar the loader
    wraps; written beside and renamed into place whole, so concurrent first runs are safe. False when this PyFlink's
    loader is not of that shape (the JVM then keeps PyFlink's lib/) or the cache cannot be written."""
    lib = _flink_home() / "lib"
    loaders = sorted(lib.glob(PLANNER_LOADER))
    if len(loaders) != 1:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent,
                                         ignore_cleanup_errors=True) as partial:
            with zipfile.ZipFile(loaders[0]) as loader:
                if PLANNER_JAR not in loader.namelist():
                    return False
                loader.extract(PLANNER_JAR, partial)
            for jar in lib.glob("*.jar"):
                if jar != loaders[0]:
                    os.symlink(jar, Path(partial) / jar.name)
            os.chmod(partial, 0o755)
            with contextlib.suppress(OSError):  # another JVM's first run made it already: the same content
                os.rename(partial, target)
    except (OSError, zipfile.BadZipFile) as error:
        log.debug("no lib directory with the planner (%s): the JVM uses PyFlink's lib/", error)
        return False
    return target.is_dir()


def configure_local_jvm() -> None:
    """Have the JVM PyFlink starts in this process map the archive, if there is one, use the serial collector
    and start C2 later, with the planner on its classpath (use_planner_lib); call before PyFlink launches its
    gateway (options already in JVM_ARGS are kept)."""
    use_planner_lib()
    path = archive_path()
    # A temporary directory in JVM_ARGS that is a jvm_temp_dir came from the chainfeat process that started this one
    # (children inherit its variables): this process's JVM gets its own. One the user set is kept.
    options = [option for option in os.environ.get("JVM_ARGS", "").split()
               if not (option.startswith("-Djava.io.tmpdir=") and JVM_TEMP_PREFIX in option
                       and option != f"-Djava.io.tmpdir={jvm_temp_dir()}")]
    if not any(re.fullmatch(r"-XX:\+Use\w+GC", option) for option in options):
        options.append(LOCAL_COLLECTOR)
    if not any(re.match(r"-XX:(Tier|CompileThreshold)", option) for option in options):
        options += LOCAL_JIT
    if not any(option.startswith("-Djava.io.tmpdir=") for option in options):
        options.append(f"-Djava.io.tmpdir={jvm_temp_dir()}")
    if path.exists() and not any("SharedArchiveFile" in option or "ArchiveClassesAtExit" in option for option in options):
        options += [f"-XX:SharedArchiveFile={path}", *_QUIET.split()]
        with contextlib.suppress(OSError):  # in use: kept by prune_unused_archives (a read-only cache just skips it)
            os.utime(path)
    os.environ["JVM_ARGS"] = " ".join(options)
    _gateway_stdout_to_stderr()


_jvm_temp: tuple[Path, Any] | None = None  # this process's: the directory and its held lock file


def jvm_temp_dir() -> Path:
    """This process's JVMs' temporary directory (java.io.tmpdir), in the system's temporary directory: created on
    first use, held by this process through a lock on a file in it, and deleted when this process exits. Those of
    processes that ended without deleting theirs (kill -9) are deleted first."""
    global _jvm_temp
    if _jvm_temp is None:
        remove_abandoned_jvm_temp_dirs()
        directory = Path(tempfile.mkdtemp(prefix=JVM_TEMP_PREFIX))
        lock = open(directory / JVM_TEMP_LOCK, "w")  # noqa: SIM115 - held open until this process exits
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _jvm_temp = (directory, lock)
        atexit.register(_remove_jvm_temp_dir, directory, lock)
    return _jvm_temp[0]


def _remove_jvm_temp_dir(directory: Path, lock: Any) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    lock.close()


def remove_abandoned_jvm_temp_dirs(grace_s: float = JVM_TEMP_GRACE_S) -> list[Path]:
    """Delete the jvm_temp_dir directories whose process has ended (no process holds its lock) and that are older
    than ``grace_s`` (a directory being created has no lock yet); returns what was deleted."""
    removed = []
    cutoff = time.time() - grace_s
    for directory in Path(tempfile.gettempdir()).glob(f"{JVM_TEMP_PREFIX}*"):
        try:
            if not directory.is_dir() or directory.stat().st_mtime > cutoff:
                continue
            with open(directory / JVM_TEMP_LOCK, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: its process holds it
                shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        except OSError:
            continue
    return removed


def _gateway_stdout_to_stderr() -> None:
    """The JVM PyFlink launches shares this process's stdout, so whatever it prints (a JVM option's log, a Flink
    component writing to System.out) lands in the output scripts parse (`--format json`). Its launcher offers no
    choice, so its Popen gets stderr for stdout."""
    if getattr(launcher.Popen, "gives_stderr_for_stdout", False):
        return
    popen = launcher.Popen

    def popen_with_stderr_for_stdout(*args, **kwargs):
        kwargs.setdefault("stdout", STDERR_FD)
        return popen(*args, **kwargs)

    popen_with_stderr_for_stdout.gives_stderr_for_stdout = True
    launcher.Popen = popen_with_stderr_for_stdout


def prune_unused_archives(keep: Path, unused_days: float = UNUSED_ARCHIVE_DAYS) -> list[Path]:
    """Delete the class archives beside ``keep`` and the lib directories (planner_lib_dir) that no local JVM used for
    ``unused_days`` (each Java or PyFlink install, each venv, has its own: ~160 MB and ~50 MB); returns what was
    deleted."""
    cutoff = time.time() - unused_days * 86400
    deleted = []
    in_use = {keep, planner_lib_dir()}
    lib_dirs = PLANNER_LIB_NAME.format(identity="*")
    for entry in [*keep.parent.glob(ARCHIVE_NAME.format(identity="*")), *keep.parent.glob(lib_dirs),
                  *keep.parent.glob(f".{lib_dirs}")]:  # and what a JVM killed while building one left
        with contextlib.suppress(OSError):
            if entry not in in_use and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                deleted.append(entry)
    return deleted


def start_local_flink() -> threading.Thread:
    """Launch this process's JVM (PyFlink's gateway, with configure_local_jvm's options) in one thread while
    another imports LOCAL_JOB_MODULES, so the JVM starts while Python imports. Returns a thread that ends when
    both are done: join it before this thread imports PyFlink (concurrent imports of one package can see it half
    initialised), and before the process exits (a JVM still waiting for its Python side prints that it gave up).
    If the launch failed, the next get_gateway() launches again and raises the error itself."""
    configure_local_jvm()

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
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="chainfeat-prepare-") as scratch:
        warm_up = subprocess.run(
            [sys.executable, "-m", "job.cli", "run", "--data-dir", scratch, "--speed", "0", "--exit-when-done",
             "--dashboard-port", "0", "--featurestore-port", "0", "--format", "json"],
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
