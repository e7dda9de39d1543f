"""Where chainfeat's code and caches are: shared by every room, so it imports nothing of chainfeat."""

import os
from pathlib import Path

# The root that holds the packages job/, connectors/, udfs/ and sql/: a checkout, site-packages after
# `pip install`, or the application zip's root on a cluster.
CODE_ROOT = Path(__file__).resolve().parent.parent
# The project's Python packages: what the application zip ships and the Python UDF workers import.
CODE_PACKAGES = ("job", "connectors", "udfs")
# The application zip's folder (job/deploy/package.py) holding those packages again, for the Python UDF workers.
WORKER_CODE = "worker-code"
# This user's cache: the JVM's class archive, compiled plans, downloaded jars.
CACHE = Path(os.environ.get("CHAINFEAT_CACHE", Path.home() / ".cache" / "chainfeat"))
