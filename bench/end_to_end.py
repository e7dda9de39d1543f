"""chainfeat end to end against its peers, on the same data, in one run.

    .venv/bin/python bench/end_to_end.py [--transactions 1000000] [--duplicates 0.10] [--peers duckdb,pathway]

The workload (bench/workload.py): a recording of N unique transactions polled as the API pages them, with
--duplicates of all sightings being re-polls, and the same sightings flattened to one JSON line each.

- chainfeat: `chainfeat run --recording R --speed 0 --exit-when-done`, a subprocess, timed from its start
  to its exit: replay, spool, feed, the Flink job (dedup + 1-minute windows), feature-store writes, drain.
  Its run timeline gives each stage's share; the JVM's resident memory is sampled every 0.5 s.
- DuckDB: first-seen dedup by hash over the flattened file, then per-minute count/sum/avg (batch).
- Pathway (its own venv, created on first use under ~/.cache/chainfeat/venvs): the flattened file read statically,
  dedup by hash (groupby), tumbling 1-minute windows, count/sum.
Every engine's windows must be equal (count and sum of fees per minute); the script exits 1 if not.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from bench.measure import run_measured  # noqa: E402
from bench.workload import SHAPES, Workload, bench_arguments, verdict, workload  # noqa: E402
from connectors.blockchain.source import last_polled_at, read_recording  # noqa: E402
from connectors.featurestore.local.offline import run_query  # noqa: E402
from job.flow.config import default_property_groups  # noqa: E402
from job.local.data_dir import DataDir  # noqa: E402
from job.local.minicluster import free_port  # noqa: E402
from tests.support.venvs import cached_venv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PATHWAY_VERSION = "0.33.0"
Windows = dict[str, tuple[int, int]]  # minute 'YYYY-MM-DD HH:MM:SS' -> (count, sum of fees)

PATHWAY_SCRIPT = """
import sys, time
started = time.perf_counter()
import pathway as pw

class Sighting(pw.Schema):
    hash: str | None
    time: int | None
    fee: int | None

sightings = pw.io.jsonlines.read(sys.argv[1], schema=Sighting, mode="static")
sightings = sightings.filter(pw.this.hash.is_not_none())
unique = sightings.groupby(pw.this.hash).reduce(
    pw.this.hash, time=pw.unwrap(pw.reducers.min(pw.this.time)), fee=pw.unwrap(pw.reducers.any(pw.this.fee)))
windows = unique.windowby(pw.this.time, window=pw.temporal.tumbling(duration=60)).reduce(
    start=pw.this._pw_window_start, n=pw.reducers.count(), total=pw.reducers.sum(pw.this.fee))
pw.io.csv.write(windows, sys.argv[2])
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
print(time.perf_counter() - started)
"""


def minute(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


WATERMARK_DELAY_S = float(default_property_groups()["Job"]["watermark.delay.s"])  # the job's default


# ---- peers ---------------------------------------------------------------------------------------------

def run_duckdb(source: Path | str) -> tuple[float, Windows]:
    """DuckDB over JSON lines (a file or a glob); lines without a hash (the spool's heartbeats) are not sightings."""
    started = time.perf_counter()
    rows = duckdb.connect().execute(
        f"""
        WITH sightings AS (
            SELECT hash, time, fee, row_number() OVER () AS position
            FROM read_json('{source}', format = 'newline_delimited',
                           columns = {{'hash': 'VARCHAR', 'time': 'BIGINT', 'fee': 'BIGINT'}})
            WHERE hash IS NOT NULL
        ), first_seen AS (
            SELECT time, fee FROM sightings QUALIFY row_number() OVER (PARTITION BY hash ORDER BY position) = 1
        )
        SELECT time // 60 * 60 AS start, count(*), sum(fee) FROM first_seen GROUP BY 1
        """
    ).fetchall()
    return time.perf_counter() - started, {minute(start): (count, total) for start, count, total in rows}


def pathway_python() -> Path:
    """Pathway in a venv of its own (it does not co-install with apache-flink's pins)."""
    return cached_venv("pathway", (f"pathway=={PATHWAY_VERSION}",))


def run_pathway(source: Path, work: Path) -> tuple[float, Windows]:
    """Pathway over JSON lines (a file, or a directory of files)."""
    python = pathway_python()
    script, output = work / "pathway_job.py", work / "pathway_windows.csv"
    script.write_text(PATHWAY_SCRIPT)
    started = time.perf_counter()
    result = subprocess.run([str(python), str(script), str(source), str(output)],
                            capture_output=True, text=True, cwd=work)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"pathway failed: {result.stderr[-2000:]}")
    latest: dict[int, tuple[int, tuple[int, int]]] = {}  # window start -> (pathway time, values), diff = +1
    with open(output) as handle:
        for row in csv.DictReader(handle):
            if int(row["diff"]) == 1 and int(row["time"]) >= latest.get(int(row["start"]), (-1, None))[0]:
                latest[int(row["start"])] = (int(row["time"]), (int(row["n"]), int(row["total"])))
    return elapsed, {minute(start): values for start, (_t, values) in latest.items()}


# ---- chainfeat -----------------------------------------------------------------------------------------

def run_chainfeat(data: Workload, work: Path) -> dict:
    data_dir = work / "chainfeat"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLINK_")}
    command = [sys.executable, "-m", "job.cli", "run", "--data-dir", str(data_dir), "--recording", str(data.recording),
               "--speed", "0", "--exit-when-done", "--format", "json", "--featurestore-port", "0",
               "--dashboard-port", str(free_port())]
    measured = run_measured(command, REPO, env)
    if measured.returncode != 0:
        raise RuntimeError(f"chainfeat run failed ({measured.returncode}): {measured.stderr[-3000:]}")
    return {"seconds": measured.seconds, "summary": json.loads(measured.stdout), "windows": stored_windows(data_dir),
            "measured": measured}


def stored_windows(data_dir: Path) -> Windows:
    """The shipped group's windows in the offline store of ``data_dir``: minute -> (count, sum of fees)."""
    _columns, rows = run_query(DataDir(data_dir).featurestore,
                               "SELECT tx_minute, total_nb_trx_1min, total_fee_1min FROM tx_minute_features")
    return {tx_minute: (count, total) for tx_minute, count, total in rows}


def recording_coverage(recording: Path) -> tuple[float, float]:
    """The edge rule over a recording, restated (README "Edge windows"): from its first poll to its last poll minus
    the watermark delay; only windows inside are complete (and written by chainfeat)."""
    first = next(read_recording(recording)).polled_at
    return first, last_polled_at(recording) - WATERMARK_DELAY_S


def complete_part(windows: Windows, covered: tuple[float, float]) -> tuple[Windows, int]:
    """The 1-minute windows inside the coverage, and how many are outside."""
    inside = {key: value for key, value in windows.items()
              if covered[0] <= _epoch(key) and _epoch(key) + 60 <= covered[1]}
    return inside, len(windows) - len(inside)


def _epoch(key: str) -> float:
    return datetime.strptime(key, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


# ---- report --------------------------------------------------------------------------------------------

def stage_lines(result: dict) -> list[str]:
    """Each step of the run from its timeline, with the share of the whole wall time it took."""
    total = result["seconds"]
    timeline = result["summary"].get("timeline_s", {})
    process_start = total - timeline.get("ended", total)  # interpreter start and CLI imports
    steps = [("python start + CLI imports", process_start)]
    previous = 0.0
    for step in ("job_built", "job_submitted", "all_read", "ended"):
        if step in timeline:
            steps.append((step, timeline[step] - previous))
            previous = timeline[step]
    labels = {"job_built": "JVM up + the job's tables (and views)", "job_submitted": "job planned/loaded, code, cluster up",
              "all_read": "job ran until everything was read and checkpointed", "ended": "drain: last windows + savepoint"}
    lines = [f"    {labels.get(step, step):<52} {seconds:6.1f} s  {100 * seconds / total:5.1f} %" for step, seconds in steps]
    if "replay_finished" in timeline:
        lines.append(f"    (replay + spool, in parallel with the above, done at {timeline['replay_finished']:.1f} s)")
    if result["summary"].get("job_plan") != "cached":
        lines.append("    (the job was planned in this run, its plan not yet cached: the first run after a change to the "
                     "job's code or SQL; the next run loads it, a few seconds sooner)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args, peers = bench_arguments(parser)

    started = time.perf_counter()
    data = workload(args.transactions, args.duplicates, cache=args.cache, shape=SHAPES[args.shape], flattened=bool(peers))
    print(f"workload ({args.shape}): {data.transactions:,} transactions, {data.sightings:,} sightings "
          f"({data.sightings - data.transactions:,} re-polls) in {data.polls:,} polls, "
          f"{data.recording.stat().st_size / data.sightings:.0f} bytes of recording per sighting "
          f"({time.perf_counter() - started:.0f} s to load/generate)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="chainfeat-e2e-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    results: dict[str, tuple[float, Windows]] = {}
    if "duckdb" in peers:
        results["duckdb"] = run_duckdb(data.flattened)
    if "pathway" in peers:
        results["pathway"] = run_pathway(data.flattened, work)
    chainfeat = run_chainfeat(data, work)
    results["chainfeat"] = (chainfeat["seconds"], chainfeat["windows"])

    print(f"\n{'engine':<10} {'seconds':>8} {'tx/s':>10}   (unique transactions per second of wall time, start-up included)")
    for engine, (seconds, _windows) in results.items():
        print(f"{engine:<10} {seconds:8.1f} {data.transactions / seconds:10,.0f}")
    rate = data.transactions / chainfeat["seconds"]
    for peer in peers:
        print(f"chainfeat / {peer}: {rate / (data.transactions / results[peer][0]):.2f}")
    print("\nchainfeat stages:")
    print("\n".join(stage_lines(chainfeat)))
    print("\n" + "\n".join(chainfeat["measured"].memory_lines()))
    print(chainfeat["measured"].cpu_line())
    print("\n".join(chainfeat["measured"].thread_lines()))
    summary = chainfeat["summary"]
    print(f"chainfeat counted {summary['transactions']:,} sightings, {summary['duplicates']:,} duplicates, "
          f"{summary['late']} late, {summary['dead_letter']} dead-letter lines")

    covered = recording_coverage(data.recording) if peers else (0.0, 0.0)
    equal, outside = {}, 0
    for peer in peers:
        inside, outside = complete_part(results[peer][1], covered)
        equal[peer] = inside == chainfeat["windows"]
    print(f"\nwindows: chainfeat {len(chainfeat['windows']):,} complete (skipped "
          f"{sum(summary.get('windows_skipped_partial', {}).values())} partial); the peers' complete windows (of "
          f"{outside} at the edges) equal to chainfeat's: "
          + (", ".join(f"{peer} {'yes' if same else 'NO'}" for peer, same in equal.items()) or "no peer ran"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(verdict(equal))


if __name__ == "__main__":
    main()
