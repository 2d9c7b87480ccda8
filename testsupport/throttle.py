"""EC2's API throttling in front of a moto server: token buckets per API action, answered in HTTP.

EC2 throttles each API action on its own token bucket, per account and region; the bucket's size
and refill rate depend on the action's category (non-mutating describes: 100 burst, 20 per second;
mutating calls: 50 burst, 5 per second). `ThrottledApp` is a WSGI middleware around moto's server
app: it reads the EC2 `Action` from the form body, takes a token from that action's bucket and,
when the bucket is empty, answers HTTP 503 `RequestLimitExceeded` in EC2's XML error format
WITHOUT passing the request to moto (a throttled call never happens, as on AWS). botocore
classifies `RequestLimitExceeded` as a throttling error, so its retry modes see what they see on
AWS. Calls, passes and throttles are counted per action. `moto_server.Server` serves it.

The buckets read a `SimClock`: real time plus an offset that only grows while nothing is in flight
(the benchmark skips idle waits such as Lambda's retry delays); refills account for skipped time.
"""

import io
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

MUTATING_PREFIXES = ("Create", "Delete", "Modify", "Attach", "Detach", "Associate", "Disassociate")
BYPASS_HEADER = "X-Bench-Bypass"
"""Requests carrying this header (setup and checks by the benchmark itself) are neither counted
nor throttled."""


def is_mutating(action: str) -> bool:
    return action.startswith(MUTATING_PREFIXES)


class SimClock:
    """Seconds since `start()`: real monotonic time plus the idle time skipped so far."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._t0 = time.monotonic()
            self._offset = 0.0

    def now(self) -> float:
        with self._lock:
            return time.monotonic() - self._t0 + self._offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def skip(self, seconds: float) -> None:
        """Jump ahead (only while nothing is in flight: nobody can observe the jump mid-call)."""
        if seconds > 0:
            with self._lock:
                self._offset += seconds


class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second; `take()` never waits."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.rate = rate
        self._clock = clock
        self._tokens = float(capacity)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            # max(0, ...): the clock restarts at a scenario's t=0; a refill never goes negative.
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass(frozen=True)
class Rates:
    describe_burst: float = 100.0
    describe_rate: float = 20.0
    mutate_burst: float = 50.0
    mutate_rate: float = 5.0

    def for_action(self, action: str) -> tuple[float, float]:
        if is_mutating(action):
            return self.mutate_burst, self.mutate_rate
        return self.describe_burst, self.describe_rate


@dataclass
class Stats:
    """Per-action counters, and when each action last passed (SimClock seconds)."""

    calls: Counter[str] = field(default_factory=Counter)
    passed: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    last_pass: dict[str, float] = field(default_factory=dict)
    first_pass: dict[str, float] = field(default_factory=dict)
    moto_seconds: dict[str, float] = field(default_factory=dict)
    """Time moto spent answering each action (the stand-in for EC2's own latency, plus `latency`)."""
    write_times: list[float] = field(default_factory=list)
    """When each mutating call passed (SimClock seconds)."""


def throttle_response(action: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """EC2's answer to a throttled call (HTTP 503, `RequestLimitExceeded`)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
        "<Message>Request limit exceeded.</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    headers = [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))]
    return "503 Service Unavailable", headers, body


def signing_account(environ: dict[str, Any]) -> str:
    """The account the request acts in: moto's mapping of the signing access key (assumed roles
    get their role's account), so each account has its own buckets, as on EC2."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    try:
        access_key = auth.split("Credential=")[1].split("/")[0]
    except IndexError:
        return ""
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def signing_service(environ: dict[str, Any]) -> str:
    """The SigV4 credential scope's service (`ec2`, `elasticloadbalancing`, ...)."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    try:
        scope = auth.split(",")[0].split()[1]
        return scope.split("/")[3].lower()
    except (IndexError, ValueError):
        return ""


class ThrottledApp:
    """WSGI middleware: EC2 token buckets per action in front of moto; other services pass.

    moto's backends are not built for concurrent writers, so requests that pass reach moto one at
    a time (a lock), after an optional fixed `latency` that stands for EC2's own response time.
    """

    def __init__(
        self,
        app: Any,
        rates: Rates,
        clock: SimClock,
        latency: float = 0.0,
        serialize: bool = True,
        account_of: Callable[[dict[str, Any]], str] = signing_account,
    ) -> None:
        self.app = app
        self._account_of = account_of
        self.clock = clock
        self.latency = latency
        self._rates = rates
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()
        self._moto_lock = threading.Lock() if serialize else None
        self.stats = Stats()

    def reset(self, rates: Rates | None = None) -> None:
        """Full buckets and zero counters (a new scenario)."""
        with self._lock:
            if rates is not None:
                self._rates = rates
            self._buckets.clear()
            self.stats = Stats()

    @property
    def rates(self) -> Rates:
        return self._rates

    def _bucket(self, account: str, action: str) -> TokenBucket:
        """One bucket per account and action (EC2 throttles per account and region)."""
        with self._lock:
            bucket = self._buckets.get((account, action))
            if bucket is None:
                capacity, rate = self._rates.for_action(action)
                bucket = self._buckets[(account, action)] = TokenBucket(capacity, rate, self.clock.now)
            return bucket

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_" + BYPASS_HEADER.upper().replace("-", "_")) or signing_service(environ) != "ec2":
            return self._forward(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = (parse_qs(body.decode("utf-8", "replace")).get("Action") or ["?"])[0]
        with self._lock:
            stats = self.stats
            stats.calls[action] += 1
        if not self._bucket(self._account_of(environ), action).take():
            with self._lock:
                stats.throttled[action] += 1
            status, headers, payload = throttle_response(action)
            start_response(status, headers)
            return [payload]
        if self.latency:
            time.sleep(self.latency)
        result, seconds = self._timed(environ, start_response)
        now = self.clock.now()
        with self._lock:
            stats.passed[action] += 1
            stats.last_pass[action] = now
            stats.first_pass.setdefault(action, now)
            stats.moto_seconds[action] = stats.moto_seconds.get(action, 0.0) + seconds
            if is_mutating(action):
                stats.write_times.append(now)
        return result

    def _timed(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> tuple[Iterable[bytes], float]:
        if self._moto_lock is None:
            started = time.monotonic()
            return list(self.app(environ, start_response)), time.monotonic() - started
        with self._moto_lock:
            started = time.monotonic()
            return list(self.app(environ, start_response)), time.monotonic() - started

    def _forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self._moto_lock is None:
            return list(self.app(environ, start_response))
        with self._moto_lock:
            return list(self.app(environ, start_response))


def bypass(client: Any) -> Any:
    """Mark every request of this boto3 client as the benchmark's own (not counted, not throttled)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers[BYPASS_HEADER] = "1"

    client.meta.events.register("before-sign", add_header)
    return client


def rows(stats: Stats) -> Iterator[tuple[str, int, int, int]]:
    """(action, calls, passed, throttled), mutating calls first."""
    for action in sorted(stats.calls, key=lambda a: (not is_mutating(a), a)):
        yield action, stats.calls[action], stats.passed[action], stats.throttled[action]
