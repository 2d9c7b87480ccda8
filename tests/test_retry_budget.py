"""Retries that last (issue 11, defect 7) and reads that respect the deadline (defect 8).

A real moto server behind `testsupport.faults` (HTTP 500s at a seeded rate), and the handler's
own `Clients`: the retry quota is refilled per invocation, so a long-lived container keeps
retrying; a retry never waits past the invocation's deadline.
"""

import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from traffic_mirror.handler.clients import RETRY_CONFIG, Clients, DeadlinePassed, Place

from testsupport import faults, moto_server

CALLS_PER_INVOCATION = 30
INVOCATIONS = 10


pytestmark = pytest.mark.moto

Server = moto_server.Server[faults.FaultyApp]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with moto_server.Server(faults.FaultyApp) as running:
        yield running


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff waits are real sleeps: shrink them (the retry decisions stay botocore's)."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)


def _failures(server: Server, refill: bool) -> int:
    """API calls that failed after botocore's retries, over INVOCATIONS invocations of one container."""
    server.reset()
    server.app.configure(rate=0.5, seed=7, weights={"error": 1.0})
    clients = Clients(RETRY_CONFIG, session=boto3.session.Session(region_name="us-east-1"))
    ec2 = clients.ec2(Place("us-east-1", None, server.url))
    failed = 0
    for invocation in range(INVOCATIONS):
        if refill:
            clients.new_invocation()
        for call in range(CALLS_PER_INVOCATION):
            try:
                ec2.describe_traffic_mirror_targets(Filters=[{"Name": "description", "Values": [f"{invocation}-{call}"]}])
            except ClientError:
                failed += 1
    return failed


def test_each_invocation_starts_with_a_full_retry_quota(server: Server, fast_backoff: None) -> None:
    drained = _failures(server, refill=False)
    assert drained > 50  # the same container without refills: the quota runs dry, calls fail
    assert _failures(server, refill=True) == 0


def test_a_retry_never_waits_past_the_deadline(server: Server) -> None:
    """Throttled on every call: botocore's backoff would wait up to 20 s per attempt.

    Standard mode: adaptive mode's client-side rate limiter adds waits of its own before a send,
    which botocore does not let us bound (after such a wait nothing is sent past the deadline:
    the next test); this one is about the retry backoff."""
    server.reset()
    server.app.configure(rate=1.0, seed=1, weights={"throttle": 1.0})
    standard = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 10}))
    clients = Clients(standard, session=boto3.session.Session(region_name="us-east-1"))
    ec2 = clients.ec2(Place("us-east-1", None, server.url))
    end = time.monotonic() + 3.0
    clients.new_invocation(lambda: end - time.monotonic(), reserve=0.5)
    started = time.monotonic()
    with pytest.raises((DeadlinePassed, ClientError)):
        ec2.describe_traffic_mirror_targets()
    assert time.monotonic() - started < 2.6
    with pytest.raises(DeadlinePassed):  # past the deadline, nothing is sent at all
        clients.new_invocation(lambda: 0.2, reserve=0.5)
        before = server.app.stats.total_calls
        try:
            ec2.describe_traffic_mirror_targets()
        finally:
            assert server.app.stats.total_calls == before


def test_after_the_rate_limiters_wait_nothing_is_sent_past_the_deadline(server: Server) -> None:
    """Adaptive mode (as deployed), throttled on every call: whatever the limiter waited, a request
    is only sent while the deadline allows it."""
    server.reset()
    server.app.configure(rate=1.0, seed=1, weights={"throttle": 1.0})
    clients = Clients(RETRY_CONFIG, session=boto3.session.Session(region_name="us-east-1"))
    ec2 = clients.ec2(Place("us-east-1", None, server.url))
    end = time.monotonic() + 3.0
    clients.new_invocation(lambda: end - time.monotonic(), reserve=0.5)
    sent: list[float] = []
    ec2.meta.events.register("before-send", lambda **_: sent.append(time.monotonic()))  # after every check
    with pytest.raises((DeadlinePassed, ClientError)):
        ec2.describe_traffic_mirror_targets()
    assert sent and max(sent) <= end

