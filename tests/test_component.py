"""The Pulumi component under Pulumi's unit-test mocks: what it registers, and with which inputs.

Every run uses `preview=False` and mocks that return realistic ARNs (see pulumi_mocks.py), so
inputs built from other resources' outputs (policies, patterns, wiring) are really resolved.
"""

import fnmatch
import json
import logging
import os
import runpy
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
from traffic_mirror.components import TYPE_TOKEN, ConfigError, TrafficMirrorAutomation, packaging
from traffic_mirror.components import config as component_config
from traffic_mirror.components.config import REGIONS_BY_PARTITION, resolve
from traffic_mirror.handler import report

from testsupport.pulumi_mocks import ACCOUNT, PROVIDER_REGION, Registered, Run, run_program

REPO = Path(__file__).resolve().parent.parent
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
GLOBAL_TYPES = {"aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"}
"""IAM is global: the only AWS resources that take no region."""
HOME_REGION_TYPES = {
    "aws:cloudtrail/trail:Trail",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
}
PER_REGION = {
    "aws:cloudwatch/logGroup:LogGroup": 1,
    "aws:sqs/queue:Queue": 2,
    "aws:sqs/queuePolicy:QueuePolicy": 2,
    "aws:cloudwatch/eventRule:EventRule": 4,
    "aws:cloudwatch/eventTarget:EventTarget": 4,
    "aws:lambda/function:Function": 1,
    "aws:lambda/eventSourceMapping:EventSourceMapping": 1,
    "aws:lambda/permission:Permission": 1,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 7,  # errors, dead letters, failed ENIs, unusable targets, untrusted sessions, mirror loss, session quota
    "aws:lambda/invocation:Invocation": 2,
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": 1,
    "aws:cloudwatch/dashboard:Dashboard": 1,
    "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter": 1,
    "aws:ec2/trafficMirrorFilterRule:TrafficMirrorFilterRule": 6,
}


def deploy(args: dict[str, Any] | None = None, name: str = "mirror", **run_kwargs: Any) -> Run:
    def build() -> TrafficMirrorAutomation:
        component = TrafficMirrorAutomation(name, {"regions": REGIONS, **(args or {})})
        for key in ("function_arns", "role_arn", "trail_arn", "bucket_name", "dead_letter_queue_urls"):
            pulumi.export(key, getattr(component, key))
        return component

    return run_program(build, **run_kwargs)


@pytest.fixture(scope="module")
def run() -> Run:
    return deploy()


def regional(run: Run, region: str) -> list[Registered]:
    return [r for r in run.custom() if r.name.endswith(f"-{region}")]


def one(run: Run, typ: str, region: str, kind: str | None = None) -> Registered:
    found = [r for r in run.of_type(typ) if r.region == region and (kind is None or f"-{kind}-" in r.name)]
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def queue(run: Run, region: str, kind: str, component: str = "mirror") -> Registered:
    return run.named(f"{component}-{kind}-{region}")


# --- shape: counts, names, regions, parents -------------------------------------------------------


def test_resource_counts_per_region_and_one_of_each_global(run: Run) -> None:
    for region in REGIONS:
        counts = Counter(r.type for r in regional(run, region))
        assert counts == Counter(PER_REGION), region
    totals = Counter(r.type for r in run.custom())
    assert totals["aws:cloudtrail/trail:Trail"] == 1
    assert totals["aws:s3/bucket:Bucket"] == 1
    assert totals["aws:iam/role:Role"] == 1
    assert totals["aws:iam/rolePolicy:RolePolicy"] == 1
    assert "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration" not in totals
    assert not [r for r in run.resources if r.type == "pulumi:providers:aws"], "no provider per region"


def test_component_type_token_and_every_child_is_parented_to_it(run: Run) -> None:
    (component,) = [r for r in run.resources if not r.custom]
    assert component.type == TYPE_TOKEN == "traffic-mirror:index:TrafficMirrorAutomation"
    stack = "pulumi:pulumi:Stack"
    component_urn = f"urn:pulumi:test::traffic-mirror-automation::{stack}${TYPE_TOKEN}::mirror"
    for resource in run.custom():
        assert resource.parent_urn == component_urn, resource.name


def test_every_regional_resource_is_pinned_to_the_region_in_its_name(run: Run) -> None:
    seen = 0
    for region in REGIONS:
        for resource in regional(run, region):
            assert resource.region == region, (resource.name, resource.region)
            seen += 1
    assert seen == len(REGIONS) * sum(PER_REGION.values())
    for resource in run.custom():
        if resource.type in GLOBAL_TYPES:
            assert resource.region is None, resource.name
        elif resource.type in HOME_REGION_TYPES:
            assert resource.region == REGIONS[0], resource.name
        else:
            assert any(resource.name.endswith(f"-{r}") for r in REGIONS), resource.name
    # Nothing silently lands in the provider's default region.
    unpinned = [r.name for r in run.custom() if r.region is None and r.type not in GLOBAL_TYPES]
    assert unpinned == []


def test_reordering_the_regions_renames_nothing(run: Run) -> None:
    reordered = deploy({"regions": list(reversed(REGIONS))})
    assert {(r.type, r.name) for r in reordered.resources} == {(r.type, r.name) for r in run.resources}
    for name in ("mirror-function-eu-west-1", "mirror-events-ap-southeast-2", "mirror-role-policy"):
        before, after = dict(run.named(name).inputs), dict(reordered.named(name).inputs)
        if "code" in before:
            assert sorted(before.pop("code").assets) == sorted(after.pop("code").assets)
        if name == "mirror-role-policy":  # the region condition lists the regions in the given order
            assert before["policy"] != after["policy"]
            before["policy"], after["policy"] = regions_sorted(before["policy"]), regions_sorted(after["policy"])
        assert before == after


def regions_sorted(policy: str) -> dict[str, Any]:
    """The policy document with each `aws:RequestedRegion` list sorted: equal whatever the regions' order."""
    document: dict[str, Any] = json.loads(policy)
    for statement in document["Statement"]:
        for test in statement.get("Condition", {}).values():
            if "aws:RequestedRegion" in test:
                test["aws:RequestedRegion"] = sorted(test["aws:RequestedRegion"])
    return document


