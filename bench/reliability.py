"""The reliability proof, rerunnable: kill -9 trials, feature-store outage trials and a fuzz corpus, each run as a
user runs `chainfeat run` and checked against the independent reference (tests/reference.py).

    .venv/bin/python bench/reliability.py                                   # the full run (~45 min on 2 cores)
    .venv/bin/python bench/reliability.py --kill-trials 0 --interrupt-trials 1 --outage-trials 1 --outage-kinds drop \
        --fuzz-lines 2000                                                   # the fast subset make test runs

- kill -9: `chainfeat run --speed 12 --exit-when-done` on a 9-minute synthetic recording is killed with SIGKILL
  at a random moment of its run (every other trial its whole process group, else the run's own process alone: its JVM
  and Python workers must then exit by themselves within 30 s), then the same command runs again to the end.
- Ctrl-C: the same run gets SIGINT (its process group, as from a terminal) at a random moment; it must stop with
  a savepoint (exit 130) within 2 minutes, leave no process behind, and the same command resume to the end.
- store outage: the run writes to a feature store this script serves; once two windows are written, the store
  fails every write for a while (kinds: error = 503 ServiceUnavailable, throttle = 400 ThrottlingException,
  drop = connection closed, slow = the answer comes after the writer's read timeout), long enough to exhaust
  the writer's retry time (3 s here) and force Flink to restart the job from its checkpoint.
- fuzz: a recording with malformed input of more than 20 kinds mixed in (broken transactions inside polls,
  broken recording lines: not JSON, bad UTF-8, NUL bytes, 100,000-deep nesting, a 5 MB line, ...), replayed
  at speed 0: every malformed entry must be one dead-letter line, and the features those of the clean recording.

A trial is exact when the run exits 0, nothing is late, and the offline store (each window once) and the online
store equal the reference. Printed per kind of fault: trials exact / total, job restarts, offline rows written
twice, hangs (a run past its deadline), leftover processes; for the fuzz, dead-letter lines / malformed injected.
Exit code 1 when anything is not exact.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.blockchain.source import read_recording, shift_poll  # noqa: E402
from connectors.blockchain.synthetic import write_recording  # noqa: E402
from connectors.featurestore.local.offline import run_query  # noqa: E402
from connectors.featurestore.local.server import LocalFeatureStoreServer  # noqa: E402
from job.local.data_dir import DataDir  # noqa: E402
from job.local.minicluster import free_port  # noqa: E402
from tests.reference import expected_results  # noqa: E402
from tests.support import GROUP, SHORT_PROFILE, alive, descendants, online_rows, properties_with_store, replay_shift  # noqa: E402
from tests.support.fuzz import fuzzed_recording  # noqa: E402

RUN_TIMEOUT_S = 600  # a run still going after this long is a hang
LEFTOVER_WAIT_S = 30  # a killed run's JVM and workers must be gone by then
STOP_TIMEOUT_S = 120  # Ctrl-C: the run must have stopped with its savepoint by then
RETRY_TIMEOUT_S = 3  # the writer's retry time in outage trials: short, so that an outage forces a restart
FEATURES_SQL = f"SELECT tx_minute, event_time, total_nb_trx_1min, total_fee_1min, avg_fee_1min FROM {GROUP}"
# How each kind of outage is injected (POST /_chainfeat/faults of the store) and how many writes it fails.
OUTAGES: dict[str, dict[str, Any]] = {
    "error": {"kind": "error", "status": 503, "code": "ServiceUnavailable", "count": 13},
    "throttle": {"kind": "error", "status": 400, "code": "ThrottlingException", "count": 13},
    "drop": {"kind": "drop", "count": 13},
    "slow": {"kind": "slow", "delay_s": 32, "count": 2},  # the writer's read timeout is 30 s
}


def left_behind(pids: list[int]) -> int:
    """How many of a stopped run's processes (its JVM and Python workers) are still alive LEFTOVER_WAIT_S later;
    those are killed then, so that the next trial starts clean."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    remaining = alive(pids)
    for pid in remaining:
        os.kill(pid, signal.SIGKILL)
    return len(remaining)


@dataclass
class Trial:
    fault: str
    exact: bool = False
    restarts: int = 0
    rows_twice: int = 0
    hang: bool = False
    leftover: int = 0
    detail: str = ""
    seconds: float = 0.0
    dead_letter: int = 0
    injected: int = 0
    injected_kinds: dict[str, int] = field(default_factory=dict)
    resumed: bool = False  # the run after the fault restored the job from a checkpoint or savepoint


