"""Issue 11, defect by defect: one focused reproducer each (the fixer's checklist).

A test marked `xfail(strict=True, reason="issue 11 defect N: ...")` shows a defect of the current
code: the fix makes it pass, strict makes that an error, and whoever fixes removes the mark.
Tests without the mark hold today (they guard a fix already made, or behaviour the fix keeps).
Faults come from `testsupport.faults` in front of a moto server; the rest runs on in-process moto.
"""

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from traffic_mirror.handler import app, report
from traffic_mirror.handler import settings as settings_module
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from benchmarks.fault_campaign import Context, _compressed_waits
from tests import conftest
from testsupport import faults, sandbox
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
    server: faults.Server
    ec2: Any
    account: sandbox.Account
    instances: list[dict[str, Any]]

    @property
    def url(self) -> str:
        return self.server.url

    def handle(self, event: Any, context: Any = None, settings: Settings | None = None) -> Any:
        return app.handle(event, context, endpoint=self.url, settings=settings or Settings())


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[faults.Server]:
    with (
        faults.Server(slow_seconds=0.7, services=("ec2", "elasticloadbalancing")) as srv,
        sandbox.aws_rules(),
    ):
        yield srv


@pytest.fixture
def faulty(faulty_server: faults.Server) -> Iterator[Faulty]:
    """A fresh account (4 instances over two AZs, nothing mirrored yet), handler caches empty."""
    faulty_server.reset_moto(seed=3)
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


# --- the component, deployed once under Pulumi's mocks ---------------------------------------------


@pytest.fixture(scope="module")
def deployed() -> Run:
    from tests.test_component import deploy

    return deploy()


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Statement"])


# --- 1. packet copies go to any target ---------------------------------------------------------------


def _other_vpc(ec2: Any, account: sandbox.Account, az: str = "us-east-1a") -> list[dict[str, Any]]:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/20", AvailabilityZone=az)["Subnet"]["SubnetId"]
    return sandbox.launch(ec2, account, subnet)


def test_1_an_untagged_target_never_serves_another_vpc(aws: Any, account: sandbox.Account) -> None:
    instances = _other_vpc(aws, account)  # no sensor in its VPC; the AZ's sensor is in another VPC
    app.handle(launch_event(instances, "launch-1"))
    assert sessions(aws) == []


def test_1_a_target_tagged_with_the_tag_key_serves_other_vpcs(aws: Any, account: sandbox.Account) -> None:
    """The operator's designation (Mirror=true) keeps cross-VPC sensors working, as today."""
    shared = aws.create_subnet(VpcId=account.vpc, CidrBlock="10.0.128.0/20", AvailabilityZone="us-east-1c")
    tagged = sandbox.add_eni_target(
        aws, account, shared["Subnet"]["SubnetId"], "shared-sensor", tags={"Mirror": "true"}
    )
    instances = _other_vpc(aws, account, "us-east-1c")  # the only sensor in its AZ is the tagged one
    app.handle(launch_event(instances, "launch-1"))
    assert [s["TrafficMirrorTargetId"] for s in sessions(aws)] == [tagged]


# --- 2. one empty or partial read tears coverage down --------------------------------------------------


@pytest.mark.parametrize(
    "action",
    ["DescribeTrafficMirrorTargets", "DescribeNetworkInterfaces"],
)
def test_2_an_empty_read_during_a_sweep_deletes_nothing(faulty: Faulty, action: str) -> None:
    faulty.handle(sweep_event("tick-1"))
    before = mirrored(faulty)
    assert len(before) == 4
    faulty.server.app.force("empty", [action])  # for the whole sweep: its re-read is empty too
    with contextlib.suppress(app.RetryableFailure):  # a failed read: retryable, never an order to delete
        faulty.handle(sweep_event("tick-2"))
    assert mirrored(faulty) == before


# --- 3. event data alone deletes sessions; any source, any region ------------------------------------------


