"""The test-support helpers themselves: a helper that miscounts makes every test that uses it lie."""

import sys
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

from testsupport import faults, lambda_context, modules, moto_server, throttle
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


def _in_process() -> None:
    from moto import mock_aws

    with mock_aws():
        pass


def _threaded() -> None:
    from moto.server import ThreadedMotoServer

    ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False).start()


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(_in_process, id="mock_aws"),
        pytest.param(moto_server.Server, id="server"),
        pytest.param(lambda: moto_server.Server(faults.FaultyApp), id="server-with-faults"),
        pytest.param(
            lambda: moto_server.Server(
                lambda moto: throttle.ThrottledApp(moto, throttle.Rates(), throttle.SimClock())
            ),
            id="server-with-throttling",
        ),
        pytest.param(_threaded, id="moto-threaded-server"),
    ],
)
def test_outside_the_moto_tier_every_way_of_starting_moto_is_refused(start: Callable[[], object]) -> None:
    """The unit tier's guard (conftest.py): a test that starts moto without the mark fails."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    before = DomainDispatcherApplication.__init__
    with moto_server.refused("unmarked"), pytest.raises(RuntimeError, match="unmarked"):
        start()
    assert DomainDispatcherApplication.__init__ is before
