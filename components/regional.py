"""Everything that lives in one region, every resource pinned there with `region=`.

Event flow: EventBridge rules (CloudTrail API calls, tag changes, instance state changes)
-> one encrypted SQS queue -> the Lambda, through an event source mapping that reports
partial batch failures. A message that fails five times moves to the region's encrypted
dead-letter queue, and so does an event EventBridge could not deliver after its retries.
The sweep schedule invokes the Lambda directly (a missed tick is retried by the next one).

Logical names are `<component>-<kind>-<region>`: the region, never a list index, so
reordering the regions renames nothing.

Built in two phases: `create_plumbing` (log group, queues, rules), then `create_function`,
which waits for the role's policy because Lambda checks at creation that the role may send
to the dead-letter queue.
"""

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from ..handler import events
from ..handler.report import METRIC_NAMESPACE  # the handler's EMF namespace, dimension FunctionName
from ..handler.settings import MANAGED_TAG_KEY, SPEC_OF
from . import teardown
from .config import Options
from .naming import name_pattern, physical_name
from .role import OwnNames

HANDLER = "handler.app.lambda_handler"
ARCHITECTURE = "arm64"
BATCH_SIZE = 10
BATCH_WINDOW_SECONDS = 1
MAX_RECEIVE_COUNT = 5
VISIBILITY_MARGIN_SECONDS = 30
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
TARGET_MAX_EVENT_AGE_SECONDS = 3600
TARGET_MAX_RETRIES = 8
ALARM_PERIOD_SECONDS = 300
ASYNC_RETRIES = 0
ASYNC_MAX_EVENT_AGE_SECONDS = 120
"""Scheduled sweeps are invoked asynchronously: no Lambda retries (the next tick is the retry),
and a sweep that waited this long for a free execution is dropped rather than run stale."""
INITIAL_SWEEP_ID = "pulumi-initial-sweep"
FUNCTION_KIND, EVENTS_KIND, DEAD_LETTER_KIND = "handler", "events", "dlq"
FUNCTION_NAME_MAX, QUEUE_NAME_MAX = 64, 80  # AWS's limits on these names


def function_name(component_name: str, region: str) -> str:
    return physical_name(component_name, FUNCTION_KIND, region, FUNCTION_NAME_MAX)


def log_group_name(component_name: str, region: str) -> str:
    return f"/aws/lambda/{function_name(component_name, region)}"


def queue_name(component_name: str, kind: str, region: str) -> str:
    return physical_name(component_name, kind, region, QUEUE_NAME_MAX)


def own_names(component_name: str) -> OwnNames:
    """Name patterns for the role's policy, matching what `create_plumbing` names."""
    return OwnNames(
        functions=name_pattern(component_name, FUNCTION_KIND, FUNCTION_NAME_MAX),
        event_queues=name_pattern(component_name, EVENTS_KIND, QUEUE_NAME_MAX),
        dead_letter_queues=name_pattern(component_name, DEAD_LETTER_KIND, QUEUE_NAME_MAX),
    )


# --- events ----------------------------------------------------------------------------------


def initial_sweep_event(account: str, region: str) -> dict[str, Any]:
    """A scheduled event as EventBridge would send it; fixed id and time, so it never drifts."""
    return {
        "version": "0",
        "id": INITIAL_SWEEP_ID,
        "detail-type": events.SCHEDULED,
        "source": events.SCHEDULE_SOURCE,
        "account": account,
        "time": "1970-01-01T00:00:00Z",
        "region": region,
        "resources": [],
        "detail": {},
    }


