"""`chainfeat backfill` against its peers over the same archived files, in one run.

    .venv/bin/python bench/backfill.py [--transactions 1000000] [--duplicates 0.10] [--peers duckdb,pathway]

The archive: bench/workload.py's recording of N unique transactions, written into a spool as `chainfeat run`
writes it (date=/hour=/poll-*.jsonl, polls gathered into ~8 MB files as a replay at speed 0 does), generated
once and cached next to the workload.

- chainfeat: `chainfeat backfill --data-dir D --archive SPOOL`, a subprocess, timed from its start to its exit: JVM,
  the job's SQL in batch mode (parse, dedup, the shipped 1-minute group), the writes into the local feature store
  it starts. Its timeline gives each stage's share; the JVM's resident memory is sampled every 0.5 s.
- DuckDB: first-seen dedup by hash, then per-minute count/sum over the spool's files (bench/end_to_end.py's query).
- Pathway (its own venv): the same dedup and tumbling windows over the spool's files (bench/end_to_end.py's program;
  it reads one directory, so it is given a directory of links to the spool files).
The windows must be equal: chainfeat's are the complete ones (the backfill skips the archive's two edges), so the
peers' windows inside the archive's coverage must equal chainfeat's, and the rest must be exactly the windows
chainfeat reported as skipped. The script exits 1 if not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402

from bench.end_to_end import (  # noqa: E402
    REPO,
    WATERMARK_DELAY_S,
    Windows,
    complete_part,
    minute,
    run_duckdb,
    run_pathway,
    stored_windows,
)
from bench.measure import run_measured  # noqa: E402
from bench.workload import SHAPES, Workload, bench_arguments, verdict, workload  # noqa: E402
from connectors.blockchain.source import read_recording  # noqa: E402
from connectors.spool import SpoolWriter  # noqa: E402
from job.local.minicluster import free_port  # noqa: E402
from job.local.run import SPOOL_BATCH_BYTES  # noqa: E402


def archived(data: Workload) -> Path:
    """The workload's recording as a spool (cached: a partial spool is never reused)."""
    spool = data.recording.with_name(data.recording.name.removesuffix(".recording.jsonl") + ".spool")
    if (spool / "_complete").exists():
        return spool
    shutil.rmtree(spool, ignore_errors=True)
    writer = SpoolWriter(spool, durable=False, batch_bytes=SPOOL_BATCH_BYTES)
    for index, poll in enumerate(read_recording(data.recording)):
        poll.key = f"r{index:09d}"  # as a replay names its polls
        writer.write(poll)
    writer.flush()
    (spool / "_complete").touch()
    return spool


def linked_flat(spool: Path, directory: Path) -> Path:
    """A directory of links to every spool file (Pathway reads one directory, not a date=/hour= tree)."""
    directory.mkdir(parents=True)
    for path in sorted(spool.rglob("poll-*.jsonl")):
        (directory / path.name).symlink_to(path)
    return directory


def coverage(spool: Path) -> tuple[float, float]:
    """The edge rule over the spool, restated (README "Edge windows"): from the first poll to the last poll minus the
    watermark delay."""
    first_poll, last_poll = duckdb.connect().execute(
        f"""SELECT min(CASE WHEN heartbeat THEN polled_at END), max(CASE WHEN heartbeat THEN polled_at END)
            FROM read_json('{spool}/*/*/*.jsonl', format = 'newline_delimited',
                           columns = {{'polled_at': 'DOUBLE', 'heartbeat': 'BOOLEAN'}})"""
    ).fetchone()
    return first_poll, last_poll - WATERMARK_DELAY_S


