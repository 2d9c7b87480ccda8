"""Shared fixtures: a moto account under AWS's rules, and a handler module with fresh caches."""

import logging
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_REGION", None)
os.environ.pop("AWS_EXECUTION_ENV", None)  # as in tests, not Lambda: no import-time clients or prefetch

from moto import mock_aws
from moto.server import ThreadedMotoServer
from traffic_mirror.handler import app
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Context
from traffic_mirror.handler.settings import Settings

from testsupport import sandbox

_SESSION = boto3.session.Session()
"""The tests' own boto3 session: it keeps its parsed service models across tests (mock_aws resets
boto3's default session, and parsing the EC2 model again costs about a second per test)."""


@pytest.fixture
def aws() -> Iterator[Any]:
    """A moto EC2 with AWS's traffic-mirroring rules, and no cached clients or inventory."""
    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        yield _SESSION.client("ec2", region_name="us-east-1")
    app.CONTAINER.reset()


def home(settings: Settings | None = None, region: str = "us-east-1") -> Context:
    """The handler's own account in `region`, through the app's container (as an invocation sees it)."""
    return Context(Place(region), settings or Settings(), app.CONTAINER)


@pytest.fixture
def account(aws: Any) -> sandbox.Account:
    return sandbox.build_account(aws, ami=sandbox.moto_ami())


class CallCounter:
    """Counts EC2 API calls by operation with botocore's event hooks (before-call)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if not op.startswith(("Create", "Delete", "Modify")))

    def total(self) -> int:
        return sum(self.calls.values())


@pytest.fixture
def counter(aws: Any) -> CallCounter:
    count = CallCounter()
    home = Place("us-east-1")
    app.CONTAINER.clients.ec2(home).meta.events.register("before-call", count)
    app.CONTAINER.clients.elbv2(home).meta.events.register("before-call", count)
    return count


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """The handler's structured log records (its logger does not propagate to the root)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            records.append(rec)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("traffic_mirror")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def decisions(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """The `decision` log lines' fields."""
    return [vars(r) for r in records if r.getMessage() == "decision"]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One moto server for the module, on a free loopback port."""
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        srv.stop()


@pytest.fixture
def endpoint(server: str) -> Iterator[str]:
    """An empty account under AWS's traffic-mirroring rules, and no cached clients or inventory."""

    def reset() -> None:
        request = urllib.request.Request(f"{server}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        app.CONTAINER.reset()

    reset()
    with sandbox.aws_rules():
        yield server
    reset()