class Bench:
    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.recording = work / "recording.jsonl"
        if not self.recording.exists():
            write_recording(self.recording, SHORT_PROFILE)
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("PYFLINK_")}
        self.env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        self.env.pop("CHAINFEAT_FEATURESTORE_URL", None)

    # ---- running chainfeat --------------------------------------------------------------------------------

    def command(self, data_dir: Path, recording: Path, speed: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "job.cli", "run", "--data-dir", str(data_dir), "--recording", str(recording),
                "--speed", speed, "--exit-when-done", "--format", "json", "--dashboard-port", str(free_port()),
                "--featurestore-port", "0", *extra]

    def finish(self, command: list[str], trial: Trial) -> dict[str, Any] | None:
        """Run ``command`` to its end; the summary, or None (the trial's detail says why)."""
        run = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
        try:
            stdout, stderr = run.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            trial.hang = True
            trial.detail = f"still running after {RUN_TIMEOUT_S} s"
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            return None
        if run.returncode != 0:
            trial.detail = f"exit {run.returncode}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
            return None
        return json.loads(stdout)

    def undisturbed_run_s(self) -> float:
        """How long the trials' run takes with nothing done to it: the window their kill and Ctrl-C moments fall in,
        so that they land in start-up, replay and drain alike rather than after the run has ended."""
        trial = Trial("undisturbed run")
        started = time.monotonic()
        if self.finish(self.command(self.work / "undisturbed", self.recording, "12"), trial) is None:
            raise SystemExit(f"an undisturbed run failed, so no trial can be judged: {trial.detail}")
        return time.monotonic() - started

    def judge(self, trial: Trial, summary: dict[str, Any] | None, store: Path, store_url: str | None,
              recording: Path, run_dir: Path) -> None:
        """Exact: a summary (exit 0), nothing late, offline (each window once) and online = the reference."""
        if summary is None:
            return
        trial.restarts = summary.get("job_restarts", 0)
        trial.resumed = bool(summary.get("restored_from"))
        shift = replay_shift(run_dir, recording)
        expected = expected_results(
            [(poll.polled_at, json.loads(poll.page)) for poll in (shift_poll(p, shift) for p in read_recording(recording))]
        ).complete_features  # the edge rule: only windows the polls cover completely are written
        columns, rows = run_query(store, FEATURES_SQL)
        offline: dict[str, dict] = {}
        for row in rows:
            record = dict(zip(columns, row))
            if record["tx_minute"] in offline:
                trial.rows_twice += 1
            offline[record["tx_minute"]] = record
        online = online_rows(store_url, GROUP) if store_url else None
        problems = []
        if summary["late"]:
            problems.append(f"{summary['late']} late")
        if offline != expected:
            problems.append(f"offline {len(offline)} windows, {sum(offline.get(k) != v for k, v in expected.items())} "
                            f"differ from the reference's {len(expected)}")
        if online is not None and online != expected:
            problems.append("online differs from the reference")
        trial.exact = not problems
        trial.detail = "; ".join(problems)

    # ---- the trials ---------------------------------------------------------------------------------------

    def kill_trial(self, number: int, window_s: float) -> Trial:
        trial = Trial("kill -9 (process group)" if number % 2 else "kill -9 (run process)")
        run_dir = self.work / f"kill-{number}"
        command = self.command(run_dir, self.recording, "12")
        started = time.monotonic()
        first = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        moment = self.rng.uniform(0, window_s)
        below: list[int] = []
        while time.monotonic() - started < moment and first.poll() is None:
            below = descendants(first.pid) or below
            time.sleep(0.2)
        if first.poll() is None:
            below = descendants(first.pid) or below
            if number % 2:
                os.killpg(first.pid, signal.SIGKILL)
            else:
                first.send_signal(signal.SIGKILL)
        first.wait()
        trial.leftover = left_behind(below)
        summary = self.finish(command, trial)
        self.judge(trial, summary, DataDir(run_dir).featurestore, None, self.recording, run_dir)
        trial.detail = f"killed at {moment:.1f} s" + (f"; {trial.detail}" if trial.detail else "")
        trial.seconds = time.monotonic() - started
        return trial

    def interrupt_trial(self, number: int, window_s: float) -> Trial:
        """Ctrl-C as a terminal sends it (SIGINT to the run's process group) at a random moment: the run must stop
        with a savepoint within its deadline (exit 130, or 0 if it was done), and the same command finish exactly."""
        trial = Trial("Ctrl-C and resume")
        run_dir = self.work / f"interrupt-{number}"
        command = self.command(run_dir, self.recording, "12")
        started = time.monotonic()
        first = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        moment = self.rng.uniform(0, window_s)
        while time.monotonic() - started < moment and first.poll() is None:
            time.sleep(0.2)
        below = descendants(first.pid)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGINT)
        try:
            _, stderr = first.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
            _, stderr = first.communicate()
            trial.hang, trial.detail = True, f"Ctrl-C at {moment:.1f} s: still running {STOP_TIMEOUT_S} s later"
            trial.seconds = time.monotonic() - started
            return trial
        trial.leftover = left_behind(below)
        problems = [] if first.returncode in (0, 130) else [f"the interrupted run exited {first.returncode}: "
                                                             f"{stderr.strip().splitlines()[-1:] }"]
        if "Traceback" in stderr:
            problems.append("a traceback after Ctrl-C")
        summary = self.finish(command, trial)
        self.judge(trial, summary, DataDir(run_dir).featurestore, None, self.recording, run_dir)
        trial.exact = trial.exact and not problems
        trial.detail = "; ".join([f"Ctrl-C at {moment:.1f} s (exit {first.returncode})", *problems] +
                                 ([trial.detail] if trial.detail else []))
        trial.seconds = time.monotonic() - started
        return trial

    def outage_trial(self, number: int, kind: str) -> Trial:
        trial = Trial(f"store outage: {kind}")
        started = time.monotonic()
        root = self.work / f"outage-{number}"
        with LocalFeatureStoreServer(root / "store", port=0, flush_interval_s=0.2).start() as server:
            properties = properties_with_store(server.url, root, retry_timeout_s=RETRY_TIMEOUT_S)
            run_dir = root / "run"
            command = self.command(run_dir, self.recording, "12", "--properties", str(properties))
            # Files, not pipes: the run's live view must never block on a pipe nobody reads meanwhile.
            stdout_file, stderr_file = open(root / "stdout", "w+"), open(root / "stderr", "w+")
            run = subprocess.Popen(command, env=self.env, stdout=stdout_file, stderr=stderr_file, text=True,
                                   start_new_session=True)
            try:
                armed = False
                deadline = time.monotonic() + RUN_TIMEOUT_S
                while not armed and run.poll() is None and time.monotonic() < deadline:
                    groups = [entry["FeatureGroupName"] for entry in server.store.list_feature_groups()]
                    if GROUP in groups and server.store.online_count(GROUP) >= 2:
                        fault = {**OUTAGES[kind], "writes_only": True}
                        request = urllib.request.Request(f"{server.url}/_chainfeat/faults", method="POST",
                                                         data=json.dumps(fault).encode())
                        urllib.request.urlopen(request, timeout=10).close()
                        armed = True
                    time.sleep(0.3)
                run.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                trial.hang, trial.detail = True, f"still running after {RUN_TIMEOUT_S} s"
            stdout, stderr = (Path(handle.name).read_text() for handle in (stdout_file, stderr_file))
            stdout_file.close()
            stderr_file.close()
            summary = None
            if not trial.hang:
                if run.returncode == 0:
                    summary = json.loads(stdout)
                else:
                    trial.detail = f"exit {run.returncode}: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}"
            if not armed and not trial.hang:
                trial.detail = "the run ended before two windows were written: no outage injected"
                summary = None
            server.store.flush_offline()
            self.judge(trial, summary, root / "store", server.url, self.recording, run_dir)
        if summary is not None and trial.restarts == 0:
            trial.exact = False
            trial.detail = "the outage forced no job restart"
        trial.seconds = time.monotonic() - started
        return trial

    def fuzz_trial(self, lines: int) -> Trial:
        trial = Trial("fuzz (malformed input)")
        started = time.monotonic()
        root = self.work / "fuzz"
        root.mkdir(parents=True, exist_ok=True)
        fuzzed = root / "fuzzed.jsonl"
        kinds = fuzzed_recording(self.recording, fuzzed, lines, self.rng)
        trial.injected, trial.injected_kinds = sum(kinds.values()), dict(kinds)
        run_dir = root / "run"
        summary = self.finish(self.command(run_dir, fuzzed, "0"), trial)
        self.judge(trial, summary, DataDir(run_dir).featurestore, None, self.recording, run_dir)
        if summary is not None:
            trial.dead_letter = summary["dead_letter"]
            if summary["dead_letter"] != trial.injected or summary["job_restarts"]:
                trial.exact = False
                trial.detail = (f"{summary['dead_letter']} dead-letter lines for {trial.injected} malformed; "
                                f"{summary['job_restarts']} restarts; {trial.detail}")
        trial.seconds = time.monotonic() - started
        return trial


