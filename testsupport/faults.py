"""Fault injection in front of a moto server: what a bad day on the AWS API looks like, in HTTP.

`FaultyApp` is a WSGI middleware around moto's server app (like `throttle.ThrottledApp`, which
holds EC2's token buckets), served by `moto_server.Server(FaultyApp)`. Per request it picks a
fault, or none, at a given `rate`:

- `error`: HTTP 500 `InternalError`, the request never reaches moto;
- `unavailable`: HTTP 503 `Unavailable`, never reaches moto;
- `throttle`: HTTP 503 `RequestLimitExceeded` (EC2's throttling answer), never reaches moto;
- `reset`: the TCP connection is reset before moto sees the request;
- `slow`: the answer comes `slow_seconds` late (set it beyond the client's read timeout); the
  request still reaches moto, late, and takes effect after the client gave up on it;
- `lost`: the request reaches moto and takes effect, then the connection is reset: the client
  sees an error for a call that happened;
- `empty`: describe calls only: moto answers, and every list in the answer is emptied (a 200
  with no targets, no ENIs...): eventual consistency, a permission hiccup or a paging bug.

Services that speak AWS's JSON protocol (Organizations: `services=("ec2", "organizations")`) are
recognised by their `X-Amz-Target` header; their errors are answered in JSON (`__type`), e.g.
`force("error", ["ListAccountsForParent"], answer=("400 Bad Request", "TooManyRequestsException"))`.

Faults are faked in front of moto *server*, not with botocore hooks: botocore calls every
before-send hook, so a hook cannot stand in for one failed round trip.

Choices are reproducible under concurrency: a request's fault is drawn from an RNG seeded with
(seed, action, the request's parameters, how many identical requests came before), so the
interleaving of threads does not change which call fails. `force()` adds deterministic rules
(e.g. "the next DescribeTrafficMirrorTargets is empty") for focused tests. Requests that reach
moto are serialized (moto's backends are not built for concurrent writers) and shown to an
optional `observer` first, under that lock, so a test can judge each write against the state
it was made in.
"""

import io
import json
import logging
import random
import socket
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from testsupport.throttle import BYPASS_HEADER, bypass, signing_service

KINDS = ("error", "unavailable", "throttle", "reset", "slow", "lost", "empty")
DEFAULT_WEIGHTS: Mapping[str, float] = {kind: 1.0 for kind in KINDS}
"""Every kind equally likely (`empty` only ever hits describe calls)."""
NEVER_REACH_MOTO = frozenset({"error", "unavailable", "throttle", "reset"})

__all__ = ["BYPASS_HEADER", "KINDS", "FaultyApp", "Rule", "Stats", "bypass"]

Observer = Callable[[str, Mapping[str, str], str | None], None]
"""(action, request parameters, fault kind or None), for each request about to reach moto."""


@dataclass
class Rule:
    """A forced fault: `kind` for requests of these `actions` (None: any), `times` times (None: forever)."""

    kind: str
    actions: frozenset[str] | None = None
    times: int | None = None
    answer: tuple[str, str] | None = None
    """For `error`: another (HTTP status line, error code), e.g. ("403 Forbidden", "UnauthorizedOperation")."""

    def matches(self, action: str) -> bool:
        return (self.actions is None or action in self.actions) and (self.times is None or self.times > 0)


