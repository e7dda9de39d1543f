"""`chainfeat init DIR`: a feature project the user owns, outside chainfeat's install: a working feature file, a
properties file with the settings most often changed, and a README saying how to run them."""

from __future__ import annotations

from pathlib import Path
from string import Template

from connectors.atomic_files import atomic_write
from job.flow.sql_files import FEATURES_DIR

TEMPLATE = Path(__file__).resolve().parent / "project_template"
EXAMPLE_FEATURE = FEATURES_DIR / "tx_minute_features.sql"  # the shipped group, the one the docs explain


class ProjectExists(FileExistsError):
    pass


def init_project(directory: Path) -> list[Path]:
    """Write the project into ``directory`` (created if missing); returns the files written. A directory that
    already holds any of them is left as it is (ProjectExists names them)."""
    directory = Path(directory)
    files = {
        directory / EXAMPLE_FEATURE.name: EXAMPLE_FEATURE.read_text(),
        directory / "application_properties.json": (TEMPLATE / "application_properties.json").read_text(),
        directory / "README.md": Template((TEMPLATE / "README.md").read_text()).substitute(
            name=directory.resolve().name, directory=str(directory)),
    }
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise ProjectExists(f"{', '.join(existing)} already exist(s); choose a new directory, or remove them first")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        atomic_write(path, text.encode())
    return list(files)
