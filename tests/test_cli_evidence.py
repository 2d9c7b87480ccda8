"""Evidence through the operator CLI on an embedded AWS (moto server), as an operator runs it:
sessions of others to untrusted targets (reported, left in place; `intercepted` when numbered below
ours), the mirrored instances' loss from CloudWatch, and the plan's guardrails. The scheduled sweep
(the Lambda's code path) reports the same, as log lines and EMF metrics."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.cloudwatch.models import cloudwatch_backends
from traffic_mirror.handler import app, planner
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from tests.test_cli import REGION, common, run, run_split
from tests.test_coverage import delete_session_event
from testsupport import sandbox
from testsupport.event_builders import scheduled, state_change
from testsupport.logs import captured

OWN = "123456789012"  # moto's default account


@pytest.fixture
def ec2(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def account(ec2: Any) -> sandbox.Account:
    """A sensor per AZ (in the VPC's default security group, as the sources)."""
    return sandbox.build_account(ec2, REGION, ami=sandbox.moto_ami())


def instance(ec2: Any, account: sandbox.Account, name: str, az: str = "a", **kw: Any) -> dict[str, Any]:
    return sandbox.launch(ec2, account, account.subnets[f"{REGION}{az}"], "m5.large", {"Name": name}, **kw)[0]


def eni(instance: dict[str, Any]) -> str:
    return str(instance["NetworkInterfaces"][0]["NetworkInterfaceId"])


def attacker_target(ec2: Any, account: sandbox.Account) -> tuple[str, str]:
    """Someone's own VPC, with an instance in us-east-1a made a traffic mirror target (no tag): (target, VPC)."""
    vpc = ec2.create_vpc(CidrBlock="10.66.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.66.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    return sandbox.add_eni_target(ec2, account, subnet, "exfil"), vpc


def other_tool_session(ec2: Any, eni_id: str, target: str, filter_id: str, number: int) -> str:
    created = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=eni_id,
        TrafficMirrorTargetId=target,
        TrafficMirrorFilterId=filter_id,
        SessionNumber=number,
        TagSpecifications=[{"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "Owner", "Value": "x"}]}],
    )
    return str(created["TrafficMirrorSession"]["TrafficMirrorSessionId"])


def session_of(ec2: Any, session_id: str) -> dict[str, Any] | None:
    found = [s for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] if s["TrafficMirrorSessionId"] == session_id]
    return found[0] if found else None


def coverage_json(endpoint: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_split("coverage", "--format", "json", *extra, *common(endpoint))
    return code, json.loads(out), err


# --- untrusted sessions ----------------------------------------------------------------------------------


def test_a_rogue_session_is_reported_with_its_fields_and_left_in_place(
    endpoint: str, ec2: Any, account: sandbox.Account
) -> None:
    web = instance(ec2, account, "web-1")
    target, vpc = attacker_target(ec2, account)
    rogue = other_tool_session(ec2, eni(web), target, account.filters["default"], 5)
    before = session_of(ec2, rogue)

    code, report, _ = coverage_json(endpoint)
    assert code == 0
    (found,) = report["untrusted_sessions"]
    assert found == {
        "session": rogue,
        "eni": eni(web),
        "instance": web["InstanceId"],
        "session_number": 5,
        "target": target,
        "target_owner": OWN,
        "target_kind": "network-interface",
        "finding": planner.NOT_DESIGNATED,
        "intercepts": False,
        "reason": found["reason"],
    }
    assert vpc in found["reason"] and account.vpc in found["reason"] and "not designated" in found["reason"]

    # The sweep mirrors web-1 beside it (ours as number 1: evaluated first), and never touches it.
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == 0 and "1 created" in out
    assert out.index("Untrusted sessions (1)") < out.index("Sweep of")
    assert session_of(ec2, rogue) == before
    code, report, _ = coverage_json(endpoint, "--min", "100")
    assert code == 0 and report["coverage_percent"] == 100.0  # not intercepted: ours comes first
    assert [u["session"] for u in report["untrusted_sessions"]] == [rogue]
    # The text report shows it first, in its own section; so does the plan.
    code, text = run("coverage", *common(endpoint))
    assert text.index("Untrusted sessions (1)") < text.index(f"Coverage in {REGION}")
    assert f"untrusted  {rogue}  {eni(web)}  web-1" in text and f"target {target}, of account {OWN}" in text
    code, plan = run("plan", *common(endpoint))
    assert plan.index("Untrusted sessions (1)") < plan.index(f"Plan for {REGION}")
    assert session_of(ec2, rogue) == before


def test_another_tools_session_to_a_trusted_sensor_is_not_a_finding(
    endpoint: str, ec2: Any, account: sandbox.Account
) -> None:
    web = instance(ec2, account, "web-1")
    other_tool_session(ec2, eni(web), account.targets[f"sensor-{REGION}a-0"], account.filters["default"], 1)
    central = instance(ec2, account, "app-1")  # and a designated sensor in another VPC of its AZ
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    designated = sandbox.add_eni_target(ec2, account, subnet, "central", tags={"Mirror": "true"})
    other_tool_session(ec2, eni(central), designated, account.filters["default"], 1)
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    code, report, _ = coverage_json(endpoint, "--min", "100")
    assert code == 0 and report["untrusted_sessions"] == []
    assert report["in_scope"] == report["mirrored"] == 2
    assert "Untrusted sessions" not in run("coverage", *common(endpoint))[1]


def test_a_rogue_session_numbered_below_ours_intercepts_and_is_alarmed(
    endpoint: str, ec2: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The campaign's finding: delete our number 1, create one as 1, and the restore puts ours behind it."""
    web = instance(ec2, account, "web-1")
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    (ours,) = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=ours["TrafficMirrorSessionId"])
    target, _ = attacker_target(ec2, account)
    rogue = other_tool_session(ec2, eni(web), target, account.filters["default"], 1)
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == 0 and "1 created" in out  # restored, as number 2
    restored = [s for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] if s["TrafficMirrorSessionId"] != rogue]
    assert [s["SessionNumber"] for s in restored] == [2]

    code, report, _ = coverage_json(endpoint, "--min", "100")
    assert code != 0 and (report["in_scope"], report["mirrored"]) == (1, 0)
    (unmirrored,) = report["unmirrored"]
    assert (unmirrored["eni"], unmirrored["problem"]) == (eni(web), planner.INTERCEPTED)
    assert f"session {rogue} (number 1)" in unmirrored["reason"]
    (found,) = report["untrusted_sessions"]
    assert found["session"] == rogue and found["intercepts"] is True

    # The scheduled sweep (the Lambda's path) says the same: not mirrored, one untrusted session, a warning.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-fn")
    app.CONTAINER.reset()
    with captured() as records:
        app.handle(scheduled("tick-rogue"), endpoint=endpoint, settings=Settings())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(m.get("Account"), m["UntrustedSessions"]) for m in lines if "UntrustedSessions" in m] == [(None, 1), (OWN, 1)]
    assert [(m["InScope"], m["Mirrored"]) for m in lines if "CoveragePercent" in m] == [(1, 0)]
    (warning,) = [vars(r) for r in records if r.getMessage() == "untrusted session"]
    assert warning["levelname"] == "WARNING"
    assert {k: warning[k] for k in ("session", "eni", "instance", "target", "target_owner", "intercepts")} == {
        "session": rogue, "eni": eni(web), "instance": web["InstanceId"], "target": target, "target_owner": OWN,
        "intercepts": True,
    }  # fmt: skip
    assert session_of(ec2, rogue) is not None


# --- mirror loss -----------------------------------------------------------------------------------------


def test_mirror_loss_from_cloudwatch_two_instances_one_lossy(endpoint: str, ec2: Any, account: sandbox.Account) -> None:
    lossy, clean = instance(ec2, account, "lossy-1", extra_enis=1), instance(ec2, account, "clean-1", "b")
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    sandbox.publish_mirror_metrics(cloudwatch, lossy["InstanceId"], mirrored=7_500_000, skipped=2_500_000)
    sandbox.publish_mirror_metrics(cloudwatch, clean["InstanceId"], mirrored=10_000_000)
    # Two hours ago: outside the default window, inside a longer one.
    sandbox.publish_mirror_metrics(
        cloudwatch, clean["InstanceId"], mirrored=0, skipped=20_000_000, at=datetime.now(UTC) - timedelta(hours=2)
    )

    code, report, _ = coverage_json(endpoint)
    assert code == 0
    loss = report["mirror_loss"]
    assert {k: loss[k] for k in ("window_seconds", "mirrored_instances", "measured_instances", "unknown_instances")} == {
        "window_seconds": 3600, "mirrored_instances": 2, "measured_instances": 2, "unknown_instances": 0,
    }  # fmt: skip
    assert (loss["mirrored_bytes"], loss["skipped_bytes"], loss["percent"]) == (17_500_000, 2_500_000, 12.5)
    lossy_enis = sorted(e["NetworkInterfaceId"] for e in lossy["NetworkInterfaces"])
    assert loss["instances"] == [{"instance": lossy["InstanceId"], "enis": lossy_enis, "az": f"{REGION}a",
                                  "mirrored_bytes": 7_500_000, "skipped_bytes": 2_500_000, "percent": 25.0}]  # fmt: skip
    assert loss["error"] is None

    code, text = run("coverage", *common(endpoint))
    assert "Mirror loss (last 1 h): 12.50% of mirrored bytes skipped (2.5 MB of 20.0 MB) over 2 instance(s)" in text
    assert f"lossy-1 {lossy['InstanceId']}  25.00%" in text and clean["InstanceId"] not in text.split("Mirror loss")[1]
    assert "give the instance more network bandwidth" in text
    code, report, _ = coverage_json(endpoint, "--window", "3h")
    assert report["mirror_loss"]["window_seconds"] == 10800
    assert report["mirror_loss"]["skipped_bytes"] == 22_500_000


def test_mirror_loss_is_unknown_without_metrics_and_when_cloudwatch_fails(
    endpoint: str, ec2: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance(ec2, account, "quiet-1")
    code, report, _ = coverage_json(endpoint)
    assert report["mirror_loss"]["mirrored_instances"] == 0  # nothing mirrored yet: nothing to read
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    code, report, err = coverage_json(endpoint)
    assert code == 0 and err == ""
    loss = report["mirror_loss"]
    assert (loss["mirrored_instances"], loss["unknown_instances"], loss["percent"], loss["mirrored_bytes"]) == (1, 1, None, None)
    assert "unknown: no mirror metrics for any of the 1 mirrored instance(s)" in run("coverage", *common(endpoint))[1]

    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend

    def refuse(*_: Any, **__: Any) -> Any:
        raise InvalidParameterValue("CloudWatch is having a bad day")

    monkeypatch.setattr(CloudWatchBackend, "get_metric_data", refuse)
    code, report, err = coverage_json(endpoint, "--min", "100")
    assert code == 0, err  # the report is intact: coverage judged, loss unknown
    assert report["mirrored"] == report["in_scope"] == 1
    assert report["mirror_loss"]["percent"] is None and "InvalidParameterValue" in report["mirror_loss"]["error"]
    assert "mirror loss unknown" in err and "CloudWatch could not be read" in err


# --- the plan's guardrails -------------------------------------------------------------------------------


def guardrail_lines(endpoint: str, check: str, env: dict[str, str] | None = None) -> list[str]:
    code, out = run("plan", *common(endpoint))
    assert code == 0, out
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{check}: ")]


def test_guardrails_security_groups_and_mtu(
    endpoint: str, ec2: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sensor behind a security group that admits only SSH: VXLAN from web-1 would be dropped.
    group = ec2.create_security_group(GroupName="sensor", Description="sensor", VpcId=account.vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])  # fmt: skip
    sensor_a = account.targets[f"sensor-{REGION}a-0"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=account.target_enis[sensor_a], Groups=[group])
    web, app_1 = instance(ec2, account, "web-1"), instance(ec2, account, "app-1", "b")
    (line,) = guardrail_lines(endpoint, "security-group")
    assert sensor_a in line and web["PrivateIpAddress"] in line and "do not admit UDP 4789" in line
    assert app_1["PrivateIpAddress"] not in line  # its sensor is in the default group, which admits the VPC's own
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 4789, "ToPort": 4789, "IpRanges": [{"CidrIp": "10.0.0.0/20"}]}])  # fmt: skip
    assert guardrail_lines(endpoint, "security-group") == []

    # Both sensors are ENIs: m5 sources (MTU 9001) send more than the 8947 bytes an ENI target receives whole.
    mtu = guardrail_lines(endpoint, "mtu")
    assert len(mtu) == 2 and all("8947 bytes" in line and "m5.large" in line for line in mtu)
    monkeypatch.setenv("MIRROR_PACKET_LENGTH", "8400")  # truncation chosen: nothing to say
    assert guardrail_lines(endpoint, "mtu") == []


