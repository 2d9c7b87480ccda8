"""Reads from CloudWatch: the mirror-loss metrics of the mirrored instances (`loss.py` decides).

GetMetricData, batched (up to 500 queries per call, the calls concurrent) and paginated with
botocore's paginator (a page may carry part of a query's values: they are joined by query id).
An AWS error, the deadline included, leaves the loss unknown with the reason: the coverage report
and the sweep go on without it.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from . import errors, inventory, loss
from .context import Context

AWS_ANSWERS = (ClientError, BotoCoreError, ResponseParserError)
"""What CloudWatch (or the deadline) can answer instead of data: the loss is then unknown."""


def _window(now: datetime, window_seconds: int) -> tuple[datetime, datetime]:
    """The window ending at the next whole minute (a datapoint stamped now is inside it)."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return end - timedelta(seconds=window_seconds), end


def _values(ctx: Context, batch: Sequence[Mapping[str, Any]], start: datetime, end: datetime) -> dict[str, list[Any]]:
    """One call's queries, every page of them."""
    paginator = ctx.clients.client("cloudwatch", ctx.place).get_paginator("get_metric_data")
    found: dict[str, list[Any]] = {}
    for page in paginator.paginate(MetricDataQueries=list(batch), StartTime=start, EndTime=end):
        for result in page.get("MetricDataResults", []):
            found.setdefault(str(result.get("Id", "")), []).extend(result.get("Values", []))
    return found


def metric_values(
    ctx: Context, queries: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> dict[str, list[Any]]:
    """Query id -> every value GetMetricData returned for it, `loss.QUERIES_PER_CALL` queries a call."""
    batches = [queries[i : i + loss.QUERIES_PER_CALL] for i in range(0, len(queries), loss.QUERIES_PER_CALL)]
    futures = [inventory.submit(ctx, _values, batch, start, end) for batch in batches]
    found: dict[str, list[Any]] = {}
    for future in futures:
        for query, values in future.result().items():
            found.setdefault(query, []).extend(values)
    return found


def mirror_loss(
    ctx: Context, instances: Sequence[loss.Mirrored], window_seconds: int, now: datetime | None = None
) -> loss.Loss:
    """The loss of `instances` over the last `window_seconds`; unknown (with why) when CloudWatch fails."""
    if not instances:
        return loss.Loss(window_seconds)
    start, end = _window(now or datetime.now(UTC), window_seconds)
    try:
        inventory.check_time(ctx, "reading the mirror-loss metrics")
        values = metric_values(ctx, loss.queries(instances, window_seconds), start, end)
    except (*AWS_ANSWERS, errors.ReadFailure) as error:
        return loss.failed(instances, window_seconds, f"{errors.code(error)}: {error}")
    return loss.measure(instances, values, window_seconds)
