"""Defaults shared by the CLI commands (one place, so every command agrees)."""

from pathlib import Path

DEFAULT_DATA_DIR = Path(".chainfeat")
DEFAULT_FEATURE_GROUP = "tx_minute_features"
