"""Safety, one focused case per guarantee: trusted sensors only, nothing destroyed on one read or one
event, a poison message or a broken target fails alone, loud permanent failures, retries and
deadlines that hold, fresh ClientTokens per run, every log level, filters, IAM.

Faults come from `testsupport.faults` in front of a moto server; the rest runs on in-process moto.
"""

import contextlib
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from traffic_mirror.handler import app, report
from traffic_mirror.handler import settings as settings_module
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from benchmarks.fault_campaign import compressed_waits
from tests import conftest
from testsupport import faults, lambda_context, moto_server, sandbox
from testsupport.event_builders import run_instances_record, wrap
from testsupport.pulumi_mocks import Run

REGION = "us-east-1"
MANAGED = {"Key": MANAGED_TAG_KEY, "Value": Settings().managed_by}


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def launch_event(instances: list[dict[str, Any]], event_id: str, **envelope: Any) -> dict[str, Any]:
    return {**wrap(run_instances_record(instances, event_id=event_id)), **envelope}


def sqs(*bodies: Any) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m-{i}", "body": b} for i, b in enumerate(bodies)]}


def sweep_event(event_id: str | None = "tick-1", resources: bool = True) -> dict[str, Any]:
    event = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/sweep"] if resources else [],
        "detail": {},
    }
    return {**event, "id": event_id} if event_id is not None else event


# --- a moto server with faults, shared by the tests that need one ---------------------------------


@dataclasses.dataclass
class Faulty:
    server: moto_server.Server[faults.FaultyApp]
    ec2: Any
    account: sandbox.Account
    instances: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return self.server.url

    def handle(self, event: Any, context: Any = None, settings: Settings | None = None) -> Any:
        return app.handle(event, context, endpoint=self.url, settings=settings or Settings())


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[moto_server.Server[faults.FaultyApp]]:
    with (
        moto_server.Server(lambda moto: faults.FaultyApp(moto, services=("ec2", "elasticloadbalancing"))) as srv,
        sandbox.aws_rules(),
    ):
        yield srv


@pytest.fixture
def faulty(faulty_server: moto_server.Server[faults.FaultyApp]) -> Iterator[Faulty]:
    """A fresh account (4 instances over two AZs, nothing mirrored yet), handler caches empty."""
    faulty_server.app.configure()
    faulty_server.reset(seed=3)
    ec2 = faults.bypass(boto3.client("ec2", region_name=REGION, endpoint_url=faulty_server.url))
    account = sandbox.build_account(ec2, ami=sandbox.moto_ami())
    instances = [
        *sandbox.launch(ec2, account, account.subnets["us-east-1a"], count=2),
        *sandbox.launch(ec2, account, account.subnets["us-east-1b"], count=2),
    ]
    app.CONTAINER.reset()
    yield Faulty(faulty_server, ec2, account, instances)
    faulty_server.app.configure()
    app.CONTAINER.reset()


def mirrored(env: Faulty) -> dict[str, str]:
    """ENI -> managed session id."""
    return {
        s["NetworkInterfaceId"]: s["TrafficMirrorSessionId"]
        for s in sessions(env.ec2)
        if MANAGED in s.get("Tags", [])
    }


# --- the component, deployed once under Pulumi's mocks --------------------------------------------


@pytest.fixture(scope="module")
def deployed() -> Run:
    from tests.test_component import deploy

    return deploy()


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Statement"])


# --- packet copies go only to trusted targets -----------------------------------------------------


def _other_vpc(ec2: Any, account: sandbox.Account, az: str = "us-east-1a") -> list[dict[str, Any]]:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/20", AvailabilityZone=az)["Subnet"]["SubnetId"]
    return sandbox.launch(ec2, account, subnet)


def test_an_untagged_target_never_serves_another_vpc(aws: Any, account: sandbox.Account) -> None:
    instances = _other_vpc(aws, account)  # no sensor in its VPC; the AZ's sensor is in another VPC
    app.handle(launch_event(instances, "launch-1"))
    assert sessions(aws) == []


def test_a_target_tagged_with_the_tag_key_serves_other_vpcs(aws: Any, account: sandbox.Account) -> None:
    """The operator's designation (Mirror=true) keeps cross-VPC sensors working."""
    shared = aws.create_subnet(VpcId=account.vpc, CidrBlock="10.0.128.0/20", AvailabilityZone="us-east-1c")
    tagged = sandbox.add_eni_target(
        aws, account, shared["Subnet"]["SubnetId"], "shared-sensor", tags={"Mirror": "true"}
    )
    instances = _other_vpc(aws, account, "us-east-1c")  # the only sensor in its AZ is the tagged one
    app.handle(launch_event(instances, "launch-1"))
    assert [s["TrafficMirrorTargetId"] for s in sessions(aws)] == [tagged]


