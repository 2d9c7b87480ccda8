"""moto in server mode on a loopback port, for code that talks HTTP to an endpoint URL: the CLI, the
demo, the fault tests and the benchmarks. The one way this repository serves moto.

A `middleware` wraps moto's WSGI app when the test needs what AWS does around it: `faults.FaultyApp`
(a bad day on the API), `throttle.ThrottledApp` (EC2's token buckets). moto's backends live in this
process, whichever server reaches them.
"""

import contextlib
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast, overload

from werkzeug.serving import BaseWSGIServer, make_server

App = TypeVar("App")


class Server(Generic[App]):
    """moto's server app, behind `middleware` if given, on 127.0.0.1:`port` (0: a free one) for the
    `with` block; `app` is the middleware (to configure it), `url` the endpoint."""

    @overload
    def __init__(self: "Server[Any]", middleware: None = None, port: int = 0) -> None: ...

    @overload
    def __init__(self, middleware: Callable[[Any], App], port: int = 0) -> None: ...

    def __init__(self, middleware: Callable[[Any], Any] | None = None, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        moto = DomainDispatcherApplication(create_backend_app)
        served = middleware(moto) if middleware is not None else moto
        self.app = cast(App, served)
        self._http: BaseWSGIServer = make_server(
            "127.0.0.1", port, served, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="moto-server")

    @property
    def url(self) -> str:
        return f"http://{self._http.host}:{self._http.port}"

    def reset(self, seed: int | None = None) -> None:
        """Empty every backend (an empty account), then `seed(seed)` if given."""
        _post(f"{self.url}/moto-api/reset")
        if seed is not None:
            self.seed(seed)

    def seed(self, seed: int) -> None:
        """moto's ids from here on follow `seed`: the same calls get the same ids, run after run (and
        so, behind `FaultyApp`, whose choices hang on the requests' ids, the same faults)."""
        _post(f"{self.url}/moto-api/seed?a={seed}")

    def __enter__(self) -> "Server[App]":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access line per request
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


@contextlib.contextmanager
def refused(message: str) -> Iterator[None]:
    """Starting moto in any way raises `RuntimeError(message)` in the block: in-process (`mock_aws`),
    as a server (`Server`, moto's `ThreadedMotoServer`, or any other server of moto's app).

    Hooked where moto starts, not in this module's wrappers, so no new way of starting it escapes.
    """
    from moto.core.models import MockAWS
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError(message)

    # ThreadedMotoServer builds moto's app in its own thread, where raising would hang `start`.
    patched = [(MockAWS, "start"), (ThreadedMotoServer, "start"), (DomainDispatcherApplication, "__init__")]
    saved = [(cls, name, cls.__dict__[name]) for cls, name in patched]
    for cls, name in patched:
        setattr(cls, name, refuse)
    try:
        yield
    finally:
        for cls, name, original in saved:
            setattr(cls, name, original)
