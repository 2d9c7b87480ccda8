# ruff: noqa: E402  (the environment must be set before moto is imported)
"""Shared fixtures: a moto account under AWS's rules, and a handler module with fresh caches.

Test support lives in `testsupport/` (it depends on nothing here); this file only turns it into
fixtures.

Tiers: a test that runs moto (in-process or as a server) is marked `moto`: automatically when it
uses the `aws` or `endpoint` fixture, by hand (`pytestmark`, `@pytest.mark.moto`) otherwise.
Everything else is the unit tier, which `make check` runs alone (`-m "not moto"`); there, starting
moto in any way (`mock_aws`, `testsupport.moto_server.Server` with or without a middleware, moto's
own `ThreadedMotoServer`) fails the test, so a missing mark cannot slow the edit loop unnoticed.
"""

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from testsupport import environment

# As in tests, not Lambda: no AWS_EXECUTION_ENV or AWS_REGION, so no import-time clients or
# prefetch; and moto's small image catalogue, which must be chosen before moto.ec2 is imported
# (hence E402 below).
environment.isolate(environment.TEST_EXTRA)

from moto import mock_aws
from traffic_mirror.handler import app
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Context
from traffic_mirror.handler.settings import Settings

from testsupport import botocore_models, logs, moto_server, sandbox
from testsupport.calls import CallCounter

MOTO_FIXTURES = frozenset({"aws", "endpoint"})
"""The fixtures of this file that tests use to get moto (`server` comes through `endpoint`): a test
using one is marked for it."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MOTO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.moto)
        if item.get_closest_marker("xfail") is not None:
            _native_tracebacks(item)


def _native_tracebacks(item: pytest.Item) -> None:
    """An expected failure's traceback in Python's own format: it is formatted on every run, and
    pytest's format parses the test file with `ast`, which CPython 3.11 can fail on once other
    threads or tests used it ("SystemError: AST constructor recursion depth mismatch",
    python/cpython#106905, pytest-dev/pytest#10874): an INTERNALERROR that stops the xdist worker."""

    def repr_failure(excinfo: pytest.ExceptionInfo[BaseException], *_: Any) -> Any:
        return excinfo.getrepr(style="native")

    item.repr_failure = repr_failure  # type: ignore[method-assign,assignment]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Outside the `moto` tier, starting moto is an error (fixtures of any scope included): mark
    the test instead, so the unit tier stays fast."""
    if item.get_closest_marker("moto") is not None:
        yield
        return
    with moto_server.refused(f"{item.nodeid} starts moto: mark it `@pytest.mark.moto`"):
        yield


@pytest.fixture(scope="session", autouse=True)
def _botocore_models_once() -> Iterator[None]:
    """Each test's new boto3 sessions reuse the models parsed by the first (0.3 s a session otherwise)."""
    with botocore_models.built_once():
        yield

SESSION = boto3.session.Session()
"""The tests' own boto3 session: it keeps its parsed service models across tests (mock_aws resets
boto3's default session, and parsing the EC2 model again costs about a second per test)."""


@pytest.fixture
def aws() -> Iterator[Any]:
    """A moto EC2 with AWS's traffic-mirroring rules, and no cached clients or inventory."""
    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        yield SESSION.client("ec2", region_name="us-east-1")
    app.CONTAINER.reset()


def home(settings: Settings | None = None, region: str = "us-east-1") -> Context:
    """The handler's own account in `region`, through the app's container (as an invocation sees it)."""
    return Context(Place(region), settings or Settings(), app.CONTAINER)


@pytest.fixture
def account(aws: Any) -> sandbox.Account:
    return sandbox.build_account(aws, ami=sandbox.moto_ami())


@pytest.fixture
def counter(aws: Any) -> CallCounter:
    place = Place("us-east-1")
    return CallCounter().attach(app.CONTAINER.clients.ec2(place), app.CONTAINER.clients.elbv2(place))


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """The handler's structured log records (its logger does not propagate to the root)."""
    with logs.captured() as records:
        yield records


@pytest.fixture(scope="module")
def server() -> Iterator[moto_server.Server[Any]]:
    """One moto server for the module, on a free loopback port."""
    with moto_server.Server() as running:
        yield running


@pytest.fixture
def endpoint(server: moto_server.Server[Any]) -> Iterator[str]:
    """An empty account under AWS's traffic-mirroring rules, and no cached clients or inventory."""

    def reset() -> None:
        server.reset()
        app.CONTAINER.reset()

    reset()
    with sandbox.aws_rules():
        yield server.url
    reset()
