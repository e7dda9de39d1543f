"""What every command shares: the options users see on each (one definition, so every command agrees), exit
codes, the one-line error, and stopping on Ctrl-C/SIGTERM."""

from __future__ import annotations

import contextlib
import enum
import signal
import threading
from collections.abc import Iterator

import typer

from connectors.blockchain.source import BUNDLED_RECORDING
from job.cli.output import OutputFormat
from job.flow.sql_files import feature_files
from job.local.data_dir import DEFAULT_DATA_DIR

# Exit codes scripts can trust: 0 done, 1 failed (the message says what and what to do next), 2 wrong usage,
# 3 nothing to show yet (e.g. ``latest`` before the first feature row), 130 interrupted (run it again to resume).
EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_YET, EXIT_INTERRUPTED = 1, 2, 3, 130
# The default feature group is the first features/*.sql view: rename the file and the default follows.
DEFAULT_FEATURE_GROUP = feature_files()[0].stem if feature_files() else "tx_minute_features"


class Sink(str, enum.Enum):
    """Where `chainfeat poll` writes."""

    spool = "spool"
    kinesis = "kinesis"


DataDirOption = typer.Option(
    DEFAULT_DATA_DIR, "--data-dir", envvar="CHAINFEAT_DATA_DIR", help="Where chainfeat keeps its data.",
    file_okay=False, resolve_path=True,
)
Format = typer.Option(OutputFormat.table, "--format", help="Output format: table, json or csv.")
RecordingPath = typer.Option(BUNDLED_RECORDING, "--recording", exists=True, dir_okay=False,
                             help="Recording to replay (one JSON line per poll; default: the bundled 65 minutes).")
Speed = typer.Option(1.0, "--speed", min=0, help="Replay pace: 1 = as recorded, 10 = 10x faster, 0 = as fast as possible.")
EndpointUrl = typer.Option(
    None, "--endpoint-url", envvar="CHAINFEAT_FEATURESTORE_URL",
    help="Feature store endpoint (default: the local server of --data-dir, started for the call if needed).",
)
FeaturesDir = typer.Option(
    None, "--features", file_okay=False, exists=True,
    help="Directory of feature files (one feature group per .sql file; default: the shipped sql/features/; "
         "`chainfeat init DIR` makes one).",
)
Properties = typer.Option(None, "--properties", dir_okay=False, exists=True,
                          help="Managed Flink properties file (default: the job's job/flow/application_properties.json).")


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so servers shut down (and flush) instead of dying mid-write."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
