"""Retries that last for a warm container's life, and requests that respect the deadline.

A real moto server behind `testsupport.faults` (HTTP 500s at a seeded rate), and the handler's
own `Clients`: the retry quota is refilled per invocation, so a long-lived container keeps
retrying; a retry never waits past the invocation's deadline.
"""

from collections.abc import Callable, Iterator
from typing import Any

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


class Clock:
    """The invocation's time: it moves only when botocore waits (its backoff sleeps, patched), so
    what the deadline allows depends on botocore's decisions, not on how loaded the machine is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        monkeypatch.setattr("botocore.endpoint.time.sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def remaining(self, budget: float) -> Callable[[], float]:
        return lambda: budget - self.now


def test_a_retry_never_waits_past_the_deadline(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttled on every call: botocore's backoff would wait up to 20 s per attempt.

    Standard mode: adaptive mode's client-side rate limiter adds waits of its own before a send
    (the next test); this one is about the retry backoff."""
    server.reset()
    server.app.configure(rate=1.0, seed=1, weights={"throttle": 1.0})
    standard = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": 10}))
    clients = Clients(standard, session=boto3.session.Session(region_name="us-east-1"))
    ec2 = clients.ec2(Place("us-east-1", None, server.url))
    clock = Clock(monkeypatch)
    clients.new_invocation(clock.remaining(3.0), reserve=0.5)
    with pytest.raises((DeadlinePassed, ClientError)):
        ec2.describe_traffic_mirror_targets()
    assert clock.waits and server.app.stats.total_calls == len(clock.waits) + 1  # a wait before each retry
    assert clock.now < 3.0 - 0.5  # ... and none of them ends past the deadline
    with pytest.raises(DeadlinePassed):  # past the deadline, nothing is sent at all
        clients.new_invocation(lambda: 0.2, reserve=0.5)
        before = server.app.stats.total_calls
        try:
            ec2.describe_traffic_mirror_targets()
        finally:
            assert server.app.stats.total_calls == before


def test_after_the_rate_limiters_wait_nothing_is_sent_past_the_deadline(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adaptive mode (as deployed), throttled on every call: the first throttle turns botocore's
    client-side rate limiter on, and its wait before the retry (here: one that takes all the time
    left) is followed by a look at the deadline, so the retry is never sent."""
    from botocore.retries import bucket

    server.reset()
    server.app.configure(rate=1.0, seed=1, weights={"throttle": 1.0})
    clients = Clients(RETRY_CONFIG, session=boto3.session.Session(region_name="us-east-1"))
    ec2 = clients.ec2(Place("us-east-1", None, server.url))
    clock = Clock(monkeypatch)
    clients.new_invocation(clock.remaining(3.0), reserve=0.5)
    limited: list[float] = []

    def wait_until_the_deadline(_bucket: Any, *_: Any, **__: Any) -> bool:
        limited.append(clock.now)
        clock.now = 3.0
        return True

    monkeypatch.setattr(bucket.TokenBucket, "acquire", wait_until_the_deadline)
    with pytest.raises(DeadlinePassed):
        ec2.describe_traffic_mirror_targets()
    assert len(limited) == 1  # the limiter, on since the first throttle, waited before the retry
    assert server.app.stats.total_calls == 1  # and the retry was not sent