def test_home_region_defaults_to_the_providers_region_then_follows_the_arg() -> None:
    from_provider = deploy(aws_config={"region": "eu-west-1"})
    assert from_provider.of_type("aws:cloudtrail/trail:Trail")[0].region == "eu-west-1"
    explicit = deploy({"home_region": "ap-southeast-2"}, aws_config={"region": "eu-west-1"})
    for resource in explicit.custom():
        if resource.type in HOME_REGION_TYPES:
            assert resource.region == "ap-southeast-2"


def test_outputs(run: Run) -> None:
    exports = run.exports
    assert set(exports["function_arns"]) == set(REGIONS)
    for region, arn in exports["function_arns"].items():
        assert arn.startswith(f"arn:aws:lambda:{region}:{ACCOUNT}:function:mirror-handler-{region}-")
    assert exports["role_arn"] == run.of_type("aws:iam/role:Role")[0].outputs["arn"]
    trail = run.of_type("aws:cloudtrail/trail:Trail")[0]
    assert exports["trail_arn"] == trail.outputs["arn"]
    assert exports["bucket_name"] == run.of_type("aws:s3/bucket:Bucket")[0].outputs["bucket"]
    assert exports["dead_letter_queue_urls"] == {
        region: queue(run, region, "dlq").outputs["url"] for region in REGIONS
    }


# --- the function ---------------------------------------------------------------------------------


def test_function_runtime_code_and_logging(run: Run) -> None:
    for region in REGIONS:
        fn = one(run, "aws:lambda/function:Function", region)
        inputs = fn.inputs
        assert inputs["runtime"] in ("python3.12", "python3.13", "python3.14")
        assert inputs["architectures"] == ["arm64"]
        assert inputs["handler"] == "handler.app.lambda_handler"
        assert inputs["timeout"] == 300
        assert inputs["memorySize"] == 256
        assert inputs["name"].startswith(f"mirror-handler-{region}-") and len(inputs["name"]) <= 64
        log_group = one(run, "aws:cloudwatch/logGroup:LogGroup", region)
        assert log_group.inputs["name"] == f"/aws/lambda/{inputs['name']}"
        assert log_group.inputs["retentionInDays"] == 30
        assert inputs["loggingConfig"]["logFormat"] == "JSON"
        assert inputs["loggingConfig"]["logGroup"] == log_group.inputs["name"]
        assert inputs["deadLetterConfig"]["targetArn"] == queue(run, region, "dlq").outputs["arn"]
        assert inputs["role"] == run.of_type("aws:iam/role:Role")[0].outputs["arn"]
        code = inputs["code"]
        assert isinstance(code, pulumi.AssetArchive)
        assert sorted(code.assets) == [name for name, _ in packaging.source_files()]
        assert "handler/app.py" in code.assets


