"""Lambda entry point: event -> changes -> plan -> apply -> report.

Accepts an EventBridge event (direct target), an SQS batch of EventBridge events (the queue
the component deploys), or a bare CloudTrail record. Raises only when retryable failures
remain, so that Lambda's retry finishes the job; for SQS batches it reports the failed
messages instead (`batchItemFailures`), and only those are retried.
"""

import dataclasses
import functools
import gc
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

IN_LAMBDA = os.environ.get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_") and bool(os.environ.get("AWS_REGION"))
"""Set by the Lambda runtime only: developer shells and CI jobs with AWS_REGION do no work at import."""
_COLLECTING = gc.isenabled()
if IN_LAMBDA:
    # Init makes what lives as long as the container (botocore's models: ~10^5 objects), and the
    # garbage collector would go through it again and again as it piles up. Off until init ends;
    # `gc.freeze` below then leaves it out of every later collection, the first event's included.
    gc.disable()

from . import readahead  # noqa: E402
from .clients import RETRY_CONFIG, Clients, Place  # noqa: E402

_CLIENTS, _INVENTORY_READS = Clients(RETRY_CONFIG), readahead.pool()
# Cold start, in Lambda only: the function's own region's EC2 client, and the inventory's first
# reads sent at once (they need nothing else), so their round trips overlap the rest of the imports.
if IN_LAMBDA:
    _HOME = Place(os.environ["AWS_REGION"])
    _FIRST = readahead.start(_CLIENTS, _HOME, _INVENTORY_READS)

from . import accounts, errors, inventory  # noqa: E402
from . import settings as settings_module  # noqa: E402
from .context import Container, Context, deadline_margin  # noqa: E402

SETTINGS = settings_module.load()
"""Validated once per container: a bad variable fails the cold start with a clear message."""
CONTAINER = Container(_CLIENTS, _INVENTORY_READS)
"""What this container keeps between invocations: clients, caches, lessons."""
DEFAULT_BUDGET_SECONDS = 300.0

if IN_LAMBDA:  # the rest of the inventory (its targets' health) in the background, from those reads
    inventory.prefetch(Context(_HOME, SETTINGS, CONTAINER), _FIRST)

from . import reconcile, report  # noqa: E402
from .apply import Result  # noqa: E402
from .events import Change, Home, Skip, parse  # noqa: E402

report.configure(SETTINGS.log_level)
if IN_LAMBDA:
    gc.freeze()
    if _COLLECTING:
        gc.enable()


class RetryableFailure(RuntimeError):
    """Some ENIs could not be handled yet (throttling, stale inventory, deadline); safe to retry."""


def _unwrap(event: Any) -> list[tuple[str | None, Any]]:
    """(SQS message id or None, EventBridge event) pairs."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records and all(isinstance(r, Mapping) and "body" in r for r in records):
        pairs: list[tuple[str | None, Any]] = []
        for record in records:
            pairs.append((str(record.get("messageId", "")), _usable(record["body"], parse_json=True)))
        return pairs
    return [(None, _usable(event))]


def _usable(raw: Any, parse_json: bool = False) -> Any:
    """The event (an SQS body parsed as JSON), or a string saying why it is unusable (parse
    rejects strings): one poison message is rejected alone, here, never its neighbours.
    (Lone surrogates in ids are made encodable by `events.parse`.)
    """
    try:
        return json.loads(raw) if parse_json else raw
    except (TypeError, ValueError, RecursionError) as error:  # not JSON, or nested too deep to parse
        return f"unusable event ({type(error).__name__}): {str(raw)[:80]!a}"


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region botocore has an EC2 endpoint for, in every partition (an unknown one is rejected).

    Read through the container's own session: its EC2 client has loaded botocore's endpoint table
    and EC2 model already (or will reuse them), where a new session would parse both again, a
    third of a cold start.
    """
    session = CONTAINER.clients.base_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def home_of(context: Any) -> Home:
    """The function's own region: AWS_REGION in Lambda, else the function ARN's, else any known one."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")  # arn:aws:lambda:REGION:ACCOUNT:function:NAME
    region = os.environ.get("AWS_REGION") if IN_LAMBDA else (parts[3] if len(parts) > 5 else None)
    return Home(frozenset({region}) if region else None, known_regions())


def request_id(context: Any) -> str:
    """Lambda's id of this invocation (a fresh one outside Lambda)."""
    return str(getattr(context, "aws_request_id", "") or uuid.uuid4())


