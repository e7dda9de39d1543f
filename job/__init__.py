"""The Flink job, its local run and its CLI."""

from pathlib import Path

# The project's root: the checkout, or the application zip's root on a cluster (sql/, connectors/, ...).
REPO_ROOT = Path(__file__).resolve().parent.parent
# The project's Python packages: what the application zip ships and the Python UDF workers import.
CODE_PACKAGES = ("job", "connectors", "udfs")
