"""Beyond mocks: replay what the component registers into moto, and see a session appear.

The program runs under Pulumi's mocks; the inputs it registered (IAM role and policy, trail
bucket and its policy, trail, queues and their policies, rules with their patterns and
targets, the Lambda with its environment, built from the real archive) are then created in
moto with boto3. A real-shaped RunInstances CloudTrail record (tests/events, vendored from shared/events, with moto's ids
swapped in) goes through EventBridge's matching into the event queue, and the message is fed,
as Lambda's SQS poller would, to the handler loaded from the built zip (extracted like Lambda
extracts it, imported in a fresh module namespace). The session then exists in moto.

This proves the pieces fit: the patterns match what CloudTrail sends, the rules deliver to the
queue the function consumes, the archive contains a working handler, and the environment the
component sets is one the handler accepts.

moto gap: its EventBridge matcher does not look inside arrays of objects, which EventBridge
does (`tagSet.items.key`). `eventbridge_array_matching` teaches it that, and nothing else.
"""

import base64
import contextlib
import copy
import hashlib
import importlib
import json
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.validate import validate_parameters
from moto import mock_aws
from moto.events.models import EventPattern
from traffic_mirror.components import TrafficMirrorAutomation, packaging
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from testsupport import modules, sandbox
from testsupport.event_builders import load_record, run_instances_record
from testsupport.lambda_context import LambdaContext
from testsupport.pulumi_mocks import ACCOUNT, Registered, Run, run_program

pytestmark = pytest.mark.moto

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
REGION = "us-east-1"
EVENTS_FILE = "RunInstances__elastic-integrations__1.json"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def program() -> Run:
    return run_program(lambda: TrafficMirrorAutomation("mirror", {"regions": REGIONS}))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _flatten_like_eventbridge(node: Any, prefix: str = "", result: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's flattening, plus EventBridge's rule for arrays: a field inside an array of objects
    matches if any element's value matches (values are collected into a list)."""
    if result is None:
        result = {}

    def add(key: str, value: Any) -> None:
        if key in result:
            existing = result[key] if isinstance(result[key], list) else [result[key]]
            result[key] = existing + (value if isinstance(value, list) else [value])
        else:
            result[key] = value

    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict) and v:
                _flatten_like_eventbridge(v, key, result)
            elif isinstance(v, list) and any(isinstance(item, dict) for item in v):
                for item in v:
                    if isinstance(item, dict):
                        _flatten_like_eventbridge(item, key, result)
                    else:
                        add(key, [item])
            else:
                add(key, v)
    return result


@pytest.fixture
def eventbridge_array_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EventPattern, "_flatten_dict", staticmethod(_flatten_like_eventbridge))


@dataclass
class Deployed:
    """What the replay created in moto, by region."""

    run: Run
    role_arn: str
    function_names: dict[str, str]
    queue_urls: dict[str, str]
    dead_letter_urls: dict[str, str]
    zip_bytes: bytes
    ids: dict[str, str]
    """The mocks' ids of targets and filters -> the ids moto gave them."""


@pytest.fixture
def deployed(
    program: Run, aws_env: None, eventbridge_array_matching: None, tmp_path: Path
) -> Iterator[Deployed]:
    with mock_aws(), sandbox.aws_rules():
        yield replay(program, packaging.write_zip(tmp_path / "function.zip").read_bytes())


# --- replay: registered inputs -> boto3 calls ------------------------------------------------------


def _only(run: Run, typ: str, region: str | None = None) -> list[Registered]:
    return [r for r in run.of_type(typ) if region is None or r.region == region]


def _by_output(run: Run, typ: str, key: str, value: str) -> Registered:
    (found,) = [r for r in run.of_type(typ) if r.outputs.get(key) == value]
    return found


