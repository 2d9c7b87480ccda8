"""Lambda containers: each a spawned process that imports the handler once and serves invocations."""

import contextlib
import json
import logging
import multiprocessing as mp
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from benchmarks.scale.constants import REGION
from testsupport import logs, throttle
from testsupport.lambda_context import LambdaContext

_IDS = re.compile(
    r"\b(eni|i|traf-mir-(ses|tar|fil)|tmt|tmf|tms|vpc|subnet)-[0-9a-f]{8,}\b|\b[0-9a-f]{8}-[0-9a-f-]{27}\b"
)


def _normalize(reason: str) -> str:
    return _IDS.sub("<id>", reason)[:200]


class _Collector(logging.Handler):
    """Keeps the reasons of the handler's failed and deferred decisions (instead of printing them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.reasons: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        outcome = getattr(record, "outcome", None)
        if outcome in ("failed", "deferred"):
            self.reasons[_normalize(f"{outcome}: {getattr(record, 'reason', '')}")] += 1


def _experiment_retry_config(app: Any, retries: dict[str, Any]) -> None:
    """`--retry`: try another botocore retry configuration (an experiment, not the deployed one)."""
    from botocore.config import Config
    from traffic_mirror.handler.clients import Place

    container = app.CONTAINER
    container.clients.config = container.clients.config.merge(Config(retries=cast(Any, retries)))
    container.reset()
    container.clients.ec2(Place(os.environ["AWS_REGION"]))


EXPERIMENTS: dict[str, Callable[[], None]] = {}
"""`--experiment NAME`: a proposed handler change patched into the containers, measured before it
lands. Both earlier experiments landed in the handler: settling lost session-number races
(`reconcile._settle_conflicts`) and the scheduled sweep's grace (`MIRROR_SWEEP_GRACE_SECONDS`)."""


def _container_main(
    conn: Connection, kind: str, env: dict[str, str], retries: dict[str, Any], experiments: Sequence[str] = ()
) -> None:
    """A Lambda container: import once (INIT), then one invocation per message until None."""
    os.environ.update(env)
    offset = [0.0]
    real_time, real_monotonic = time.time, time.monotonic
    time.time = lambda: real_time() + offset[0]
    time.monotonic = lambda: real_monotonic() + offset[0]
    with contextlib.ExitStack() as stack:
        collector = _Collector()
        invoke: Callable[[Any, LambdaContext], Any]
        if kind == "ours":
            from traffic_mirror.handler import app, report

            # The handler's records go to the collector only, for the container's life.
            stack.enter_context(logs.routed(collector, exclusive=True, logger=report.LOGGER_NAME))
            if retries:
                _experiment_retry_config(app, retries)
            for name in experiments:
                EXPERIMENTS[name]()

            def invoke(event: Any, context: LambdaContext) -> Any:
                return app.lambda_handler(event, context)
        else:
            from benchmarks.baseline import make_client, naive_handler

            logging.disable(logging.CRITICAL)
            client = make_client(os.environ["AWS_REGION"])  # the post's module-level client

            def invoke(event: Any, context: LambdaContext) -> Any:
                answer = naive_handler(event, client)
                if not answer.get("ok"):  # the post's context.fail: an invocation error
                    raise RuntimeError(
                        f"{answer.get('message')} ({len(answer.get('errors', []))} instance(s) failed)"
                    )
                return answer

        conn.send({"ready": True})
        while True:
            message = conn.recv()
            if message is None:
                return
            offset[0] = message["offset"]
            collector.reasons.clear()
            started = time.monotonic()
            context = LambdaContext(message["budget"], "traffic-mirror-bench", region=REGION)
            try:
                result, error = invoke(message["event"], context), None
            except Exception as exc:
                result, error = None, f"{type(exc).__name__}: {_normalize(str(exc))}"
            elapsed = time.monotonic() - started
            conn.send(
                {
                    "result": json.loads(json.dumps(result, default=str)),
                    "error": error,
                    "elapsed": elapsed,
                    "reasons": dict(collector.reasons),
                }
            )


@dataclass
class Container:
    index: int
    process: Any
    conn: Connection
    busy: bool = False
    warm: bool = False
    job: Any = None
    started_at: float = 0.0
    budget: float = 0.0


@dataclass
class Reply:
    container: Container
    job: Any
    started_at: float
    ended_at: float
    budget: float
    result: Any
    error: str | None
    elapsed: float
    reasons: dict[str, int]

    @property
    def overran(self) -> bool:
        return self.elapsed > self.budget


class Pool:
    """`size` Lambda containers, spawned before the clock starts; an idle warm one is reused first."""

    def __init__(
        self,
        kind: str,
        size: int,
        env: dict[str, str],
        retries: dict[str, Any],
        experiments: Sequence[str] = (),
    ) -> None:
        context = mp.get_context("spawn")
        self.containers: list[Container] = []
        for index in range(size):
            parent, child = context.Pipe()
            process = context.Process(
                target=_container_main,
                args=(child, kind, env, retries, tuple(experiments)),
                daemon=True,
                name=f"lambda-{index}",
            )
            process.start()
            child.close()
            self.containers.append(Container(index, process, parent))
        for container in self.containers:
            container.conn.recv()

    def free(self) -> Container | None:
        idle = [c for c in self.containers if not c.busy]
        idle.sort(key=lambda c: not c.warm)
        return idle[0] if idle else None

    def busy(self) -> int:
        return sum(c.busy for c in self.containers)

    def invoke(
        self, container: Container, event: Any, budget: float, job: Any, clock: throttle.SimClock
    ) -> None:
        container.busy, container.job, container.budget = True, job, budget
        container.started_at = clock.now()
        container.conn.send({"event": event, "budget": budget, "offset": clock.offset})

    def wait(self, timeout: float, clock: throttle.SimClock) -> list[Reply]:
        busy = {c.conn: c for c in self.containers if c.busy}
        replies = []
        for ready in wait(list(busy), timeout):
            conn = cast(Connection, ready)  # wait() returns what it was given: connections
            container = busy[conn]
            message = conn.recv()
            container.busy, container.warm = False, True
            replies.append(
                Reply(
                    container,
                    container.job,
                    container.started_at,
                    clock.now(),
                    container.budget,
                    message["result"],
                    message["error"],
                    message["elapsed"],
                    message["reasons"],
                )
            )
        return replies

    def close(self) -> None:
        for container in self.containers:
            with contextlib.suppress(BrokenPipeError, OSError):
                container.conn.send(None)
        for container in self.containers:
            container.process.join(timeout=10)
            if container.process.is_alive():
                container.process.terminate()
