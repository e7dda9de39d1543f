"""The local job's Python worker boot (job/local/worker_boot.py): in loopback mode, the StartWorker call PyFlink's
beam_boot makes, to a real gRPC server, without importing the Beam SDK; any other invocation runs the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent import futures

import grpc
import pytest
from apache_beam.portability.api.org.apache.beam.model.fn_execution.v1 import beam_fn_api_pb2, beam_fn_api_pb2_grpc

from job.local.worker_boot import BEAM_BOOT, LOOPBACK_ADDRESS, worker_launcher


class RecordingPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
    """The side of the in-process worker pool the boot talks to: records each request, answers ``error``."""

    def __init__(self, error: str = "") -> None:
        self.requests: list[beam_fn_api_pb2.StartWorkerRequest] = []
        self.error = error

    def StartWorker(self, request, context):  # noqa: N802 (the gRPC method's name)
        self.requests.append(request)
        return beam_fn_api_pb2.StartWorkerResponse(error=self.error)


@pytest.fixture
def pool_at():
    servers = []

    def serve(pool: RecordingPool) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.stop(0)


def boot(launcher, arguments: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != LOOPBACK_ADDRESS}
    return subprocess.run([str(launcher), *arguments], env={**environment, **env}, capture_output=True, text=True,
                          timeout=60)


def test_in_loopback_mode_the_boot_asks_the_pool_for_the_worker(tmp_path, pool_at) -> None:
    pool = RecordingPool()
    address = pool_at(pool)
    done = boot(worker_launcher(tmp_path), [*BEAM_BOOT, "--id=1-1", "--provision_endpoint=localhost:4711"],
                **{LOOPBACK_ADDRESS: address, "CHAINFEAT_BOOT_MARKER": "seen"})
    assert done.returncode == 0, done.stdout + done.stderr
    [request] = pool.requests
    assert request.worker_id == "1-1" and request.provision_endpoint.url == "localhost:4711"
    # The worker takes its environment from the boot's, as with beam_boot.
    assert request.params["CHAINFEAT_BOOT_MARKER"] == "seen" and request.params["SEMI_PERSISTENT_DIRECTORY"] == "/tmp"


def test_a_worker_the_pool_cannot_start_fails_the_boot(tmp_path, pool_at) -> None:
    address = pool_at(RecordingPool(error="no worker for you"))
    done = boot(worker_launcher(tmp_path), [*BEAM_BOOT, "--id", "1-2", "--provision_endpoint", "localhost:4711"],
                **{LOOPBACK_ADDRESS: address})
    assert done.returncode != 0 and "no worker for you" in done.stderr


def test_the_boot_does_not_import_the_beam_sdk(tmp_path) -> None:
    probe = ("import sys; from job.local import worker_boot; worker_boot._generated_stubs(); "
             "print(sorted({name.split('.')[1] for name in sys.modules if name.startswith('apache_beam.')}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['portability']"


def test_any_other_invocation_runs_the_interpreter_with_its_arguments(tmp_path) -> None:
    launcher = worker_launcher(tmp_path)
    assert worker_launcher(tmp_path) == launcher and os.access(launcher, os.X_OK)
    done = boot(launcher, ["-c", "import sys; print(sys.argv[1:], sys.prefix)", "a", "b c"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"['a', 'b c'] {sys.prefix}"
    # Without the pool's address (process mode), beam_boot itself runs: here it stops at its missing --id.
    done = boot(launcher, list(BEAM_BOOT))
    assert done.returncode != 0 and "No id provided" in done.stdout + done.stderr


def test_where_the_launcher_cannot_be_written_the_interpreter_boots_the_worker(tmp_path) -> None:
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    if os.access(read_only, os.W_OK):  # root writes anyway: a path under a file cannot be a directory
        read_only = tmp_path / "a-file"
        read_only.write_text("")
    assert worker_launcher(read_only / "cache") == sys.executable
