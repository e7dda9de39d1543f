"""Feature-store writes for a group with many rows per window: how many rows per second the job adds to the local
feature store beyond what the shipped group costs.

Runs `chainfeat run --speed 0 --exit-when-done` over the same recording in fresh data dirs, alternating: (a) the
shipped feature file alone, (b) the shipped file plus a per-entity group with many rows per window (an entity per
3-hex-digit hash prefix, 5-minute windows every minute: every unique transaction lands in 5 rows). The rows the
per-entity group writes divided by (b)'s extra seconds over (a) is the write rate. Each feature set runs once first,
unmeasured: that run plans its job and caches the plan (job/flow/plan_cache.py), so the measured runs all load theirs
(a run that plans spends seconds of Calcite and JIT compiling that are no write's). Each (b) run is checked: every
(record identifier, window) it computed is in the offline store (the run's own completeness check, exit 0) and the
offline store holds exactly as many rows as the summary says it wrote.

The machine is 2 cores: on one shared with other work the seconds say little, so each pair also prints the CPU-seconds
the per-entity group added per process (the run's own, where the writer runs; the store's; the JVM's) and the rows
per added CPU-second.

    .venv/bin/python bench/writes.py                     # the bundled recording, 2 alternating pairs
    .venv/bin/python bench/writes.py --pairs 3 --recording R
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import Measured, run_measured  # noqa: E402
from connectors.blockchain.source import BUNDLED_RECORDING  # noqa: E402
from connectors.featurestore.local.offline import run_query  # noqa: E402
from job.local.data_dir import DataDir  # noqa: E402
from job.local.minicluster import free_port  # noqa: E402

SHIPPED = REPO / "sql" / "features" / "tx_minute_features.sql"
GROUP = "prefix_5min"
# Many rows per window: 4,096 entities, each transaction in 5 hopping windows.
PER_ENTITY_SQL = f"""-- bench/writes.py: an entity per hash prefix, 5-minute windows every minute.
CREATE TEMPORARY VIEW {GROUP} AS
SELECT
    SUBSTRING(`hash`, 1, 3) AS hash_prefix,
    CAST(UNIX_TIMESTAMP(DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm:ss')) AS DOUBLE) AS event_time,
    COUNT(*) AS nb_trx_5min,
    SUM(fee) AS total_fee_5min
FROM TABLE(HOP(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE))
GROUP BY window_start, window_end, SUBSTRING(`hash`, 1, 3);
"""


def cpu_by_role(measured: Measured) -> dict[str, float]:
    """CPU-seconds of a run by process: ``run`` (the command's own: the writer runs there, in PyFlink's loopback
    worker pool), ``store`` (its other Python processes: the local feature store), ``java`` (the MiniCluster)."""
    roles = {"run": 0.0, "store": 0.0, "java": 0.0}
    for pid, (name, seconds) in measured.cpu.items():
        role = "run" if pid == measured.pid else "java" if name == "java" else "store" if name == "python" else None
        if role:
            roles[role] += seconds
    return roles


def run(recording: Path, features: Path, data_dir: Path) -> tuple[float, dict, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLINK_")}
    command = [sys.executable, "-m", "job.cli", "run", "--data-dir", str(data_dir), "--recording", str(recording),
               "--speed", "0", "--exit-when-done", "--format", "json", "--featurestore-port", "0",
               "--dashboard-port", str(free_port()), "--features", str(features)]
    measured = run_measured(command, REPO, env)
    if measured.returncode != 0:
        raise SystemExit(f"chainfeat run failed ({measured.returncode}): {measured.stderr[-3000:]}")
    return measured.seconds, json.loads(measured.stdout), cpu_by_role(measured)


def offline_rows(data_dir: Path, group: str) -> int:
    _columns, rows = run_query(DataDir(data_dir).featurestore, f"SELECT COUNT(*) FROM {group}")
    return rows[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", type=Path, default=BUNDLED_RECORDING)
    parser.add_argument("--pairs", type=int, default=2, help="alternating (shipped, shipped + per-entity) pairs")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the first, unmeasured run of each feature set (it plans the job and caches the plan)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="chainfeat-writes-"))
    shipped, both = work / "features-shipped", work / "features-per-entity"
    for directory in (shipped, both):
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHIPPED, directory)
    (both / f"{GROUP}.sql").write_text(PER_ENTITY_SQL)
    rates = []
    try:
        if args.warmup:  # a job planned in the measured run would charge the planner's seconds to the writes
            for features in (shipped, both):
                run(args.recording, features, work / f"warmup-{features.name}")
        for pair in range(args.pairs):
            load = os.getloadavg()[0]
            base_s, base_summary, base_cpu = run(args.recording, shipped, work / f"shipped-{pair}")
            with_s, summary, with_cpu = run(args.recording, both, work / f"per-entity-{pair}")
            rows = summary["windows_written"][GROUP]
            stored = offline_rows(work / f"per-entity-{pair}", GROUP)
            if stored != rows:
                raise SystemExit(f"the offline store holds {stored} rows of {GROUP}, the run says it wrote {rows}")
            rate = rows / max(with_s - base_s, 1e-9)
            rates.append(rate)
            print(f"pair {pair + 1}: shipped group alone {base_s:.1f} s; with {GROUP} {with_s:.1f} s "
                  f"({rows:,} rows over {summary['records_online'][GROUP]:,} entities): "
                  f"{with_s - base_s:.1f} s more, {rate:,.0f} rows/s (load average {load:.1f} before)", flush=True)
            for name, ran in (("shipped group alone", base_summary), (f"with {GROUP}", summary)):
                print(f"        {name}: job {ran['job_plan']}; "
                      + ", ".join(f"{step} {seconds:g} s" for step, seconds in ran["timeline_s"].items()), flush=True)
            extra = {role: with_cpu[role] - base_cpu[role] for role in base_cpu}
            print(f"        CPU-seconds added: {sum(extra.values()):.1f} ("
                  + ", ".join(f"{role} {seconds:.1f}" for role, seconds in extra.items())
                  + f"): {rows / max(sum(extra.values()), 1e-9):,.0f} rows per CPU-second", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"write rate: {min(rates):,.0f}-{max(rates):,.0f} rows/s over {len(rates)} pairs")


if __name__ == "__main__":
    main()