def replay(run: Run, zip_bytes: bytes, regions: list[str] = REGIONS) -> Deployed:
    iam = boto3.client("iam")
    (role,) = run.of_type("aws:iam/role:Role")
    role_arn = iam.create_role(
        RoleName=role.outputs["name"], AssumeRolePolicyDocument=role.inputs["assumeRolePolicy"]
    )["Role"]["Arn"]
    assert role_arn == role.outputs["arn"], "moto and the mocks agree on ARNs, so policies line up"
    (policy,) = run.of_type("aws:iam/rolePolicy:RolePolicy")
    iam.put_role_policy(  # moto validates the document's grammar (operators, ARNs, keys)
        RoleName=role.outputs["name"], PolicyName="mirror-role-policy", PolicyDocument=policy.inputs["policy"]
    )

    # The trail and its bucket, in the home region.
    (bucket,) = run.of_type("aws:s3/bucket:Bucket")
    name = bucket.outputs["bucket"]
    s3: Any = boto3.client("s3", region_name=bucket.region)
    s3.create_bucket(Bucket=name)
    (public,) = run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            key[0].upper() + key[1:]: public.inputs[key]
            for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        },
    )
    (sse,) = run.of_type(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    algorithm = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]
        },
    )
    (ownership,) = run.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    s3.put_bucket_ownership_controls(
        Bucket=name,
        OwnershipControls={"Rules": [{"ObjectOwnership": ownership.inputs["rule"]["objectOwnership"]}]},
    )
    (bucket_policy,) = run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    s3.put_bucket_policy(Bucket=name, Policy=bucket_policy.inputs["policy"])
    (trail,) = run.of_type("aws:cloudtrail/trail:Trail")
    cloudtrail = boto3.client("cloudtrail", region_name=trail.region)
    created = cloudtrail.create_trail(
        Name=trail.inputs["name"],
        S3BucketName=trail.inputs["s3BucketName"],
        IsMultiRegionTrail=trail.inputs["isMultiRegionTrail"],
        EnableLogFileValidation=trail.inputs["enableLogFileValidation"],
        IncludeGlobalServiceEvents=trail.inputs["includeGlobalServiceEvents"],
    )
    assert created["TrailARN"] == trail.outputs["arn"], "the bucket policy's aws:SourceArn is the trail's ARN"
    selectors = trail.inputs["eventSelectors"]
    cloudtrail.put_event_selectors(
        TrailName=trail.inputs["name"],
        EventSelectors=[
            {"ReadWriteType": s["readWriteType"], "IncludeManagementEvents": s["includeManagementEvents"]}
            for s in selectors
        ],
    )
    cloudtrail.start_logging(Name=trail.inputs["name"])

    functions: dict[str, str] = {}
    queues: dict[str, str] = {}
    dead_letters: dict[str, str] = {}
    ids: dict[str, str] = {}
    for region in regions:
        ids |= _replay_mirroring(run, region)
        functions[region], queues[region], dead_letters[region] = _replay_region(run, region, zip_bytes, ids)
    return Deployed(run, role_arn, functions, queues, dead_letters, zip_bytes, ids)


