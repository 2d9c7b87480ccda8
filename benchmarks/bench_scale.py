"""Scale benchmark: bursts of launches and large sweeps under EC2's API throttling.

    python -m benchmarks.bench_scale            # the full run (several minutes of real time)
    python -m benchmarks.bench_scale --quick    # a small smoke run

What is simulated, and how honestly:

- EC2: a moto server (with `testsupport.sandbox.aws_rules()`) behind `testsupport.throttle.ThrottledApp`,
  which holds EC2's token buckets per API action (describes 100 burst / 20 per second, mutating
  calls 50 burst / 5 per second; `--describe-burst` etc. change them) and answers an empty
  bucket with HTTP 503 `RequestLimitExceeded` without passing the request to moto.
- Lambda: every container is its own process (spawned, not forked) that imports `handler.app` and
  calls `lambda_handler(event, context)`: its own boto3 clients, adaptive rate limiters, retry
  quotas, inventory cache and thread pools. Containers are started before the clock starts (the
  INIT phase is not timed, about a second on Lambda), start cold (nothing cached) and stay warm
  for later invocations. The context's `get_remaining_time_in_millis` counts down the function
  timeout (300 s) or the sweep's budget.
- The deployed pipeline: EventBridge -> SQS -> event source mapping (batches of 10, 1 s batching
  window, maximum concurrency 2) -> Lambda with ReportBatchItemFailures; a failed message comes
  back after the visibility timeout (330 s) and goes to the DLQ after 5 receives.
- The alternative "direct" design: EventBridge invokes the Lambda asynchronously, one invocation per
  event, each in its own container (20 at once); a function error is retried by Lambda twice, after
  about 60 s and 120 s. The naive per-instance baseline (`benchmarks.baseline.naive_handler`) runs in
  the same design with its own boto3 client (default configuration) per container.
- Sweeps: the schedule invokes the Lambda every 5 minutes with a short budget (`--sweep-budget`);
  each sweep stops starting writes `MIRROR_DEADLINE_MARGIN_SECONDS` before its deadline and the next
  one continues, until every ENI is mirrored.

Scenarios (`--only`): `queue` (the issue's burst: 20 RunInstances events x 10 instances, through
the deployed queue), `queue+state` (the same plus each instance's "running" state-change event,
which the deployed rules also match, arriving 5-20 s later), `queue+sweep` (the same burst while the
schedule's sweep starts, with the deployed 300 s timeout, 2 s in), `direct` and `naive` (the
burst through direct asynchronous invocations, our handler and the blog post's), and `sweep`
(1,000 ENIs, no events, short budget). The direct design is not run with the state-change events:
that would be 220 concurrent containers, more processes than a benchmark box should spawn.

A larger burst compares the two designs where they part: `--events 60 --only queue,direct`
(600 ENIs, 60 direct containers).

`--experiment NAME` patches a proposed handler change into the handler's containers (see
EXPERIMENTS), so a fix can be measured before it is made; the output says so in its header.

Time: everything runs in real time (botocore's backoff sleeps and the buckets' refills share the
wall clock), except waits during which nothing is in flight (Lambda's retry delays, the visibility
timeout, the time between sweeps): those are skipped on a shared virtual clock. The buckets refill
for the skipped time, and every container's `time.time`/`time.monotonic` advance by the same
offset, so botocore's rate limiters and the handler's cache see the time pass too.
"""

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import re
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from testsupport import throttle

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# The deployed configuration (components/regional.py, components/config.py defaults).
FUNCTION_TIMEOUT = 300.0
VISIBILITY_TIMEOUT = FUNCTION_TIMEOUT + 30.0
MAX_RECEIVES = 5
BATCH_SIZE = 10
BATCH_WINDOW = 1.0
MAX_CONCURRENCY = 2
SWEEP_INTERVAL = 300.0
# Lambda's asynchronous invocation: two retries, about one and two minutes after the failure.
ASYNC_RETRY_DELAYS = (60.0, 120.0)
TARGET_RATIO = 1.5
"""Done when: the deployed pipeline's makespan is within 1.5x of the bucket bound."""
SOURCES_PER_LARGE_SENSOR = 100
DEFAULT_MARGIN = 15.0
"""MIRROR_DEADLINE_MARGIN_SECONDS's default (handler/settings.py)."""


# --- one Lambda container (a spawned process) --------------------------------------------------


