"""A CloudWatch dashboard per region, and the optional coverage alarm.

Everything on it comes from metrics that already exist: the handler's EMF metrics (namespace
TrafficMirrorAutomation, dimension FunctionName: Created, Failed, Deferred, OverBudget, AtQuota, ..., and from every
sweep InScope, Mirrored, CoveragePercent, SweepDurationMs), Lambda's and SQS's own.
"""

import json
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


def dashboard_name(component_name: str, region: str) -> str:
    return physical_name(component_name, "dashboard", region, DASHBOARD_NAME_MAX)


def body(region: str, function_name: str, event_queue: str, dead_letter_queue: str) -> dict[str, Any]:
    """The dashboard's widgets (CloudWatch's dashboard body structure)."""

    def ours(metric: str, stat: str = "Sum", **extra: Any) -> list[Any]:
        return [NAMESPACE, metric, "FunctionName", function_name, {"stat": stat, **extra}]

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
                "Session budget: ENIs waiting for room (max_sessions, AWS's quota)",
                [
                    ours("OverBudget", "Maximum", label="over the cap (max_sessions)"),
                    ours("AtQuota", "Maximum", label="at AWS's session quota"),
                ],
                0,
                18,
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