def test_function_environment_defaults(run: Run) -> None:
    role_arn = run.of_type("aws:iam/role:Role")[0].outputs["arn"]
    env = one(run, "aws:lambda/function:Function", "eu-west-1").inputs["environment"]["variables"]
    # Only what differs from the handler's own defaults: the deployed sweep grace, and the
    # deployment's own filter in this region.
    owned = one(run, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", "eu-west-1").outputs["id"]
    assert env == {"MIRROR_SWEEP_GRACE_SECONDS": "60", "MIRROR_ROLE_ARN": role_arn, "MIRROR_FILTER_ID": owned}


def test_function_environment_from_args_is_what_the_handler_accepts() -> None:
    from traffic_mirror.handler import settings as handler_settings

    args = {
        "tag_key": "Sensor",
        "filter_id": "tmf-0123456789abcdef0",
        "scope": "tagged",
        "session_number": 7,
        "vni": 4242,
        "packet_length": 128,
        "managed_by": "team-a",
        "release_on_stop": True,
        "dry_run": True,
        "timeout_seconds": 120,
        "memory_size_mb": 512,
        "log_retention_days": 90,
        "runtime": "python3.12",
    }
    custom = deploy(args)
    fn = one(custom, "aws:lambda/function:Function", "us-east-1")
    env = fn.inputs["environment"]["variables"]
    assert env["MIRROR_TAG_KEY"] == "Sensor"
    assert env["MIRROR_FILTER_ID"] == "tmf-0123456789abcdef0"
    assert env["MIRROR_SCOPE"] == "tagged"
    assert env["MIRROR_SESSION_NUMBER"] == "7"
    assert env["MIRROR_VNI"] == "4242"
    assert env["MIRROR_PACKET_LENGTH"] == "128"
    assert env["MIRROR_MANAGED_BY"] == "team-a"
    assert env["MIRROR_RELEASE_ON_STOP"] == "true"
    assert env["MIRROR_DRY_RUN"] == "true"
    loaded = handler_settings.load(env)
    assert (loaded.tag_key, loaded.scope, loaded.session_number, loaded.vni) == ("Sensor", "tagged", 7, 4242)
    assert loaded.release_on_stop and loaded.dry_run and loaded.role_arn == env["MIRROR_ROLE_ARN"]
    assert fn.inputs["timeout"] == 120 and fn.inputs["memorySize"] == 512 and fn.inputs["runtime"] == "python3.12"
    assert one(custom, "aws:cloudwatch/logGroup:LogGroup", "us-east-1").inputs["retentionInDays"] == 90
    assert queue(custom, "us-east-1", "events").inputs["visibilityTimeoutSeconds"] == 150
    policy = custom.of_type("aws:iam/rolePolicy:RolePolicy")[0].json_input("policy")
    (managed,) = [s for s in policy["Statement"] if s["Sid"] == "ChangeOnlyManagedSessions"]
    assert managed["Condition"]["StringEquals"]["aws:ResourceTag/ManagedBy"] == "team-a"


def test_optional_settings_are_left_out_when_not_given(run: Run) -> None:
    env = one(run, "aws:lambda/function:Function", "us-east-1").inputs["environment"]["variables"]
    assert not {"MIRROR_VNI", "MIRROR_PACKET_LENGTH"} & set(env)
    without_filter = deploy({"create_filter": False})
    env = one(without_filter, "aws:lambda/function:Function", "us-east-1").inputs["environment"]["variables"]
    assert "MIRROR_FILTER_ID" not in env, "the handler picks the region's filter, as before"
    assert not without_filter.of_type("aws:ec2/trafficMirrorFilter:TrafficMirrorFilter")


# --- events: rules, queues, targets, permissions ------------------------------------------------------

API_PATTERN = {
    "source": ["aws.ec2", "aws.elasticloadbalancing"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["ec2.amazonaws.com", "elasticloadbalancing.amazonaws.com"],
        "eventName": [
            "RunInstances",
            "StartInstances",
            "AttachNetworkInterface",
            "DeleteTrafficMirrorSession",
            # the calls that break a sensor
            "DeleteTrafficMirrorTarget",
            "DeleteLoadBalancer",
            "DeleteListener",
            "DeregisterTargets",
        ],
        "errorCode": [{"exists": False}],
    },
}


def test_event_patterns(run: Run) -> None:
    for region in REGIONS:
        api = one(run, "aws:cloudwatch/eventRule:EventRule", region, "api-calls").json_input("eventPattern")
        assert api == API_PATTERN
        tags = one(run, "aws:cloudwatch/eventRule:EventRule", region, "tag-changes").json_input("eventPattern")
        assert tags["detail"]["eventName"] == ["CreateTags", "DeleteTags"]
        assert tags["detail"]["errorCode"] == [{"exists": False}]
        assert tags["detail"]["requestParameters"] == {"tagSet": {"items": {"key": ["Mirror"]}}}
        state = one(run, "aws:cloudwatch/eventRule:EventRule", region, "state-changes").json_input("eventPattern")
        assert state == {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
            # running: a source to mirror; the others: a sensor that stops receiving.
            "detail": {"state": ["running", "stopping", "stopped", "shutting-down", "terminated"]},
        }
        sweep = one(run, "aws:cloudwatch/eventRule:EventRule", region, "sweep")
        assert sweep.inputs["scheduleExpression"] == "rate(5 minutes)"
        assert "eventPattern" not in sweep.inputs


def test_release_on_stop_and_tag_key_change_the_patterns() -> None:
    custom = deploy({"release_on_stop": True, "tag_key": "Sensor", "sweep_schedule": "rate(1 hour)"})
    api = one(custom, "aws:cloudwatch/eventRule:EventRule", "us-east-1", "api-calls").json_input("eventPattern")
    assert api["detail"]["eventName"][-2:] == ["StopInstances", "DetachNetworkInterface"]
    state = one(custom, "aws:cloudwatch/eventRule:EventRule", "us-east-1", "state-changes")
    assert state.json_input("eventPattern")["detail"]["state"] == [
        "running",
        "stopping",
        "stopped",
        "shutting-down",
        "terminated",
    ]
    tags = one(custom, "aws:cloudwatch/eventRule:EventRule", "us-east-1", "tag-changes").json_input("eventPattern")
    assert tags["detail"]["requestParameters"]["tagSet"]["items"]["key"] == ["Sensor"]
    sweep = one(custom, "aws:cloudwatch/eventRule:EventRule", "us-east-1", "sweep")
    assert sweep.inputs["scheduleExpression"] == "rate(1 hour)"


def test_queues_are_encrypted_and_redrive_to_the_dead_letter_queue(run: Run) -> None:
    for region in REGIONS:
        events, dlq = queue(run, region, "events"), queue(run, region, "dlq")
        assert events.inputs["sqsManagedSseEnabled"] is True
        assert dlq.inputs["sqsManagedSseEnabled"] is True
        assert events.inputs["visibilityTimeoutSeconds"] == 300 + 30
        redrive = events.json_input("redrivePolicy")
        assert redrive == {"deadLetterTargetArn": dlq.outputs["arn"], "maxReceiveCount": 5}


def test_rule_targets_queue_with_retries_and_dead_letter(run: Run) -> None:
    for region in REGIONS:
        events, dlq = queue(run, region, "events"), queue(run, region, "dlq")
        rules = {kind: one(run, "aws:cloudwatch/eventRule:EventRule", region, kind)
                 for kind in ("api-calls", "tag-changes", "state-changes", "sweep")}  # fmt: skip
        targets = {t.inputs["rule"]: t for t in run.of_type("aws:cloudwatch/eventTarget:EventTarget")}
        for kind in ("api-calls", "tag-changes", "state-changes"):
            target = targets[rules[kind].outputs["name"]]
            assert target.region == region
            assert target.inputs["arn"] == events.outputs["arn"]
            assert target.inputs["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 8}
            assert target.inputs["deadLetterConfig"] == {"arn": dlq.outputs["arn"]}
        sweep_target = targets[rules["sweep"].outputs["name"]]
        fn = one(run, "aws:lambda/function:Function", region)
        assert sweep_target.inputs["arn"] == fn.outputs["arn"]
        assert sweep_target.inputs["retryPolicy"]["maximumRetryAttempts"] == 0
        assert sweep_target.inputs["deadLetterConfig"] == {"arn": dlq.outputs["arn"]}
        assert "input" not in sweep_target.inputs, "EventBridge sends its own Scheduled Event"

        queue_policy = one(run, "aws:sqs/queuePolicy:QueuePolicy", region, "events-policy")
        assert queue_policy.inputs["queueUrl"] == events.outputs["url"]
        statement = _sids(queue_policy)["OnlyOurEventBridgeRules"]
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == events.outputs["arn"]
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
            rules[k].outputs["arn"] for k in ("api-calls", "tag-changes", "state-changes")
        ]
        dlq_policy = one(run, "aws:sqs/queuePolicy:QueuePolicy", region, "dlq-policy")
        statement = _sids(dlq_policy)["OnlyOurEventBridgeRules"]
        assert statement["Resource"] == dlq.outputs["arn"]
        assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(
            r.outputs["arn"] for r in rules.values()
        )


def _sids(policy: Registered) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy.json_input("policy")["Statement"]}