# --- an empty or partial read never tears coverage down -------------------------------------------


@pytest.mark.moto
@pytest.mark.parametrize(
    "action",
    ["DescribeTrafficMirrorTargets", "DescribeNetworkInterfaces"],
)
def test_an_empty_read_during_a_sweep_deletes_nothing(faulty: Faulty, action: str) -> None:
    faulty.handle(sweep_event("tick-1"))
    before = mirrored(faulty)
    assert len(before) == 4
    faulty.server.app.force("empty", [action])  # for the whole sweep: its re-read is empty too
    with contextlib.suppress(app.RetryableFailure):  # a failed read: retryable, never an order to delete
        faulty.handle(sweep_event("tick-2"))
    assert mirrored(faulty) == before


# --- event data alone never changes a session; only AWS's events, from known regions --------------


@pytest.mark.parametrize(
    "garble",
    [
        pytest.param({"instanceType": "t2.micro"}, id="instance-type"),
        pytest.param({"placement": {"availabilityZone": "us-east-1b"}}, id="availability-zone"),
    ],
)
def test_a_record_that_disagrees_with_ec2_never_changes_a_session(
    aws: Any, account: sandbox.Account, garble: dict[str, Any]
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event(instances, "launch-1"))
    before = sessions(aws)
    assert len(before) == 1
    record = run_instances_record(instances, event_id="replayed-1")
    record["responseElements"]["instancesSet"]["items"][0].update(garble)
    app.handle(wrap(record))
    assert [(s["TrafficMirrorSessionId"], s["TrafficMirrorTargetId"]) for s in sessions(aws)] == [
        (s["TrafficMirrorSessionId"], s["TrafficMirrorTargetId"]) for s in before
    ]


