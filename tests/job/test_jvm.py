"""The local JVM (job/local/jvm.py): its options (the class archive, the serial collector, the later C2; a user's own kept),
its lib directory with the planner on the classpath, and its start in the background."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from job.local import jvm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def archive(tmp_path, monkeypatch):
    path = tmp_path / "flink-classes.jsa"
    path.write_bytes(b"")
    monkeypatch.setattr(jvm, "archive_path", lambda: path)
    return path


def test_the_local_jvm_maps_the_archive_and_uses_the_serial_collector(archive, monkeypatch) -> None:
    monkeypatch.setenv("JVM_ARGS", "-Xmx2g")
    jvm.configure_local_jvm()
    options = os.environ["JVM_ARGS"].split()
    assert options[0] == "-Xmx2g"
    assert "-XX:+UseSerialGC" in options and f"-XX:SharedArchiveFile={archive}" in options
    assert set(jvm.LOCAL_JIT) <= set(options)
    jvm.configure_local_jvm()  # a second call adds nothing
    assert os.environ["JVM_ARGS"].split() == options


def test_a_collector_archive_jit_or_temporary_directory_the_user_chose_is_kept(archive, monkeypatch) -> None:
    chosen = ("-XX:+UseG1GC -XX:ArchiveClassesAtExit=/tmp/x.jsa -XX:Tier4InvocationThreshold=5000 "
              "-Djava.io.tmpdir=/var/tmp")
    monkeypatch.setenv("JVM_ARGS", chosen)
    jvm.configure_local_jvm()
    assert os.environ["JVM_ARGS"] == chosen


def test_a_temporary_directory_inherited_from_another_chainfeat_process_is_replaced(archive, monkeypatch) -> None:
    """A chainfeat process's children inherit its JVM_ARGS: their JVMs get directories of their own, deleted with
    them, not their parent's."""
    monkeypatch.setenv("JVM_ARGS", f"-Xmx2g -Djava.io.tmpdir=/tmp/{jvm.JVM_TEMP_PREFIX}parent")
    jvm.configure_local_jvm()
    options = os.environ["JVM_ARGS"].split()
    assert [option for option in options if "tmpdir" in option] == [f"-Djava.io.tmpdir={jvm.jvm_temp_dir()}"]


def test_a_mapped_archive_is_marked_used_and_archives_unused_for_a_month_are_deleted(archive, monkeypatch) -> None:
    monkeypatch.delenv("JVM_ARGS", raising=False)
    month_ago = time.time() - 31 * 86400
    os.utime(archive, (month_ago, month_ago))
    jvm.configure_local_jvm()  # maps it: used now
    assert archive.stat().st_mtime > time.time() - 60
    stale, recent = archive.with_name("flink-classes-0000.jsa"), archive.with_name("flink-classes-1111.jsa")
    for other, mtime in ((stale, month_ago), (recent, time.time() - 86400)):
        other.write_bytes(b"")
        os.utime(other, (mtime, mtime))
    unrelated = archive.with_name("notes.txt")
    unrelated.write_text("kept")
    os.utime(unrelated, (month_ago, month_ago))
    stale_lib = archive.with_name(jvm.PLANNER_LIB_NAME.format(identity="0000"))
    stale_lib.mkdir()
    (stale_lib / "flink-dist.jar").symlink_to(archive)
    os.utime(stale_lib, (month_ago, month_ago))
    assert sorted(jvm.prune_unused_archives(archive)) == sorted([stale, stale_lib])
    assert archive.exists() and recent.exists() and unrelated.exists() and not stale.exists() and not stale_lib.exists()


def test_the_planner_lib_holds_pyflink_s_jars_with_the_planner_in_place_of_its_loader(tmp_path) -> None:
    """Built from the installed PyFlink: every jar of its lib/ but the loader, linked, and the planner jar the
    loader wraps; building it again (a concurrent first run) leaves it as it is."""
    pyflink_lib = Path(jvm.pyflink.__file__).resolve().parent / "lib"
    (loader,) = pyflink_lib.glob(jvm.PLANNER_LOADER)
    target = tmp_path / "lib"
    assert jvm.build_planner_lib(target)
    assert sorted(path.name for path in target.iterdir()) == sorted(
        [jvm.PLANNER_JAR, *(jar.name for jar in pyflink_lib.glob("*.jar") if jar != loader)])
    assert all((target / jar.name).resolve() == jar for jar in pyflink_lib.glob("*.jar") if jar != loader)
    with zipfile.ZipFile(loader) as wrapped:
        assert (target / jvm.PLANNER_JAR).stat().st_size == wrapped.getinfo(jvm.PLANNER_JAR).file_size
    assert jvm.build_planner_lib(target)
    assert len(list(target.iterdir())) == len(list(pyflink_lib.glob("*.jar")))
    assert [path.name for path in tmp_path.iterdir()] == ["lib"]  # no partial directory left


def test_a_flink_home_or_lib_dir_the_user_chose_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("FLINK_HOME", "/opt/flink")
    monkeypatch.delenv("FLINK_LIB_DIR", raising=False)
    jvm.use_planner_lib()
    assert os.environ["FLINK_HOME"] == "/opt/flink" and "FLINK_LIB_DIR" not in os.environ


def test_the_archive_belongs_to_the_java_pyflink_launches_java_home_s_before_path_s(tmp_path, monkeypatch) -> None:
    """An archive built by one Java is refused by another (silently, -Xshare:auto): it is named after the java PyFlink
    starts, which is JAVA_HOME's when that is set, whatever java PATH finds first."""
    other_java = tmp_path / "other-jdk" / "bin" / "java"
    other_java.parent.mkdir(parents=True)
    other_java.write_text("#!/bin/sh\n")
    other_java.chmod(0o755)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    from_path = jvm.archive_path()
    monkeypatch.setenv("JAVA_HOME", str(other_java.parent.parent))
    from_java_home = jvm.archive_path()
    assert from_java_home != from_path
    os.utime(other_java, ns=(time.time_ns(), time.time_ns() + 10**9))  # that Java updated in place: a new archive
    assert jvm.archive_path() not in {from_path, from_java_home}


def python_with_its_own_jvm(program: str, jvm_args: str | None = None,
                            temp_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``program`` run by a Python process of its own, which launches its own gateway JVM (this one's JVM may be
    running already, and PYFLINK_* variables would point at it); ``jvm_args``: its JVM_ARGS (default: none);
    ``temp_dir``: its TMPDIR."""
    env = {name: value for name, value in os.environ.items() if name != "JVM_ARGS" and not name.startswith("PYFLINK_")}
    if jvm_args is not None:
        env["JVM_ARGS"] = jvm_args
    if temp_dir is not None:
        env["TMPDIR"] = str(temp_dir)
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_a_local_run_s_jvm_starts_in_the_background_with_the_serial_collector_the_later_c2_and_the_planner() -> None:
    """The real gateway JVM, started as a local run starts it (start_local_flink): launched by a thread of its
    own while another imports PyFlink's Python side, both done once the returned thread ends; its collectors are
    the serial ones, its C2 thresholds LOCAL_JIT's, and the planner's classes come from the planner lib's jar on
    the classpath (behind the loader they are not on it at all). (A process of its own: this one's JVM may be running
    already, and PYFLINK_* variables would point at it.)"""
    program = ("import sys\n"
               "from job.local.jvm import LOCAL_JOB_MODULES, start_local_flink\n"
               "start_local_flink().join()\n"
               "print(all(module in sys.modules for module in LOCAL_JOB_MODULES))\n"
               "import pyflink.java_gateway\n"
               "print(pyflink.java_gateway._gateway is not None)  # launched before this thread asked for it\n"
               "java = pyflink.java_gateway.get_gateway().jvm\n"
               "hotspot = java.java.lang.management.ManagementFactory.getPlatformMXBean(\n"
               "    java.java.lang.Class.forName('com.sun.management.HotSpotDiagnosticMXBean'))\n"
               "print(' '.join(f'-XX:{name}={hotspot.getVMOption(name).getValue()}' for name in\n"
               "               ('Tier4InvocationThreshold', 'Tier4MinInvocationThreshold', 'Tier4CompileThreshold',\n"
               "                'Tier4BackEdgeThreshold')))\n"
               "beans = java.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()\n"
               "print(sorted(bean.getName() for bean in beans))\n"
               "planner = java.java.lang.Class.forName('org.apache.flink.table.planner.delegation.PlannerBase')\n"
               "print(planner.getProtectionDomain().getCodeSource().getLocation().getPath())\n")
    result = python_with_its_own_jvm(program)
    imported, launched, jit, collectors, planner = result.stdout.strip().splitlines()[-5:]
    assert imported == "True" and launched == "True"
    assert collectors == "['Copy', 'MarkSweepCompact']"
    assert jit.split() == list(jvm.LOCAL_JIT)
    assert planner == str(jvm.planner_lib_dir() / jvm.PLANNER_JAR)  # on the classpath, not behind the loader


def test_what_the_jvm_prints_goes_to_stderr_not_into_the_output() -> None:
    """A JVM option that logs to stdout (here -Xlog:gc) must not mix into what the CLI prints on stdout (its
    --format json)."""
    program = ("from job.local.jvm import configure_local_jvm\n"
               "configure_local_jvm()\n"
               "from pyflink.java_gateway import get_gateway\n"
               "get_gateway().jvm.java.lang.System.out.println('from System.out')\n"
               "print('only this')\n")
    result = python_with_its_own_jvm(program, jvm_args="-Xlog:gc")
    assert result.stdout == "only this\n"
    assert "[gc" in result.stderr and "from System.out" in result.stderr


def test_a_local_flink_keeps_its_temporary_files_in_a_directory_of_its_own_deleted_when_the_process_exits(
        tmp_path) -> None:
    """A local Flink extracts its RPC system's jar (24 MB) and its MiniCluster's working directory into the JVM's
    temporary directory and deletes neither when its process exits: before jvm_temp_dir, every local run left them
    in /tmp. A real MiniCluster runs a query in a process of its own; its files are in its own directory, which is
    gone once the process has exited."""
    program = ("import os\n"
               "from job.local.jvm import configure_local_jvm, jvm_temp_dir\n"
               "configure_local_jvm()\n"
               "from pyflink.table import EnvironmentSettings, TableEnvironment\n"
               "from pyflink.java_gateway import get_gateway\n"
               "tables = TableEnvironment.create(EnvironmentSettings.in_batch_mode())\n"
               "with tables.execute_sql('SELECT 1').collect() as rows:\n"
               "    print(list(rows))\n"
               "print(get_gateway().jvm.java.lang.System.getProperty('java.io.tmpdir'))\n"
               "print(' '.join(sorted(os.listdir(jvm_temp_dir()))))\n")
    result = python_with_its_own_jvm(program, temp_dir=tmp_path)
    rows, jvm_temp, files = result.stdout.strip().splitlines()[-3:]
    assert rows == "[<Row(1)>]"
    assert Path(jvm_temp).parent == tmp_path and Path(jvm_temp).name.startswith(jvm.JVM_TEMP_PREFIX)
    assert any(name.startswith("flink-rpc") and name.endswith(".jar") for name in files.split())
    assert any(name.startswith("minicluster_") for name in files.split())
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_directories_of_processes_that_ended_are_deleted_those_in_use_kept(
        tmp_path, monkeypatch) -> None:
    """A process killed with kill -9 cannot delete its JVM's directory: the next local JVM does, unless a live
    process holds the directory's lock, or it is younger than the grace (its process may be creating it)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    long_ago = time.time() - 2 * jvm.JVM_TEMP_GRACE_S

    def jvm_temp(name: str, age_s: float | None = None) -> Path:
        directory = tmp_path / f"{jvm.JVM_TEMP_PREFIX}{name}"
        directory.mkdir()
        (directory / jvm.JVM_TEMP_LOCK).touch()
        (directory / "flink-rpc-akka.jar").write_bytes(b"jar")
        if age_s is not None:
            os.utime(directory, (age_s, age_s))
        return directory

    abandoned, in_use, young = jvm_temp("abandoned", long_ago), jvm_temp("in-use", long_ago), jvm_temp("young")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"lock = open({str(in_use / jvm.JVM_TEMP_LOCK)!r}, 'a')\n"
         "fcntl.flock(lock, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        os.utime(in_use, (long_ago, long_ago))
        assert jvm.remove_abandoned_jvm_temp_dirs() == [abandoned]
    finally:
        holder.kill()
        holder.wait()
    assert not abandoned.exists() and in_use.exists() and young.exists()
    assert jvm.remove_abandoned_jvm_temp_dirs() == [in_use]  # its process has ended
