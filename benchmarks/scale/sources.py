"""The event sources in front of the Lambda (SQS queue, async invocations, the schedule) and the loop that drives them."""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from benchmarks.scale.constants import (
    ACCOUNT_ID,
    ASYNC_RETRY_DELAYS,
    BATCH_SIZE,
    BATCH_WINDOW,
    FUNCTION_TIMEOUT,
    MAX_CONCURRENCY,
    MAX_RECEIVES,
    REGION,
    VISIBILITY_TIMEOUT,
)
from benchmarks.scale.containers import Pool, Reply
from benchmarks.scale.runs import Run
from testsupport import throttle
from testsupport.event_builders import scheduled


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
        return scheduled()

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