def report(trials: list[Trial]) -> dict[str, Any]:
    by_fault: dict[str, list[Trial]] = {}
    for trial in trials:
        by_fault.setdefault(trial.fault, []).append(trial)
    rows = []
    for fault, group in by_fault.items():
        rows.append({
            "fault": fault,
            "exact": f"{sum(t.exact for t in group)}/{len(group)}",
            "job_restarts": sum(t.restarts for t in group),
            "resumed_from_state": sum(t.resumed for t in group),
            "offline_rows_twice": sum(t.rows_twice for t in group),
            "hangs": sum(t.hang for t in group),
            "leftover_processes": sum(t.leftover for t in group),
            "dead_letter/injected": (f"{sum(t.dead_letter for t in group)}/{sum(t.injected for t in group)}"
                                     if any(t.injected for t in group) else ""),
            "seconds": round(sum(t.seconds for t in group), 1),
        })
    return {"rows": rows, "all_exact": all(t.exact and not t.leftover for t in trials),
            "trials": [asdict(t) for t in trials]}


def print_table(summary: dict[str, Any]) -> None:
    columns = list(summary["rows"][0]) if summary["rows"] else []
    widths = {c: max(len(c), *(len(str(r[c])) for r in summary["rows"])) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in summary["rows"]:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))
    for trial in summary["trials"]:
        if trial["injected_kinds"]:
            kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(trial["injected_kinds"].items()))
            print(f"malformed kinds injected ({len(trial['injected_kinds'])}): {kinds}")
        if not trial["exact"] or trial["leftover"]:
            print(f"NOT EXACT: {trial['fault']}: {trial['detail']}")
    print("every trial exact, nothing left behind" if summary["all_exact"] else "SOME TRIALS WERE NOT EXACT")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-trials", type=int, default=20)
    parser.add_argument("--kill-window-s", type=float, default=None,
                        help="kill (or Ctrl-C) at a random moment in [0, this] s (default: the length of one "
                             "undisturbed run, measured first)")
    parser.add_argument("--interrupt-trials", type=int, default=5, help="Ctrl-C at a random moment, then resume")
    parser.add_argument("--outage-trials", type=int, default=8)
    parser.add_argument("--outage-kinds", default=",".join(OUTAGES), help=f"cycled through: {', '.join(OUTAGES)}")
    parser.add_argument("--fuzz-lines", type=int, default=10_000, help="malformed entries to inject (0: no fuzz trial)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, help="where trials run (default: a temporary directory)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.outage_kinds.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(OUTAGES))
    if unknown:
        parser.error(f"unknown outage kinds: {', '.join(unknown)}")

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="chainfeat-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, args.seed)
    window_s = args.kill_window_s
    if window_s is None and (args.kill_trials or args.interrupt_trials):
        window_s = bench.undisturbed_run_s()
        print(f"an undisturbed run took {window_s:.0f} s: kill -9 and Ctrl-C land in [0, {window_s:.0f}] s",
              file=sys.stderr, flush=True)
    plan: list[Callable[[], Trial]] = []
    plan += [lambda n=n: bench.kill_trial(n, window_s) for n in range(args.kill_trials)]
    plan += [lambda n=n: bench.interrupt_trial(n, window_s) for n in range(args.interrupt_trials)]
    plan += [lambda n=n: bench.outage_trial(n, kinds[n % len(kinds)]) for n in range(args.outage_trials)]
    if args.fuzz_lines:
        plan.append(lambda: bench.fuzz_trial(args.fuzz_lines))
    trials = []
    for number, step in enumerate(plan, start=1):
        trial = step()
        trials.append(trial)
        print(f"[{number}/{len(plan)}] {trial.fault}: {'exact' if trial.exact else 'NOT EXACT'} "
              f"({trial.seconds:.0f} s){': ' + trial.detail if trial.detail else ''}", file=sys.stderr, flush=True)
    summary = report(trials)
    summary["work_dir"] = str(work)
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0 if summary["all_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