def test_guardrails_vxlan_filter_and_an_nlb_sensor(endpoint: str, ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    account = sandbox.build_account(ec2, REGION, sensors_per_az=0, ami=sandbox.moto_ami())
    elbv2 = boto3.client("elbv2", region_name=REGION, endpoint_url=endpoint)
    sandbox.add_nlb_target(ec2, elbv2, account, "sensors", [f"{REGION}a"], cross_zone=True)
    instance(ec2, account, "web-1", "a")
    instance(ec2, account, "app-1", "b")
    assert guardrail_lines(endpoint, "mtu") == []  # an NLB forwards: no truncation documented

    # A filter accepting everything mirrors the copies on their way to sensors too.
    filter_id = account.filters["default"]
    assert guardrail_lines(endpoint, "vxlan-filter") == []  # no rules: mirrors nothing
    for direction in ("ingress", "egress"):
        ec2.create_traffic_mirror_filter_rule(
            TrafficMirrorFilterId=filter_id, TrafficDirection=direction, RuleNumber=100, RuleAction="accept",
            SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0",
        )  # fmt: skip
    (line,) = guardrail_lines(endpoint, "vxlan-filter")
    assert filter_id in line and "ingress rule 100, egress rule 100 accepts it" in line
    for direction in ("ingress", "egress"):
        ec2.create_traffic_mirror_filter_rule(
            TrafficMirrorFilterId=filter_id, TrafficDirection=direction, RuleNumber=10, RuleAction="reject",
            Protocol=17, DestinationPortRange={"FromPort": 4789, "ToPort": 4789},
            SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0",
        )  # fmt: skip
    assert guardrail_lines(endpoint, "vxlan-filter") == []
    _code, out = run("plan", *common(endpoint))
    assert "Guardrails: nothing found" in out and not ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]


