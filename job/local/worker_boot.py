"""The local job's Python worker boot: asks this run's in-process Python worker pool to start a worker, fast.

In a local MiniCluster, PyFlink runs the job's Python functions in the process that runs the job (its loopback
worker pool). To get a worker, the JVM still launches `python.executable -m pyflink.fn_execution.beam.beam_boot`,
a process whose only work is one gRPC call to that pool; but importing it imports Apache Beam whole (~2 s of CPU
on these machines) while the job's source is already reading, and the job's Python tasks, and so its checkpoints,
wait for it. The local job's `python.executable` is this script (worker_launcher writes its launcher): in loopback
mode it makes the same call from Beam's generated gRPC stubs alone (~0.2 s); in any other case, or when Beam's
layout differs from what it expects, it runs PyFlink's own beam_boot with the arguments it was given.
Run as a script in isolated mode (-I), so that nothing of the job's PYTHONPATH or of this directory shadows a module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import types
from pathlib import Path

BEAM_BOOT = ("-m", "pyflink.fn_execution.beam.beam_boot")
LOOPBACK_ADDRESS = "PYTHON_LOOPBACK_SERVER_ADDRESS"  # set by Flink's Python environment manager in loopback mode


def _option(arguments: list[str], name: str, default: str = "") -> str:
    for index, argument in enumerate(arguments):
        if argument.startswith(f"--{name}="):
            return argument.split("=", 1)[1]
        if argument == f"--{name}" and index + 1 < len(arguments):
            return arguments[index + 1]
    return default


def _generated_stubs() -> tuple[object, object, object]:
    """Beam's generated gRPC classes, imported without the `apache_beam` package's __init__ (the whole SDK)."""
    if "apache_beam" not in sys.modules:
        spec = importlib.util.find_spec("apache_beam")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("apache_beam not found")
        package = types.ModuleType("apache_beam")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["apache_beam"] = package
    from apache_beam.portability.api.org.apache.beam.model.fn_execution.v1.beam_fn_api_pb2 import StartWorkerRequest
    from apache_beam.portability.api.org.apache.beam.model.fn_execution.v1.beam_fn_api_pb2_grpc import (
        BeamFnExternalWorkerPoolStub,
    )
    from apache_beam.portability.api.org.apache.beam.model.pipeline.v1.endpoints_pb2 import ApiServiceDescriptor
    return StartWorkerRequest, BeamFnExternalWorkerPoolStub, ApiServiceDescriptor


def start_loopback_worker(address: str, arguments: list[str]) -> None:
    """beam_boot's loopback branch: one StartWorker call, which returns when the worker ends."""
    import grpc

    start_request, pool_stub, descriptor = _generated_stubs()
    worker_id, provision_endpoint = _option(arguments, "id"), _option(arguments, "provision_endpoint")
    if not worker_id or not provision_endpoint:
        raise ValueError(f"beam_boot arguments without --id or --provision_endpoint: {arguments}")
    params = {**os.environ, "SEMI_PERSISTENT_DIRECTORY": _option(arguments, "semi_persist_dir", "/tmp")}
    print(f"starting Python worker {worker_id} in loopback mode at {address}", flush=True)
    with grpc.insecure_channel(address) as channel:
        response = pool_stub(channel=channel).StartWorker(start_request(
            worker_id=worker_id, provision_endpoint=descriptor(url=provision_endpoint), params=params))
    if response.error:
        raise RuntimeError(f"Error starting worker: {response.error}")


def main(arguments: list[str]) -> None:
    address = os.environ.get(LOOPBACK_ADDRESS)
    if address and tuple(arguments[:2]) == BEAM_BOOT:
        try:
            _generated_stubs()
        except ImportError as error:  # another Beam: its own boot knows it
            print(f"falling back to PyFlink's beam_boot: {error}", flush=True)
        else:
            start_loopback_worker(address, arguments[2:])
            return
    os.execv(sys.executable, [sys.executable, *arguments])


def worker_launcher(cache: Path) -> str:
    """The executable a local job's `python.executable` names: this interpreter running this script, isolated.
    Written once per interpreter and checkout under ``cache`` (a temporary file, then a rename); where it cannot
    be written, the interpreter itself (PyFlink's own boot)."""
    script = Path(__file__).resolve()
    text = f'#!/bin/sh\nexec "{sys.executable}" -I "{script}" "$@"\n'
    path = cache / f"python-worker-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not path.exists():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(text)
            partial.chmod(0o755)
            os.replace(partial, path)
        except OSError as error:  # a read-only home: the job runs, its Python worker boots the slow way
            logging.getLogger(__name__).warning("could not write the Python worker's launcher %s: %s", path, error)
            return sys.executable
    return str(path)


if __name__ == "__main__":
    main(sys.argv[1:])