class _Context:
    """The part of Lambda's context object the handler uses."""

    function_name = "traffic-mirror-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:traffic-mirror-bench"

    def __init__(self, budget: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + budget

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
    container.clients.config = container.clients.config.merge(Config(retries=retries))
    container.reset()
    container.clients.warm(Place(os.environ["AWS_REGION"]))


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
    time.time = lambda: real_time() + offset[0]  # type: ignore[assignment]
    time.monotonic = lambda: real_monotonic() + offset[0]  # type: ignore[assignment]
    collector = _Collector()
    invoke: Callable[[Any, _Context], Any]
    if kind == "ours":
        from traffic_mirror.handler import app, report

        logger = logging.getLogger(report.LOGGER_NAME)
        for existing in list(logger.handlers):
            logger.removeHandler(existing)
        logger.addHandler(collector)
        logger.propagate = False
        if retries:
            _experiment_retry_config(app, retries)
        for name in experiments:
            EXPERIMENTS[name]()

        def invoke(event: Any, context: _Context) -> Any:
            return app.lambda_handler(event, context)
    else:
        from benchmarks.baseline import make_client, naive_handler

        logging.disable(logging.CRITICAL)
        client = make_client(os.environ["AWS_REGION"])  # the post's module-level client

        def invoke(event: Any, context: _Context) -> Any:
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
        context = _Context(message["budget"])
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
        for conn in wait(list(busy), timeout):
            container = busy[conn]  # type: ignore[index]
            message = conn.recv()  # type: ignore[union-attr]
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


# --- what happened in one scenario -------------------------------------------------------------


@dataclass
class Run:
    name: str
    design: str
    handler: str
    enis: int = 0
    containers: int = 0
    replies: list[Reply] = field(default_factory=list)
    retries: int = 0
    lost: int = 0
    failed_messages: int = 0
    end: float = 0.0
    skipped: float = 0.0
    stats: throttle.Stats = field(default_factory=throttle.Stats)
    rates: throttle.Rates = field(default_factory=throttle.Rates)
    duplicates: int = 0
    unmirrored: int = 0
    strays: int = 0
    notes: list[str] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    margin: float = 15.0

    @property
    def errors(self) -> int:
        return sum(1 for r in self.replies if r.error)

    @property
    def overruns(self) -> int:
        return sum(1 for r in self.replies if r.overran)

    def bound(self) -> float:
        """Token-bucket bound: each action's successful calls beyond its burst, at its refill rate."""
        rates = self.rates
        creates = max(0.0, self.enis - rates.mutate_burst) / rates.mutate_rate
        others = [
            max(0.0, n - rates.for_action(a)[0]) / rates.for_action(a)[1]
            for a, n in self.stats.passed.items()
            if a != "CreateTrafficMirrorSession"
        ]
        return max([creates, *others])

    def reasons(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for reply in self.replies:
            total.update(reply.reasons)
            if reply.error:
                total[f"function error: {reply.error[:160]}"] += 1
        return total


# --- event sources ------------------------------------------------------------------------------


@dataclass
class Message:
    id: str
    event: dict[str, Any]
    receives: int = 0
    visible_at: float = 0.0
    received_at: float = 0.0
    state: str = "queued"  # queued, inflight, done, dlq


class QueueModel:
    """SQS + Lambda's event source mapping, with ReportBatchItemFailures."""

    def __init__(
        self,
        events: Sequence[dict[str, Any]],
        concurrency: int = MAX_CONCURRENCY,
        batch_size: int = BATCH_SIZE,
        window: float = BATCH_WINDOW,
        visibility: float = VISIBILITY_TIMEOUT,
        max_receives: int = MAX_RECEIVES,
        budget: float = FUNCTION_TIMEOUT,
        arrivals: Sequence[float] = (),
    ) -> None:
        at = list(arrivals) or [0.0] * len(events)
        self.messages = [Message(str(uuid.uuid4()), e, visible_at=t) for e, t in zip(events, at, strict=True)]
        self.concurrency, self.batch_size, self.window = concurrency, batch_size, window
        self.visibility, self.max_receives, self.budget = visibility, max_receives, budget

    def _visible(self, now: float) -> list[Message]:
        ready = [m for m in self.messages if m.state == "queued" and m.visible_at <= now]
        return sorted(ready, key=lambda m: m.visible_at)

    def dispatch(self, now: float, pool: Pool, run: Run, clock: throttle.SimClock) -> None:
        while pool.busy() < self.concurrency:
            visible = self._visible(now)
            if not visible:
                return
            if len(visible) < self.batch_size and now < visible[0].visible_at + self.window:
                return  # the batching window is still open
            container = pool.free()
            if container is None:
                return
            batch = visible[: self.batch_size]
            records = []
            for message in batch:
                message.state, message.received_at = "inflight", now
                message.receives += 1
                records.append(
                    {
                        "messageId": message.id,
                        "receiptHandle": f"rh-{message.id}-{message.receives}",
                        "body": json.dumps(message.event),
                        "attributes": {"ApproximateReceiveCount": str(message.receives)},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:traffic-mirror-events",
                        "awsRegion": REGION,
                    }
                )
            pool.invoke(container, {"Records": records}, self.budget, batch, clock)

    def next_due(self, now: float) -> float | None:
        queued = [m for m in self.messages if m.state == "queued"]
        if not queued:
            return None
        visible = self._visible(now)
        if visible:
            return visible[0].visible_at + self.window if len(visible) < self.batch_size else now
        return min(m.visible_at for m in queued)

    def complete(self, reply: Reply, run: Run) -> None:
        batch: list[Message] = reply.job
        if reply.error or reply.overran or not isinstance(reply.result, dict):
            failed = {m.id for m in batch}
        else:
            failed = {f["itemIdentifier"] for f in reply.result.get("batchItemFailures", [])}
        run.failed_messages += len(failed)
        for message in batch:
            if message.id not in failed:
                message.state = "done"
            elif message.receives >= self.max_receives:
                message.state = "dlq"
                run.lost += 1
            else:
                message.state = "queued"
                message.visible_at = message.received_at + self.visibility
                run.retries += 1


@dataclass
class AsyncEvent:
    event: dict[str, Any]
    attempts: int = 0
    due: float = 0.0
    state: str = "queued"  # queued, inflight, done, dropped


class DirectModel:
    """EventBridge -> Lambda asynchronous invocation: one per event, two retries on error."""

    def __init__(
        self,
        events: Sequence[dict[str, Any]],
        concurrency: int,
        budget: float = FUNCTION_TIMEOUT,
        arrivals: Sequence[float] = (),
    ) -> None:
        at = list(arrivals) or [0.0] * len(events)
        self.items = [AsyncEvent(e, due=t) for e, t in zip(events, at, strict=True)]
        self.concurrency, self.budget = concurrency, budget

    def dispatch(self, now: float, pool: Pool, run: Run, clock: throttle.SimClock) -> None:
        for item in sorted(self.items, key=lambda i: i.due):
            if item.state != "queued" or item.due > now or pool.busy() >= self.concurrency:
                continue
            container = pool.free()
            if container is None:
                return
            item.state = "inflight"
            item.attempts += 1
            pool.invoke(container, item.event, self.budget, item, clock)

    def next_due(self, now: float) -> float | None:
        due = [i.due for i in self.items if i.state == "queued"]
        return min(due) if due else None

    def complete(self, reply: Reply, run: Run) -> None:
        item: AsyncEvent = reply.job
        if not (reply.error or reply.overran):
            item.state = "done"
        elif item.attempts <= len(ASYNC_RETRY_DELAYS):
            item.state, item.due = "queued", reply.ended_at + ASYNC_RETRY_DELAYS[item.attempts - 1]
            run.retries += 1
        else:
            item.state = "dropped"
            run.lost += 1


class SweepModel:
    """The schedule: a sweep every `interval` seconds (Lambda async invoke) until converged."""

    def __init__(
        self,
        budget: float,
        interval: float,
        max_sweeps: int,
        coverage: Callable[[], tuple[int, int]],
        stats: Callable[[], throttle.Stats],
        first: float = 0.0,
    ) -> None:
        self.budget, self.interval, self.max_sweeps = budget, interval, max_sweeps
        self.coverage, self.stats = coverage, stats
        self.pending = DirectModel([], concurrency=2, budget=budget)
        self.next_tick: float | None = first
        self.ticks = 0

    def _event(self) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": "2026-11-27T12:00:00Z",
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/traffic-mirror-sweep"],
            "detail": {},
        }

    def dispatch(self, now: float, pool: Pool, run: Run, clock: throttle.SimClock) -> None:
        if self.next_tick is not None and self.next_tick <= now:
            self.ticks += 1
            self.pending.items.append(AsyncEvent(self._event(), due=now))
            self.next_tick = now + self.interval if self.ticks < self.max_sweeps else None
        self.pending.dispatch(now, pool, run, clock)

    def next_due(self, now: float) -> float | None:
        due = [d for d in (self.next_tick, self.pending.next_due(now)) if d is not None]
        return min(due) if due else None

    def complete(self, reply: Reply, run: Run) -> None:
        self.pending.complete(reply, run)
        duplicates, unmirrored = self.coverage()
        counts = (reply.result or {}).get("counts", {}) if isinstance(reply.result, dict) else {}
        writes = [t for t in self.stats().write_times if reply.started_at <= t <= reply.ended_at]
        run.sweeps.append(
            {
                "start": reply.started_at,
                "elapsed": reply.elapsed,
                "reads": (min(writes) - reply.started_at) if writes else None,
                "budget": reply.budget,
                "created": counts.get("Created", 0),
                "deferred": counts.get("Deferred", 0),
                "failed": counts.get("Failed", 0),
                "unmirrored": unmirrored,
                "duplicates": duplicates,
                "error": reply.error,
            }
        )
        if unmirrored == 0:
            self.next_tick = None


def simulate(parts: Sequence[tuple[Any, Pool]], clock: throttle.SimClock, run: Run) -> None:
    """Drive event sources (model, its containers) together.

    Real time while anything is in flight; idle waits are skipped on the virtual clock.
    """
    while True:
        now = clock.now()
        for model, pool in parts:
            model.dispatch(now, pool, run, clock)
        dues = [d for d in (model.next_due(now) for model, _ in parts) if d is not None]
        conns = [c.conn for _, pool in parts for c in pool.containers if c.busy]
        if conns:
            timeout = min([0.2, *(max(0.005, d - now) for d in dues)])
            wait(conns, timeout)
            for model, pool in parts:
                for reply in pool.wait(0, clock):
                    run.replies.append(reply)
                    run.end = max(run.end, reply.ended_at)
                    model.complete(reply, run)
            continue
        if not dues:
            return
        due = min(dues)
        if due > now:
            run.skipped += due - now
            clock.skip(due - now)


# --- the account -------------------------------------------------------------------------------


def _reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def _setup_client(url: str) -> Any:
    import boto3

    return throttle.bypass(boto3.client("ec2", region_name=REGION, endpoint_url=url))


def _account(ec2: Any, enis: int) -> Any:
    """A VPC over two AZs with large sensors (100 sources each) for `enis` sources, at most 2/3 full.

    The planner spreads ENIs over equally near sensors by hashing, not by load: at 75% average
    load a sensor overflows in about 1 run in 300 (TrafficMirrorSourcesPerTargetLimitExceeded),
    which is not what this benchmark measures.
    """
    from testsupport import sandbox

    per_az = max(1, -(-enis * 3 // (2 * 2 * SOURCES_PER_LARGE_SENSOR)))
    return sandbox.build_account(ec2, REGION, sensors_per_az=per_az, sensor_type="c5.24xlarge")


def _launch(ec2: Any, account: Any, count: int, per_call: int) -> Iterator[list[dict[str, Any]]]:
    """`count` m5.large instances (one ENI each), `per_call` per RunInstances, alternating AZs."""
    from testsupport import sandbox

    subnets = list(account.subnets.values())
    launched = 0
    while launched < count:
        n = min(per_call, count - launched)
        yield sandbox.launch(
            ec2, account, subnets[(launched // per_call) % len(subnets)], "m5.large", count=n
        )
        launched += n


def _enis(instances: Sequence[dict[str, Any]]) -> set[str]:
    return {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}


def state_change_event(instance_id: str) -> dict[str, Any]:
    """EC2's own "running" notification for one instance, as EventBridge delivers it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": ACCOUNT_ID,
        "time": "2026-11-27T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": "running"},
    }


def coverage(ec2: Any, expected: set[str]) -> tuple[int, int, int]:
    """(ENIs with more than one session, expected ENIs with none, sessions on unexpected ENIs)."""
    per_eni: Counter[str] = Counter()
    for page in ec2.get_paginator("describe_traffic_mirror_sessions").paginate():
        per_eni.update(s["NetworkInterfaceId"] for s in page["TrafficMirrorSessions"])
    duplicates = sum(1 for n in per_eni.values() if n > 1)
    strays = sum(n for eni, n in per_eni.items() if eni not in expected)
    return duplicates, len(expected - set(per_eni)), strays


# --- scenarios ---------------------------------------------------------------------------------


@dataclass
class Options:
    rates: throttle.Rates
    events: int = 20
    per_event: int = 10
    sweep_enis: int = 1000
    sweep_budget: float = 30.0
    sweep_interval: float = SWEEP_INTERVAL
    max_sweeps: int = 40
    sweep_at: float = 2.0
    state_changes: bool = False
    state_change_window: tuple[float, float] = (5.0, 20.0)
    runinstances_at: float = 0.0
    direct_concurrency: int = 20
    latency: float = 0.05
    handler_env: dict[str, str] = field(default_factory=dict)
    retries: dict[str, Any] = field(default_factory=dict)
    experiments: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ("queue", "queue+state", "queue+sweep", "direct", "naive", "sweep")
    quick: bool = False


def _env(url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_ENDPOINT_URL": url,
        "LOG_LEVEL": "INFO",
        "MIRROR_SWEEP_GRACE_SECONDS": "60",  # as the component deploys it
        **extra,
    }


class Bench:
    def __init__(self, server: throttle.Server, clock: throttle.SimClock, options: Options) -> None:
        self.server, self.clock, self.options = server, clock, options

    def _fresh(self) -> Any:
        _reset_moto(self.server.url)
        return _setup_client(self.server.url)

    def _count(self, run: Run) -> None:
        """Full buckets and zero counters before the containers start: their INIT-phase calls
        (the handler prefetches its inventory at cold start) count, as on Lambda, where INIT
        runs when the first event arrives. INIT itself is not timed (`_start` comes after)."""
        self.server.app.reset(self.options.rates)
        run.rates = self.options.rates

    def _start(self, run: Run) -> None:
        self.clock.start()

    def _finish(self, run: Run, ec2: Any, expected: set[str]) -> Run:
        run.stats = self.server.app.stats
        run.duplicates, run.unmirrored, run.strays = coverage(ec2, expected)
        return run

    def burst(self, name: str, design: str, handler: str) -> Run:
        from testsupport import sandbox

        opts = self.options
        ec2 = self._fresh()
        total = opts.events * opts.per_event
        account = _account(ec2, total)
        events: list[dict[str, Any]] = []
        arrivals: list[float] = []
        expected: set[str] = set()
        rng = random.Random(7)
        for index, instances in enumerate(_launch(ec2, account, total, opts.per_event)):
            expected |= _enis(instances)
            record = sandbox.run_instances_record(instances, event_id=f"{uuid.uuid4()}")
            events.append(sandbox.wrap(record, event_id=f"evt-{index}"))
            arrivals.append(opts.runinstances_at)
            if opts.state_changes or design == "queue+state":
                for instance in instances:
                    events.append(state_change_event(instance["InstanceId"]))
                    arrivals.append(rng.uniform(*opts.state_change_window))
        order = sorted(range(len(events)), key=lambda i: (arrivals[i], rng.random()))
        events, arrivals = [events[i] for i in order], [arrivals[i] for i in order]
        env = _env(self.server.url, opts.handler_env)
        size = MAX_CONCURRENCY if design.startswith("queue") else min(opts.direct_concurrency, len(events))
        run = Run(name, design, handler, enis=len(expected), containers=size)
        self._count(run)
        pools = [Pool(handler, size, env, opts.retries, opts.experiments)]
        try:
            model: Any = (
                QueueModel(events, arrivals=arrivals)
                if design.startswith("queue")
                else DirectModel(events, concurrency=size, arrivals=arrivals)
            )
            parts = [(model, pools[0])]
            if design == "queue+sweep":
                # The schedule's sweep is an asynchronous invocation of its own (not capped by the
                # event source mapping), with the deployed timeout.
                pools.append(Pool(handler, 1, env, opts.retries, opts.experiments))
                run.containers += 1
                sweep = SweepModel(
                    FUNCTION_TIMEOUT,
                    SWEEP_INTERVAL,
                    1,
                    lambda: coverage(ec2, expected)[:2],
                    lambda: self.server.app.stats,
                    first=opts.sweep_at,
                )
                parts.append((sweep, pools[1]))
            self._start(run)
            simulate(parts, self.clock, run)
        finally:
            for pool in pools:
                pool.close()
        return self._finish(run, ec2, expected)

    def sweep(self) -> Run:
        opts = self.options
        ec2 = self._fresh()
        account = _account(ec2, opts.sweep_enis)
        expected: set[str] = set()
        for instances in _launch(ec2, account, opts.sweep_enis, 100):
            expected |= _enis(instances)
        run = Run("ours, scheduled sweep", "sweep", "ours", enis=len(expected), containers=2)
        run.margin = float(opts.handler_env.get("MIRROR_DEADLINE_MARGIN_SECONDS", DEFAULT_MARGIN))
        self._count(run)
        # These instances stand for ones that existed long before the sweep, so no grace period.
        sweep_env = {"MIRROR_SWEEP_GRACE_SECONDS": "0", **opts.handler_env}
        pool = Pool("ours", 2, _env(self.server.url, sweep_env), opts.retries, opts.experiments)
        try:
            model = SweepModel(
                opts.sweep_budget,
                opts.sweep_interval,
                opts.max_sweeps,
                lambda: coverage(ec2, expected)[:2],
                lambda: self.server.app.stats,
            )
            self._start(run)
            simulate([(model, pool)], self.clock, run)
        finally:
            pool.close()
        return self._finish(run, ec2, expected)


# --- output --------------------------------------------------------------------------------------


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s"


def burst_table(runs: Sequence[Run]) -> str:
    header = "| | " + " | ".join(r.name for r in runs) + " |"
    lines = [header, "|---" * (len(runs) + 1) + "|"]

    def row(label: str, values: Sequence[Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    row("ENIs", [r.enis for r in runs])
    row("concurrent containers", [r.containers for r in runs])
    row("makespan (burst to last invocation end)", [_s(r.end) for r in runs])
    row("token-bucket bound", [_s(r.bound()) for r in runs])
    row("makespan / bound", [f"{r.end / r.bound():.2f}x" if r.bound() else "-" for r in runs])
    last = [r.stats.last_pass.get("CreateTrafficMirrorSession") for r in runs]
    row("last session created at", [_s(t) if t is not None else "-" for t in last])
    row("invocations", [len(r.replies) for r in runs])
    row("retries used (Lambda / SQS redeliveries)", [r.retries for r in runs])
    row("function errors", [r.errors for r in runs])
    row(
        "failed SQS messages (batchItemFailures)",
        [r.failed_messages if r.design.startswith("queue") else "-" for r in runs],
    )
    row("events lost (DLQ / dropped after retries)", [r.lost for r in runs])
    row(
        "API calls (throttled)",
        [f"{sum(r.stats.calls.values())} ({sum(r.stats.throttled.values())})" for r in runs],
    )
    row("**duplicates** (must be 0)", [r.duplicates for r in runs])
    row("**ENIs left unmirrored** (must be 0)", [r.unmirrored for r in runs])
    row("**deadline overruns** (must be 0)", [r.overruns for r in runs])
    row(
        "longest invocation / timeout",
        [f"{max((x.elapsed for x in r.replies), default=0):.1f} / {FUNCTION_TIMEOUT:.0f} s" for r in runs],
    )
    row("idle time skipped (virtual clock)", [_s(r.skipped) for r in runs])
    return "\n".join(lines)


def calls_table(runs: Sequence[Run]) -> str:
    actions = sorted({a for r in runs for a in r.stats.calls}, key=lambda a: (not throttle.is_mutating(a), a))
    lines = [
        "| API calls: sent (throttled) | " + " | ".join(r.name for r in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for action in actions:
        cells = [
            f"{r.stats.calls[action]} ({r.stats.throttled[action]})" if r.stats.calls[action] else "-"
            for r in runs
        ]
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(run: Run) -> str:
    lines = [
        "| sweep | starts at | elapsed / budget | reads before 1st write | created | deferred | failed"
        " | unmirrored after | duplicates |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in enumerate(run.sweeps, 1):
        error = f" (error: {s['error'][:60]})" if s["error"] else ""
        reads = "no write" if s["reads"] is None else f"{s['reads']:.1f} s"
        lines.append(
            f"| {n} | {_s(s['start'])} | {s['elapsed']:.1f} / {s['budget']:.0f} s{error} | {reads} | {s['created']} "
            f"| {s['deferred']} | {s['failed']} | {s['unmirrored']} | {s['duplicates']} |"
        )
    converged = run.sweeps and run.sweeps[-1]["unmirrored"] == 0
    lines += [
        "",
        f"- ENIs: {run.enis}; sweeps needed: {len(run.sweeps)} ({'converged' if converged else 'NOT converged'});"
        f" simulated time {_s(run.end)}; create bound {_s(run.bound())}",
        f"- **deadline overruns: {run.overruns}**, **duplicates: {run.duplicates}**,"
        f" **ENIs left unmirrored: {run.unmirrored}**, sessions on sensor ENIs: {run.strays}",
        f"- API calls: {sum(run.stats.calls.values())}, throttled: {sum(run.stats.throttled.values())}",
        "- moto's answer time per call (the reads' server side; parsing happens in the container): "
        + ", ".join(
            f"{a} {run.stats.moto_seconds[a] / run.stats.passed[a]:.2f} s"
            for a in sorted(run.stats.passed)
            if not throttle.is_mutating(a)
        ),
        f"- the deadline margin ({run.margin:g} s) leaves {run.sweeps[0]['budget'] - run.margin:g} s per"
        " invocation for reads and writes: a sweep creates nothing once its reads take that long",
    ]
    return "\n".join(lines)


def reasons_text(runs: Sequence[Run]) -> str:
    lines = []
    for run in runs:
        top = run.reasons().most_common(6)
        if top:
            lines.append(f"- {run.name}:")
            lines.extend(f"  - {n} x {reason}" for reason, n in top)
    return "\n".join(lines) if lines else "- none"


def verdict(runs: Sequence[Run], check_makespan: bool = True) -> list[str]:
    """The done-when criteria for the deployed pipeline (queue) and the sweep; empty = met.

    The makespan criterion needs the real sizes and rates (a quick run's bound is a second or so,
    which the 1 s batching window alone exceeds)."""
    misses = []
    for run in runs:
        if run.handler != "ours" or run.design not in ("queue", "queue+state", "queue+sweep", "sweep"):
            continue
        for what, value in (
            ("duplicates", run.duplicates),
            ("ENIs left unmirrored", run.unmirrored),
            ("deadline overruns", run.overruns),
        ):
            if value:
                misses.append(f"{run.name}: {value} {what}")
        if (
            check_makespan
            and run.design.startswith("queue")
            and run.bound()
            and run.end > TARGET_RATIO * run.bound()
        ):
            misses.append(
                f"{run.name}: makespan {run.end:.1f} s is over {TARGET_RATIO}x the bound {run.bound():.1f} s"
            )
        if run.design == "sweep" and (not run.sweeps or run.sweeps[-1]["unmirrored"]):
            misses.append(f"{run.name}: did not converge in {len(run.sweeps)} sweeps")
    return misses


def code_state() -> str:
    """Which handler code ran: the commit, and any uncommitted change to the files that ran."""
    import subprocess

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return ""
        return done.stdout.rstrip("\n")

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "handler", "benchmarks/baseline.py").splitlines()
    changed = ", ".join(line[3:] for line in dirty)
    return f"Code: commit {head}" + (f" plus uncommitted changes to {changed}." if changed else ".")


def report(runs: Sequence[Run], options: Options) -> str:
    rates = options.rates
    out = [
        code_state(),
        f"EC2 token buckets per API action: describes {rates.describe_burst:g} burst / {rates.describe_rate:g} per s,"
        f" mutating calls {rates.mutate_burst:g} burst / {rates.mutate_rate:g} per s;"
        f" EC2 latency per call {options.latency * 1000:.0f} ms.",
    ]
    if options.handler_env or options.retries or options.experiments:
        out.append(
            f"EXPERIMENT (not the deployed configuration): env {options.handler_env},"
            f" retries {options.retries}, patches {list(options.experiments)}"
        )
    bursts = [r for r in runs if r.design != "sweep"]
    if bursts:
        out += [
            "",
            f"### Burst: {options.events} RunInstances events x {options.per_event} instances"
            + (
                f" at {options.runinstances_at:g} s, plus one 'running' state-change event per instance"
                f" between {options.state_change_window[0]:g} and {options.state_change_window[1]:g} s"
                if options.state_changes
                else " at once"
            ),
            "",
            burst_table(bursts),
            "",
            calls_table(bursts),
        ]
    for run in runs:
        if run.design == "sweep":
            out += [
                "",
                f"### Sweep: {run.enis} ENIs, budget {options.sweep_budget:g} s per invocation,"
                f" every {options.sweep_interval:g} s",
                "",
                sweep_table(run),
                "",
                calls_table([run]),
            ]
    for run in runs:
        out += [f"- {run.name}: {note}" for note in run.notes]
    out += [
        "",
        "Why ENIs failed or were deferred (per decision, summed over invocations):",
        reasons_text(runs),
    ]
    return "\n".join(out)


# --- command line ---------------------------------------------------------------------------------


def _baseline_available() -> bool:
    try:
        from benchmarks.baseline import naive_handler  # noqa: F401
    except ImportError:
        return False
    return True


def run_all(options: Options, out: Callable[[str], None] = print) -> tuple[list[Run], list[str]]:
    """Run the chosen scenarios; return the runs and the missed done-when criteria."""
    from testsupport import sandbox

    clock = throttle.SimClock()
    runs: list[Run] = []
    with throttle.Server(options.rates, clock, options.latency) as server, sandbox.aws_rules():
        bench = Bench(server, clock, options)
        plan: list[tuple[str, Callable[[], Run]]] = []
        if "queue" in options.scenarios:
            plan.append(("queue", lambda: bench.burst("ours, SQS queue (deployed)", "queue", "ours")))
        if "queue+state" in options.scenarios:
            lo, hi = options.state_change_window
            plan.append(
                (
                    "queue+state",
                    lambda: bench.burst(
                        f"ours, SQS queue + {options.events * options.per_event} state-change events"
                        f" ({lo:g}-{hi:g} s)",
                        "queue+state",
                        "ours",
                    ),
                )
            )
        if "queue+sweep" in options.scenarios:
            plan.append(
                (
                    "queue+sweep",
                    lambda: bench.burst(
                        f"ours, SQS queue + a sweep at {options.sweep_at:g} s", "queue+sweep", "ours"
                    ),
                )
            )
        if "direct" in options.scenarios:
            plan.append(("direct", lambda: bench.burst("ours, direct", "direct", "ours")))
        if "naive" in options.scenarios:
            if _baseline_available():
                plan.append(("naive", lambda: bench.burst("naive per-instance, direct", "direct", "naive")))
            else:
                out("(benchmarks.baseline is not there yet: the naive baseline is skipped)")
        if "sweep" in options.scenarios:
            plan.append(("sweep", bench.sweep))
        for label, scenario in plan:
            started = time.monotonic()
            run = scenario()
            runs.append(run)
            out(f"({label}: {time.monotonic() - started:.0f} s of real time)")
    return runs, verdict(runs, check_makespan=not options.quick)


def _pairs(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        key, _, val = value.partition("=")
        found[key] = val
    return found


def _window(value: str) -> tuple[float, float]:
    lo, _, hi = value.partition(",")
    return float(lo), float(hi or lo)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--describe-burst", type=float, default=100.0)
    parser.add_argument("--describe-rate", type=float, default=20.0)
    parser.add_argument("--mutate-burst", type=float, default=50.0)
    parser.add_argument("--mutate-rate", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=20, help="RunInstances events in the burst")
    parser.add_argument("--per-event", type=int, default=10, help="instances (one ENI each) per event")
    parser.add_argument("--sweep-enis", type=int, default=1000)
    parser.add_argument("--sweep-budget", type=float, default=30.0, help="seconds per sweep invocation")
    parser.add_argument("--sweep-interval", type=float, default=SWEEP_INTERVAL)
    parser.add_argument("--max-sweeps", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.05, help="EC2's own latency per call, seconds")
    parser.add_argument(
        "--only",
        default="queue,queue+state,queue+sweep,direct,naive,sweep",
        help="comma-separated: queue, queue+state, queue+sweep, direct, naive, sweep",
    )
    parser.add_argument(
        "--sweep-at", type=float, default=2.0, help="queue+sweep: when the schedule's sweep starts"
    )
    parser.add_argument(
        "--handler-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the handler's containers (experiments, e.g. MIRROR_MAX_WORKERS=4)",
    )  # fmt: skip
    parser.add_argument(
        "--retry", action="append", default=[], metavar="KEY=VALUE",
        help="experiment: override the handler's botocore retries (mode=standard, max_attempts=20)",
    )  # fmt: skip
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        choices=sorted(EXPERIMENTS),
        help="experiment: patch a proposed handler change into the handler's containers",
    )
    parser.add_argument(
        "--state-changes",
        action="store_true",
        help="also send each instance's 'running' state-change event (the deployed rules match it)",
    )
    parser.add_argument(
        "--state-change-window",
        default="5,20",
        help="LO,HI: state-change events arrive uniformly in this window (seconds after the burst)",
    )
    parser.add_argument(
        "--runinstances-at", type=float, default=0.0, help="when the RunInstances events arrive"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run (about 30 s)")
    args = parser.parse_args(argv)
    retries: dict[str, Any] = {k: int(v) if v.isdigit() else v for k, v in _pairs(args.retry).items()}
    rates = throttle.Rates(args.describe_burst, args.describe_rate, args.mutate_burst, args.mutate_rate)
    options = Options(
        rates,
        events=args.events,
        per_event=args.per_event,
        sweep_enis=args.sweep_enis,
        sweep_budget=args.sweep_budget,
        sweep_interval=args.sweep_interval,
        max_sweeps=args.max_sweeps,
        sweep_at=args.sweep_at,
        state_changes=args.state_changes,
        state_change_window=_window(args.state_change_window),
        runinstances_at=args.runinstances_at,
        latency=args.latency,
        handler_env=_pairs(args.handler_env),
        retries=retries,
        experiments=tuple(args.experiment),
        scenarios=tuple(s.strip() for s in args.only.split(",") if s.strip()),
    )
    if args.quick:
        options = quick(options)
    options.direct_concurrency = options.events
    return options


def quick(options: Options) -> Options:
    """Tiny sizes and small buckets: every mechanism runs (throttling included) in well under a minute."""
    options.rates = throttle.Rates(describe_burst=40, describe_rate=40, mutate_burst=4, mutate_rate=8)
    options.events, options.per_event = 4, 3
    options.sweep_enis, options.sweep_budget = 40, 5.0
    options.handler_env = {"MIRROR_DEADLINE_MARGIN_SECONDS": "3", **options.handler_env}
    options.latency = 0.01
    options.quick = True
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    runs, misses = run_all(options, out=lambda line: print(line, file=sys.stderr, flush=True))
    print(report(runs, options))
    if misses:
        print("\nDONE-WHEN MISSED:\n" + "\n".join(f"- {m}" for m in misses))
        return 1
    print("\nDone-when criteria met for the deployed pipeline and the sweep.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
