"""Lambda entry point: event -> changes -> plan -> apply -> report.

Accepts an EventBridge event (direct target), an SQS batch of EventBridge events (the queue
the component deploys), or a bare CloudTrail record. Raises only when retryable failures
remain, so that Lambda's retry finishes the job; for SQS batches it reports the failed
messages instead (`batchItemFailures`), and only those are retried.
"""

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import clients, inventory
from . import settings as settings_module

SETTINGS = settings_module.load()
"""Validated once per container: a bad variable fails the cold start with a clear message."""
DEFAULT_BUDGET_SECONDS = 300.0

# Cold start: the function's own region's clients, then its inventory in the background, so the
# first round trips overlap the rest of the imports. (AWS_REGION is set by Lambda, not by tests.)
if os.environ.get("AWS_REGION"):
    clients.warm(os.environ["AWS_REGION"])
    inventory.prefetch(os.environ["AWS_REGION"])

from . import reconcile, report  # noqa: E402
from .apply import Result  # noqa: E402
from .events import Change, Skip, parse  # noqa: E402

report.configure()


class RetryableFailure(RuntimeError):
    """Some ENIs could not be handled yet (throttling, stale inventory, deadline); safe to retry."""


def _unwrap(event: Any) -> list[tuple[str | None, Any]]:
    """(SQS message id or None, EventBridge event) pairs."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records and all(isinstance(r, Mapping) and "body" in r for r in records):
        pairs: list[tuple[str | None, Any]] = []
        for record in records:
            try:
                body = json.loads(record["body"])
            except (TypeError, ValueError):
                body = f"unparsable SQS body: {str(record['body'])[:80]!r}"
            pairs.append((str(record.get("messageId", "")), body))
        return pairs
    return [(None, event)]


def _remaining(context: Any) -> Callable[[], float]:
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: float(context.get_remaining_time_in_millis()) / 1000.0
    end = time.monotonic() + DEFAULT_BUDGET_SECONDS
    return lambda: end - time.monotonic()


def handle(
    event: Any,
    context: Any = None,
    *,
    endpoint: str | None = None,
    settings: settings_module.Settings | None = None,
) -> dict[str, Any]:
    """The whole pipeline; `lambda_handler` is this with the container's settings."""
    started = time.monotonic()
    settings = settings or SETTINGS
    calls_before = clients.calls_snapshot()
    remaining = _remaining(context)
    pairs = _unwrap(event)
    parsed: list[tuple[str | None, Change | Skip]] = [(mid, parse(body, settings)) for mid, body in pairs]
    skips = [p for _, p in parsed if isinstance(p, Skip)]
    for skip in skips:
        report.skipped_event(skip)

    by_region: dict[str, list[tuple[str | None, Change]]] = {}
    for mid, item in parsed:
        if isinstance(item, Change):
            by_region.setdefault(item.region, []).append((mid, item))
            for dropped in item.rejected:
                report.skipped_event(Skip("rejected", dropped, item.event_name, item.event_id))

    all_results: list[Result] = []
    failed_messages: set[str] = set()
    retry_needed = False
    for region, items in by_region.items():
        batch = [c for _, c in items]
        outcome = _reconcile(batch, region, endpoint, settings, remaining)
        names = ",".join(sorted({c.event_name for c in batch}))
        for result in outcome.results:
            report.decision(result, region, names)
        all_results.extend(outcome.results)
        failed = outcome.failed_changes()
        is_sweep = any(c.kind == "sweep" for c in batch)
        for index in failed:
            mid = items[index][0]
            if mid is not None:
                failed_messages.add(mid)
            elif not (is_sweep and _only_deferred(outcome.results)):
                retry_needed = True

    tally = report.counts(all_results, skips)
    calls = clients.calls_snapshot() - calls_before
    report.summary(
        tally,
        (time.monotonic() - started) * 1000,
        calls,
        events=len(pairs),
        failed_messages=len(failed_messages),
    )
    if pairs and pairs[0][0] is not None:
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failed_messages)]}
    if retry_needed:
        raise RetryableFailure(
            f"{tally['Failed'] + tally['Deferred']} ENI(s) left for a retry; see the decision lines"
        )
    return {"counts": dict(tally)}


def _only_deferred(results: Sequence[Result]) -> bool:
    """A sweep that stopped at its deadline is not a failure: the next sweep continues."""
    return all(r.status == "deferred" for r in results if r.retryable)


def _reconcile(
    batch: Sequence[Change],
    region: str,
    endpoint: str | None,
    settings: settings_module.Settings,
    remaining: Callable[[], float],
) -> reconcile.Outcome:
    sweeps = [c for c in batch if c.kind == "sweep"]
    if sweeps:
        # A sweep covers every ENI of the region, so it answers the whole batch.
        refresh = any(c.refresh_inventory for c in sweeps)
        if refresh:
            inventory.invalidate(region)
        # Only a purely scheduled sweep leaves just-attached ENIs to their own events: a sweep for
        # a deleted session or a route change, or one batched with launches, covers them too.
        scheduled = all(c.event_name == "Scheduled Event" for c in batch)
        outcome = reconcile.sweep(
            region,
            endpoint,
            settings,
            remaining,
            refresh=refresh,
            trigger=sweeps[0].event_id,
            grace=settings.sweep_grace_seconds if scheduled else 0.0,
        )
        if outcome.failed_changes():
            outcome.owners = {r.decision.eni_id: set(range(len(batch))) for r in outcome.results}
        return outcome
    return reconcile.changes(batch, region, endpoint, settings, remaining)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (`handler.app.lambda_handler`)."""
    return handle(event, context)