@dataclass
class Stats:
    calls: Counter[str] = field(default_factory=Counter)
    """Requests per action (bypassed ones excluded)."""
    faults: Counter[str] = field(default_factory=Counter)
    """Faults injected, per kind."""
    by_action: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Faults injected, per (action, kind)."""
    reached: Counter[str] = field(default_factory=Counter)
    """Requests that reached moto (took effect), per action."""

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def is_describe(action: str) -> bool:
    return action.startswith(("Describe", "List", "Get"))


JSON_TARGET = "HTTP_X_AMZ_TARGET"
"""The JSON protocol (Organizations, STS is query) names the action in `X-Amz-Target: Service.Action`."""


def _action(environ: Mapping[str, Any], params: Mapping[str, Sequence[str]]) -> str:
    """The API action: the query protocol's `Action` parameter, or the JSON protocol's target header."""
    target = str(environ.get(JSON_TARGET, ""))
    if target:
        return target.rsplit(".", 1)[-1]
    return (params.get("Action") or ["?"])[0]


def _error_body(service: str, code: str, message: str, json_protocol: bool = False) -> bytes:
    request_id = uuid.uuid4()
    if json_protocol:  # awsJson: botocore reads the code from `__type`
        return json.dumps({"__type": code, "message": message}).encode()
    if service == "ec2":
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:  # the query protocol (elasticloadbalancing and friends)
        text = (
            "<ErrorResponse><Error><Type>Receiver</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    return text.encode()


_ERRORS: Mapping[str, tuple[str, str, str]] = {
    "error": ("500 Internal Server Error", "InternalError", "An internal error has occurred"),
    "unavailable": ("503 Service Unavailable", "Unavailable", "The service is unavailable"),
    "throttle": ("503 Service Unavailable", "RequestLimitExceeded", "Request limit exceeded."),
}


def _emptied(body: bytes) -> bytes:
    """The same answer with every list cleared and no next page (EC2's `...Set`, query's `member`)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return body
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if namespace:
        ET.register_namespace("", namespace)

    def local(tag: str) -> str:
        return tag.split("}")[-1]

    holders = [root, *[child for child in root if local(child.tag).endswith("Result")]]
    for holder in holders:
        for child in list(holder):
            name = local(child.tag)
            if name in ("nextToken", "NextMarker", "NextToken"):
                holder.remove(child)
            elif name.endswith("Set") or any(local(g.tag) == "member" for g in child):
                for grandchild in list(child):
                    child.remove(grandchild)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _reset(environ: Mapping[str, Any]) -> None:
    """Drop the TCP connection without an answer (and RST it when werkzeug closes it).

    `shutdown`, not `close`: werkzeug's file objects keep the socket open after a `close`.
    """
    sock = environ.get("werkzeug.socket")
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Aborted(Exception):
    """Raised after a reset, so werkzeug writes nothing more on the dead connection."""


