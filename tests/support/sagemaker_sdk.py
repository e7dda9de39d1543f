"""Running the SageMaker Python SDK (v2 or v3, each in its own venv: tests/support/venvs.py) against the local
store: the environment that points it there with telemetry off, and a trap that counts every connection it tries
to make anywhere else (its telemetry goes to S3 over HTTPS unless opted out)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from tests.conftest import REPO_ROOT

# The scripts run with -I: tests/support must not shadow the stdlib, and the SDK's venv must not see chainfeat.
V2_SCRIPT = REPO_ROOT / "tests" / "support" / "sagemaker_sdk_client.py"
V3_SCRIPT = REPO_ROOT / "tests" / "support" / "sagemaker_sdk_v3_client.py"
# The SDK's defaults config (v2's and v3's key): TelemetryOptOut, so no call leaves this machine.
TELEMETRY_OFF = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"


class OutboundTrap:
    """A proxy that answers nothing: point HTTP(S)_PROXY at it and every connection a process tries beyond
    NO_PROXY (here: anything but this machine) is counted and refused instead of leaving."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.attempts: list[bytes] = []  # the first bytes of each (a CONNECT line names where it was going)
        self._thread = threading.Thread(target=self._serve, name="outbound-trap", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed
                return
            with connection:
                connection.settimeout(1.0)
                try:
                    self.attempts.append(connection.recv(200))
                except OSError:
                    self.attempts.append(b"")

    def close(self) -> None:
        self._socket.close()


def sdk_env(url: str, config_dir: Path, proxy_url: str) -> dict[str, str]:
    """The SDK's environment: both endpoint variables on the local store (v3 builds its own clients, so they are
    the only way to point it anywhere), test credentials, telemetry off, every other destination trapped."""
    config = config_dir / "sagemaker-config.yaml"
    config.write_text(TELEMETRY_OFF)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "PYFLINK_", "PYTHON")) and key.lower() not in (
               "http_proxy", "https_proxy", "no_proxy", "all_proxy")}
    env.update({
        "AWS_ENDPOINT_URL_SAGEMAKER": url,
        "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
        "HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url, "http_proxy": proxy_url, "https_proxy": proxy_url,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    return env
