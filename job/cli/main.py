"""The ``chainfeat`` command: every command, in the order `chainfeat --help` lists them. Each command's module is
thin (options, one call into the room that does the work, the result rendered); exit codes are common.py's."""

from __future__ import annotations

import gc
import importlib.metadata
import logging
import sys

import typer

from job.cli import deploy, pipeline, project, store
from job.cli.common import EXIT_INTERRUPTED

app = typer.Typer(
    help="chainfeat: blockchain transactions in, ML features out (Apache Flink in Python, a SageMaker-compatible "
         "feature store).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
featurestore_app = typer.Typer(help="The local SageMaker-compatible feature store.", no_args_is_help=True)


def version() -> str:
    """The installed distribution's version (pyproject.toml's, the one source)."""
    try:
        return importlib.metadata.version("chainfeat")
    except importlib.metadata.PackageNotFoundError:  # code run from a checkout that was never installed
        return "unknown (not installed)"


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"chainfeat {version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug details."),
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print the version and exit."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Ours at the level asked for even when a library lowers the root logger's (PyFlink's Python worker pool sets it
    # from the job's options when it starts): what a recording's replay notices (its gaps) is counted in the summary.
    for ours in ("job", "connectors", "udfs"):
        logging.getLogger(ours).setLevel(logging.DEBUG if verbose else logging.WARNING)
    # urllib3 logs every retry; the poller reports the outcome once, with what to do next.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbose else logging.ERROR)
    # A failing Python function's traceback is logged by the Python workers running in this process; the
    # run reports the failure once, in one line (the whole trace is in the data dir's Flink logs).
    for worker_logger in ("apache_beam", "pyflink"):
        logging.getLogger(worker_logger).setLevel(logging.DEBUG if verbose else logging.CRITICAL)


app.command()(project.init)
app.command()(pipeline.run)
app.command()(pipeline.backfill)
app.command()(pipeline.poll)
app.command()(pipeline.record)
app.command()(store.latest)
app.command()(store.query)
app.command("training-set")(store.training_set)
app.command()(store.compact)
featurestore_app.command("serve")(store.featurestore_serve)
featurestore_app.command("delete-group")(store.delete_group)
app.add_typer(featurestore_app, name="featurestore")
app.command()(deploy.package)
app.command()(deploy.submit)
app.command()(deploy.status)
app.command()(pipeline.prepare)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # before a command installed its own handler (e.g. while a run starts)
        typer.echo("interrupted; run the same command again to resume", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        # The interpreter's last full collection walks every object a run made (PyFlink, Beam, pyarrow): ~0.5 s
        # after the summary is out. Every file is closed by then, so it skips them; exit handlers still run.
        gc.freeze()