def test_queues_deny_every_other_sender_and_plain_http(run: Run) -> None:
    role_arn = run.of_type("aws:iam/role:Role")[0].outputs["arn"]
    for region in REGIONS:
        rules = {kind: one(run, "aws:cloudwatch/eventRule:EventRule", region, kind).outputs["arn"]
                 for kind in ("api-calls", "tag-changes", "state-changes", "sweep")}  # fmt: skip
        for kind, senders, principals in (
            ("events", [rules["api-calls"], rules["tag-changes"], rules["state-changes"]], None),
            ("dlq", list(rules.values()), [role_arn]),
        ):
            arn = queue(run, region, kind).outputs["arn"]
            statements = _sids(one(run, "aws:sqs/queuePolicy:QueuePolicy", region, f"{kind}-policy"))
            assert set(statements) == {"OnlyOurEventBridgeRules", "DenyOtherSenders", "DenyInsecureTransport"}
            deny = statements["DenyOtherSenders"]
            assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Resource"]) == (
                "Deny", "*", "sqs:SendMessage", arn
            )  # fmt: skip
            # Negated operators match a missing key: a caller without aws:SourceArn is refused too.
            # Several keys under one operator are ANDed: our rules, or (DLQ) the function's role.
            expected = {"aws:SourceArn": sorted(senders)}
            if principals:
                expected["aws:PrincipalArn"] = principals
            found = {k: sorted(v) for k, v in deny["Condition"]["ArnNotEquals"].items()}
            assert found == expected and list(deny["Condition"]) == ["ArnNotEquals"], kind
            tls = statements["DenyInsecureTransport"]
            assert (tls["Effect"], tls["Principal"], tls["Action"], tls["Resource"]) == ("Deny", "*", "sqs:*", arn)
            assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            # Receive/delete (the event source mapping) and management are never denied.
            assert not [s for s in statements.values() if s["Effect"] == "Deny" and s["Action"] not in
                        ("sqs:SendMessage", "sqs:*")]  # fmt: skip
            assert "Condition" in tls and "Bool" in tls["Condition"]


def test_event_source_mapping_and_sweep_permission(run: Run) -> None:
    for region in REGIONS:
        fn = one(run, "aws:lambda/function:Function", region)
        esm = one(run, "aws:lambda/eventSourceMapping:EventSourceMapping", region)
        assert esm.inputs["eventSourceArn"] == queue(run, region, "events").outputs["arn"]
        assert esm.inputs["functionName"] == fn.outputs["arn"]
        assert esm.inputs["batchSize"] == 10
        assert esm.inputs["maximumBatchingWindowInSeconds"] == 1
        assert esm.inputs["scalingConfig"] == {"maximumConcurrency": 2}
        assert esm.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
        permission = one(run, "aws:lambda/permission:Permission", region)
        assert permission.inputs["principal"] == "events.amazonaws.com"
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["function"] == fn.outputs["name"]
        sweep = one(run, "aws:cloudwatch/eventRule:EventRule", region, "sweep")
        assert permission.inputs["sourceArn"] == sweep.outputs["arn"]
    esm = one(deploy({"max_concurrency": 5}), "aws:lambda/eventSourceMapping:EventSourceMapping", "us-east-1")
    assert esm.inputs["scalingConfig"] == {"maximumConcurrency": 5}


def test_alarms_on_errors_and_dead_letters(run: Run) -> None:
    for region in REGIONS:
        fn = one(run, "aws:lambda/function:Function", region)
        errors = one(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "errors-alarm")
        assert (errors.inputs["namespace"], errors.inputs["metricName"]) == ("AWS/Lambda", "Errors")
        assert errors.inputs["dimensions"] == {"FunctionName": fn.outputs["name"]}
        assert errors.inputs["statistic"] == "Sum" and errors.inputs["period"] == 300
        assert errors.inputs["threshold"] == 0
        assert errors.inputs["comparisonOperator"] == "GreaterThanThreshold"
        dead = one(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "dlq-alarm")
        assert (dead.inputs["namespace"], dead.inputs["metricName"]) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
        )
        assert dead.inputs["dimensions"] == {"QueueName": queue(run, region, "dlq").outputs["name"]}
        assert not errors.inputs.get("alarmActions") and not dead.inputs.get("alarmActions")


def test_alarm_on_aws_session_quota(run: Run) -> None:
    """AWS's session quota is alarmed whether or not a cap is set (it binds without one)."""
    for region in REGIONS:
        fn = one(run, "aws:lambda/function:Function", region)
        quota = one(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "session-quota-alarm")
        assert (quota.inputs["namespace"], quota.inputs["metricName"]) == (report.METRIC_NAMESPACE, "AtQuota")
        assert quota.inputs["dimensions"] == {"FunctionName": fn.outputs["name"]}
        assert quota.inputs["threshold"] == 0 and quota.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert "AtQuota" in report.METRICS


