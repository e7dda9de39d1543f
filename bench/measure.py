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


def rss_by_name(pid: int) -> dict[str, int]:
    """Resident bytes of a process tree, summed per command name (java, python...)."""
    totals: dict[str, int] = {}
    for process in [pid, *descendants(pid)]:
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


def cpu_by_process(pid: int) -> dict[int, tuple[str, float]]:
    """Per process of a tree: its name (java, python...) and the CPU seconds it has used so far (user + system)."""
    found = {}
    for process in [pid, *descendants(pid)]:
        try:
            text = Path(f"/proc/{process}/stat").read_text()
        except OSError:
            continue
        name, rest = text.split(" (", 1)[1].rsplit(") ", 1)
        fields = rest.split()
        name = "java" if name == "java" else "python" if name.startswith("python") else name
        found[process] = (name, (int(fields[11]) + int(fields[12])) * _TICK_S)
    return found


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

    def cpu_line(self) -> str:
        by_name: dict[str, float] = {}
        for name, seconds in self.cpu.values():
            by_name[name] = by_name.get(name, 0.0) + seconds
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(by_name.items(), key=lambda item: -item[1]))
        return f"CPU time of the process tree: {sum(by_name.values()):.1f} s ({parts})"

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
    """Run ``command`` to its end, timing it and sampling its process tree's memory every ``every_s``."""
    samples: list[tuple[float, dict[str, int]]] = []
    cpu: dict[int, tuple[str, float]] = {}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            samples.append((time.perf_counter() - started, rss_by_name(process.pid)))
            cpu.update(cpu_by_process(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return Measured(elapsed, process.returncode, stdout, stderr, samples, cpu, process.pid)