def test_an_event_from_another_source_is_rejected(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    result = app.handle(launch_event(instances, "forged-1", source="attacker.app"))
    assert sessions(aws) == []
    assert result["counts"]["Rejected"] == 1


def test_the_event_queue_denies_non_tls_and_other_senders(deployed: Run) -> None:
    for policy in deployed.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        denies = [s for s in _statements(policy.json_input("policy")) if s["Effect"] == "Deny"]
        text = json.dumps(denies)
        assert "aws:SecureTransport" in text, policy.name
        assert "aws:SourceArn" in text or "aws:PrincipalServiceName" in text, policy.name


# --- a broken target fails alone ------------------------------------------------------------------


def test_a_target_whose_load_balancer_is_gone_fails_alone(aws: Any, account: sandbox.Account) -> None:
    elbv2 = conftest.SESSION.client("elbv2", region_name=REGION)
    nlb = sandbox.add_nlb_target(aws, elbv2, account, "gone")
    elbv2.delete_load_balancer(LoadBalancerArn=nlb.arn)  # a sensor stack torn down: its instances too
    aws.terminate_instances(InstanceIds=[i for ids in nlb.instances.values() for i in ids])
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    result = app.handle(sweep_event())
    assert result["counts"]["Created"] == 2 and len(sessions(aws)) == 2


# --- a poison message fails alone -----------------------------------------------------------------


def test_a_body_nested_too_deep_fails_alone(aws: Any, account: sandbox.Account) -> None:
    """A RecursionError while parsing is an unparsable body (app._unwrap), failed alone."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    good = [json.dumps(launch_event([i], f"launch-{n}")) for n, i in enumerate(instances)]
    result = app.handle(sqs(*good, "[" * 5000 + "]" * 5000))
    assert result == {"batchItemFailures": []}
    assert len(sessions(aws)) == 4


def test_a_lone_surrogate_in_an_event_id_fails_nothing(aws: Any, account: sandbox.Account) -> None:
    """Event ids are made encodable (events.parse): they seed ClientTokens."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    poisoned = json.dumps(launch_event(instances[:1], "launch-\udc80"))
    result = app.handle(sqs(json.dumps(launch_event(instances[1:], "launch-2")), poisoned))
    assert result == {"batchItemFailures": []}
    assert len(sessions(aws)) == 2


def test_an_unknown_region_fails_alone(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    elsewhere = {**sweep_event(), "region": "xx-nowhere-1"}
    result = app.handle(sqs(json.dumps(launch_event(instances, "launch-1")), json.dumps(elsewhere)))
    assert "m-0" not in {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert len(sessions(aws)) == 1


# --- permanent refusals are counted, logged and alarmed -------------------------------------------


@pytest.mark.moto
def test_a_permanent_refusal_is_counted_and_logged_with_its_reason(
    faulty: Faulty, logged: list[logging.LogRecord]
) -> None:
    faulty.server.app.force(
        "error", ["CreateTrafficMirrorSession"], answer=("403 Forbidden", "UnauthorizedOperation")
    )
    bodies = [json.dumps(launch_event([i], f"launch-{n}")) for n, i in enumerate(faulty.instances)]
    faulty.handle(sqs(*bodies))
    (summary,) = [r for r in logged if r.getMessage() == "summary"]
    assert summary.counts["Failed"] == 4  # type: ignore[attr-defined]
    reasons = [getattr(r, "reason", "") for r in logged if getattr(r, "outcome", None) == "failed"]
    assert len(reasons) == 4 and all("UnauthorizedOperation" in r for r in reasons)


def test_failed_enis_raise_an_alarm(deployed: Run) -> None:
    alarms = deployed.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    on_failed = [
        a
        for a in alarms
        if (a.inputs.get("namespace"), a.inputs.get("metricName")) == (report.METRIC_NAMESPACE, "Failed")
    ]
    assert {a.region for a in on_failed} == {a.region for a in alarms}


# --- retries last for a warm container's life -----------------------------------------------------


@pytest.mark.moto
def test_retries_last_for_a_warm_containers_life(faulty: Faulty) -> None:
    """150 calls at 50% errors over 10 invocations of one warm container (the handler starts each
    invocation with `Clients.new_invocation`, which refills the retry quota)."""
    faulty.server.app.configure(0.5, seed=7, weights={"error": 1.0})
    failed = 0
    with compressed_waits(0.001):  # botocore's waits, not its retry accounting, are compressed
        clients = app.CONTAINER.clients
        ec2 = clients.ec2(Place(REGION, endpoint=faulty.url))  # the handler's own client
        for _invocation in range(10):
            clients.new_invocation()
            for _ in range(15):
                try:
                    ec2.describe_traffic_mirror_filters()
                except ClientError:
                    failed += 1
    assert failed <= 1, f"{failed} of 150 calls failed at 50% errors"


@pytest.mark.moto
def test_a_failed_read_fails_the_messages_not_the_batch(faulty: Faulty) -> None:
    """A failed read fails the messages of its (account, region), not the batch."""
    faulty.server.app.force("error", ["DescribeTrafficMirrorSessions"])
    bodies = [json.dumps(launch_event([i], f"launch-{n}")) for n, i in enumerate(faulty.instances[:2])]
    with compressed_waits(0.001):
        result = faulty.handle(sqs(*bodies))
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {"m-0", "m-1"}


# --- deadlines ------------------------------------------------------------------------------------


def test_a_short_budget_still_makes_progress(aws: Any, account: sandbox.Account) -> None:
    """A 10 s budget under the 15 s MIRROR_DEADLINE_MARGIN_SECONDS: the margin shrinks with the budget,
    so the sweep writes. The context's clock stands still: what counts is the margin, not the
    machine's speed."""
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    result = app.handle(sweep_event(), lambda_context.steady(10.0))
    assert result["counts"]["Created"] == 3


@pytest.mark.moto
def test_slow_reads_do_not_overrun_the_deadline(faulty: Faulty, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first round of reads comes back 1.6 s into a 3 s budget, inside the 1.5 s margin (requests
    stop at half of it): the invocation starts nothing more (no second round, no write) and leaves
    the work for a retry.

    The invocation's clock is the test's: it stands still until a read reaches EC2, then reads
    1.6 s. What is checked is the handler's decisions, not the machine's speed."""
    answered = threading.Event()
    monkeypatch.setattr(faulty.server.app, "observer", lambda *_: answered.set())
    context = lambda_context.LambdaContext(3.0, elapsed=lambda: 1.6 if answered.is_set() else 0.0)
    with pytest.raises(app.RetryableFailure):
        faulty.handle(sweep_event(), context, Settings(deadline_margin_seconds=1.5))
    assert faulty.server.app.stats.calls == dict.fromkeys(_DESCRIBES, 1)  # one round, no write


_DESCRIBES = ("DescribeTrafficMirrorTargets", "DescribeTrafficMirrorFilters", "DescribeNetworkInterfaces",
              "DescribeInstances", "DescribeTrafficMirrorSessions")  # fmt: skip


# --- every run has its own ClientTokens -----------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(sweep_event("pulumi-initial-sweep", resources=False), id="post-deploy-sweep"),
        pytest.param(sweep_event(None), id="scheduled-without-id"),
    ],
)
def test_a_rerun_after_a_deleted_session_creates_it_again(
    aws: Any, account: sandbox.Account, event: dict[str, Any]
) -> None:
    sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(event)
    (session,) = sessions(aws)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
    app.CONTAINER.inventories.clear()
    result = app.handle(event)
    assert result["counts"]["Created"] == 1
    assert len(sessions(aws)) == 1  # AWS returned the deleted session for the reused token


# --- every documented log level -------------------------------------------------------------------


@pytest.fixture
def restore_log_level() -> Iterator[None]:
    logger = logging.getLogger(report.LOGGER_NAME)
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("level", ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])
def test_every_documented_log_level_configures(restore_log_level: None, level: str) -> None:
    """The component's `logLevel` reaches Lambda as AWS_LAMBDA_LOG_LEVEL: every level it accepts works."""
    assert level in settings_module.LOG_LEVELS
    settings = settings_module.load({"AWS_LAMBDA_LOG_LEVEL": level})
    report.configure(settings.log_level)
    assert logging.getLogger(report.LOGGER_NAME).getEffectiveLevel() <= logging.CRITICAL


def test_settings_reject_an_unknown_log_level() -> None:
    with pytest.raises(settings_module.SettingsError, match="LOG"):
        settings_module.load({"AWS_LAMBDA_LOG_LEVEL": "LOUD"})


# --- the deployment's own filter; a second one is reported ----------------------------------------


def test_the_default_deployment_names_its_filter(deployed: Run) -> None:
    for function in deployed.of_type("aws:lambda/function:Function"):
        variables = function.inputs["environment"]["variables"]
        assert variables.get("MIRROR_FILTER_ID"), function.name


def test_a_second_unrouted_filter_stops_creation_and_each_eni_says_why(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    """With the default filter setting and a second unrouted filter (a colleague's experiment), no
    filter is guessed: nothing is created, and every ENI's decision names the configuration problem
    at ERROR level. (A deployment names its own filter: the test above.)"""
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    aws.create_traffic_mirror_filter(Description="a colleague's experiment")
    result = app.handle(sweep_event())
    assert result["counts"]["Created"] == 0
    errors = [r for r in logged if r.levelno == logging.ERROR and r.getMessage() == "decision"]
    assert len(errors) == 2 and all("filter" in r.reason for r in errors)  # type: ignore[attr-defined]


# --- IAM and platform -----------------------------------------------------------------------------


def test_creating_a_session_requires_the_managed_by_request_tag(deployed: Run) -> None:
    """Request tags exist only on the session being created: every statement that allows creating
    on the session resource requires `aws:RequestTag/ManagedBy` (the ENI, target and filter
    resources of the same call carry no request tags, so their statement cannot)."""
    (policy,) = deployed.of_type("aws:iam/rolePolicy:RolePolicy")
    on_sessions = [
        s
        for s in _statements(policy.json_input("policy"))
        if "ec2:CreateTrafficMirrorSession" in json.dumps(s["Action"])
        and "traffic-mirror-session" in json.dumps(s["Resource"])
    ]
    assert on_sessions
    for statement in on_sessions:
        condition = json.dumps(statement.get("Condition", {}))
        assert f"aws:RequestTag/{MANAGED_TAG_KEY}" in condition and "traffic-mirror-automation" in condition


def test_the_trust_policy_names_the_functions(deployed: Run) -> None:
    (role,) = deployed.of_type("aws:iam/role:Role")
    (statement,) = role.json_input("assumeRolePolicy")["Statement"]
    assert "aws:SourceArn" in json.dumps(statement["Condition"])


def test_the_sweep_function_has_no_async_retries_and_reserved_concurrency(deployed: Run) -> None:
    configs = deployed.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    functions = deployed.of_type("aws:lambda/function:Function")
    assert len(configs) == len(functions)
    assert all(c.inputs.get("maximumRetryAttempts") == 0 for c in configs)
    assert all(f.inputs.get("reservedConcurrentExecutions", -1) > 0 for f in functions)