def run_backfill(spool: Path, work: Path) -> dict:
    data_dir = work / "chainfeat"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLINK_")}
    command = [sys.executable, "-m", "job.cli", "backfill", "--data-dir", str(data_dir), "--archive", str(spool),
               "--group", "tx_minute_features", "--format", "json", "--dashboard-port", str(free_port())]
    measured = run_measured(command, REPO, env)
    if measured.returncode != 0:
        raise RuntimeError(f"chainfeat backfill failed ({measured.returncode}): {measured.stderr[-3000:]}")
    return {"seconds": measured.seconds, "summary": json.loads(measured.stdout), "windows": stored_windows(data_dir),
            "measured": measured}


def stage_lines(result: dict) -> list[str]:
    total = result["seconds"]
    timeline = result["summary"]["timeline_s"]
    steps = [("python start + CLI imports", total - timeline["ended"])]
    labels = {"job_built": "JVM up, SQL planned into views, window shapes", "job_submitted": "job planned, cluster up",
              "ended": "the batch job: read, parse, dedup, windows, writes"}
    previous = 0.0
    for step in ("job_built", "job_submitted", "ended"):
        steps.append((labels[step], timeline[step] - previous))
        previous = timeline[step]
    return [f"    {label:<52} {seconds:6.1f} s  {100 * seconds / total:5.1f} %" for label, seconds in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args, peers = bench_arguments(parser)

    data = workload(args.transactions, args.duplicates, cache=args.cache, shape=SHAPES[args.shape], flattened=False)
    spool = archived(data)
    size = sum(path.stat().st_size for path in spool.rglob("poll-*.jsonl"))
    print(f"archive ({args.shape}): {data.transactions:,} transactions, {data.sightings:,} sightings in {data.polls:,} polls; "
          f"spool {spool} ({size / 2**20:,.0f} MiB in {sum(1 for _ in spool.rglob('poll-*.jsonl'))} files)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="chainfeat-backfill-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    results: dict[str, tuple[float, Windows]] = {}
    if "duckdb" in peers:
        results["duckdb"] = run_duckdb(f"{spool}/*/*/*.jsonl")
    if "pathway" in peers:
        results["pathway"] = run_pathway(linked_flat(spool, work / "pathway_input"), work)
    chainfeat = run_backfill(spool, work)
    results["chainfeat"] = (chainfeat["seconds"], chainfeat["windows"])

    print(f"\n{'engine':<10} {'seconds':>8} {'tx/s':>10}   (unique transactions per second of wall time, start-up included)")
    for engine, (seconds, _windows) in results.items():
        print(f"{engine:<10} {seconds:8.1f} {data.transactions / seconds:10,.0f}")
    rate = data.transactions / chainfeat["seconds"]
    for peer in peers:
        print(f"chainfeat / {peer}: {rate / (data.transactions / results[peer][0]):.2f}")
    print("\nchainfeat stages:")
    print("\n".join(stage_lines(chainfeat)))
    print("\n".join(chainfeat["measured"].memory_lines()))
    print(chainfeat["measured"].cpu_line())
    print("\n".join(chainfeat["measured"].thread_lines()))
    summary = chainfeat["summary"]
    print(f"chainfeat read {summary['lines_read']:,} lines: {summary['transactions']:,} sightings, "
          f"{summary['duplicates']:,} duplicates, {summary['dead_letter']} dead-letter lines; covered "
          f"{summary['covered_from']} to {summary['covered_to']}")

    covered = coverage(spool)
    skipped = summary["windows_skipped_partial"]["tx_minute_features"]
    equal = {}
    for peer in peers:
        inside, outside = complete_part(results[peer][1], covered)
        equal[peer] = inside == chainfeat["windows"] and outside == skipped
    print(f"\nwindows: chainfeat wrote {len(chainfeat['windows']):,} complete, skipped {skipped} partial "
          f"(coverage {minute(int(covered[0]))} to {minute(int(covered[1]))}); the peers' complete windows equal "
          "chainfeat's and their others are the skipped ones: "
          + (", ".join(f"{peer} {'yes' if same else 'NO'}" for peer, same in equal.items()) or "no peer ran"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(verdict(equal))


if __name__ == "__main__":
    main()
