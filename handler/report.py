"""Structured output: one JSON log line per ENI decision, one summary line, and metrics.

Metrics use CloudWatch's Embedded Metric Format (a JSON line on stdout), so they cost no API
call. With the function's log format set to JSON, Lambda adds the `extra` fields of each
record as top-level keys; outside Lambda `JsonFormatter` gives the same shape.
"""

import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import coverage as counting
from . import errors
from .apply import Result, problem_counts
from .events import Change, Skip
from .planner import CONFIG_PROBLEMS, INTERCEPTED, NOT_LISTED, OVER_BUDGET, PROBLEMS, QUOTA
from .settings import Settings

if TYPE_CHECKING:
    from . import loss as mirror_loss

LOGGER_NAME = "traffic_mirror"
METRIC_NAMESPACE = "TrafficMirrorAutomation"
METRICS = (
    "Created",
    "Modified",
    "Deleted",
    "AlreadyMirrored",
    "Skipped",
    "Failed",
    "Deferred",
    "Planned",
    "Rejected",
    "Ignored",
    "ReadFailures",
    "ConfigProblems",
    "OverBudget",
    "AtQuota",
)
"""EMF metrics of every invocation. `Failed`: ENIs whose write failed (permanent refusals and
permission errors included, each logged at ERROR with AWS's reason); `ReadFailures`: groups of
events left for a retry because a read failed or was implausible (nothing was decided on it);
`ConfigProblems`: in-scope ENIs left unmirrored by a configuration problem (by kind in the
summary line's `problems`); `OverBudget`: ENIs waiting for room under MIRROR_MAX_SESSIONS, or
released for a higher priority (as asked: not alarmed); `AtQuota`: ENIs waiting because AWS's
session quota for the account is reached (alarmed: only fewer sessions, ours or other tools',
make room)."""
_STATUS_METRIC = {
    "created": "Created",
    "modified": "Modified",
    "deleted": "Deleted",
    "mirrored": "AlreadyMirrored",
    "skipped": "Skipped",
    "failed": "Failed",
    "deferred": "Deferred",
    "planned": "Planned",
}
COVERAGE_METRICS = (
    "InScope",
    "Mirrored",
    "CoveragePercent",
    "AccountsFailed",
    "SweepDurationMs",
    "UsableTargets",
    "UnusableTargets",
    "SessionsOnUnusableTargets",
)
"""Published by every sweep (it sees the whole region): the dashboard's and the alarms' data.
`AccountsFailed`: covered accounts the sweep could not read (their role, their reads, or the list of
accounts itself): coverage is over the accounts read, so these are alarmed on their own.
`SessionsOnUnusableTargets`: in-scope ENIs whose session of ours still points at a target that
cannot receive packets after the sweep (no usable alternative, or the move failed)."""
EVIDENCE_METRICS = ("UntrustedSessions", "MirrorLossPercent")
"""Published by sweeps. `UntrustedSessions`: sessions of other tools to targets not trusted for
their ENI; by FunctionName every account's together (each sweep, 0 included: its alarm fires
above 0), and with an Account dimension each account that has some. `MirrorLossPercent`: the
share of mirrored bytes AWS skipped over the last hour; by FunctionName the worst AZ's (its
alarm fires above MIRROR_LOSS_ALARM_PERCENT), with an AvailabilityZone dimension (the AZ id
where known) each AZ's; published by the schedule's sweep only when CloudWatch counted bytes."""
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

log = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    """The shape Lambda's JSON log format produces: message, level, and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return json.dumps(payload, default=str)


# Lambda's application log levels -> Python's (TRACE is finer than DEBUG; WARN and FATAL are aliases).
PYTHON_LEVELS = {
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}


def configure(level: str = "INFO") -> None:
    """In Lambda the runtime formats records; elsewhere print the same JSON lines to stderr.

    `level` is one of Lambda's levels (`LOG_LEVELS`, validated by the settings).
    """
    log.setLevel(PYTHON_LEVELS[level])
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.propagate = False


def decision(result: Result, region: str, event_name: str, account: str = "") -> None:
    d = result.decision
    fields = {
        "account": account or None,
        "region": region,
        "event": event_name,
        "eni": d.eni_id or None,
        "instance": d.instance_id or None,
        "kind": d.kind if d.kind != "instances" else None,  # a service's ENI: what it belongs to
        "resource": d.resource or None,
        "outcome": result.status,
        "reason": result.reason,
        "target": d.target_id,
        "filter": d.filter_id,
        "sessions": result.session_ids or None,
        "retryable": result.retryable or None,
        "error_code": result.error_code or None,
        "problem": d.problem,
        "out_of_scope": d.out_of_scope,
        "tier": d.tier,
        "priority": d.priority or None,
        "priority_error": d.priority_error,
    }
    level = logging.WARNING if result.status == "failed" else logging.INFO
    if result.status == "failed" and (not result.retryable or result.error_code in errors.PERMISSION):
        level = logging.ERROR  # retrying cannot fix it: an operator must look
    if result.status == "skipped" and d.problem in CONFIG_PROBLEMS:
        level = logging.ERROR
    if d.problem == INTERCEPTED:
        level = max(level, logging.WARNING)  # someone else's session takes the packets first
    if d.problem == QUOTA:
        level = logging.ERROR if result.error_code else logging.WARNING  # AWS's refusal, then who waits
    if d.priority_error:
        level = max(level, logging.ERROR)  # a configuration problem of this ENI
    log.log(level, "decision", extra={k: v for k, v in fields.items() if v is not None})


def skipped_event(skip: Skip) -> None:
    level = logging.WARNING if skip.status == "rejected" else logging.INFO
    log.log(
        level,
        f"event {skip.status}",
        extra={
            "outcome": skip.status,
            "reason": skip.reason,
            "event": skip.event_name or None,
            "event_id": skip.event_id or None,
        },
    )


def read_failed(region: str, changes: Iterable[Change], error: BaseException) -> None:
    """A read failed or was implausible: nothing was decided on it, the events are retried."""
    log.error(
        "read failed",
        exc_info=errors.classify(error) == "bug",  # a bug: its traceback
        extra={
            "region": region,
            "outcome": "retry",
            "reason": f"{type(error).__name__}: {error}",
            "events": sorted({c.event_name for c in changes}),
            "event_ids": sorted({c.event_id for c in changes})[:10],
        },
    )


def problems(results: Sequence[Result]) -> dict[str, int]:
    """In-scope ENIs left unmirrored, by `Decision.problem` kind (configuration problems first)."""
    return problem_counts(results)


def counts(results: Iterable[Result], skips: Iterable[Skip]) -> Counter[str]:
    tally: Counter[str] = Counter({name: 0 for name in METRICS})
    for result in results:
        tally[_STATUS_METRIC[result.status]] += 1
        if result.status == "failed" and not result.decision.eni_id:
            tally["ReadFailures"] += 1  # work that could not start (`reconcile.failed`)
        if result.status == "skipped" and result.decision.problem in CONFIG_PROBLEMS:
            tally["ConfigProblems"] += 1
        if result.decision.problem == OVER_BUDGET:
            tally["OverBudget"] += 1
        if result.decision.problem == QUOTA:
            tally["AtQuota"] += 1
    for skip in skips:
        tally["Rejected" if skip.status == "rejected" else "Ignored"] += 1
    return tally


def coverage(
    results: Iterable[Result], region: str, sweep_ms: float, sensors: Sequence[counting.Sensor] = ()
) -> None:
    """The coverage log line plus its EMF metrics line (`COVERAGE_METRICS`), counted as every
    coverage report counts (`coverage.count`, over what the sweep applied)."""
    results = list(results)
    counted = counting.count(region, (r.decision for r in results), {r.decision.eni_id: r.status for r in results})
    in_scope, mirrored = counted.in_scope, counted.mirrored
    percent = round(counted.percent, 2)
    usable, unusable = counting.usable_counts(sensors)
    broken = sorted({f"{s.target_id}: {s.detail}" for s in sensors if not s.usable})
    # Work that could not start (no ENI): an account that could not be read, or the account list.
    failed = sorted({r.account or "own" for r in results if not r.decision.eni_id and r.status == "failed"})
    log.log(
        logging.ERROR if failed else logging.WARNING if counted.stranded else logging.INFO,
        "coverage",
        extra={
            "region": region,
            "in_scope": in_scope,
            "mirrored": mirrored,
            "coverage_percent": percent,
            "sweep_ms": round(sweep_ms, 1),
            "usable_targets": usable,
            "unusable_targets": unusable,
            "sessions_on_unusable_targets": counted.stranded,
            **({"unusable": broken[:20]} if broken else {}),
            **_by_kind(counted.by_kind),
            **({"failed_accounts": failed, "reason": "coverage counts only the accounts read"} if failed else {}),
        },
    )
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not function:
        return
    metrics: dict[str, tuple[float, str]] = {
        "InScope": (in_scope, "Count"),
        "Mirrored": (mirrored, "Count"),
        "CoveragePercent": (percent, "Percent"),
        "AccountsFailed": (len(failed), "Count"),
        "SweepDurationMs": (round(sweep_ms, 1), "Milliseconds"),
        "UsableTargets": (usable, "Count"),
        "UnusableTargets": (unusable, "Count"),
        "SessionsOnUnusableTargets": (counted.stranded, "Count"),
    }
    _emit(metrics, function)


def _by_kind(groups: Sequence[counting.Group]) -> dict[str, Any]:
    """The coverage line's counts by kind of source, once services' ENIs are among them."""
    if all(g.key == "instances" for g in groups):
        return {}
    return {"by_kind": {g.key: {"in_scope": g.in_scope, "mirrored": g.mirrored} for g in groups}}


def untrusted(results: Iterable[Result], region: str, own: str) -> int:
    """One WARNING line per session of another tool to an untrusted target (never touched); how many.

    `own`: the handler's account (a result's `account` is "" there); a target owner "" is the ENI's own.
    """
    count = 0
    for result in results:
        account = result.account or own
        for found in result.decision.untrusted:
            count += 1
            log.warning(
                "untrusted session",
                extra={
                    "account": account or None,
                    "region": region,
                    "session": found.session_id,
                    "session_number": found.number,
                    "eni": found.eni_id,
                    "instance": found.instance_id or None,
                    "target": found.target_id,
                    "target_owner": (found.target_owner or account) if found.finding != NOT_LISTED else None,
                    "target_kind": found.target_kind or None,
                    "finding": found.finding,
                    "intercepts": found.intercepts,
                    "reason": found.reason,
                },
            )
    return count


def evidence(
    results: Sequence[Result], losses: Mapping[str, "mirror_loss.Loss"], region: str, own: str, settings: Settings
) -> None:
    """A sweep's evidence: the untrusted sessions' count (and each account's), the loss per AZ.

    Counted from the same decisions as coverage; the loss is the one the sweep read (none when it
    did not read it: then nothing is published, so an alarm never sees a made-up 0%).
    """
    by_account = Counter(r.account or own for r in results for _ in r.decision.untrusted)
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        _emit({"UntrustedSessions": (float(sum(by_account.values())), "Count")}, function)
        for account, count in sorted(by_account.items()):
            _emit({"UntrustedSessions": (float(count), "Count")}, function, {"Account": account})
    if not losses:
        return
    from . import loss as mirror_loss  # read by the schedule's sweeps only: not at a cold start

    measured = mirror_loss.combine(losses.values(), next(iter(losses.values())).window_seconds)
    zones = [(z.zone, z.percent) for z in measured.by_zone() if z.percent is not None]
    worst = max((p for _, p in zones), default=None)
    over = [z for z, p in zones if p > settings.loss_alarm_percent]
    log.log(
        logging.WARNING if over or measured.error else logging.INFO,
        "mirror loss",
        extra={
            "region": region,
            "window_seconds": measured.window_seconds,
            "loss_percent": round(measured.percent, 2) if measured.percent is not None else None,
            "by_az": {z: round(p, 2) for z, p in zones},
            "worst": [i.to_json() for i in measured.worst(mirror_loss.WORST_SHOWN)],
            "instances": measured.instances,
            "unknown_instances": len(measured.unknown),
            **({"error": measured.error} if measured.error else {}),
            **({"reason": f"loss above {settings.loss_alarm_percent:g}% in {', '.join(over)}: {mirror_loss.HINT}"}
               if over else {}),
        },
    )
    if function and worst is not None:
        _emit({"MirrorLossPercent": (round(worst, 2), "Percent")}, function)
        for zone, value in zones:
            _emit({"MirrorLossPercent": (round(value, 2), "Percent")}, function, {"AvailabilityZone": zone})


def _emit(
    metrics: Mapping[str, tuple[float, str]], function: str, dimensions: Mapping[str, str] | None = None
) -> None:
    """One EMF line: CloudWatch turns it into metrics under our namespace, by function (and `dimensions`)."""
    extra = dict(dimensions or {})
    emf = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [["FunctionName", *extra]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
                }
            ],
        },
        "FunctionName": function,
        **extra,
        **{name: value for name, (value, _) in metrics.items()},
    }
    sys.stdout.write(json.dumps(emf) + "\n")
    sys.stdout.flush()


def summary(tally: Mapping[str, int], duration_ms: float, api_calls: Mapping[str, int], **extra: Any) -> None:
    """The summary log line plus the EMF metrics line.

    Configuration problems make it an ERROR line ("configuration problem"), with the counts by
    kind: one filter too many must not look like a quiet run of skips.
    """
    found = {k: v for k, v in (extra.get("problems") or {}).items() if k in CONFIG_PROBLEMS}
    bad_priorities = int(extra.get("priority_errors") or 0)
    if found or bad_priorities:
        words = [f"{n} ENI(s): {PROBLEMS[k]}" for k, n in found.items()]
        if bad_priorities:
            words.append(f"{bad_priorities} ENI(s): a priority tag that is not an integer (priority 0)")
        log.error("configuration problem", extra={"problems": found, "reason": "; ".join(words)})
    if tally.get("AtQuota"):
        log.error(
            "session quota reached",
            extra={
                "reason": f"{tally['AtQuota']} ENI(s) wait: AWS refuses more traffic mirror sessions in the account"
                " (10,000, not adjustable); they are mirrored by priority as room appears (set max_sessions,"
                " or remove sessions of other tools)"
            },
        )
    log.info(
        "summary",
        extra={
            "counts": dict(tally),
            "duration_ms": round(duration_ms, 1),
            "api_calls": dict(api_calls),
            **extra,
        },
    )
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if not function:
        return
    metrics = {m: (float(tally.get(m, 0)), "Count") for m in METRICS}
    metrics["DurationMs"] = (round(duration_ms, 1), "Milliseconds")
    _emit(metrics, function)