@pytest.mark.parametrize(
    "garble",
    [
        pytest.param({"instanceType": "t2.micro"}, id="instance-type"),
        pytest.param({"placement": {"availabilityZone": "us-east-1b"}}, id="availability-zone"),
    ],
)
def test_3_a_record_that_disagrees_with_ec2_never_changes_a_session(
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


def test_3_an_event_from_another_source_is_rejected(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    result = app.handle(launch_event(instances, "forged-1", source="attacker.app"))
    assert sessions(aws) == []
    assert result["counts"]["Rejected"] == 1


def test_3_the_event_queue_denies_non_tls_and_other_senders(deployed: Run) -> None:
    for policy in deployed.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        denies = [s for s in _statements(policy.json_input("policy")) if s["Effect"] == "Deny"]
        text = json.dumps(denies)
        assert "aws:SecureTransport" in text, policy.name
        assert "aws:SourceArn" in text or "aws:PrincipalServiceName" in text, policy.name


# --- 4. one broken target stops the region ------------------------------------------------------------


def test_4_a_target_whose_load_balancer_is_gone_fails_alone(aws: Any, account: sandbox.Account) -> None:
    elbv2 = conftest._SESSION.client("elbv2", region_name=REGION)
    nlb = sandbox.add_nlb_target(aws, elbv2, account, "gone")
    elbv2.delete_load_balancer(LoadBalancerArn=nlb.arn)  # a sensor stack torn down: its instances too
    aws.terminate_instances(InstanceIds=[i for ids in nlb.instances.values() for i in ids])
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    result = app.handle(sweep_event())
    assert result["counts"]["Created"] == 2 and len(sessions(aws)) == 2


# --- 5. poison messages take their neighbours down ----------------------------------------------------


def test_5_a_body_nested_too_deep_fails_alone(aws: Any, account: sandbox.Account) -> None:
    """Fixed in app._unwrap (RecursionError is an unparsable body)."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    good = [json.dumps(launch_event([i], f"launch-{n}")) for n, i in enumerate(instances)]
    result = app.handle(sqs(*good, "[" * 5000 + "]" * 5000))
    assert result == {"batchItemFailures": []}
    assert len(sessions(aws)) == 4


def test_5_a_lone_surrogate_in_an_event_id_fails_nothing(aws: Any, account: sandbox.Account) -> None:
    """Fixed in events.parse (event ids are made encodable: they seed ClientTokens)."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    poisoned = json.dumps(launch_event(instances[:1], "launch-\udc80"))
    result = app.handle(sqs(json.dumps(launch_event(instances[1:], "launch-2")), poisoned))
    assert result == {"batchItemFailures": []}
    assert len(sessions(aws)) == 2


def test_5_an_unknown_region_fails_alone(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    elsewhere = {**sweep_event(), "region": "xx-nowhere-1"}
    result = app.handle(sqs(json.dumps(launch_event(instances, "launch-1")), json.dumps(elsewhere)))
    assert "m-0" not in {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert len(sessions(aws)) == 1


# --- 6. permanent refusals are silent ----------------------------------------------------------------------


def test_6_a_permanent_refusal_is_counted_and_logged_with_its_reason(
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


def test_6_failed_enis_raise_an_alarm(deployed: Run) -> None:
    alarms = deployed.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    on_failed = [
        a
        for a in alarms
        if (a.inputs.get("namespace"), a.inputs.get("metricName")) == (report.METRIC_NAMESPACE, "Failed")
    ]
    assert {a.region for a in on_failed} == {a.region for a in alarms}


# --- 7. warm containers lose their retries --------------------------------------------------------------


def test_7_retries_last_for_a_warm_containers_life(faulty: Faulty) -> None:
    """150 calls at 50% errors over 10 invocations of one warm container (the handler starts each
    invocation with `Clients.new_invocation`, which refills the retry quota)."""
    faulty.server.app.configure(0.5, seed=7, weights={"error": 1.0})
    failed = 0
    with _compressed_waits(0.001):  # botocore's waits, not its retry accounting, are compressed
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


def test_7_a_failed_read_fails_the_messages_not_the_batch(faulty: Faulty) -> None:
    """Fixed on main: a failed read fails the messages of its (account, region), not the batch."""
    faulty.server.app.force("error", ["DescribeTrafficMirrorSessions"])
    bodies = [json.dumps(launch_event([i], f"launch-{n}")) for n, i in enumerate(faulty.instances[:2])]
    with _compressed_waits(0.001):
        result = faulty.handle(sqs(*bodies))
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == {"m-0", "m-1"}


# --- 8. deadlines ----------------------------------------------------------------------------------------------


def test_8_a_short_budget_still_makes_progress(aws: Any, account: sandbox.Account) -> None:
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    result = app.handle(sweep_event(), Context(10.0))  # MIRROR_DEADLINE_MARGIN_SECONDS is 15
    assert result["counts"]["Created"] >= 1


def test_8_slow_reads_do_not_overrun_the_deadline(faulty: Faulty) -> None:
    faulty.server.app.force("slow", [a for a in _DESCRIBES])  # 0.7 s each, within the read timeout
    context = Context(1.2)
    started = time.monotonic()
    with contextlib.suppress(app.RetryableFailure):
        faulty.handle(sweep_event(), context, Settings(deadline_margin_seconds=1.0))
    assert time.monotonic() - started <= context.budget


_DESCRIBES = ("DescribeTrafficMirrorTargets", "DescribeTrafficMirrorFilters", "DescribeNetworkInterfaces",
              "DescribeInstances", "DescribeTrafficMirrorSessions")  # fmt: skip


# --- 9. fixed trigger ids reuse ClientTokens ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(sweep_event("pulumi-initial-sweep", resources=False), id="post-deploy-sweep"),
        pytest.param(sweep_event(None), id="scheduled-without-id"),
    ],
)
def test_9_a_rerun_after_a_deleted_session_creates_it_again(
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


# --- 10. logLevel TRACE --------------------------------------------------------------------------------------------


@pytest.fixture
def restore_log_level() -> Iterator[None]:
    logger = logging.getLogger(report.LOGGER_NAME)
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("level", ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"])
def test_10_every_documented_log_level_configures(restore_log_level: None, level: str) -> None:
    """The component's `logLevel` reaches Lambda as AWS_LAMBDA_LOG_LEVEL (defect 10, fixed on main)."""
    assert level in settings_module.LOG_LEVELS
    settings = settings_module.load({"AWS_LAMBDA_LOG_LEVEL": level})
    report.configure(settings.log_level)
    assert logging.getLogger(report.LOGGER_NAME).getEffectiveLevel() <= logging.CRITICAL


def test_10_settings_reject_an_unknown_log_level() -> None:
    with pytest.raises(settings_module.SettingsError, match="LOG"):
        settings_module.load({"AWS_LAMBDA_LOG_LEVEL": "LOUD"})


# --- 11. a second filter halts the automation --------------------------------------------------------------------


def test_11_the_default_deployment_names_its_filter(deployed: Run) -> None:
    for function in deployed.of_type("aws:lambda/function:Function"):
        variables = function.inputs["environment"]["variables"]
        assert variables.get("MIRROR_FILTER_ID"), function.name


def test_11_today_a_colleagues_filter_stops_the_sweep_and_says_why(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    """What defect 11 looks like: with a second unrouted filter nothing is created, and every ENI's
    decision names the configuration problem at ERROR level (kept by the fix: it must be reported)."""
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    aws.create_traffic_mirror_filter(Description="a colleague's experiment")
    result = app.handle(sweep_event())
    assert result["counts"]["Created"] == 0
    errors = [r for r in logged if r.levelno == logging.ERROR and r.getMessage() == "decision"]
    assert len(errors) == 2 and all("filter" in r.reason for r in errors)  # type: ignore[attr-defined]


# --- 12. IAM and platform gaps -------------------------------------------------------------------------------------


def test_12_creating_a_session_requires_the_managed_by_request_tag(deployed: Run) -> None:
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


def test_12_the_trust_policy_names_the_functions(deployed: Run) -> None:
    (role,) = deployed.of_type("aws:iam/role:Role")
    (statement,) = role.json_input("assumeRolePolicy")["Statement"]
    assert "aws:SourceArn" in json.dumps(statement["Condition"])


def test_12_the_sweep_function_has_no_async_retries_and_reserved_concurrency(deployed: Run) -> None:
    configs = deployed.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    functions = deployed.of_type("aws:lambda/function:Function")
    assert len(configs) == len(functions)
    assert all(c.inputs.get("maximumRetryAttempts") == 0 for c in configs)
    assert all(f.inputs.get("reservedConcurrentExecutions", -1) > 0 for f in functions)