def queue_policy_document(queue_arn: str, rule_arns: list[str], also_from: list[str] | None = None) -> dict[str, Any]:
    """Only our own rules may send to the queue, and nobody may use it without TLS.

    The Allow lets EventBridge deliver for our rules. The Denies hold against every principal
    of the account, whatever its own IAM policy says: `SendMessage` is refused unless it comes
    from one of our rules (`aws:SourceArn`; a call without that key is refused too, since a
    negated operator matches a missing key) or from a principal in `also_from` (the function's
    role, which delivers failed asynchronous invocations to the dead-letter queue). Only
    SendMessage is denied: the event source mapping's receive and delete (the role's own
    policy), administrators' queue management and SQS's own redrive are untouched.
    """
    deny_others: dict[str, Any] = {"ArnNotEquals": {"aws:SourceArn": rule_arns}}
    if also_from:
        deny_others["ArnNotEquals"] = {"aws:SourceArn": rule_arns, "aws:PrincipalArn": also_from}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyOurEventBridgeRules",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            },
            {
                "Sid": "DenyOtherSenders",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": deny_others,
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


# --- phase 1: queues, rules, log group --------------------------------------------------------


@dataclass
class RegionPlumbing:
    region: str
    log_group: aws.cloudwatch.LogGroup
    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue
    sweep_rule: aws.cloudwatch.EventRule
    rules: list[aws.cloudwatch.EventRule]


def _retry(max_retries: int) -> aws.cloudwatch.EventTargetRetryPolicyArgs:
    return aws.cloudwatch.EventTargetRetryPolicyArgs(
        maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS, maximum_retry_attempts=max_retries
    )


def create_plumbing(
    name: str,
    region: str,
    options: Options,
    role_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    member_bus: aws.cloudwatch.EventBus | None = None,
) -> RegionPlumbing:
    """`member_bus` (organization coverage): the same rules again on the bus member accounts forward to."""
    child = pulumi.ResourceOptions(parent=parent)
    # Fixed names: a replacement must delete the old resource before creating the new one.
    named = pulumi.ResourceOptions(parent=parent, delete_before_replace=True)

    log_group = aws.cloudwatch.LogGroup(
        f"{name}-log-group-{region}",
        name=log_group_name(name, region),
        retention_in_days=options.deployment.log_retention_days,
        region=region,
        opts=named,
    )
    dead_letter_queue = aws.sqs.Queue(
        f"{name}-dlq-{region}",
        name=queue_name(name, DEAD_LETTER_KIND, region),
        sqs_managed_sse_enabled=True,
        message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
        region=region,
        opts=named,
    )
    queue = aws.sqs.Queue(
        f"{name}-events-{region}",
        name=queue_name(name, EVENTS_KIND, region),
        sqs_managed_sse_enabled=True,
        # Longer than the function may run, so a message in flight is never handed out twice.
        visibility_timeout_seconds=options.deployment.timeout_seconds + VISIBILITY_MARGIN_SECONDS,
        redrive_policy=dead_letter_queue.arn.apply(
            lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
        ),
        region=region,
        opts=named,
    )

    # The handler owns the rules (handler/events.py): it parses exactly what they match.
    rules: list[aws.cloudwatch.EventRule] = []
    buses: list[tuple[str, pulumi.Input[str] | None]] = [("", None)]
    if member_bus is not None:
        buses.append(("members-", member_bus.name))
    for kind, pattern in events.rules(options.settings).items():
        for prefix, bus in buses:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{prefix}{kind}-{region}",
                description=f"Traffic mirror automation: {events.RULES[kind]}"
                + (" (member accounts)" if bus is not None else ""),
                event_pattern=json.dumps(pattern),
                event_bus_name=bus,
                region=region,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{prefix}{kind}-target-{region}",
                rule=rule.name,
                event_bus_name=bus,
                arn=queue.arn,
                retry_policy=_retry(TARGET_MAX_RETRIES),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dead_letter_queue.arn),
                region=region,
                opts=child,
            )
            rules.append(rule)

    sweep_rule = aws.cloudwatch.EventRule(
        f"{name}-sweep-{region}",
        description="Traffic mirror automation: periodic sweep of every ENI",
        schedule_expression=options.deployment.sweep_schedule,
        region=region,
        opts=child,
    )

    event_rule_arns = pulumi.Output.all(*[rule.arn for rule in rules])
    all_rule_arns = pulumi.Output.all(*[rule.arn for rule in [*rules, sweep_rule]])
    # Each queue accepts messages only from its own rules (the DLQ also from the sweep's rule,
    # and from the function's role, which sends it the failed asynchronous invocations).
    role = pulumi.Output.from_input(role_arn)
    no_role: pulumi.Output[str | None] = pulumi.Output.from_input(None)
    for kind, target_queue, arns, sender in (
        ("events", queue, event_rule_arns, no_role),
        ("dlq", dead_letter_queue, all_rule_arns, role),
    ):
        aws.sqs.QueuePolicy(
            f"{name}-{kind}-policy-{region}",
            queue_url=target_queue.url,
            policy=pulumi.Output.all(target_queue.arn, arns, sender).apply(
                lambda v: json.dumps(queue_policy_document(v[0], list(v[1]), [v[2]] if v[2] else None))
            ),
            region=region,
            opts=child,
        )
    return RegionPlumbing(
        region=region,
        log_group=log_group,
        queue=queue,
        dead_letter_queue=dead_letter_queue,
        sweep_rule=sweep_rule,
        rules=rules,
    )