def test_an_alarm_fires_when_sessions_point_at_unusable_sensors_for_longer_than_one_sweep(run: Run) -> None:
    from traffic_mirror.components.dashboard import sweep_period_seconds
    from traffic_mirror.handler import report

    for region in REGIONS:
        fn = one(run, "aws:lambda/function:Function", region)
        alarm = one(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "unusable-targets-alarm")
        inputs = alarm.inputs
        assert (inputs["namespace"], inputs["metricName"]) == (report.METRIC_NAMESPACE, "SessionsOnUnusableTargets")
        assert "SessionsOnUnusableTargets" in report.COVERAGE_METRICS  # what every sweep publishes
        assert inputs["dimensions"] == {"FunctionName": fn.outputs["name"]}
        # Every sweep of two sweep periods in a row saw some (the default schedule: every 5 minutes).
        assert (inputs["statistic"], inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == (
            "Minimum", 300, 2, 2
        )  # fmt: skip
        assert (inputs["threshold"], inputs["comparisonOperator"]) == (0, "GreaterThanThreshold")
        assert inputs["treatMissingData"] == "missing"
    assert sweep_period_seconds("rate(1 hour)") == 3600 and sweep_period_seconds("rate(2 minutes)") == 300
    assert sweep_period_seconds("cron(0/10 * * * ? *)") == 900 and sweep_period_seconds("rate(7 days)") == 43200
    hourly = deploy({"sweep_schedule": "rate(1 hour)"})
    assert one(hourly, "aws:cloudwatch/metricAlarm:MetricAlarm", REGIONS[0], "unusable-targets-alarm").inputs[
        "period"
    ] == 3600


def test_alarm_topics_are_used_in_their_own_region_only() -> None:
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:ops"
    custom = deploy({"alarm_topic_arns": [topic]})
    for alarm in custom.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        expected = [topic] if alarm.region == "eu-west-1" else []
        assert (alarm.inputs.get("alarmActions") or []) == expected, alarm.name


def test_initial_sweep_is_deterministic_and_follows_the_code(run: Run) -> None:
    for region in REGIONS:
        invocation = one(run, "aws:lambda/invocation:Invocation", region, "initial-sweep")
        fn = one(run, "aws:lambda/function:Function", region)
        assert invocation.inputs["functionName"] == fn.outputs["name"]
        assert invocation.json_input("input") == {
            "version": "0",
            "id": "pulumi-initial-sweep",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": "1970-01-01T00:00:00Z",
            "region": region,
            "resources": [],
            "detail": {},
        }
        assert invocation.inputs["triggers"]["code_sha256"] == packaging.code_hash()
    again = deploy()
    assert {i.name: i.inputs for i in again.of_type("aws:lambda/invocation:Invocation")} == {
        i.name: i.inputs for i in run.of_type("aws:lambda/invocation:Invocation")
    }
    changed = deploy({"tag_key": "Other"})
    before = one(run, "aws:lambda/invocation:Invocation", "us-east-1", "initial-sweep").inputs["triggers"]
    after = one(changed, "aws:lambda/invocation:Invocation", "us-east-1", "initial-sweep").inputs["triggers"]
    assert before["settings_sha256"] != after["settings_sha256"]
    assert before["filter_id"] == one(run, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", "us-east-1").outputs["id"]
    invocations = deploy({"initial_sweep": False}).of_type("aws:lambda/invocation:Invocation")
    assert [i.name for i in invocations if "initial-sweep" in i.name] == []


def test_the_sweep_event_is_one_the_handler_treats_as_a_sweep(run: Run) -> None:
    from traffic_mirror.handler.events import Change, parse
    from traffic_mirror.handler.settings import Settings

    invocation = one(run, "aws:lambda/invocation:Invocation", "eu-west-1", "initial-sweep")
    change = parse(invocation.json_input("input"), Settings())
    assert isinstance(change, Change) and change.kind == "sweep" and change.region == "eu-west-1"


# --- IAM ------------------------------------------------------------------------------------------------


def _statements(run: Run) -> dict[str, dict[str, Any]]:
    policy = run.of_type("aws:iam/rolePolicy:RolePolicy")[0].json_input("policy")
    return {s["Sid"]: s for s in policy["Statement"]}


def _hash() -> str:
    from traffic_mirror.components.naming import instance_suffix

    run_program(lambda: None)  # instance_suffix reads the project and stack of a (mock) run
    return instance_suffix("mirror")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_role_trusts_only_lambda_in_this_account(run: Run) -> None:
    (role,) = run.of_type("aws:iam/role:Role")
    (statement,) = role.json_input("assumeRolePolicy")["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:lambda:*:{ACCOUNT}:function:mirror-handler-*-{_hash()}"},
    }
    # The pattern matches this instance's functions in every region, and no other function.
    for fn in run.of_type("aws:lambda/function:Function"):
        assert fnmatch.fnmatchcase(fn.outputs["arn"], statement["Condition"]["ArnLike"]["aws:SourceArn"])
    assert not fnmatch.fnmatchcase(
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:other-handler-us-east-1-{_hash()}",
        statement["Condition"]["ArnLike"]["aws:SourceArn"],
    )
    (policy,) = run.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.outputs["name"]


def test_role_policy_is_least_privilege(run: Run) -> None:
    statements = _statements(run)
    actions = [a for s in statements.values() for a in _as_list(s["Action"])]
    assert not [a for a in actions if "*" in a], "no wildcard actions"
    assert all(s["Effect"] == "Allow" for s in statements.values())
    in_regions = {"aws:RequestedRegion": REGIONS}

    describe = statements["DescribeWhatToMirror"]
    assert set(describe["Action"]) == {
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeTags",
        "ec2:DescribeTrafficMirrorTargets",
        "ec2:DescribeTrafficMirrorFilters",
        "ec2:DescribeTrafficMirrorSessions",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeSubnets",
        "ec2:DescribeAvailabilityZones",
        "elasticloadbalancing:DescribeLoadBalancers",
        # sensor health
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
        # evidence: mirror loss, the plan's guardrails
        "cloudwatch:GetMetricData",
        "ec2:DescribeSecurityGroups",
    }
    # Only the describe calls (which support no resource ARNs) get resource "*".
    assert [sid for sid, s in statements.items() if "*" in _as_list(s["Resource"])] == ["DescribeWhatToMirror"]

    ec2 = f"arn:aws:ec2:*:{ACCOUNT}"
    # CreateTrafficMirrorSession authorizes on the new session and on the ENI, target and filter it
    # names; only the session carries the request's tags, so only it is conditioned on them.
    create = statements["CreateOnlyManagedSessions"]
    assert create["Action"] == "ec2:CreateTrafficMirrorSession"
    assert create["Resource"] == f"{ec2}:traffic-mirror-session/*"
    assert create["Condition"] == {
        "StringEquals": {"aws:RequestTag/ManagedBy": "traffic-mirror-automation", **in_regions},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["ManagedBy", "Name"]},
    }
    referenced = statements["CreateSessionsOnOwnEnisAllowedTargetsAndOwnFilters"]
    assert referenced["Action"] == "ec2:CreateTrafficMirrorSession"
    assert set(referenced["Resource"]) == {
        f"{ec2}:network-interface/*",
        f"{ec2}:traffic-mirror-target/*",
        f"{ec2}:traffic-mirror-filter/*",
    }
    assert referenced["Condition"] == {"StringEquals": in_regions}
    # Every Allow of CreateTrafficMirrorSession on the session resource needs the request tag.
    for s in statements.values():
        if "ec2:CreateTrafficMirrorSession" in _as_list(s["Action"]) and f"{ec2}:traffic-mirror-session/*" in _as_list(s["Resource"]):
            assert "aws:RequestTag/ManagedBy" in s["Condition"]["StringEquals"], s["Sid"]

    tag = statements["TagSessionsOnlyAtCreation"]
    assert tag["Action"] == "ec2:CreateTags"
    assert tag["Resource"] == f"{ec2}:traffic-mirror-session/*"
    assert tag["Condition"]["StringEquals"]["ec2:CreateAction"] == "CreateTrafficMirrorSession"

    managed = statements["ChangeOnlyManagedSessions"]
    assert set(managed["Action"]) == {"ec2:DeleteTrafficMirrorSession", "ec2:ModifyTrafficMirrorSession"}
    assert managed["Resource"] == f"{ec2}:traffic-mirror-session/*"
    assert managed["Condition"]["StringEquals"]["aws:ResourceTag/ManagedBy"] == "traffic-mirror-automation"
    references = statements["ModifyReferencesAllowedTargetsAndOwnFilters"]
    assert references["Action"] == "ec2:ModifyTrafficMirrorSession"
    assert "traffic-mirror-session" not in json.dumps(references["Resource"])

    # The only actions that touch sessions are the ones above.
    session_actions = {a for a in actions if "TrafficMirrorSession" in a and not a.startswith("ec2:Describe")}
    assert session_actions == {
        "ec2:CreateTrafficMirrorSession",
        "ec2:DeleteTrafficMirrorSession",
        "ec2:ModifyTrafficMirrorSession",
    }
    for statement in statements.values():
        if any(a.startswith("ec2:") for a in _as_list(statement["Action"])):
            assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == REGIONS