def _tag_spec(kind: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    """moto refuses CreateTags on its traffic-mirror ids: tags go with the creation, as pulumi-aws sends them."""
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _replay_mirroring(run: Run, region: str) -> dict[str, str]:
    """The sensors' targets, the owned filter and its rules; returns mock id -> moto id."""
    ec2 = boto3.client("ec2", region_name=region)
    ids: dict[str, str] = {}
    for target in _only(run, "aws:ec2/trafficMirrorTarget:TrafficMirrorTarget", region):
        i = target.inputs
        kwargs = {
            boto_key: i[key]
            for key, boto_key in (
                ("networkLoadBalancerArn", "NetworkLoadBalancerArn"),
                ("networkInterfaceId", "NetworkInterfaceId"),
                ("gatewayLoadBalancerEndpointId", "GatewayLoadBalancerEndpointId"),
            )
            if key in i
        }
        created = ec2.create_traffic_mirror_target(
            **kwargs, Description=i["description"], TagSpecifications=_tag_spec("traffic-mirror-target", i["tags"])
        )
        ids[target.outputs["id"]] = created["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    for mirror_filter in _only(run, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", region):
        created = ec2.create_traffic_mirror_filter(
            Description=mirror_filter.inputs["description"],
            TagSpecifications=_tag_spec("traffic-mirror-filter", mirror_filter.inputs["tags"]),
        )
        ids[mirror_filter.outputs["id"]] = created["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    for rule in _only(run, "aws:ec2/trafficMirrorFilterRule:TrafficMirrorFilterRule", region):
        i = rule.inputs
        kwargs = {"Protocol": int(i["protocol"])} if "protocol" in i else {}
        if "destinationPortRange" in i:
            ports = i["destinationPortRange"]
            kwargs["DestinationPortRange"] = {"FromPort": int(ports["fromPort"]), "ToPort": int(ports["toPort"])}
        params = {
            "TrafficMirrorFilterId": ids[i["trafficMirrorFilterId"]],
            "TrafficDirection": i["trafficDirection"],
            "RuleNumber": int(i["ruleNumber"]),
            "RuleAction": i["ruleAction"],
            "SourceCidrBlock": i["sourceCidrBlock"],
            "DestinationCidrBlock": i["destinationCidrBlock"],
            "Description": i["description"],
            **kwargs,
        }
        # moto does not implement CreateTrafficMirrorFilterRule: check the call against EC2's own
        # API model instead (names, types, enums), which botocore would send as is.
        model = ec2.meta.service_model.operation_model("CreateTrafficMirrorFilterRule")
        validate_parameters(params, model.input_shape)
        assert params["TrafficDirection"] in model.input_shape.members["TrafficDirection"].enum
        assert params["RuleAction"] in model.input_shape.members["RuleAction"].enum
    return ids


def _replay_region(run: Run, region: str, zip_bytes: bytes, ids: dict[str, str]) -> tuple[str, str, str]:
    sqs: Any = boto3.client("sqs", region_name=region)
    events = boto3.client("events", region_name=region)
    lambda_ = boto3.client("lambda", region_name=region)
    logs = boto3.client("logs", region_name=region)
    cloudwatch = boto3.client("cloudwatch", region_name=region)

    (log_group,) = _only(run, "aws:cloudwatch/logGroup:LogGroup", region)
    logs.create_log_group(logGroupName=log_group.inputs["name"])
    logs.put_retention_policy(
        logGroupName=log_group.inputs["name"], retentionInDays=int(log_group.inputs["retentionInDays"])
    )

    # Dead-letter queue first: the event queue's redrive policy names it.
    queue_urls: dict[str, str] = {}
    for queue in sorted(_only(run, "aws:sqs/queue:Queue", region), key=lambda q: "redrivePolicy" in q.inputs):
        attributes = {"SqsManagedSseEnabled": str(queue.inputs["sqsManagedSseEnabled"]).lower()}
        for key, attribute in (
            ("visibilityTimeoutSeconds", "VisibilityTimeout"),
            ("messageRetentionSeconds", "MessageRetentionPeriod"),
            ("redrivePolicy", "RedrivePolicy"),
        ):
            if key in queue.inputs:
                value = queue.inputs[key]
                attributes[attribute] = value if isinstance(value, str) else str(int(value))
        url = sqs.create_queue(QueueName=queue.inputs["name"], Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert arn == queue.outputs["arn"]
        queue_urls[queue.outputs["url"]] = url
    for policy in _only(run, "aws:sqs/queuePolicy:QueuePolicy", region):
        sqs.set_queue_attributes(
            QueueUrl=queue_urls[policy.inputs["queueUrl"]], Attributes={"Policy": policy.inputs["policy"]}
        )

    (fn,) = _only(run, "aws:lambda/function:Function", region)
    inputs = fn.inputs
    created = lambda_.create_function(
        FunctionName=inputs["name"],
        Runtime=inputs["runtime"],
        Role=inputs["role"],
        Handler=inputs["handler"],
        Code={"ZipFile": zip_bytes},
        Architectures=inputs["architectures"],
        Timeout=int(inputs["timeout"]),
        MemorySize=int(inputs["memorySize"]),
        Environment={"Variables": {k: ids.get(v, v) for k, v in inputs["environment"]["variables"].items()}},
        DeadLetterConfig={"TargetArn": inputs["deadLetterConfig"]["targetArn"]},
        LoggingConfig={
            "LogFormat": inputs["loggingConfig"]["logFormat"],
            "LogGroup": inputs["loggingConfig"]["logGroup"],
        },
    )
    assert created["FunctionArn"] == fn.outputs["arn"]
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()

    if "reservedConcurrentExecutions" in inputs:
        lambda_.put_function_concurrency(
            FunctionName=inputs["name"], ReservedConcurrentExecutions=int(inputs["reservedConcurrentExecutions"])
        )
    for config in _only(run, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", region):
        lambda_.put_function_event_invoke_config(
            FunctionName=config.inputs["functionName"],
            MaximumRetryAttempts=int(config.inputs["maximumRetryAttempts"]),
            MaximumEventAgeInSeconds=int(config.inputs["maximumEventAgeInSeconds"]),
        )
    for board in _only(run, "aws:cloudwatch/dashboard:Dashboard", region):
        cloudwatch.put_dashboard(DashboardName=board.inputs["dashboardName"], DashboardBody=board.inputs["dashboardBody"])

    (esm,) = _only(run, "aws:lambda/eventSourceMapping:EventSourceMapping", region)
    # Disabled in moto: moto would run the function in Docker; the test plays Lambda's poller itself.
    lambda_.create_event_source_mapping(
        EventSourceArn=esm.inputs["eventSourceArn"],
        FunctionName=esm.inputs["functionName"],
        BatchSize=int(esm.inputs["batchSize"]),
        MaximumBatchingWindowInSeconds=int(esm.inputs["maximumBatchingWindowInSeconds"]),
        FunctionResponseTypes=esm.inputs["functionResponseTypes"],
        ScalingConfig={"MaximumConcurrency": int(esm.inputs["scalingConfig"]["maximumConcurrency"])},
        Enabled=False,
    )

    for rule in _only(run, "aws:cloudwatch/eventRule:EventRule", region):
        kwargs: dict[str, Any] = {"Name": rule.outputs["name"], "Description": rule.inputs["description"]}
        if "eventPattern" in rule.inputs:
            kwargs["EventPattern"] = rule.inputs["eventPattern"]
        else:
            kwargs["ScheduleExpression"] = rule.inputs["scheduleExpression"]
        assert events.put_rule(**kwargs)["RuleArn"] == rule.outputs["arn"]
    for target in _only(run, "aws:cloudwatch/eventTarget:EventTarget", region):
        retry = target.inputs["retryPolicy"]
        if ":lambda:" in target.inputs["arn"]:
            # The sweep schedule's target. moto treats a schedule rule as matching every event and
            # cannot deliver to Lambda, so it is checked here instead of being put into moto.
            assert target.inputs["arn"] == fn.outputs["arn"]
            continue
        result = events.put_targets(
            Rule=target.inputs["rule"],
            Targets=[
                {
                    "Id": "target",
                    "Arn": target.inputs["arn"],
                    "RetryPolicy": {
                        "MaximumRetryAttempts": int(retry["maximumRetryAttempts"]),
                        "MaximumEventAgeInSeconds": int(retry["maximumEventAgeInSeconds"]),
                    },
                    "DeadLetterConfig": {"Arn": target.inputs["deadLetterConfig"]["arn"]},
                }
            ],
        )
        assert result["FailedEntryCount"] == 0
    for permission in _only(run, "aws:lambda/permission:Permission", region):
        lambda_.add_permission(
            FunctionName=permission.inputs["function"],
            StatementId="events",
            Action=permission.inputs["action"],
            Principal=permission.inputs["principal"],
            SourceArn=permission.inputs["sourceArn"],
        )
    for alarm in _only(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region):
        i = alarm.inputs
        cloudwatch.put_metric_alarm(
            AlarmName=alarm.name,
            Namespace=i["namespace"],
            MetricName=i["metricName"],
            Dimensions=[{"Name": k, "Value": v} for k, v in i["dimensions"].items()],
            Statistic=i["statistic"],
            Period=int(i["period"]),
            EvaluationPeriods=int(i["evaluationPeriods"]),
            Threshold=float(i["threshold"]),
            ComparisonOperator=i["comparisonOperator"],
            TreatMissingData=i["treatMissingData"],
        )

    events_queue = _by_output(run, "aws:sqs/queue:Queue", "arn", esm.inputs["eventSourceArn"])
    dead_letter = _by_output(run, "aws:sqs/queue:Queue", "arn", inputs["deadLetterConfig"]["targetArn"])
    return inputs["name"], queue_urls[events_queue.outputs["url"]], queue_urls[dead_letter.outputs["url"]]


# --- the handler, from the built archive -------------------------------------------------------------


@pytest.fixture
def archived_handler(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, list[str]]]:
    """`handler.app` imported from the extracted zip (as Lambda runs it) in a fresh namespace,
    with the environment the component gave the function. Also yields the IAM actions it calls."""
    with load_archived_handler(deployed, tmp_path, monkeypatch) as loaded:
        yield loaded


@contextlib.contextmanager
def load_archived_handler(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, list[str]]]:
    """See `archived_handler`; the environment is the one moto's function holds."""
    task = tmp_path / "task"
    deployed_zip = tmp_path / "deployed.zip"
    deployed_zip.write_bytes(deployed.zip_bytes)  # the bytes moto's Lambda holds (CodeSha256 checked)
    with zipfile.ZipFile(deployed_zip) as archive:
        archive.extractall(task)
    (fn,) = _only(deployed.run, "aws:lambda/function:Function", REGION)
    variables = boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=fn.inputs["name"])
    for key, value in variables["Environment"]["Variables"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.13")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", fn.inputs["name"])
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", fn.inputs["loggingConfig"]["applicationLogLevel"])

    # As Lambda does: the archive's `handler` package, top-level, from the task directory.
    archived = modules.in_package("handler")
    with modules.preserved(archived):
        modules.purge(archived)
        sys.path.insert(0, str(task))
        try:
            app = importlib.import_module("handler.app")
            assert Path(app.__file__ or "").resolve().is_relative_to(task.resolve()), app.__file__
            actions: list[str] = []
            home = app.Place(REGION)
            for client in (app.CONTAINER.clients.ec2(home), app.CONTAINER.clients.elbv2(home)):
                prefix = client.meta.service_model.signing_name

                def record(model: Any, _prefix: str = prefix, **_: Any) -> None:
                    actions.append(f"{_prefix}:{model.name}")

                client.meta.events.register("before-call", record)
            yield app, actions
        finally:
            sys.path.remove(str(task))


# --- helpers ---------------------------------------------------------------------------------------


def put_cloudtrail_event(record: dict[str, Any], region: str = REGION) -> None:
    result = boto3.client("events", region_name=region).put_events(
        Entries=[
            {
                "Source": "aws.ec2",
                "DetailType": "AWS API Call via CloudTrail",
                "Detail": json.dumps(record),
            }
        ]
    )
    assert result["FailedEntryCount"] == 0


def receive(url: str, region: str = REGION) -> list[dict[str, Any]]:
    sqs: Any = boto3.client("sqs", region_name=region)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)


