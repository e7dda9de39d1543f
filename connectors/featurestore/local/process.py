"""The local feature store served by a process of its own: what `chainfeat run` writes to.

In a local MiniCluster the job's Python functions, the feature-store writer among them, run in the process that
submitted the job (PyFlink's loopback worker pool). A store served by that same process shares one interpreter lock
with the writer, so every record waited for the other side's turn; served by its own process, the store checks and
commits a batch while the writer builds the next (bench/writes.py).

``StoreProcess`` starts ``python -m connectors.featurestore.local.process ROOT PORT`` and answers like
``LocalFeatureStoreServer`` (url, root, online_count, newest_record_id, flush_offline, stop). The child serves
until it is told to stop (SIGTERM) or its parent is gone (its stdin, a pipe from the parent, reaches end of file:
a parent killed with -9 leaves no server holding the store), and flushes every accepted record to disk first.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

from connectors.featurestore.local.server import FeatureStoreLocked, LocalFeatureStoreServer

_LOCKED_EXIT, _PORT_EXIT = 3, 4  # how the child says why it could not start
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 60.0


class StoreProcess:
    """The local store over ``root`` on 127.0.0.1:``port`` (0: any free one), served by a child process."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = Path(root)
        # stdin: the parent's end of the pipe the child watches; stdout: the child's URL once it serves.
        self._child = subprocess.Popen([sys.executable, "-m", __name__, str(self.root), str(port)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)  # Ctrl-C is the parent's to handle: it stops the job first
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self._child.stdout.readline()), daemon=True)
        reader.start()
        reader.join(_START_TIMEOUT_S)
        if not ready or not ready[0].strip():
            self._child.kill()
            code = self._child.wait()
            problem = f"the local feature store over {self.root} did not start (exit {code}; its error is above)"
            if code == _LOCKED_EXIT:
                raise FeatureStoreLocked(f"{self.root} is served by another process; stop it or use another --data-dir")
            if code == _PORT_EXIT:
                raise OSError(f"the local feature store cannot listen on port {port}; choose another port (or 0 for any free one)")
            raise RuntimeError(problem)
        self.url = ready[0].strip()

    @property
    def pid(self) -> int:
        """The serving process's id (what bench/write_path.py measures the store's CPU by)."""
        return self._child.pid

    def _admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/_chainfeat/{path}", data=json.dumps(body or {}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=_STOP_TIMEOUT_S) as response:
            return json.loads(response.read())

    def online_count(self, group: str) -> int:
        return self._admin("online", {"FeatureGroupName": group})["online_count"]

    def newest_record_id(self, group: str) -> str | None:
        return self._admin("online", {"FeatureGroupName": group})["newest_record_id"]

    def flush_offline(self) -> int:
        return self._admin("flush")["rows_written"]

    def stop(self) -> None:
        """Stop serving, every accepted record on disk (the child flushes before it exits). Idempotent."""
        if self._child.poll() is None:
            self._child.send_signal(signal.SIGTERM)
            try:
                self._child.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        for pipe in (self._child.stdin, self._child.stdout):
            if pipe is not None:
                pipe.close()


def serve(root: Path, port: int) -> int:
    """The child: serve until SIGTERM or the parent's end of stdin, then stop (flushing); the exit code says why
    it could not start."""
    try:
        server = LocalFeatureStoreServer(root, port=port).start()
    except FeatureStoreLocked as error:
        print(f"error: {error}", file=sys.stderr)
        return _LOCKED_EXIT
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return _PORT_EXIT
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides when to stop
    threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
    print(server.url, flush=True)
    while not stopping.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]), int(sys.argv[2])))
