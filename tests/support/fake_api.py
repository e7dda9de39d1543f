"""The blockchain.com unconfirmed-transactions API, played by a real local HTTP server."""

from __future__ import annotations

import json

from tests.support import T0
from tests.support.http import LocalHttpServer, QuietHandler


class FakeApi(LocalHttpServer):
    """Serves a scripted sequence of responses: a page dict, an HTTP status int, or raw bytes (the last one
    again once the script is used up)."""

    def __init__(self, responses: list) -> None:
        self.responses = list(responses)
        self.requests = 0
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                api.requests += 1
                response = api.responses.pop(0) if len(api.responses) > 1 else api.responses[0]
                if isinstance(response, int):
                    self.reply(response)
                else:
                    self.reply(200, response if isinstance(response, bytes) else json.dumps(response).encode())

        super().__init__(Handler)
        self.url = f"{self.base_url}/unconfirmed-transactions?format=json"


def page(*hashes: str) -> dict:
    return {"txs": [{"hash": h, "time": T0, "fee": 1} for h in hashes]}