def as_sqs_batch(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """What Lambda's SQS poller passes to the function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def deliver(app: ModuleType, deployed: Deployed, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Lambda's poller: invoke with the batch, delete what succeeded."""
    url = deployed.queue_urls[REGION]
    sqs = boto3.client("sqs", region_name=REGION)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result: dict[str, Any] = app.lambda_handler(
        as_sqs_batch(messages, arn), LambdaContext(function_name=deployed.function_names[REGION])
    )
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return result


def sessions_by_eni(ec2: Any) -> dict[str, dict[str, Any]]:
    return {s["NetworkInterfaceId"]: s for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]}


def tags_record(instance_id: str, key: str, value: str, name: str = "CreateTags") -> dict[str, Any]:
    """A CreateTags CloudTrail record, shaped like the RunInstances one (same identity and envelope)."""
    record = load_record(EVENTS_FILE)
    record.update(
        eventName=name,
        eventID=f"{name}-{instance_id}-{key}",
        awsRegion=REGION,
        requestParameters={
            "resourcesSet": {"items": [{"resourceId": instance_id}]},
            "tagSet": {"items": [{"key": key, "value": value}]},
        },
        responseElements={"requestId": "0f3ec3b2-0000-0000-0000-000000000000", "_return": True},
    )
    return record


