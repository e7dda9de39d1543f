"""main.py of the application zip (`chainfeat package` copies this file to the zip's root).

Managed Service for Apache Flink (run option `python`) and `flink run -py main.py` start here.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT / "site-packages")]

from job.flow.entrypoint import main  # noqa: E402 - needs the path above

if __name__ == "__main__":
    main()