# --- phase 2: the function and what invokes or watches it ----------------------------------------


@dataclass
class RegionFunction:
    region: str
    function: aws.lambda_.Function
    event_source_mapping: aws.lambda_.EventSourceMapping
    initial_sweep: aws.lambda_.Invocation | None
    release_hook: aws.lambda_.Invocation


@dataclass
class RegionMirroring:
    """What the deployment owns for mirroring in one region: its filter, its sensors' targets."""

    filter_id: pulumi.Output[str] | None
    resources: list[pulumi.Resource]
    """Filter, filter rules and targets: the initial sweep waits for them."""
    footprint: list[pulumi.Resource] = field(default_factory=list)
    """The member accounts' stacks (organization coverage), whose roles the release needs."""


def create_function(
    name: str,
    plumbing: RegionPlumbing,
    options: Options,
    role: aws.iam.Role,
    role_policy: aws.iam.RolePolicy,
    code: pulumi.Archive,
    code_sha256: str,
    account: pulumi.Output[str],
    mirroring: RegionMirroring,
    managed_by_checked: pulumi.Output[str],
    parent: pulumi.Resource,
) -> RegionFunction:
    region = plumbing.region
    child = pulumi.ResourceOptions(parent=parent)
    environment: dict[str, pulumi.Input[str]] = {**options.handler_environment(), SPEC_OF["role_arn"].env: role.arn}
    if mirroring.filter_id is not None:
        environment[SPEC_OF["filter_id"].env] = mirroring.filter_id  # the deployment's own filter in this region

    function = aws.lambda_.Function(
        f"{name}-function-{region}",
        name=function_name(name, region),
        description="Traffic mirror automation: mirrors every ENI to the nearest sensor",
        runtime=options.deployment.runtime,
        architectures=[ARCHITECTURE],
        handler=HANDLER,
        code=code,
        role=role.arn,
        timeout=options.deployment.timeout_seconds,
        memory_size=options.deployment.memory_size_mb,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON",
            log_group=plumbing.log_group.name,
            application_log_level=options.settings.log_level,
            system_log_level="WARN",
        ),
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=plumbing.dead_letter_queue.arn),
        reserved_concurrent_executions=options.reserved_concurrency,
        # Resolves only once the managed_by guard passed (see managed_by.py).
        tags={MANAGED_TAG_KEY: managed_by_checked},
        region=region,
        # Lambda checks at creation that the role may send to the dead-letter queue.
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[role_policy, plumbing.log_group], delete_before_replace=True
        ),
    )
    aws.lambda_.FunctionEventInvokeConfig(
        f"{name}-async-config-{region}",
        function_name=function.name,
        maximum_retry_attempts=ASYNC_RETRIES,
        maximum_event_age_in_seconds=ASYNC_MAX_EVENT_AGE_SECONDS,
        region=region,
        opts=child,
    )
    # Created before, and so destroyed after, what could create sessions: see teardown.py.
    # On destroy the hook releases the sessions first: before the function, the owned filter and
    # targets (in use by sessions) and the member stacks (their roles) go.
    before = [*mirroring.resources, *mirroring.footprint]
    release_hook = teardown.create_release_hook(
        name, region, function, before, options.deployment.release_on_destroy, parent
    )
    invokers = pulumi.ResourceOptions(parent=parent, depends_on=[role_policy, release_hook])
    event_source_mapping = aws.lambda_.EventSourceMapping(
        f"{name}-event-source-{region}",
        event_source_arn=plumbing.queue.arn,
        function_name=function.arn,
        batch_size=BATCH_SIZE,
        maximum_batching_window_in_seconds=BATCH_WINDOW_SECONDS,
        scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
            maximum_concurrency=options.max_concurrency
        ),
        function_response_types=["ReportBatchItemFailures"],
        region=region,
        opts=invokers,
    )

    permission = aws.lambda_.Permission(
        f"{name}-sweep-permission-{region}",
        action="lambda:InvokeFunction",
        function=function.name,
        principal="events.amazonaws.com",
        source_arn=plumbing.sweep_rule.arn,
        region=region,
        opts=child,
    )
    aws.cloudwatch.EventTarget(
        f"{name}-sweep-target-{region}",
        rule=plumbing.sweep_rule.name,
        arn=function.arn,
        retry_policy=_retry(0),
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
            arn=plumbing.dead_letter_queue.arn
        ),
        region=region,
        opts=pulumi.ResourceOptions.merge(invokers, pulumi.ResourceOptions(depends_on=[permission])),
    )

    topics = options.topics_in(region)

    def alarm(
        kind: str,
        description: str,
        namespace: str,
        metric: str,
        dimensions: Any,
        statistic: str,
        threshold: float = 0,
    ) -> None:
        """Fire on the first occurrence (> `threshold` in 5 minutes); quiet when there is no data."""
        aws.cloudwatch.MetricAlarm(
            f"{name}-{kind}-alarm-{region}",
            alarm_description=f"Traffic mirror automation: {description}",
            namespace=namespace,
            metric_name=metric,
            dimensions=dimensions,
            statistic=statistic,
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=topics,
            ok_actions=topics,
            region=region,
            opts=child,
        )

    alarm("errors", "the function failed", "AWS/Lambda", "Errors", {"FunctionName": function.name}, "Sum")
    alarm(
        "dlq",
        "events are waiting in the dead-letter queue",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": plumbing.dead_letter_queue.name},
        "Maximum",
    )
    if options.settings.accounts:  # other accounts are covered: each can fail on its own
        alarm(
            "failed-accounts",
            "covered accounts could not be read by the sweep (member role, reads, or the organization's account list):"
            " coverage counts only the accounts read",
            METRIC_NAMESPACE,
            "AccountsFailed",
            {"FunctionName": function.name},
            "Maximum",
        )
    alarm(
        "failed-enis",
        "ENIs could not be mirrored (permissions, quotas, unsupported instances): read the failed decision lines",
        METRIC_NAMESPACE,
        "Failed",
        {"FunctionName": function.name},
        "Sum",
    )
    alarm(
        "untrusted-sessions",
        "sessions of other tools copy covered ENIs' traffic to targets not trusted for them (left in place): read"
        " the 'untrusted session' log lines, or `traffic-mirror coverage`",
        METRIC_NAMESPACE,
        "UntrustedSessions",
        {"FunctionName": function.name},
        "Maximum",
    )
    threshold = options.settings.loss_alarm_percent
    alarm(
        "mirror-loss",
        f"AWS skipped more than {threshold:g}% of the mirrored bytes in an AZ over the last hour (instance bandwidth,"
        " or a filter wider than the sensors need): read the 'mirror loss' log line, or `traffic-mirror coverage`",
        METRIC_NAMESPACE,
        "MirrorLossPercent",
        {"FunctionName": function.name},
        "Maximum",
        threshold,
    )
    alarm(
        "session-quota",
        "AWS's traffic mirror session quota is reached in an account (10,000, not adjustable): ENIs wait and are"
        " mirrored by priority as room appears; set max_sessions or remove other tools' sessions (docs/budget.md)",
        METRIC_NAMESPACE,
        "AtQuota",
        {"FunctionName": function.name},
        "Maximum",
    )

    initial_sweep = None
    if options.deployment.initial_sweep:
        initial_sweep = aws.lambda_.Invocation(
            f"{name}-initial-sweep-{region}",
            function_name=function.name,
            input=account.apply(lambda acct: json.dumps(initial_sweep_event(acct, region))),
            # Re-run when the code or the settings change, not on every `pulumi up`.
            triggers={
                "code_sha256": code_sha256,
                "settings_sha256": options.settings_hash(),
                **({"filter_id": mirroring.filter_id} if mirroring.filter_id is not None else {}),
            },
            region=region,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[event_source_mapping, *mirroring.resources]),
        )
    return RegionFunction(
        region=region,
        function=function,
        event_source_mapping=event_source_mapping,
        initial_sweep=initial_sweep,
        release_hook=release_hook,
    )