def initial_sweep(run: Run, region: str) -> Registered:
    (found,) = [i for i in _only(run, "aws:lambda/invocation:Invocation", region) if "initial-sweep" in i.name]
    return found


def owned_filter(deployed: Deployed, region: str) -> str:
    """The id moto gave the deployment's own filter in `region`."""
    (registered,) = _only(deployed.run, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", region)
    return deployed.ids[registered.outputs["id"]]


def allowed_actions(run: Run) -> list[str]:
    policy = json.loads(run.of_type("aws:iam/rolePolicy:RolePolicy")[0].inputs["policy"])
    actions: list[str] = []
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            value = statement["Action"]
            actions.extend(value if isinstance(value, list) else [value])
    return actions


# --- the test ---------------------------------------------------------------------------------------


def test_replayed_deployment_is_what_was_registered(deployed: Deployed) -> None:
    """moto accepted every registered input, and the resources sit in their own regions."""
    for region in REGIONS:
        lambda_ = boto3.client("lambda", region_name=region)
        config = lambda_.get_function_configuration(FunctionName=deployed.function_names[region])
        assert config["Handler"] == "handler.app.lambda_handler"
        assert config["Architectures"] == ["arm64"]
        assert config["Role"] == deployed.role_arn
        sqs: Any = boto3.client("sqs", region_name=region)
        attributes = sqs.get_queue_attributes(QueueUrl=deployed.queue_urls[region], AttributeNames=["All"])[
            "Attributes"
        ]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=deployed.dead_letter_urls[region], AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
        assert attributes["SqsManagedSseEnabled"] == "true"
        rules = boto3.client("events", region_name=region).list_rules()["Rules"]
        assert len(rules) == 4
        assert all(f":{region}:" in rule["Arn"] for rule in rules)
    trail = boto3.client("cloudtrail", region_name=REGION).get_trail_status(
        Name=deployed.run.of_type("aws:cloudtrail/trail:Trail")[0].inputs["name"]
    )
    assert trail["IsLogging"] is True


def test_run_instances_event_reaches_the_queue_and_the_archived_handler_mirrors_it(
    deployed: Deployed, archived_handler: tuple[ModuleType, list[str]]
) -> None:
    app, actions = archived_handler
    ec2 = boto3.client("ec2", region_name=REGION)
    account = sandbox.build_account(ec2, REGION)
    subnet = account.subnets[f"{REGION}a"]

    # 1. An instance that exists before the deploy: the one-time sweep (the registered
    #    Invocation's input, as Lambda would receive it) covers it.
    (existing,) = sandbox.launch(ec2, account, subnet, "m5.large", {"Name": "before-deploy"})
    invocation = initial_sweep(deployed.run, REGION)
    app.lambda_handler(json.loads(invocation.inputs["input"]), LambdaContext(function_name=deployed.function_names[REGION]))
    existing_eni = existing["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert existing_eni in sessions_by_eni(ec2)

    # 2. A launch after the deploy: the real-shaped RunInstances record, through EventBridge.
    (instance,) = sandbox.launch(ec2, account, subnet, "m5.large", {"Name": "web-1"})
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    record = run_instances_record([instance], template=EVENTS_FILE, event_id="launch-web-1")
    assert record["responseElements"]["instancesSet"]["items"][0]["networkInterfaceSet"]["items"][0][
        "networkInterfaceId"
    ] == eni
    failed = copy.deepcopy(record)
    failed.update(errorCode="Client.UnauthorizedOperation", errorMessage="denied", responseElements=None)
    put_cloudtrail_event(failed)
    put_cloudtrail_event(record)

    messages = receive(deployed.queue_urls[REGION])
    assert len(messages) == 1, "the failed call (errorCode set) is not matched"
    body = json.loads(messages[0]["Body"])
    assert body["detail-type"] == "AWS API Call via CloudTrail"
    assert body["detail"]["eventName"] == "RunInstances" and "errorCode" not in body["detail"]
    assert eni not in sessions_by_eni(ec2)

    result = deliver(app, deployed, messages)
    assert result == {"batchItemFailures": []}
    session = sessions_by_eni(ec2)[eni]
    assert session["TrafficMirrorTargetId"] == account.targets[f"sensor-{REGION}a-0"]
    # The deployment's own filter, although the account has another one (a colleague's, say).
    assert session["TrafficMirrorFilterId"] == owned_filter(deployed, REGION) != account.filters["default"]
    tags = {t["Key"]: t["Value"] for t in session["Tags"]}
    assert tags[MANAGED_TAG_KEY] == "traffic-mirror-automation"
    assert receive(deployed.queue_urls[REGION]) == [], "the poller deleted the handled message"
    assert receive(deployed.dead_letter_urls[REGION]) == []

    # 3. Tag changes: only those naming our key reach the queue; opting out removes the session.
    put_cloudtrail_event(tags_record(instance["InstanceId"], "Owner", "team-a"))
    assert receive(deployed.queue_urls[REGION]) == []
    ec2.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": "Mirror", "Value": "false"}])
    put_cloudtrail_event(tags_record(instance["InstanceId"], "Mirror", "false"))
    messages = receive(deployed.queue_urls[REGION])
    assert [json.loads(m["Body"])["detail"]["eventName"] for m in messages] == ["CreateTags"]
    assert deliver(app, deployed, messages) == {"batchItemFailures": []}
    assert eni not in sessions_by_eni(ec2)
    assert existing_eni in sessions_by_eni(ec2), "other sessions are left alone"

    # 4. State changes: "running" is delivered, other states are not.
    state = load_record("EC2InstanceStateChangeNotification__awsdocs-amazon-eventbridge-user-guide__1.json")
    events = boto3.client("events", region_name=REGION)
    for value in ("pending", "running"):
        detail = {**state["detail"], "instance-id": instance["InstanceId"], "state": value}
        events.put_events(
            Entries=[{"Source": state["source"], "DetailType": state["detail-type"], "Detail": json.dumps(detail)}]
        )
    delivered = [json.loads(m["Body"])["detail"]["state"] for m in receive(deployed.queue_urls[REGION])]
    assert delivered == ["running"]

    # 5. Every API call the handler made is an action the role allows.
    allowed = allowed_actions(deployed.run)
    assert actions, "the hook saw the handler's calls"
    assert sorted(set(actions) - set(allowed)) == []
    assert {"ec2:CreateTrafficMirrorSession", "ec2:DeleteTrafficMirrorSession"} <= set(actions)


def test_events_stay_in_their_region(deployed: Deployed) -> None:
    """A launch in eu-west-1 reaches eu-west-1's queue only: each region's rules are its own."""
    record = load_record(EVENTS_FILE)
    record["awsRegion"] = "eu-west-1"
    put_cloudtrail_event(record, region="eu-west-1")
    assert len(receive(deployed.queue_urls["eu-west-1"], "eu-west-1")) == 1
    for region in ("us-east-1", "ap-southeast-2"):
        assert receive(deployed.queue_urls[region], region) == []
    assert deployed.role_arn.split(":")[4] == ACCOUNT


# --- from an empty account, and a clean teardown ---------------------------------------------------


def test_from_an_empty_account_sensors_as_code_mirror_and_destroy_releases_only_ours(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No target, no filter in the account: the sensors are given as an NLB ARN and an ENI id.
    The deployment creates the targets and its own filter, hands the filter's id to the handler,
    and the one-time sweep mirrors the instances; a colleague's extra filter changes nothing. Then
    `pulumi destroy`'s hook removes exactly the managed sessions: a foreign one stays."""
    from moto.elbv2 import models as elbv2_models

    # moto names every load balancer `loadbalancer/app/...`; AWS names a Network Load Balancer `net/`.
    moto_arn = elbv2_models.make_arn_for_load_balancer
    monkeypatch.setattr(
        elbv2_models, "make_arn_for_load_balancer", lambda *a, **k: moto_arn(*a, **k).replace("/app/", "/net/")
    )
    with mock_aws(), sandbox.aws_rules():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        subnets = {
            f"{REGION}{suffix}": ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"10.1.{index * 16}.0/20", AvailabilityZone=f"{REGION}{suffix}"
            )["Subnet"]["SubnetId"]
            for index, suffix in enumerate("ab")
        }
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]  # the small catalogue
        account = sandbox.Account(REGION, vpc, subnets, ami=ami)
        (sensor,) = sandbox.launch(ec2, account, subnets[f"{REGION}a"], "c5.xlarge", {"Name": "sensor"})
        sensor_eni = sensor["NetworkInterfaces"][0]["NetworkInterfaceId"]
        nlb_arn = sandbox.add_nlb_target(
            ec2, boto3.client("elbv2", region_name=REGION), account, "sensors", [f"{REGION}b"], mirror_target=False
        ).arn
        assert ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"] == []
        assert ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []

        program = run_program(
            lambda: TrafficMirrorAutomation(
                "mirror", {"regions": [REGION], "sensors": [nlb_arn, f"{REGION}/{sensor_eni}"]}
            )
        )
        deployed = replay(program, packaging.write_zip(tmp_path / "function.zip").read_bytes(), regions=[REGION])

        targets = ec2.describe_traffic_mirror_targets()["TrafficMirrorTargets"]
        assert {t.get("NetworkLoadBalancerArn") or t.get("NetworkInterfaceId") for t in targets} == {nlb_arn, sensor_eni}
        assert all({"Key": "Mirror", "Value": "true"} in t["Tags"] for t in targets), "designated sensors"
        ours = owned_filter(deployed, REGION)
        (fn,) = _only(program, "aws:lambda/function:Function", REGION)
        variables = boto3.client("lambda", region_name=REGION).get_function_configuration(
            FunctionName=fn.inputs["name"]
        )["Environment"]["Variables"]
        assert variables["MIRROR_FILTER_ID"] == ours
        colleague = ec2.create_traffic_mirror_filter(Description="a colleague's")["TrafficMirrorFilter"]

        web = [
            sandbox.launch(ec2, account, subnets[f"{REGION}{az}"], "m5.large", {"Name": f"web-{az}"})[0]
            for az in "ab"
        ]
        enis = [i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in web]
        with load_archived_handler(deployed, tmp_path, monkeypatch) as (app, actions):
            context = LambdaContext(function_name=deployed.function_names[REGION])
            app.lambda_handler(json.loads(initial_sweep(program, REGION).inputs["input"]), context)
            mirrored = sessions_by_eni(ec2)
            assert set(mirrored) == set(enis), "both instances mirrored; the sensor ENI is not a source"
            target_ids = {t["TrafficMirrorTargetId"] for t in targets}
            assert {s["TrafficMirrorTargetId"] for s in mirrored.values()} <= target_ids
            assert {s["TrafficMirrorFilterId"] for s in mirrored.values()} == {ours} != {colleague["TrafficMirrorFilterId"]}

            foreign = ec2.create_traffic_mirror_session(
                NetworkInterfaceId=enis[0],
                TrafficMirrorTargetId=mirrored[enis[0]]["TrafficMirrorTargetId"],
                TrafficMirrorFilterId=colleague["TrafficMirrorFilterId"],
                SessionNumber=7,
            )["TrafficMirrorSession"]["TrafficMirrorSessionId"]

            # `pulumi destroy`: pulumi-aws invokes the hook with its input and the lifecycle key.
            (hook,) = [i for i in _only(program, "aws:lambda/invocation:Invocation", REGION) if "release" in i.name]
            hook_input = json.loads(hook.inputs["input"])
            for action in ("create", "update"):
                app.lambda_handler({**hook_input, "tf": {"action": action, "prev_input": hook_input}}, context)
            assert set(sessions_by_eni(ec2)) == set(enis), "create and update release nothing"
            app.lambda_handler({**hook_input, "tf": {"action": "delete", "prev_input": hook_input}}, context)
            left = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
            assert [s["TrafficMirrorSessionId"] for s in left] == [foreign]

            assert sorted(set(actions) - set(allowed_actions(program))) == []
            assert "ec2:DeleteTrafficMirrorSession" in actions
