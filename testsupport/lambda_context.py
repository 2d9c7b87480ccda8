"""A fake of the Lambda context object: the part the handler reads (names, request id, time left)."""

import threading
import time
import uuid
from collections.abc import Callable

ACCOUNT_ID = "123456789012"


class LambdaContext:
    """Time left counts down from `budget_seconds` on `elapsed` (wall time since creation by default)."""

    function_version = "$LATEST"
    memory_limit_in_mb = 256

    def __init__(
        self,
        budget_seconds: float = 300.0,
        function_name: str = "traffic-mirror-automation",
        elapsed: Callable[[], float] | None = None,
        region: str = "us-east-1",
    ) -> None:
        started = time.monotonic()
        self.budget = budget_seconds
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._elapsed = elapsed or (lambda: time.monotonic() - started)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.budget - self._elapsed()) * 1000))


class Asked:
    """An `elapsed` clock that advances `step` seconds each time it is read: deadlines without sleeping.

    The first read is 0; the handler reads the time left before each write, so a budget of
    `margin + n * step` leaves room for exactly n + 1 reads above the margin.
    """

    def __init__(self, step: float = 1.0) -> None:
        self.step = step
        self.asked = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            now = self.asked * self.step
            self.asked += 1
        return now


def shrinking(start: float, step: float = 1.0, function_name: str = "traffic-mirror-automation") -> LambdaContext:
    """A context whose time left drops by `step` seconds each time it is asked."""
    return LambdaContext(start, function_name, elapsed=Asked(step))


def steady(budget: float = 300.0, function_name: str = "traffic-mirror-automation") -> LambdaContext:
    """A context whose time left never drops (a benchmark that must not run out of budget)."""
    return LambdaContext(budget, function_name, elapsed=lambda: 0.0)