def test_sessions_stay_untouched_by_every_command(endpoint: str, ec2: Any, account: sandbox.Account) -> None:
    """plan, coverage and sweep --apply, over a world with a rogue session on every kind of ENI."""
    opted_out = instance(ec2, account, "db-1")
    ec2.create_tags(Resources=[opted_out["InstanceId"]], Tags=[{"Key": "Mirror", "Value": "off"}])
    web = instance(ec2, account, "web-1")
    target, _ = attacker_target(ec2, account)
    rogues = [other_tool_session(ec2, eni(i), target, account.filters["default"], 1) for i in (opted_out, web)]
    before = [session_of(ec2, r) for r in rogues]
    for command in (["plan"], ["coverage"], ["sweep", "--apply"], ["sweep", "--apply"]):
        run(*command, *common(endpoint))
    assert [session_of(ec2, r) for r in rogues] == before
    _code, report, _ = coverage_json(endpoint)
    assert sorted(u["session"] for u in report["untrusted_sessions"]) == sorted(rogues)
    assert {u["eni"]: u["intercepts"] for u in report["untrusted_sessions"]} == {eni(opted_out): False, eni(web): True}
    managed = [s for s in ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
               if {"Key": MANAGED_TAG_KEY, "Value": Settings().managed_by} in s.get("Tags", [])]  # fmt: skip
    assert [s["NetworkInterfaceId"] for s in managed] == [eni(web)]