def test_role_may_only_touch_its_own_logs_and_queues(run: Run) -> None:
    statements = _statements(run)
    logs = statements["WriteOwnLogs"]
    assert logs["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    consume = statements["ConsumeOwnEventQueues"]
    assert set(consume["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    }
    send = statements["SendToOwnDeadLetterQueues"]
    assert send["Action"] == "sqs:SendMessage"
    for region in REGIONS:
        log_group = one(run, "aws:cloudwatch/logGroup:LogGroup", region).inputs["name"]
        stream = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{log_group}:log-stream:2026/01/01/abc"
        assert fnmatch.fnmatchcase(stream, logs["Resource"])
        events, dlq = queue(run, region, "events").outputs["arn"], queue(run, region, "dlq").outputs["arn"]
        assert fnmatch.fnmatchcase(events, consume["Resource"]) and not fnmatch.fnmatchcase(dlq, consume["Resource"])
        assert fnmatch.fnmatchcase(dlq, send["Resource"]) and not fnmatch.fnmatchcase(events, send["Resource"])
    # ...and nothing of another instance, even one whose name starts the same.
    other = deploy(name="mirror-2")
    other_statements = _statements(other)
    for region in REGIONS:
        other_group = one(other, "aws:cloudwatch/logGroup:LogGroup", region).inputs["name"]
        assert not fnmatch.fnmatchcase(f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{other_group}:x", logs["Resource"])
        for kind, sid in (("events", "ConsumeOwnEventQueues"), ("dlq", "SendToOwnDeadLetterQueues")):
            other_arn = queue(other, region, kind, "mirror-2").outputs["arn"]
            assert not fnmatch.fnmatchcase(other_arn, statements[sid]["Resource"])
            assert fnmatch.fnmatchcase(other_arn, other_statements[sid]["Resource"])


def test_policy_fits_iam_for_every_commercial_region(monkeypatch: pytest.MonkeyPatch) -> None:
    everywhere = deploy({"regions": list(REGIONS_BY_PARTITION["aws"])})
    policy = everywhere.of_type("aws:iam/rolePolicy:RolePolicy")[0].inputs["policy"]
    assert len(json.dumps(json.loads(policy), separators=(",", ":"))) <= component_config.IAM_INLINE_POLICY_LIMIT
    monkeypatch.setattr("traffic_mirror.components.role.IAM_INLINE_POLICY_LIMIT", 3000)
    with pytest.raises(ConfigError, match="over IAM's 3000"):
        deploy({"regions": list(REGIONS_BY_PARTITION["aws"])})


# --- CloudTrail and its bucket ---------------------------------------------------------------------------


def test_trail_is_multi_region_validated_write_only(run: Run) -> None:
    (trail,) = run.of_type("aws:cloudtrail/trail:Trail")
    bucket = run.of_type("aws:s3/bucket:Bucket")[0]
    assert trail.inputs["isMultiRegionTrail"] is True
    assert trail.inputs["enableLogFileValidation"] is True
    assert trail.inputs["includeGlobalServiceEvents"] is True
    assert trail.inputs["eventSelectors"] == [{"readWriteType": "WriteOnly", "includeManagementEvents": True}]
    assert trail.inputs["s3BucketName"] == bucket.outputs["bucket"]


def test_trail_bucket_is_private_encrypted_tls_only_and_scoped_to_the_trail(run: Run) -> None:
    bucket = run.of_type("aws:s3/bucket:Bucket")[0].outputs["bucket"]
    (trail,) = run.of_type("aws:cloudtrail/trail:Trail")
    (public,) = run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert public.inputs["bucket"] == bucket
    assert all(public.inputs[k] is True for k in
               ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))  # fmt: skip
    (sse,) = run.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (ownership,) = run.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    (policy,) = run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    statements = {s["Sid"]: s for s in policy.json_input("policy")["Statement"]}
    trail_arn = trail.outputs["arn"]
    acl = statements["AWSCloudTrailAclCheck"]
    assert acl["Action"] == "s3:GetBucketAcl" and acl["Resource"] == f"arn:aws:s3:::{bucket}"
    assert acl["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    write = statements["AWSCloudTrailWrite"]
    assert write["Action"] == "s3:PutObject"
    assert write["Resource"] == f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*"
    assert write["Condition"]["StringEquals"] == {
        "s3:x-amz-acl": "bucket-owner-full-control",
        "aws:SourceArn": trail_arn,
    }
    deny = statements["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_log_expiry_is_optional() -> None:
    custom = deploy({"log_expiration_days": 400})
    (lifecycle,) = custom.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = lifecycle.inputs["rules"]
    assert rule["status"] == "Enabled" and rule["expiration"]["days"] == 400
    assert lifecycle.inputs["bucket"] == custom.of_type("aws:s3/bucket:Bucket")[0].outputs["bucket"]


def test_existing_trail_skips_trail_and_bucket() -> None:
    arn = "arn:aws:cloudtrail:us-east-1:999999999999:trail/org-trail"
    custom = deploy({"existing_trail_arn": arn})
    assert not custom.of_type("aws:cloudtrail/trail:Trail")
    assert not [r for r in custom.resources if r.type.startswith("aws:s3/")]
    assert custom.exports["trail_arn"] == arn
    assert custom.exports["bucket_name"] is None
    assert len(custom.of_type("aws:lambda/function:Function")) == len(REGIONS)


# --- reuse ------------------------------------------------------------------------------------------------


def test_two_instances_in_one_stack_do_not_collide() -> None:
    def build() -> None:
        TrafficMirrorAutomation("blue", {"regions": ["us-east-1"]})
        TrafficMirrorAutomation("green", {"regions": ["us-east-1"], "managed_by": "green"})

    both = run_program(build)
    custom = list(both.custom())
    assert len({(r.type, r.name) for r in custom}) == len(custom)
    physical = [r.inputs["name"] for r in custom if "name" in r.inputs and r.type != "aws:iam/rolePolicy:RolePolicy"]
    assert len(set(physical)) == len(physical), physical
    assert len(both.of_type("aws:cloudtrail/trail:Trail")) == 2


def test_two_instances_managing_the_same_sessions_get_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def build() -> None:
        TrafficMirrorAutomation("blue", {"regions": ["us-east-1", "eu-west-1"]})
        TrafficMirrorAutomation("green", {"regions": ["eu-west-1"]})

    with caplog.at_level(logging.WARNING):
        run_program(build)
    warnings = [r.getMessage() for r in caplog.records if "both manage" in r.getMessage()]
    assert len(warnings) == 1 and "eu-west-1" in warnings[0], warnings


def test_packaging_finds_the_handler_next_to_the_component_not_the_cwd(tmp_path: Path) -> None:
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        files = packaging.source_files()
    finally:
        os.chdir(here)
    assert packaging.handler_dir() == REPO / "handler"
    names = [name for name, _ in files]
    assert names == sorted(names)
    assert "handler/app.py" in names and "handler/settings.py" in names
    assert all(name.startswith("handler/") and name.endswith((".py", ".json")) for name in names)
    assert all(path.is_absolute() for _, path in files)


def _installed_layout() -> dict[str, str]:
    """pyproject's package-dir: installed package -> folder in the repo."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(project["tool"]["setuptools"]["package-dir"])


def test_installed_package_is_one_namespace() -> None:
    layout = _installed_layout()
    assert set(layout) == {
        "traffic_mirror.handler",
        "traffic_mirror.components",
        "traffic_mirror.cli",
        "traffic_mirror.common",
    }
    assert all(name.startswith("traffic_mirror.") for name in layout)


def test_installed_copy_packages_its_own_handler_beside_a_program_with_its_own_packages(tmp_path: Path) -> None:
    """As after `pip install git+...`: the package in site-packages, laid out as pyproject maps it,
    and a program that has its own `components/` and `handler/`. Neither shadows the other, and the
    archive comes from the installed handler, not the program's."""
    site = tmp_path / "site-packages"
    for package, folder in _installed_layout().items():
        shutil.copytree(REPO / folder, site / package.replace(".", "/"), ignore=shutil.ignore_patterns("__pycache__"))
    program = tmp_path / "other-program"
    for own in ("handler", "components"):
        (program / own).mkdir(parents=True)
        (program / own / "__init__.py").write_text(f"WHO = {f'the program own {own}'!r}\n")
        (program / own / "app.py").write_text("raise SystemExit('the wrong handler')\n")
    script = (
        "import json, components, handler; "
        "from traffic_mirror.components import TrafficMirrorAutomation, packaging; "
        "print(json.dumps([components.WHO, handler.WHO, str(packaging.handler_dir()), "
        "[n for n, _ in packaging.source_files()]]))"
    )
    env = {**os.environ, "PYTHONPATH": f"{program}{os.pathsep}{site}"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=program, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    own_components, own_handler, where, names = json.loads(out.stdout)
    assert (own_components, own_handler) == ("the program own components", "the program own handler")
    assert Path(where) == site / "traffic_mirror" / "handler"
    assert names == [name for name, _ in packaging.source_files()]


def test_packaging_skips_caches_tests_and_other_files(tmp_path: Path) -> None:
    root = tmp_path / "handler"
    (root / "__pycache__").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "sub").mkdir()
    for name in ("app.py", "data.json", "sub/mod.py", "__pycache__/app.cpython-311.pyc", "__pycache__/x.py",
                 "tests/test_app.py", "test_local.py", "notes.md", "app.pyc", ".hidden.py"):  # fmt: skip
        (root / name).write_text("x = 1\n")
    assert [n for n, _ in packaging.source_files(root)] == ["handler/app.py", "handler/data.json", "handler/sub/mod.py"]


def test_zip_is_deterministic_and_matches_the_archive(tmp_path: Path) -> None:
    first = packaging.write_zip(tmp_path / "a.zip").read_bytes()
    second = packaging.write_zip(tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(packaging.code_archive().assets)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert packaging.code_hash() == packaging.code_hash()


def test_args_schema_can_be_served_to_other_languages() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    result = Analyzer("traffic-mirror").analyze([TrafficMirrorAutomation])
    component = result["component_definitions"]["TrafficMirrorAutomation"]
    assert component.inputs["regions"].optional is False
    assert all(p.optional for k, p in component.inputs.items() if k != "regions")
    undocumented = [k for k, p in {**component.inputs, **component.outputs}.items() if not p.description]
    assert undocumented == []
    assert set(component.outputs) >= {"functionArns", "roleArn", "trailArn", "bucketName", "deadLetterQueueUrls"}
    # Stack config keys are the schema's camelCase input names.
    assert set(component_config.CONFIG_KEYS) == set(component.inputs)


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"regions": []}, "regions must list at least one region"),
        ({}, "regions is required"),
        ({"regions": "us-east-1"}, "regions must be a list"),
        ({"regions": ["us-east-7"]}, "'us-east-7' is not a known AWS region name"),
        ({"regions": ["eu-wset-1"]}, "did you mean 'eu-west-1'"),
        ({"regions": ["us-east-1", "us-east-1"]}, "lists 'us-east-1' twice"),
        ({"regions": ["us-east-1", "cn-north-1"]}, "several AWS partitions"),
        ({"regions": ["us-east-1"], "home_region": "mars-1"}, "home_region: 'mars-1'"),
        ({"regions": ["us-east-1"], "scope": "some"}, "scope must be one of all, tagged"),
        ({"regions": ["us-east-1"], "tag_key": "aws:mirror"}, "tag_key must be a tag key of 1-128 characters"),
        ({"regions": ["us-east-1"], "filter_id": "filter-1"}, "filter_id must be a traffic mirror filter id like"),
        ({"regions": ["us-east-1"], "session_number": 0}, "session_number must be between 1 and 32766"),
        ({"regions": ["us-east-1"], "vni": 2**24}, "vni must be between 1 and 16777215"),
        ({"regions": ["us-east-1"], "session_number": "2"}, "session_number must be a number between 1 and 32766"),
        ({"regions": ["us-east-1"], "dry_run": "yes"}, "dry_run must be true or false"),
        ({"regions": ["us-east-1"], "log_retention_days": 31}, "log_retention_days must be one of"),
        ({"regions": ["us-east-1"], "timeout_seconds": 901}, "timeout_seconds must be between 30 and 900"),
        ({"regions": ["us-east-1"], "max_concurrency": 1}, "max_concurrency must be between 2 and 1000"),
        ({"regions": ["us-east-1"], "runtime": "python3.9"}, "runtime must be one of"),
        ({"regions": ["us-east-1"], "sweep_schedule": "every 5 minutes"}, "sweep_schedule must be"),
        ({"regions": ["us-east-1"], "existing_trail_arn": "org-trail"}, "existing_trail_arn must be"),
        ({"regions": ["us-east-1"], "alarm_topic_arns": ["arn:aws:sns:eu-west-1:123456789012:t"]},
         "not one of the regions"),
        ({"regions": ["us-east-1"], "regoin": "x"}, "unknown argument(s) regoin"),
    ],
)  # fmt: skip
def test_invalid_args_fail_with_a_clear_message(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve(args)
    assert message in str(raised.value)


def test_invalid_regions_fail_the_program_before_any_resource() -> None:
    with pytest.raises(ConfigError, match="not a known AWS region"):
        deploy({"regions": ["us-east-1", "eu-west-9"]})
    with pytest.raises(ConfigError, match="at least one region"):
        deploy({"regions": []})


def test_schedule_expressions() -> None:
    for good in ("rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "cron(0/10 * * * ? *)"):
        assert resolve({"regions": ["us-east-1"], "sweep_schedule": good}).deployment.sweep_schedule == good
    for bad in ("rate(1 minutes)", "rate(0 minutes)", "rate(5 minute)", "cron(* * *)"):
        with pytest.raises(ConfigError):
            resolve({"regions": ["us-east-1"], "sweep_schedule": bad})


# --- the program: Pulumi.yaml and __main__.py -------------------------------------------------------------


def _main(config: dict[str, Any]) -> Run:
    return run_program(lambda: runpy.run_path(str(REPO / "__main__.py")), config=config)


def test_main_reads_stack_config_and_exports_outputs() -> None:
    program = _main({"regions": REGIONS, "tagKey": "Sensor", "logRetentionDays": 7, "vni": 0, "filterId": ""})
    assert set(program.exports) == {
        "functionArns",
        "functionNames",
        "filterIds",
        "roleArn",
        "trailArn",
        "bucketName",
        "deadLetterQueueUrls",
        "eventQueueUrls",
    }
    assert set(program.exports["functionArns"]) == set(REGIONS)
    env = one(program, "aws:lambda/function:Function", "us-east-1").inputs["environment"]["variables"]
    assert env["MIRROR_TAG_KEY"] == "Sensor"
    assert "MIRROR_VNI" not in env, "0 means unset"
    owned = one(program, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", "us-east-1").outputs["id"]
    assert env["MIRROR_FILTER_ID"] == owned, "'' means unset: the deployment's own filter"
    assert one(program, "aws:cloudwatch/logGroup:LogGroup", "eu-west-1").inputs["retentionInDays"] == 7


def test_main_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="regions is required"):
        _main({})
    with pytest.raises(ConfigError, match="regions must list at least one region"):
        _main({"regions": []})
    with pytest.raises(ConfigError, match="not a known AWS region"):
        _main({"regions": ["us-east-1", "useast2"]})
    with pytest.raises(ConfigError, match="config timeoutSeconds"):
        _main({"regions": ["us-east-1"], "timeoutSeconds": "soon"})


def test_pulumi_yaml_declares_every_option_with_type_description_and_default() -> None:
    import yaml

    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "traffic-mirror-automation"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    declared = project["config"]
    assert set(declared) == set(component_config.CONFIG_KEYS)
    assert declared["regions"]["type"] == "array" and declared["regions"]["items"] == {"type": "string"}
    assert "default" not in declared["regions"], "regions is required"
    for key, spec in declared.items():
        assert spec.get("description"), key
        assert key == "regions" or "default" in spec, key
    # Every declared default means "the component's default": a stack that sets each key to its
    # declared default deploys exactly what a stack that sets nothing deploys.
    plain = _main({"regions": ["us-east-1"]})
    explicit = _main({"regions": ["us-east-1"], **{k: v["default"] for k, v in declared.items() if "default" in v}})
    def registered(run: Run) -> dict[str, Any]:
        def plain_value(value: Any) -> Any:
            return sorted(value.assets) if isinstance(value, pulumi.AssetArchive) else value

        return {r.name: (r.type, {k: plain_value(v) for k, v in r.inputs.items()}) for r in run.resources}

    assert registered(explicit) == registered(plain)


def test_generated_files_match_the_declarations() -> None:
    """components/args.py, Pulumi.yaml's config and the README's tables come from the settings' specs."""
    from scripts import generate

    assert generate.stale() == [], "run `make generate`"
    assert PROVIDER_REGION == "us-east-1"


def test_deployed_from_the_runtimes_python_the_package_carries_the_bytecode_python_loads(tmp_path: Path) -> None:
    """Unchecked hash-based .pyc beside the sources: the module loads without compiling its source
    (here a source that no longer compiles still imports), on the read-only /var/task."""
    other = "python3.12" if packaging.this_runtime() != "python3.12" else "python3.13"
    with zipfile.ZipFile(packaging.write_zip(tmp_path / "other.zip", runtime=other)) as archive:
        assert not [n for n in archive.namelist() if n.endswith(".pyc")]
    task = tmp_path / "task"
    with zipfile.ZipFile(packaging.write_zip(tmp_path / "same.zip", runtime=packaging.this_runtime())) as archive:
        names = archive.namelist()
        archive.extractall(task)
    sources = [n for n in names if n.endswith(".py")]
    assert len([n for n in names if n.endswith(".pyc")]) == len(sources)
    (task / "handler" / "errors.py").write_text("this is not Python\n")
    code = "import handler.errors as e; assert e.classify"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(task)}
    done = subprocess.run([sys.executable, "-c", code], cwd=task, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_archive_holds_only_what_the_lambda_runs_and_cli_edits_leave_its_hash(tmp_path: Path) -> None:
    names = [name for name, _ in packaging.source_files()]
    assert "handler/__main__.py" not in names  # `python -m handler` starts the CLI: not the Lambda's
    assert not any("rich" in path.read_text() for _, path in packaging.source_files())
    for folder in ("handler", "cli"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    before = packaging.code_hash(tmp_path / "handler")
    (tmp_path / "cli" / "render.py").write_text("# a CLI edit\n")
    assert packaging.code_hash(tmp_path / "handler") == before
    (tmp_path / "handler" / "app.py").write_text((tmp_path / "handler" / "app.py").read_text() + "\n# an edit\n")
    assert packaging.code_hash(tmp_path / "handler") != before
