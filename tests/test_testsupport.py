"""The test-support helpers themselves: a helper that miscounts makes every test that uses it lie."""

import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from testsupport import lambda_context, modules
from testsupport.calls import CallCounter

THREADS, CALLS = 8, 20_000


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads every microsecond, so an unlocked `+= 1` does lose counts."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


def test_call_counter_is_exact_under_threads(frequent_switches: None) -> None:
    counter = CallCounter()
    models = [SimpleNamespace(name=op) for op in ("DescribeInstances", "CreateTrafficMirrorSession")]
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for n in range(CALLS):
            counter(models[n % 2])

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.total() == THREADS * CALLS
    assert counter.reads() == counter.writes() == THREADS * CALLS // 2
    counter.clear()
    assert counter.total() == 0


def test_shrinking_context_counts_down_per_question() -> None:
    context = lambda_context.shrinking(start=10, step=2)
    assert [context.get_remaining_time_in_millis() for _ in range(7)] == [10_000, 8_000, 6_000, 4_000, 2_000, 0, 0]
    steady = lambda_context.shrinking(start=900, step=0)
    assert steady.get_remaining_time_in_millis() == steady.get_remaining_time_in_millis() == 900_000


def test_preserved_gives_back_the_callers_handler_modules() -> None:
    from traffic_mirror.handler import app

    with modules.preserved():
        cold = modules.fresh_handler()
        assert cold is not app
        assert sys.modules["traffic_mirror.handler.app"] is cold
    assert sys.modules["traffic_mirror.handler.app"] is app
