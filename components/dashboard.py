"""A CloudWatch dashboard per region, the optional coverage alarm, and the unusable-sensor alarm.

Everything on it comes from metrics that already exist: the handler's EMF metrics (namespace
TrafficMirrorAutomation, dimension FunctionName: Created, Failed, Deferred, OverBudget, AtQuota, ...,
and from every sweep InScope, Mirrored, CoveragePercent, SweepDurationMs, UsableTargets, UnusableTargets,
SessionsOnUnusableTargets, UntrustedSessions and MirrorLossPercent, the last two also by Account
and by AvailabilityZone), Lambda's and SQS's own.
"""

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from ..handler.report import METRIC_NAMESPACE as NAMESPACE
from .config import Options
from .naming import physical_name

DASHBOARD_NAME_MAX = 255
PERIOD_SECONDS = 300
COVERAGE_ALARM_PERIOD_SECONDS = 900
COVERAGE_ALARM_PERIODS = 2
"""Below the threshold for two 15-minute periods in a row: a sweep in progress never alarms."""
UNUSABLE_ALARM_PERIODS = 2
"""Sessions on an unusable target in two sweep periods in a row: longer than one sweep (the
sensor's own events move them within seconds; a sweep that finds one moves it too)."""
_RATE = re.compile(r"^rate\((\d+) (minute|hour|day)s?\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_ALARM_WINDOW_SECONDS = 86400
"""CloudWatch: evaluation periods x period may not exceed a day."""


def sweep_period_seconds(schedule: str) -> int:
    """The alarm period that holds one sweep: a rate schedule's interval (at least 5 minutes), else
    15 minutes (a cron schedule's interval is not one number)."""
    match = _RATE.match(schedule.strip())
    seconds = int(match[1]) * _UNIT_SECONDS[match[2]] if match else 900
    return min(max(seconds, PERIOD_SECONDS), MAX_ALARM_WINDOW_SECONDS // UNUSABLE_ALARM_PERIODS)


def dashboard_name(component_name: str, region: str) -> str:
    return physical_name(component_name, "dashboard", region, DASHBOARD_NAME_MAX)


def body(region: str, function_name: str, event_queue: str, dead_letter_queue: str) -> dict[str, Any]:
    """The dashboard's widgets (CloudWatch's dashboard body structure)."""

    def ours(metric: str, stat: str = "Sum", **extra: Any) -> list[Any]:
        return [NAMESPACE, metric, "FunctionName", function_name, {"stat": stat, **extra}]

    def each(metric: str, dimension: str) -> list[Any]:
        """One line per value of `dimension` (an account, an AZ), labelled with it: a search, as the
        values are not known at deploy time."""
        query = f'{{{NAMESPACE},{dimension},FunctionName}} MetricName="{metric}" FunctionName="{function_name}"'
        return [{"expression": f"SEARCH('{query}', 'Maximum', {PERIOD_SECONDS})", "id": f"each{dimension.lower()}"}]

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, **properties: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "period": PERIOD_SECONDS,
                "view": "timeSeries",
                **properties,
            },
        }

    return {
        "widgets": [
            widget(
                "Coverage (%) and in-scope / mirrored ENIs (each sweep)",
                [
                    ours("CoveragePercent", "Minimum", label="coverage %"),
                    ours("InScope", "Maximum", label="in scope", yAxis="right"),
                    ours("Mirrored", "Maximum", label="mirrored", yAxis="right"),
                ],
                0,
                0,
                yAxis={"left": {"min": 0, "max": 100}},
            ),
            widget(
                "Sessions: created, modified, deleted, failed, deferred",
                [ours("Created"), ours("Modified"), ours("Deleted"), ours("Failed"), ours("Deferred")],
                12,
                0,
            ),
            widget(
                "Events handled",
                [
                    ["AWS/SQS", "NumberOfMessagesDeleted", "QueueName", event_queue, {"stat": "Sum", "label": "events handled"}],
                    ours("Rejected"),
                    ours("Ignored"),
                    ["AWS/Lambda", "Invocations", "FunctionName", function_name, {"stat": "Sum"}],
                ],
                0,
                6,
            ),
            widget(
                "Sweep duration (ms) and invocation duration",
                [ours("SweepDurationMs", "Maximum", label="sweep"), ours("DurationMs", "Maximum", label="invocation")],
                12,
                6,
            ),
            widget(
                "Sensors: usable and unusable targets, sessions on unusable targets (each sweep)",
                [
                    ours("UsableTargets", "Minimum", label="usable targets"),
                    ours("UnusableTargets", "Maximum", label="unusable targets"),
                    ours("SessionsOnUnusableTargets", "Maximum", label="sessions on unusable targets"),
                ],
                0,
                18,
            ),
            widget(
                "Dead-letter queue depth",
                [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letter_queue, {"stat": "Maximum"}]],
                0,
                12,
            ),
            widget(
                "Function errors and throttles",
                [
                    ["AWS/Lambda", "Errors", "FunctionName", function_name, {"stat": "Sum"}],
                    ["AWS/Lambda", "Throttles", "FunctionName", function_name, {"stat": "Sum"}],
                ],
                12,
                12,
            ),
            widget(
                "Untrusted sessions: other tools' sessions to targets not trusted for their ENI (each sweep)",
                [ours("UntrustedSessions", "Maximum", label="all accounts"), each("UntrustedSessions", "Account")],
                12,
                18,
            ),
            widget(
                "Mirror loss (%) per AZ: mirrored bytes AWS skipped, last hour",
                [ours("MirrorLossPercent", "Maximum", label="worst AZ"), each("MirrorLossPercent", "AvailabilityZone")],
                0,
                24,
                yAxis={"left": {"min": 0}},
            ),
            widget(
                "Session budget: ENIs waiting for room (max_sessions, AWS's quota)",
                [
                    ours("OverBudget", "Maximum", label="over the cap (max_sessions)"),
                    ours("AtQuota", "Maximum", label="at AWS's session quota"),
                ],
                12,
                24,
            ),
        ]
    }


