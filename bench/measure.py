"""What the benchmarks measure about a chainfeat process: its wall time, and its tree's resident memory and CPU time,
sampled (CPU time says more than wall time on a machine shared with other work)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import descendants


def process_tree(pid: int) -> list[int]:
    """``pid`` and the processes below it (one scan of /proc: a sample reads the tree once for all it measures)."""
    return [pid, *descendants(pid)]


def rss_by_name(tree: list[int]) -> dict[str, int]:
    """Resident bytes of a process tree (process_tree), summed per command name (java, python...)."""
    totals: dict[str, int] = {}
    for process in tree:
        try:
            text = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
        name = fields.get("Name", "?").strip()
        name = "java" if name == "java" else "python" if name.startswith("python") else name
        totals[name] = totals.get(name, 0) + int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    return totals


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _name_and_cpu(stat: Path) -> tuple[str, float]:
    """A process's or thread's name and the CPU seconds it has used so far (user + system), from its /proc stat."""
    name, rest = stat.read_text().split(" (", 1)[1].rsplit(") ", 1)
    fields = rest.split()
    return name, (int(fields[11]) + int(fields[12])) * _TICK_S


def cpu_by_process(tree: list[int]) -> dict[int, tuple[str, float]]:
    """Per process of a tree (process_tree): its name (java, python...) and the CPU seconds it has used so far (user +
    system)."""
    found = {}
    for process in tree:
        try:
            name, seconds = _name_and_cpu(Path(f"/proc/{process}/stat"))
        except OSError:
            continue
        name = "java" if name == "java" else "python" if name.startswith("python") else name
        found[process] = (name, seconds)
    return found


def _process_label(process: int, name: str) -> str | None:
    """java, or a Python process by what it runs (``-m module`` or its script's name): the run, the feature store,
    a Python worker. None while its command line cannot be read (an exiting process has none)."""
    if not name.startswith("python"):  # python, python3, python3.11
        return name
    try:
        argv = Path(f"/proc/{process}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if not argv[0]:
        return None
    if "-m" in argv[:-1]:
        return f"python -m {argv[argv.index('-m') + 1]}"
    scripts = [Path(arg).name for arg in argv[1:] if arg.endswith(".py")]
    return f"python {scripts[0]}" if scripts else name


def cpu_by_thread(tree: list[int], labels: dict[int, str]) -> dict[tuple[int, int], tuple[str, str, float]]:
    """Per thread of a process tree (process_tree), keyed by (process, thread id): its process's label
    (_process_label, kept in ``labels`` from the first time it could be read), its own name as Linux keeps it (15
    characters: 'C2 CompilerThre', 'Source Data Fet', a Flink task's operator chain) and the CPU seconds it has used
    so far (user + system)."""
    found = {}
    for process in tree:
        try:
            if process not in labels:
                label = _process_label(process, Path(f"/proc/{process}/comm").read_text().strip())
                if label is None:
                    continue
                labels[process] = label
            threads = list(Path(f"/proc/{process}/task").iterdir())
        except OSError:
            continue
        label = labels[process]
        for thread in threads:
            try:
                name, seconds = _name_and_cpu(thread / "stat")
            except OSError:
                continue
            found[(process, int(thread.name))] = (label, name, seconds)
    return found


# Threads by role, from their names: the JVM's JIT compilers and its collector (with safepoint work). Java 17.
_JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
_GC_THREADS = ("VM Thread", "GC Thread", "VM Periodic Tas")


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    rss: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (seconds since start, rss_by_name)
    # CPU seconds per process of the tree as last sampled (a process's last half second before it exits is missed)
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    pid: int = 0  # the command's own process (the root of the tree)
    # CPU seconds per thread as last sampled (cpu_by_thread; a thread's last half second before it ends is missed)
    threads: dict[tuple[int, int], tuple[str, str, float]] = field(default_factory=dict)

    def cpu_line(self) -> str:
        by_name: dict[str, float] = {}
        for name, seconds in self.cpu.values():
            by_name[name] = by_name.get(name, 0.0) + seconds
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(by_name.items(), key=lambda item: -item[1]))
        return f"CPU time of the process tree: {sum(by_name.values()):.1f} s ({parts})"

    def thread_lines(self, top: int = 10) -> list[str]:
        """Where the CPU went, by thread: the JVM's JIT compilers and collector, then the busiest threads (a Python
        process's threads as one: Python names none of them)."""
        by_thread: dict[tuple[str, str], float] = {}
        for label, name, seconds in self.threads.values():
            key = (label, label if label.startswith("python") else name)
            by_thread[key] = by_thread.get(key, 0.0) + seconds
        total = sum(by_thread.values())
        if not total:
            return []
        jit = sum(seconds for (label, name), seconds in by_thread.items() if label == "java" and name in _JIT_THREADS)
        gc = sum(seconds for (label, name), seconds in by_thread.items() if label == "java" and name in _GC_THREADS)
        lines = [f"CPU by thread ({total:.1f} s sampled): the JVM's JIT compilers {jit:.1f} s ({jit / total:.0%}), "
                 f"its collector and safepoints {gc:.1f} s ({gc / total:.0%}); the busiest (a Flink task's thread is "
                 "named after its operator chain, cut to 15 characters):"]
        busiest = sorted(by_thread.items(), key=lambda item: -item[1])
        for (label, name), seconds in busiest[:top]:
            shown = label if name == label else f"{label}: {name}"
            lines.append(f"    {shown:<52} {seconds:5.1f} s {seconds / total:6.1%}")
        rest = sum(seconds for _key, seconds in busiest[top:])
        if rest:
            lines.append(f"    {f'the other {len(busiest) - top} threads':<52} {rest:5.1f} s {rest / total:6.1%}")
        return lines

    def memory_lines(self) -> list[str]:
        java = [sample["java"] for _t, sample in self.rss if "java" in sample]
        python = [sample.get("python", 0) for _t, sample in self.rss]
        lines = []
        if java:
            quarter = [java[min(len(java) - 1, int(len(java) * q))] / 2**20 for q in (0.25, 0.5, 0.75, 1.0)]
            lines.append(f"JVM resident memory: peak {max(java) / 2**20:,.0f} MiB; at 25/50/75/100 % of the run "
                         + " / ".join(f"{value:,.0f}" for value in quarter) + " MiB")
        if python:
            lines.append(f"Python processes: peak {max(python) / 2**20:,.0f} MiB")
        return lines


def run_measured(command: list[str], cwd: Path, env: dict[str, str], every_s: float = 0.5) -> Measured:
    """Run ``command`` to its end, timing it and sampling its process tree's memory and CPU (per process and per
    thread) every ``every_s``."""
    samples: list[tuple[float, dict[str, int]]] = []
    cpu: dict[int, tuple[str, float]] = {}
    threads: dict[tuple[int, int], tuple[str, str, float]] = {}
    labels: dict[int, str] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            tree = process_tree(process.pid)
            samples.append((time.perf_counter() - started, rss_by_name(tree)))
            cpu.update(cpu_by_process(tree))
            threads.update(cpu_by_thread(tree, labels))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return Measured(elapsed, process.returncode, stdout, stderr, samples, cpu, process.pid, threads)
