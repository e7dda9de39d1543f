"""A real standalone Flink cluster for tests, started from pyflink's own bin/ scripts (jobmanager +
taskmanager), bound to 127.0.0.1, configured in a temporary FLINK_CONF_DIR, stopped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyflink
import yaml

from tests.support import child_environment, free_port

FLINK_HOME = Path(pyflink.__file__).resolve().parent


class StandaloneCluster:
    def __init__(self, work: Path) -> None:
        self.conf_dir = work / "conf"
        self.log_dir = work / "logs"
        self.tmp_dir = work / "tmp"  # its blob caches and working directories, deleted with the test's directory
        self.rest_port = free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self._processes: list[subprocess.Popen] = []
        shutil.copytree(FLINK_HOME / "conf", self.conf_dir)
        original = yaml.safe_load((FLINK_HOME / "conf" / "config.yaml").read_text())
        settings = {
            "env": original["env"],
            "jobmanager.bind-host": "127.0.0.1",
            "jobmanager.rpc.address": "127.0.0.1",
            "jobmanager.rpc.port": free_port(),
            "jobmanager.memory.process.size": "1024m",
            "taskmanager.bind-host": "127.0.0.1",
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": 2,
            "taskmanager.memory.process.size": "1728m",
            "rest.address": "127.0.0.1",
            "rest.bind-address": "127.0.0.1",
            "rest.port": self.rest_port,
            "blob.server.port": free_port(),
            "parallelism.default": 1,
            "io.tmp.dirs": str(self.tmp_dir),
        }
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(settings))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout_s: float = 120) -> StandaloneCluster:
        # A cluster host's `python` must have pyflink (Flink's images do): here, this venv's.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**child_environment(), "FLINK_CONF_DIR": str(self.conf_dir), "FLINK_LOG_DIR": str(self.log_dir),
               "PATH": path}
        for script in ("jobmanager.sh", "taskmanager.sh"):
            self._processes.append(subprocess.Popen(
                ["bash", str(FLINK_HOME / "bin" / script), "start-foreground"], env=env,
                stdout=open(self.log_dir / f"{script}.out", "wb"), stderr=subprocess.STDOUT,
                start_new_session=True,
            ))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/overview", timeout=2) as response:
                    if json.load(response).get("taskmanagers", 0) >= 1:
                        return self
            except OSError:
                pass
            if any(process.poll() is not None for process in self._processes):
                break
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"the standalone cluster did not come up; see {self.log_dir}")

    def stop(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self._processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
        self._processes.clear()