class _QuietHandler(logging.Filter):
    """Drops werkzeug's tracebacks for the connections this layer resets on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "_Aborted" not in record.getMessage() and not (
            record.exc_info and isinstance(record.exc_info[1], _Aborted | ConnectionError)
        )


_QUIET = _QuietHandler()


class FaultyApp:
    """WSGI middleware: seeded per-request faults in front of moto (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        rate: float = 0.0,
        seed: int = 0,
        weights: Mapping[str, float] = DEFAULT_WEIGHTS,
        slow_seconds: float = 2.0,
        services: Sequence[str] = ("ec2",),
        observer: Observer | None = None,
    ) -> None:
        self.app = app
        self.services = tuple(services)
        self.slow_seconds = slow_seconds
        self.observer = observer
        self._lock = threading.Lock()
        self._reached = threading.Condition(self._lock)
        self._moto_lock = threading.Lock()
        self._rules: list[Rule] = []
        self._seen: Counter[str] = Counter()
        self.stats = Stats()
        self.observer_errors: list[str] = []
        """Exceptions the observer raised (the request went on to moto regardless)."""
        self.configure(rate, seed, weights)
        logging.getLogger("werkzeug").addFilter(_QUIET)  # once: a logger's filters are a set

    def configure(
        self, rate: float = 0.0, seed: int = 0, weights: Mapping[str, float] = DEFAULT_WEIGHTS
    ) -> None:
        """A new scenario: random faults at `rate`, no forced rule, counters at zero."""
        unknown = set(weights) - set(KINDS)
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1] and kinds among {KINDS}, got {rate}, {sorted(unknown)}")
        with self._lock:
            self.rate, self.seed, self.weights = rate, seed, dict(weights)
            self._rules.clear()
            self._seen.clear()
            self.stats = Stats()

    def force(
        self,
        kind: str,
        actions: Iterable[str] | None = None,
        times: int | None = None,
        answer: tuple[str, str] | None = None,
    ) -> Rule:
        """Inject `kind` into the next `times` requests of `actions` (before any random fault)."""
        if kind not in KINDS or (answer is not None and kind != "error"):
            raise ValueError(f"unknown fault {kind!r}, or an answer for a fault that is not `error`")
        rule = Rule(kind, frozenset(actions) if actions is not None else None, times, answer)
        with self._lock:
            self._rules.append(rule)
        return rule

    def wait_reached(self, action: str, count: int, timeout: float = 60.0) -> bool:
        """Wait until `count` requests of `action` have reached moto (a late one included): an order
        to wait for, not a time to guess. False if that has not happened within `timeout`."""
        with self._reached:
            return self._reached.wait_for(lambda: self.stats.reached[action] >= count, timeout)

    def _choose(self, action: str, params: Mapping[str, Sequence[str]]) -> tuple[str | None, Rule | None]:
        with self._lock:
            for rule in self._rules:
                if rule.matches(action) and (rule.kind != "empty" or is_describe(action)):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.kind, rule
            return self._draw(action, params), None

    def _draw(self, action: str, params: Mapping[str, Sequence[str]]) -> str | None:
        """The seeded random choice (called under the lock)."""
        if self.rate <= 0:
            return None
        key = f"{action}|{sorted((k, tuple(v)) for k, v in params.items())}"
        occurrence = self._seen[key]
        self._seen[key] += 1
        rng = random.Random(f"{self.seed}|{key}|{occurrence}")
        if rng.random() >= self.rate:
            return None
        kinds = [k for k, w in self.weights.items() if w > 0 and (k != "empty" or is_describe(action))]
        if not kinds:
            return None
        return rng.choices(kinds, [self.weights[k] for k in kinds])[0]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = signing_service(environ)
        if environ.get("HTTP_" + BYPASS_HEADER.upper().replace("-", "_")) or service not in self.services:
            status, headers, body = self._moto(environ)
            start_response(status, headers)
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        params = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        json_protocol = bool(environ.get(JSON_TARGET))
        if json_protocol:
            params = {"body": [raw.decode("utf-8", "replace")]}
        action = _action(environ, params)
        kind, rule = self._choose(action, params)
        with self._lock:
            stats = self.stats
            stats.calls[action] += 1
            if kind:
                stats.faults[kind] += 1
                stats.by_action[(action, kind)] += 1
        if kind in _ERRORS:
            status, code, message = _ERRORS[kind]
            if rule is not None and rule.answer is not None:
                (status, code), message = rule.answer, f"{rule.answer[1]} (injected)"
            body = _error_body(service, code, message, json_protocol)
            content_type = "application/x-amz-json-1.1" if json_protocol else "text/xml"
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if kind == "reset":
            _reset(environ)
            raise _Aborted(action)
        if kind == "slow":
            time.sleep(self.slow_seconds)
        flat = {k: v[0] for k, v in params.items()}
        status, headers, body = self._moto(environ, action, flat, kind)
        with self._lock:
            stats.reached[action] += 1
            self._reached.notify_all()
        if kind == "lost":
            _reset(environ)
            raise _Aborted(action)
        if kind == "empty" and status.startswith("200"):
            body = _emptied(body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def _moto(
        self,
        environ: dict[str, Any],
        action: str = "",
        params: Mapping[str, str] | None = None,
        kind: str | None = None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status, list(headers)]
            return lambda _data: None

        with self._moto_lock:
            if params is not None and self.observer is not None:
                try:
                    self.observer(action, params, kind)
                except Exception as error:  # the observer's bug must not look like an AWS fault
                    self.observer_errors.append(f"{action}: {type(error).__name__}: {error}")
            body = b"".join(self.app(environ, capture))
        return captured[0], captured[1], body
