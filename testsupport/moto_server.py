"""moto in server mode on a free loopback port, for code that talks HTTP to an endpoint URL
(the CLI, the demo, the benchmarks' containers). Its backends live in this process."""

import contextlib
import urllib.request
from collections.abc import Iterator

from moto.server import ThreadedMotoServer


@contextlib.contextmanager
def serve(port: int = 0) -> Iterator[str]:
    """A moto server on 127.0.0.1 (`port`, 0: a free one) for the block; yields its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(url: str) -> None:
    """Empty every backend of the moto server at `url` (an empty account)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
