"""Which feature store a local command talks to, decided one way for every command: an endpoint given
(--endpoint-url, CHAINFEAT_FEATURESTORE_URL, or the properties' FeatureStore endpoint.url), else the local store
of the data dir: the server already serving it, or one started for the command."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors import DEFAULT_REGION
from connectors.featurestore.client import FeatureStoreClient, FeatureStoreConfig
from connectors.featurestore.local.process import StoreProcess
from connectors.featurestore.local.server import LocalFeatureStoreServer, read_server_info


@dataclass
class StoreEndpoint:
    url: str | None  # None: Amazon SageMaker (the region's endpoint)
    # Started for this command (stop() flushes its offline rows), in this process or in its own.
    server: LocalFeatureStoreServer | StoreProcess | None = None

    def client(self, region: str = DEFAULT_REGION, **settings: float) -> FeatureStoreClient:
        # A server started for one command has a port nobody knows: messages name its directory instead.
        shown_as = f"the local store in {self.server.root}" if self.server is not None else None
        return FeatureStoreClient(FeatureStoreConfig(endpoint_url=self.url, region=region, shown_as=shown_as, **settings))

    def stop(self) -> None:
        """Stop the server this command started, if any. Idempotent."""
        if self.server is not None:
            self.server.stop()
            self.server = None


def open_store(store_dir: Path, endpoint_url: str | None, port: int = 0, join_running: bool = True,
               own_process: bool = False) -> StoreEndpoint:
    """``endpoint_url`` if given; else the server running on ``store_dir`` (unless ``join_running`` is False: a run
    owns its store); else a server started on ``store_dir`` at ``port`` (0: any free one), in a process of its own
    if ``own_process`` (a command whose job writes to it: see connectors/featurestore/local/process.py)."""
    if endpoint_url:
        return StoreEndpoint(endpoint_url)
    running = read_server_info(store_dir) if join_running else None
    if running:
        return StoreEndpoint(running["url"])
    server = StoreProcess(store_dir, port) if own_process else LocalFeatureStoreServer(store_dir, port=port).start()
    return StoreEndpoint(server.url, server)


@contextlib.contextmanager
def feature_store_client(store_dir: Path, endpoint_url: str | None) -> Iterator[FeatureStoreClient]:
    """A client for one command (open_store), and the server it started stopped afterwards."""
    store = open_store(store_dir, endpoint_url)
    try:
        # A server started for the call answers at once or not at all: do not wait two minutes for it.
        yield store.client(total_timeout_s=10) if store.server else store.client()
    finally:
        store.stop()