def test_the_sweep_reads_the_loss_once_per_period_and_only_with_mirrored_instances(
    endpoint: str, ec2: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-fn")
    app.CONTAINER.reset()
    calls = app.CONTAINER.clients.calls

    def tick(name: str) -> list[dict[str, Any]]:
        app.handle(scheduled(name), endpoint=endpoint, settings=Settings())
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]

    tick("empty")  # nothing mirrored: nothing to read, nothing published
    assert calls["GetMetricData"] == 0
    web = instance(ec2, account, "web-1")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=endpoint)
    sandbox.publish_mirror_metrics(cloudwatch, web["InstanceId"], mirrored=4_000_000, skipped=1_000_000)
    emitted = tick("first")  # creates web-1's session, then reads its loss
    assert calls["GetMetricData"] == 1
    assert [(m.get("AvailabilityZone"), m["MirrorLossPercent"]) for m in emitted if "MirrorLossPercent" in m] == [
        (None, 20.0), (f"{REGION}a", 20.0)
    ]  # fmt: skip
    tick("second")  # the same sweep period: not again
    assert calls["GetMetricData"] == 1
    # A sweep an event asks for (a deleted session) never reads it.
    (ours,) = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    app.CONTAINER.loss_read.clear()
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=ours["TrafficMirrorSessionId"])
    app.handle(delete_session_event(ours["TrafficMirrorSessionId"], "deleted-1"), endpoint=endpoint, settings=Settings())
    assert len(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 1  # restored
    assert calls["GetMetricData"] == 1
    capsys.readouterr()
    # Metrics that are not there are no metric at all (an alarm never sees a made-up 0%).
    cloudwatch_backends[OWN][REGION].metric_data.clear()
    app.CONTAINER.loss_read.clear()
    emitted = tick("third")
    assert calls["GetMetricData"] == 2 and not [m for m in emitted if "MirrorLossPercent" in m]


def test_a_target_newer_than_the_cached_inventory_is_read_before_judging(
    endpoint: str, ec2: Any, account: sandbox.Account
) -> None:
    """A warm container's inventory may predate another tool's new sensor (an event is handled with the
    cached one; the sweep reads afresh): read again, never report a session to it as one to a target
    nobody can see."""
    web = instance(ec2, account, "web-1")
    app.CONTAINER.reset()
    app.handle(scheduled("warm"), endpoint=endpoint, settings=Settings())  # caches the targets
    newer = sandbox.add_eni_target(ec2, account, account.subnets[f"{REGION}a"], "ids-team-sensor")  # its own VPC
    rogue_target, _ = attacker_target(ec2, account)
    trusted = other_tool_session(ec2, eni(web), newer, account.filters["default"], 2)
    rogue = other_tool_session(ec2, eni(web), rogue_target, account.filters["default"], 3)
    with captured() as records:  # within the cache's TTL: EC2 says the instance is running (again)
        app.handle(state_change(web["InstanceId"], "running", "seen-again"), endpoint=endpoint, settings=Settings())
    found = {vars(r)["session"]: vars(r)["finding"] for r in records if r.getMessage() == "untrusted session"}
    assert found == {rogue: planner.NOT_DESIGNATED}
    assert trusted not in found