def create_dashboard(
    name: str,
    region: str,
    function: aws.lambda_.Function,
    queue: aws.sqs.Queue,
    dead_letter_queue: aws.sqs.Queue,
    parent: pulumi.Resource,
) -> aws.cloudwatch.Dashboard:
    return aws.cloudwatch.Dashboard(
        f"{name}-dashboard-{region}",
        dashboard_name=dashboard_name(name, region),
        dashboard_body=pulumi.Output.all(function.name, queue.name, dead_letter_queue.name).apply(
            lambda v: json.dumps(body(region, v[0], v[1], v[2]))
        ),
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def create_coverage_alarm(
    name: str, region: str, options: Options, function: aws.lambda_.Function, parent: pulumi.Resource
) -> aws.cloudwatch.MetricAlarm | None:
    """Fires when the sweeps report coverage under `coverage_alarm_percent`; none when unset."""
    if options.deployment.coverage_alarm_percent is None:
        return None
    topics = options.topics_in(region)
    return aws.cloudwatch.MetricAlarm(
        f"{name}-coverage-alarm-{region}",
        alarm_description=(
            f"Traffic mirror automation: coverage below {options.deployment.coverage_alarm_percent}% "
            "(python -m handler coverage lists the unmirrored ENIs and why)"
        ),
        namespace=NAMESPACE,
        metric_name="CoveragePercent",
        dimensions={"FunctionName": function.name},
        statistic="Minimum",
        period=COVERAGE_ALARM_PERIOD_SECONDS,
        evaluation_periods=COVERAGE_ALARM_PERIODS,
        threshold=options.deployment.coverage_alarm_percent,
        comparison_operator="LessThanThreshold",
        # No sweep reported: keep the last state (the Errors alarm covers a failing function).
        treat_missing_data="missing",
        alarm_actions=topics,
        ok_actions=topics,
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def create_unusable_targets_alarm(
    name: str, region: str, options: Options, function: aws.lambda_.Function, parent: pulumi.Resource
) -> aws.cloudwatch.MetricAlarm:
    """Fires when sessions of ours point at a target that cannot receive packets for longer than one
    sweep (every sweep of two periods in a row reported some): no usable alternative, or moves fail."""
    topics = options.topics_in(region)
    return aws.cloudwatch.MetricAlarm(
        f"{name}-unusable-targets-alarm-{region}",
        alarm_description=(
            "Traffic mirror automation: sessions point at sensors that cannot receive packets (stopped, "
            "deleted, no UDP 4789 listener or no healthy target) and no usable sensor can take them: "
            "`traffic-mirror coverage` lists the sensors and the ENIs"
        ),
        namespace=NAMESPACE,
        metric_name="SessionsOnUnusableTargets",
        dimensions={"FunctionName": function.name},
        statistic="Minimum",
        period=sweep_period_seconds(options.deployment.sweep_schedule),
        evaluation_periods=UNUSABLE_ALARM_PERIODS,
        datapoints_to_alarm=UNUSABLE_ALARM_PERIODS,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        # No sweep reported: keep the last state (the Errors alarm covers a failing function).
        treat_missing_data="missing",
        alarm_actions=topics,
        ok_actions=topics,
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )
