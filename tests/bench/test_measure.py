"""bench/measure.py on a real process tree: the CPU a named thread uses is found under its name and its process's."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.measure import run_measured

# A child that names one thread (Linux lets a process rename its own threads) and keeps it busy, then keeps it idle
# long enough for samples to see the busy part whole, even on a loaded machine.
BUSY_CHILD = """
import threading, time

def busy():
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
        comm.write("busy-worker")
    end = time.thread_time() + 0.6
    while time.thread_time() < end:
        pass
    time.sleep(1.0)

worker = threading.Thread(target=busy)
worker.start()
worker.join()
"""


def test_a_named_threads_cpu_is_reported_under_its_name(tmp_path) -> None:
    script = tmp_path / "busy_child.py"
    script.write_text(BUSY_CHILD)
    measured = run_measured([sys.executable, str(script)], Path(tmp_path), {}, every_s=0.1)
    assert measured.returncode == 0, measured.stderr
    busy = [seconds for label, name, seconds in measured.threads.values() if name == "busy-worker"]
    assert len(busy) == 1 and 0.55 <= busy[0] <= 1.5, measured.threads
    # The interpreter's name (python, python3, python3.11) gives way to what it runs.
    labels = {label for label, _name, _seconds in measured.threads.values()}
    assert labels == {"python busy_child.py"}

    lines = measured.thread_lines(top=1)
    assert "JIT compilers 0.0 s" in lines[0]  # no JVM in this tree
    # Python's threads count as their process: the busiest row is the process, with the worker's CPU in it.
    process_row = lines[1].split()
    assert process_row[:2] == ["python", "busy_child.py"] and float(process_row[2]) >= busy[0] - 0.05  # shown to 0.1 s
