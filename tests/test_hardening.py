"""Hardening, the handler's side: what the fault and fuzz campaigns showed, one behaviour at a time.

In-process moto under AWS's rules (`sandbox.aws_rules`: ClientTokens honoured, session numbers
unique). Bad answers are made with botocore's own `after-call` event (the parsed answer is
emptied before the handler sees it), refusals by patching moto's backend.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from traffic_mirror.handler import app, reconcile, report
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.events import Home, Skip, parse
from traffic_mirror.handler.settings import LOG_LEVELS, Settings, load

from tests.test_coverage import by_eni, enis_of, launch_event, scheduled, sessions, stop_event
from testsupport import event_builders, sandbox
from testsupport.calls import CallCounter
from testsupport.logs import decisions

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


class LambdaContext:
    """What Lambda passes: the function's ARN (its account and region) and a request id."""

    def __init__(self, request_id: str, account: str = "123456789012", region: str = REGION) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:mirror"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def ec2_client() -> Any:
    return app.CONTAINER.clients.ec2(Place(REGION))


def empty_answers(operation: str, key: str) -> Any:
    """Every answer of `operation` arrives empty (a 200 with no items), until unregistered."""

    def empty(parsed: dict[str, Any], **_: Any) -> None:
        parsed[key] = []
        parsed.pop("NextToken", None)

    ec2_client().meta.events.register(f"after-call.ec2.{operation}", empty)
    return empty


def sqs(*bodies: Any) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": body if isinstance(body, str) else json.dumps(body)}
            for i, body in enumerate(bodies)
        ]
    }


# --- packet copies only to trusted sensors --------------------------------------------------------


def test_an_untagged_target_in_another_vpc_gets_no_copies(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    """Our sensors are in VPC A; an instance in VPC B (same AZ) is not mirrored to them untagged."""
    other_vpc = aws.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other_subnet = aws.create_subnet(VpcId=other_vpc, CidrBlock="10.9.0.0/20", AvailabilityZone="us-east-1a")[
        "Subnet"
    ]["SubnetId"]
    (instance,) = sandbox.launch(aws, account, other_subnet)
    assert app.handle(launch_event([instance], "launch-1"))["counts"]["Created"] == 0
    assert sessions(aws) == []
    # The operator designates a sensor of VPC A for other VPCs (tagged at creation: moto's CreateTags
    # refuses target ids).
    sensor = sandbox.add_eni_target(aws, account, account.subnets["us-east-1a"], "shared", tags={"Mirror": "true"})
    app.CONTAINER.inventories.clear()
    assert app.handle(launch_event([instance], "launch-2"))["counts"]["Created"] == 1
    (created,) = sessions(aws)
    assert created["TrafficMirrorTargetId"] == sensor
    (line,) = [d for d in decisions(logged) if d["outcome"] == "created"]
    assert line["tier"] == "designated-cross-vpc" and "cross-VPC" in line["reason"]


# --- never destroy on the strength of one read or one event ---------------------------------------


def test_an_empty_target_read_deletes_nothing(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], count=4)
    assert app.handle(scheduled("sweep-1"))["counts"]["Created"] == 8
    empty_answers("DescribeTrafficMirrorTargets", "TrafficMirrorTargets")
    app.CONTAINER.inventories.clear()
    with pytest.raises(app.RetryableFailure):
        app.handle(scheduled("sweep-2"))
    assert len(sessions(aws)) == 8