def _per_run(change: Change, invocation: str) -> Change:
    """Ids that repeat across runs (fixed post-deploy id, none at all) get the request id mixed in,
    so their ClientTokens are new each run; CloudTrail's eventID stays as it is (redeliveries of one
    API call keep their tokens, and stay idempotent)."""
    if change.trigger_unique:
        return change
    return dataclasses.replace(change, event_id=f"{change.event_id}/{invocation}")


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
    container: Container | None = None,
) -> dict[str, Any]:
    """The whole pipeline; `lambda_handler` is this with the container's settings."""
    started = time.monotonic()
    settings = settings or SETTINGS
    container = container or CONTAINER
    calls_before = container.clients.calls_snapshot()
    remaining = _remaining(context)
    budget = remaining()
    # Requests (and retry waits) stop at half the margin: a round of reads or a write started
    # just before the margin still has time to finish.
    container.clients.new_invocation(remaining, deadline_margin(settings, budget) / 2)
    where = home_of(context)
    invocation = request_id(context)
    pairs = _unwrap(event)
    parsed: list[tuple[str | None, Change | Skip]] = [
        (mid, parse(body, settings, where, queued=mid is not None)) for mid, body in pairs
    ]
    skips = [p for _, p in parsed if isinstance(p, Skip)]
    for skip in skips:
        report.skipped_event(skip)

    home = Context(Place(_home_region(parsed), None, endpoint), settings, container, remaining, budget)
    own = accounts.own_account(home, context) if any(isinstance(p, Change) for _, p in parsed) else ""
    groups: dict[tuple[str, str], list[tuple[str | None, Change]]] = {}
    unchecked: list[tuple[str | None, Change]] = []
    for mid, item in parsed:
        if not isinstance(item, Change):
            continue
        for dropped in item.rejected:
            report.skipped_event(Skip("rejected", dropped, item.event_name, item.event_id))
        account = item.account or own
        try:
            covered = accounts.allowed(home, account)
        except Exception as error:  # Organizations unwell: this event waits, its neighbours go on
            report.read_failed(item.region, [item], error)
            unchecked.append((mid, item))
            continue
        if not covered:
            skip = Skip("rejected", f"account {account} is not covered (MIRROR_ACCOUNTS)", item.event_name, item.event_id)
            report.skipped_event(skip)
            skips.append(skip)
            continue
        groups.setdefault((account, item.region), []).append((mid, _per_run(item, invocation)))

    def run(key: tuple[str, str]) -> tuple[reconcile.Job, reconcile.Outcome]:
        account, region = key
        batch = [c for _, c in groups[key]]
        ctx = Context(Place(region, None, endpoint), settings, container, remaining, budget)
        started = time.monotonic()
        job = reconcile.job_for(batch, settings)
        outcome = _reconcile(job, batch, ctx.at(None if account == own else account), own)
        if job.covers_region:
            report.coverage(outcome.results, region, (time.monotonic() - started) * 1000, outcome.sensors)
            report.evidence(outcome.results, outcome.losses, region, account, settings)
        return job, outcome

    all_results: list[Result] = []
    failed_messages: set[str] = set()
    retry_needed = False
    # Accounts (and regions) are independent, with their own API budgets: handle them side by side.
    keys = sorted(groups)
    for (account, region), (job, outcome) in zip(keys, container.groups.map(run, keys), strict=True):
        items = groups[(account, region)]
        for skip in outcome.skips:
            report.skipped_event(skip)
        skips.extend(outcome.skips)
        names = ",".join(sorted({c.event_name for _, c in items}))
        for result in outcome.results:
            report.decision(result, region, names, result.account or account)
        report.untrusted(outcome.results, region, account)
        all_results.extend(outcome.results)
        for index in outcome.failed_changes():
            mid = items[index][0]
            if mid is not None:
                failed_messages.add(mid)
            elif job.failed_for_good(outcome):
                retry_needed = True

    for mid, item in unchecked:
        why = f"cannot tell whether account {item.account} is covered (Organizations)"
        all_results.extend(reconcile.failed(why, 1, item.account).results)
        if mid is not None:
            failed_messages.add(mid)
        else:
            retry_needed = True

    tally = report.counts(all_results, skips)
    problems = report.problems(all_results)
    calls = container.clients.calls_snapshot() - calls_before
    bad_priorities = sum(1 for r in all_results if r.decision.priority_error)
    report.summary(
        tally,
        (time.monotonic() - started) * 1000,
        calls,
        events=len(pairs),
        failed_messages=len(failed_messages),
        problems=problems,
        **({"priority_errors": bad_priorities} if bad_priorities else {}),
    )
    if pairs and pairs[0][0] is not None:
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted(failed_messages)]}
    if retry_needed:
        raise RetryableFailure(
            f"{tally['Failed'] + tally['Deferred']} ENI(s) left for a retry; see the decision lines"
        )
    return {"counts": dict(tally), "problems": problems}


def _home_region(parsed: Sequence[tuple[str | None, Change | Skip]]) -> str:
    """The function's own region (where its STS and Organizations calls go)."""
    region = os.environ.get("AWS_REGION")
    return region or next((p.region for _, p in parsed if isinstance(p, Change)), "us-east-1")


def _reconcile(job: reconcile.Job, batch: Sequence[Change], ctx: Context, own: str) -> reconcile.Outcome:
    """One account's and region's share of the batch; a failure here fails only its messages.

    A failure all its changes share (AWS unwell, a refused role, an implausible read, the
    deadline) fails them all; any other (one change's data breaking the code) is retried change
    by change, so a poison change fails alone, never its neighbours.
    """
    try:
        return reconcile.run(job, batch, ctx, lambda: accounts.covered(ctx), own)
    except Exception as error:  # a role that cannot be assumed, a read that failed: this group only
        if len(batch) > 1 and not errors.shared(error):
            return _one_by_one(batch, ctx, own)
        where = f"account {ctx.place.account or own} in {ctx.region}"
        report.read_failed(ctx.region, batch, error)
        return reconcile.failed(f"cannot handle {where}: {type(error).__name__}: {error}", len(batch))


def _one_by_one(batch: Sequence[Change], ctx: Context, own: str) -> reconcile.Outcome:
    """Each change on its own (its owners renumbered into the batch)."""
    merged = reconcile.Outcome([])
    for index, change in enumerate(batch):
        alone = _reconcile(reconcile.job_for([change], ctx.settings), [change], ctx, own)
        merged.results.extend(alone.results)
        merged.skips.extend(alone.skips)
        for eni, owners in alone.owners.items():
            merged.owners.setdefault(eni, set()).update(index for _ in owners)
    return merged


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (`handler.app.lambda_handler`)."""
    return handle(event, context)
