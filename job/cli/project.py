"""`chainfeat init`: start a feature project of your own."""

from __future__ import annotations

from pathlib import Path

import typer

from job.cli.common import fail
from job.local.project import ProjectExists, init_project


def init(directory: Path = typer.Argument(..., file_okay=False, help="Directory to create the project in.")) -> None:
    """Create a feature project: an example feature file (one .sql file = one feature group), a properties file
    and a README. Run it with `chainfeat run --features DIRECTORY`.

    Example: chainfeat init my-features && chainfeat run --features my-features --speed 0 --exit-when-done
    """
    try:
        written = init_project(directory)
    except (ProjectExists, OSError) as error:
        raise fail(str(error)) from None
    for path in written:
        typer.echo(f"created {path}", err=True)
    typer.echo(f"next: chainfeat run --features {directory} --properties {directory}/application_properties.json",
               err=True)