def test_an_empty_eni_read_deletes_nothing(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    assert app.handle(scheduled("sweep-1"))["counts"]["Created"] == 4
    empty_answers("DescribeNetworkInterfaces", "NetworkInterfaces")
    app.CONTAINER.inventories.clear()
    # The sensors' ENIs come with their instances: the emptied answer hides only the ENIs' tags.
    result = app.handle(scheduled("sweep-2"))
    assert result["counts"]["Deleted"] == 0 and result["counts"]["AlreadyMirrored"] == 4
    assert set(by_eni(aws)) == enis_of(instances)


def test_an_empty_instance_read_deletes_nothing(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    assert app.handle(scheduled("sweep-1"))["counts"]["Created"] == 4
    empty_answers("DescribeInstances", "Reservations")
    app.CONTAINER.inventories.clear()
    # No instance, so no source: but the sensors' ENIs, read on their own, are attached to
    # instances the read lacks. The sweep fails and is retried; nothing is released.
    batch = sqs(scheduled("sweep-2"))
    assert app.handle(batch) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert set(by_eni(aws)) == enis_of(instances)


@pytest.mark.parametrize(
    "garble", [{"placement": {"availabilityZone": "us-east-1b"}}, {"instanceType": "t2.micro"}], ids=["az", "type"]
)
def test_a_garbled_launch_record_does_not_delete_our_session(
    aws: Any, account: sandbox.Account, garble: dict[str, Any]
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    assert app.handle(launch_event([instance], "launch-1"))["counts"]["Created"] == 1
    record = event_builders.run_instances_record([instance], event_id="launch-forged")
    item = record["responseElements"]["instancesSet"]["items"][0]
    item.update({k: v for k, v in garble.items() if k != "placement"})
    if "placement" in garble:
        item["placement"]["availabilityZone"] = garble["placement"]["availabilityZone"]
        for eni in item["networkInterfaceSet"]["items"]:
            eni["subnetId"] = account.subnets["us-east-1b"]
    result = app.handle(event_builders.wrap(record))
    assert result["counts"]["Deleted"] == 0 and result["counts"]["Modified"] == 0
    assert len(sessions(aws)) == 1


def test_a_forged_stop_record_does_not_release_a_running_instance(aws: Any, account: sandbox.Account) -> None:
    settings = Settings(release_on_stop=True)
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    assert app.handle(launch_event([instance], "launch-1"), settings=settings)["counts"]["Created"] == 1
    result = app.handle(stop_event([instance["InstanceId"]], "stop-forged"), settings=settings)
    assert result["counts"]["Deleted"] == 0
    assert len(sessions(aws)) == 1
    aws.stop_instances(InstanceIds=[instance["InstanceId"]])
    assert app.handle(stop_event([instance["InstanceId"]], "stop-real"), settings=settings)["counts"]["Deleted"] == 1


def test_a_real_move_still_happens_after_a_second_read(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    """Confirming costs reads only when something would be deleted or moved, and then it acts."""
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    assert app.handle(launch_event([instance], "launch-1"))["counts"]["Created"] == 1
    before = counter.total()
    assert app.handle(scheduled("sweep-quiet"))["counts"]["AlreadyMirrored"] == 1
    quiet = counter.total() - before
    aws.create_tags(Resources=[instance["InstanceId"]], Tags=[{"Key": "Mirror", "Value": "off"}])
    before = counter.total()
    assert app.handle(scheduled("sweep-off"))["counts"]["Deleted"] == 1
    assert sessions(aws) == []
    assert counter.total() - before > quiet + 1  # the confirming reads, and the delete


# --- only AWS's events, for this function's account and region ------------------------------------


def test_an_event_from_another_source_is_rejected(aws: Any, account: sandbox.Account, counter: CallCounter) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    forged = launch_event([instance], "launch-forged")
    forged.update(source="attacker.app", account="123456789012")
    state = {
        "detail-type": "EC2 Instance State-change Notification",
        "source": "attacker.app",
        "account": "123456789012",
        "region": REGION,
        "detail": {"instance-id": instance["InstanceId"], "state": "running"},
    }
    result = app.handle(sqs(forged, state), LambdaContext("r-1"))
    assert result == {"batchItemFailures": []}
    assert sessions(aws) == [] and counter.total() == 0


def test_events_of_other_accounts_and_regions_are_rejected(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    other_account = launch_event([instance], "launch-a")
    other_account["account"] = "210987654321"
    other_region = launch_event([instance], "launch-r")
    other_region["region"] = "eu-west-1"
    unknown = launch_event([instance], "launch-u")
    unknown["region"] = "xx-fake-9"
    for event in (other_region, unknown):  # regions are parse's check; accounts are accounts.allowed's
        got = parse(event, Settings(), app.home_of(LambdaContext("r")))
        assert isinstance(got, Skip) and got.status == "rejected"
    result = app.handle(sqs(other_account, other_region, unknown), LambdaContext("r-1"))
    assert result == {"batchItemFailures": []} and sessions(aws) == []
    # an unknown region never reaches botocore, even without a Lambda context
    assert app.handle(unknown)["counts"]["Rejected"] == 1


def test_home_of_reads_the_function_arn() -> None:
    assert app.home_of(LambdaContext("r", "111122223333", "eu-west-1")).regions == frozenset({"eu-west-1"})
    assert app.home_of(None).regions is None
    tick = {"detail-type": "Scheduled Event", "source": "aws.events", "region": REGION, "account": "1"}
    assert isinstance(parse(tick, Settings(), Home(frozenset({"eu-west-1"}))), Skip)


# --- isolation ------------------------------------------------------------------------------------


def test_a_target_whose_nlb_is_gone_drops_only_itself(aws: Any, account: sandbox.Account) -> None:
    import boto3

    elbv2 = boto3.client("elbv2", region_name=REGION)
    gone, _ = (sandbox.add_nlb_target(aws, elbv2, account, f"nlb-{n}") for n in range(2))
    elbv2.delete_load_balancer(LoadBalancerArn=gone.arn)  # a sensor stack torn down: its instances too
    aws.terminate_instances(InstanceIds=[i for ids in gone.instances.values() for i in ids])
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    result = app.handle(scheduled("sweep-nlb"))
    assert result["counts"]["Created"] == 3
    assert set(by_eni(aws)) == enis_of(instances)


def test_poison_messages_fail_alone(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=4)
    good = [launch_event([i], f"launch-{n}") for n, i in enumerate(instances)]
    nested = "[" * 1500 + "]" * 1500
    surrogate = json.dumps(launch_event(instances[:1], "x")).replace('"x"', '"\\ud800"')
    batch = sqs(good[0], nested, good[1], surrogate, "not json {", good[2], good[3])
    result = app.handle(batch)
    assert result == {"batchItemFailures": []}  # poison is rejected (retrying cannot fix it)
    assert set(by_eni(aws)) == enis_of(instances)


def test_a_change_that_breaks_fails_only_its_message(
    aws: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    real = reconcile.changes

    def breaks_on_poison(batch: Any, ctx: Any) -> Any:
        if any(c.event_id == "launch-poison" for c in batch):
            raise KeyError("a bug this event's data triggers")
        return real(batch, ctx)

    monkeypatch.setattr(reconcile, "changes", breaks_on_poison)
    batch = sqs(launch_event(instances[:1], "launch-ok-1"), launch_event(instances[1:2], "launch-poison"),
                launch_event(instances[2:], "launch-ok-2"))
    assert app.handle(batch) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert set(by_eni(aws)) == enis_of([instances[0], instances[2]])


def test_a_failed_read_fails_its_messages_and_nothing_escapes(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)

    def unavailable(**_: Any) -> None:
        raise EC2ClientError("Unavailable", "The service is unavailable")

    backend = TrafficMirrorsBackend.describe_traffic_mirror_targets
    try:
        TrafficMirrorsBackend.describe_traffic_mirror_targets = unavailable  # type: ignore[method-assign,assignment]
        result = app.handle(sqs(*(launch_event([i], f"l-{n}") for n, i in enumerate(instances))))
    finally:
        TrafficMirrorsBackend.describe_traffic_mirror_targets = backend  # type: ignore[method-assign]
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    assert any(r.getMessage() == "read failed" and r.levelno == logging.ERROR for r in logged)


# --- loud permanent failures ----------------------------------------------------------------------


def test_unauthorized_creates_are_retried_counted_and_logged(
    aws: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch, logged: list[logging.LogRecord]
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)

    def refuse(*_: Any, **__: Any) -> None:
        raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")

    monkeypatch.setattr(TrafficMirrorsBackend, "create_traffic_mirror_session", refuse)
    result = app.handle(sqs(*(launch_event([i], f"l-{n}") for n, i in enumerate(instances))))
    assert len(result["batchItemFailures"]) == 2
    with pytest.raises(app.RetryableFailure):
        app.handle(scheduled("sweep-denied"))
    failed = [d for d in decisions(logged) if d["outcome"] == "failed"]
    assert failed and all(d["levelno"] == logging.ERROR and d["error_code"] == "UnauthorizedOperation" for d in failed)


# --- ClientTokens unique per trigger --------------------------------------------------------------


def tokens(aws: Any) -> list[str]:
    seen: list[str] = []
    ec2_client().meta.events.register(
        "provide-client-params.ec2.CreateTrafficMirrorSession",
        lambda params, **_: seen.append(params["ClientToken"]),
    )
    return seen


@pytest.mark.parametrize(
    "event",
    [
        {"id": "pulumi-initial-sweep", "resources": []},
        {"resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"]},
        {"resources": []},
    ],
    ids=["post-deploy", "scheduled-without-id", "by-hand"],
)
def test_repeated_sweeps_use_new_tokens(aws: Any, account: sandbox.Account, event: dict[str, Any]) -> None:
    sandbox.launch(aws, account, account.subnets["us-east-1a"])
    sweep = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": REGION,
        "detail": {},
        **event,
    }
    seen = tokens(aws)
    assert app.handle(sweep, LambdaContext("req-1"))["counts"]["Created"] == 1
    (first,) = sessions(aws)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=first["TrafficMirrorSessionId"])
    assert app.handle(sweep, LambdaContext("req-2"))["counts"]["Created"] == 1
    assert len(sessions(aws)) == 1  # a reused token would have answered with the deleted session
    assert len(set(seen)) == 2


def test_a_redelivered_cloudtrail_event_keeps_its_tokens(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    seen = tokens(aws)
    event = {**launch_event(instances, "launch-1"), "account": "123456789012"}
    app.handle(sqs(event), LambdaContext("req-1"))
    for s in sessions(aws):
        aws.delete_traffic_mirror_session(TrafficMirrorSessionId=s["TrafficMirrorSessionId"])
    app.handle(sqs(event), LambdaContext("req-2"))
    assert len(seen) == 4 and set(seen[:2]) == set(seen[2:])


# --- every documented log level -------------------------------------------------------------------


@pytest.mark.parametrize("level", LOG_LEVELS)
def test_every_documented_log_level_starts(level: str) -> None:
    assert load({"AWS_LAMBDA_LOG_LEVEL": level}).log_level == level
    env = {**os.environ, "AWS_LAMBDA_LOG_LEVEL": level}
    started = subprocess.run(
        [sys.executable, "-c", "import traffic_mirror.handler.app"], env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr


def test_the_documented_levels_are_the_settings_levels() -> None:
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `logLevel`"))
    assert f"one of {', '.join(LOG_LEVELS)}" in row


# --- a configuration problem is reported as one ---------------------------------------------------


def test_a_second_filter_is_a_counted_configuration_problem(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    aws.create_traffic_mirror_filter(Description="a colleague's filter")
    result = app.handle(scheduled("sweep-2f"))
    assert result["problems"] == {"filter-ambiguous": 3}
    assert result["counts"]["ConfigProblems"] == 3
    (line,) = [r for r in logged if r.getMessage() == "configuration problem"]
    assert line.levelno == logging.ERROR and vars(line)["problems"] == {"filter-ambiguous": 3}
    (summary,) = [r for r in logged if r.getMessage() == "summary"]
    assert vars(summary)["problems"] == {"filter-ambiguous": 3}
    outcome = reconcile.sweep(app_context(), reconcile.SweepPolicy("cli-1"))
    assert outcome.problems() == {"filter-ambiguous": 3}
    assert report.problems(outcome.results) == outcome.problems()


def app_context() -> Any:
    from tests.conftest import home

    return home()
