"""The inventory's first reads: what the second round asks for, and that a waiting caller always
gets an answer or an error, never a future left pending."""

from collections.abc import Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

import pytest
from traffic_mirror.handler import readahead
from traffic_mirror.handler.clients import Place

PLACE = Place("us-east-1")
KEYS = {
    "describe_traffic_mirror_targets": "TrafficMirrorTargets",
    "describe_traffic_mirror_filters": "TrafficMirrorFilters",
    "describe_instances": "Reservations",
    "describe_traffic_mirror_sessions": "TrafficMirrorSessions",
}
TARGETS = [
    {"TrafficMirrorTargetId": "tmt-own", "NetworkInterfaceId": "eni-own", "OwnerId": "111111111111"},
    {"TrafficMirrorTargetId": "tmt-hub", "NetworkInterfaceId": "eni-hub", "OwnerId": "999999999999"},
    {"TrafficMirrorTargetId": "tmt-nlb", "NetworkLoadBalancerArn": "arn:nlb", "OwnerId": "111111111111"},
]


class Recorded:
    """Clients whose paginators answer one page from `TARGETS` (or nothing) and record each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def paginator(self, _place: Place, operation: str) -> Any:
        recorded = self

        class Pages:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                recorded.calls.append((operation, kwargs.get("Filters")))
                yield {KEYS[operation]: TARGETS if operation == "describe_traffic_mirror_targets" else []}

        return Pages()


def second_round(clients: Recorded) -> dict[str, list[str]]:
    return {op: filters[0]["Values"] for op, filters in clients.calls if filters}


def test_the_second_round_reads_the_accounts_own_eni_targets() -> None:
    clients = Recorded()
    first = readahead.start(clients, PLACE, ThreadPoolExecutor(4), account="111111111111")
    assert (first.sensors.result(timeout=10), first.sessions_on.result(timeout=10)) == ([], [])
    assert second_round(clients) == {
        "describe_instances": ["eni-own"],
        "describe_traffic_mirror_sessions": ["tmt-own"],
    }


def test_an_account_whose_eni_targets_are_all_shared_makes_no_second_round() -> None:
    clients = Recorded()
    first = readahead.start(clients, PLACE, ThreadPoolExecutor(4), account="222222222222")
    first.sensors.result(timeout=10)
    first.sessions_on.result(timeout=10)
    assert second_round(clients) == {}
    # A cold start does not know its account yet: it reads every listed ENI target's.
    clients = Recorded()
    first = readahead.start(clients, PLACE, ThreadPoolExecutor(4))
    first.sessions_on.result(timeout=10)
    assert second_round(clients)["describe_traffic_mirror_sessions"] == ["tmt-hub", "tmt-own"]


class Refusing(ThreadPoolExecutor):
    """A pool that takes the first round and then refuses work, as a shut-down pool does."""

    def __init__(self) -> None:
        super().__init__(4)
        self.taken = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> "Future[Any]":
        self.taken += 1
        if self.taken > 2:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return super().submit(fn, *args, **kwargs)


def test_a_second_round_that_cannot_be_sent_fails_its_futures() -> None:
    first = readahead.start(Recorded(), PLACE, Refusing())
    for waiting in (first.sensors, first.sessions_on):
        with pytest.raises(RuntimeError, match="shutdown"):
            waiting.result(timeout=10)


def test_a_cancelled_read_fails_its_future() -> None:
    class Cancelling(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> "Future[Any]":
            if fn is readahead.by_filter:
                cancelled: Future[Any] = Future()
                cancelled.cancel()
                return cancelled
            return super().submit(fn, *args, **kwargs)

    first = readahead.start(Recorded(), PLACE, Cancelling(4))
    with pytest.raises(CancelledError):
        first.sensors.result(timeout=10)


def test_a_deadline_before_the_second_round_fails_its_futures() -> None:
    def too_late() -> None:
        raise TimeoutError("deadline near")

    clients = Recorded()
    first = readahead.start(clients, PLACE, ThreadPoolExecutor(4), before_second_round=too_late)
    with pytest.raises(TimeoutError):
        first.sessions_on.result(timeout=10)
    assert second_round(clients) == {}
