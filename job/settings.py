"""Defaults shared by the CLI commands (one place, so every command agrees)."""

from pathlib import Path

from job.sql_files import feature_files

DEFAULT_DATA_DIR = Path(".chainfeat")
# The default feature group is the first features/*.sql view: rename the file and the default follows.
DEFAULT_FEATURE_GROUP = feature_files()[0].stem if feature_files() else "tx_minute_features"
