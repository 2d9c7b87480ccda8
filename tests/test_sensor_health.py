"""Packets reach a live sensor, end to end under moto (with `sandbox.aws_rules`: AWS's target
health, capacity and modify rules): sessions follow their sensors' health, coverage counts only
what is delivered. Each world is real: sensors are running instances' ENIs, an NLB sensor has a
UDP 4789 listener with healthy instances behind it."""

import json
import logging
from collections import Counter
from typing import Any

import pytest
from traffic_mirror.handler import app, health, inventory, report
from traffic_mirror.handler.settings import Settings

from tests import conftest
from tests.conftest import home
from tests.test_cli import common, run, run_split
from tests.test_coverage import by_eni, enis_of, launch_event, scheduled, sessions
from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import api_call, run_instances_record, state_change, wrap

REGION = "us-east-1"
AZ = f"{REGION}a"


def two_sensors(aws: Any) -> tuple[sandbox.Account, list[str]]:
    """One AZ served by two large sensors (c5.24xlarge: 100 sources each)."""
    account = sandbox.build_account(aws, azs=("a",), sensors_per_az=2, ami=sandbox.moto_ami())
    return account, [account.targets[f"sensor-{AZ}-{n}"] for n in range(2)]


def sensor_instance(ec2: Any, account: sandbox.Account, target: str) -> str:
    eni = account.target_enis[target]
    (found,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    return str(found["Attachment"]["InstanceId"])


def on_target(ec2: Any) -> Counter[str]:
    return Counter(s["TrafficMirrorTargetId"] for s in sessions(ec2))


def unchanged_but_target(before: dict[str, Any], after: dict[str, Any]) -> bool:
    keep = ("TrafficMirrorSessionId", "SessionNumber", "TrafficMirrorFilterId", "VirtualNetworkId")
    return all(before.get(k) == after.get(k) for k in keep)


# --- an ENI sensor stops, is terminated, comes back --------------------------------------------------


def test_a_stopped_sensor_event_moves_its_sessions_and_its_return_moves_nothing(
    aws: Any, counter: CallCounter
) -> None:
    account, sensors = two_sensors(aws)
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=6)
    assert app.handle(launch_event(instances, "launch-6"))["counts"]["Created"] == 6
    before = {s["NetworkInterfaceId"]: s for s in sessions(aws)}
    dead, live = sorted(sensors, key=lambda t: -on_target(aws)[t])
    moving = on_target(aws)[dead]
    assert moving > 0
    aws.stop_instances(InstanceIds=[sensor_instance(aws, account, dead)])

    counter.clear()
    result = app.handle(state_change(sensor_instance(aws, account, dead), "stopping", "sc-stop"))
    assert result["counts"]["Modified"] == counter.calls["ModifyTrafficMirrorSession"] == moving
    assert counter.calls["CreateTrafficMirrorSession"] == counter.calls["DeleteTrafficMirrorSession"] == 0
    assert on_target(aws) == {live: 6}
    after = {s["NetworkInterfaceId"]: s for s in sessions(aws)}
    assert all(unchanged_but_target(before[e], after[e]) for e in before), "number, filter, VNI kept"
    # A move needs no second sweep: the sweep finds everything where it belongs.
    swept = app.handle(scheduled("sweep-after"))
    assert (swept["counts"]["Modified"], swept["counts"]["AlreadyMirrored"]) == (0, 6)

    # The sensor returns: rendezvous spread decides only new sessions, nothing flaps back.
    aws.start_instances(InstanceIds=[sensor_instance(aws, account, dead)])
    app.handle(state_change(sensor_instance(aws, account, dead), "running", "sc-start"))
    returned = app.handle(scheduled("sweep-returned"))
    assert (returned["counts"]["Modified"], returned["counts"]["AlreadyMirrored"]) == (0, 6)
    assert on_target(aws) == {live: 6}
    (late,) = sandbox.launch(aws, account, account.subnets[AZ], count=1)
    app.handle(launch_event([late], "launch-late"))
    assert enis_of([late]) <= set(by_eni(aws))


def test_the_sweep_moves_sessions_off_a_sensor_stopped_without_an_event(aws: Any) -> None:
    account, sensors = two_sensors(aws)
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=4)
    app.handle(scheduled("sweep-1"))
    dead, live = sorted(sensors, key=lambda t: -on_target(aws)[t])
    moving = on_target(aws)[dead]
    aws.stop_instances(InstanceIds=[sensor_instance(aws, account, dead)])
    result = app.handle(scheduled("sweep-2"))
    assert result["counts"]["Modified"] == moving and on_target(aws) == {live: 4}
    assert set(by_eni(aws)) == enis_of(instances)


def test_a_state_change_of_an_instance_that_is_no_sensor_costs_no_call(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    (web,) = sandbox.launch(aws, account, account.subnets[AZ])
    inventory.inventory(home())  # warm
    counter.clear()
    for state in ("stopping", "stopped", "shutting-down", "terminated"):
        result = app.handle(state_change(web["InstanceId"], state, f"sc-{state}"))
        assert result["counts"]["Ignored"] == 1, state
    assert counter.total() == 0, counter.calls
    # Cold, it costs the inventory load any event pays, and nothing else.
    app.CONTAINER.reset()
    counter.attach(app.CONTAINER.clients.ec2(home().place), app.CONTAINER.clients.elbv2(home().place))
    counter.clear()
    app.handle(state_change(web["InstanceId"], "stopped", "sc-cold"))
    inventory_reads = {"DescribeTrafficMirrorTargets", "DescribeTrafficMirrorFilters", "DescribeNetworkInterfaces",
                       "DescribeInstances", "DescribeTrafficMirrorSessions"}  # fmt: skip
    assert set(counter.calls) <= inventory_reads and max(counter.calls.values()) == 1, counter.calls


def test_a_terminated_sensor_event_moves_its_sessions(aws: Any) -> None:
    account, sensors = two_sensors(aws)
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=4)
    app.handle(launch_event(instances, "launch-4"))
    dead, live = sorted(sensors, key=lambda t: -on_target(aws)[t])
    moving = on_target(aws)[dead]
    instance = sensor_instance(aws, account, dead)
    aws.terminate_instances(InstanceIds=[instance])  # its ENI goes with it (AWS's default)
    result = app.handle(state_change(instance, "shutting-down", "sc-term"))
    assert result["counts"]["Modified"] == moving and on_target(aws) == {live: 4}
    for n in range(2):  # and stays so: the gone sensor is reported, never a reason to fail
        swept = app.handle(scheduled(f"sweep-{n}"))
        assert (swept["counts"]["AlreadyMirrored"], swept["counts"]["Failed"]) == (4, 0)


def test_a_sensor_eni_no_instance_lists_is_read_on_its_own_and_is_unusable(aws: Any, counter: CallCounter) -> None:
    account, sensors = two_sensors(aws)
    loose = aws.create_network_interface(SubnetId=account.subnets[AZ])["NetworkInterface"]["NetworkInterfaceId"]
    target = aws.create_traffic_mirror_target(NetworkInterfaceId=loose)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    counter.clear()
    found = {t.target_id: t for t in inventory.inventory(home(), refresh=True).targets}
    assert (found[target].health.usable, found[target].health.why) == (False, health.ENI_DETACHED)
    assert found[target].az == AZ and found[target].vpc_id == account.vpc
    assert all(found[s].health.usable and found[s].az == AZ for s in sensors)
    # The live sensors' ENIs come with their instances; only the loose one is read on its own.
    assert (counter.calls["DescribeInstances"], counter.calls["DescribeNetworkInterfaces"]) == (1, 1)
    aws.delete_traffic_mirror_target(TrafficMirrorTargetId=target)
    counter.clear()
    inventory.inventory(home(), refresh=True)
    assert (counter.calls["DescribeInstances"], counter.calls["DescribeNetworkInterfaces"]) == (1, 0)


def test_with_no_usable_sensor_sessions_stay_and_nothing_is_needed_when_it_returns(
    aws: Any, logged: list[logging.LogRecord]
) -> None:
    account = sandbox.build_account(aws, azs=("a",), ami=sandbox.moto_ami())
    sensor = account.targets[f"sensor-{AZ}-0"]
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=2)
    app.handle(launch_event(instances, "launch-2"))
    before = sessions(aws)
    instance = sensor_instance(aws, account, sensor)
    aws.stop_instances(InstanceIds=[instance])
    result = app.handle(state_change(instance, "stopped", "sc-stop"))
    assert (result["counts"]["Modified"], result["counts"]["Deleted"]) == (0, 0)
    assert result["problems"] == {"target-unhealthy": 2}
    assert sessions(aws) == before, "never deleted for health"
    (late,) = sandbox.launch(aws, account, account.subnets[AZ])
    skipped = app.handle(launch_event([late], "launch-late"))
    assert skipped["counts"]["Created"] == 0 and skipped["problems"] == {"target-unhealthy": 1}
    swept = app.handle(scheduled("sweep-dark"))
    assert swept["problems"] == {"target-unhealthy": 3}
    line = [vars(r) for r in logged if r.getMessage() == "coverage"][-1]
    assert (line["mirrored"], line["sessions_on_unusable_targets"], line["unusable_targets"]) == (0, 2, 1)

    aws.start_instances(InstanceIds=[instance])
    back = app.handle(scheduled("sweep-back"))
    assert (back["counts"]["Created"], back["counts"]["Modified"], back["counts"]["AlreadyMirrored"]) == (1, 0, 2)
    assert [s["TrafficMirrorSessionId"] for s in sessions(aws) if s in before] == [s["TrafficMirrorSessionId"] for s in before]
    line = [vars(r) for r in logged if r.getMessage() == "coverage"][-1]
    assert (line["mirrored"], line["sessions_on_unusable_targets"]) == (3, 0)


# --- NLB sensors ----------------------------------------------------------------------------------


def nlb_world(aws: Any) -> tuple[sandbox.Account, sandbox.NlbSensor]:
    """One AZ, an NLB sensor that serves three instances, then an ENI sensor beside them."""
    elbv2 = conftest.SESSION.client("elbv2", region_name=REGION)
    account = sandbox.build_account(aws, azs=("a",), sensors_per_az=0, ami=sandbox.moto_ami())
    nlb = sandbox.add_nlb_target(aws, elbv2, account, "sensors", [AZ])
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=3)
    app.handle(launch_event(instances, "launch-3"))
    assert on_target(aws) == {nlb.target_id: 3}, "the NLB's instances are opted out (Mirror=off)"
    sandbox.add_eni_target(aws, account, account.subnets[AZ], "spare", "c5.24xlarge")
    return account, nlb


@pytest.mark.parametrize("break_it", ["DeleteListener", "DeregisterTargets", "DeleteLoadBalancer"])
def test_an_nlb_that_stops_receiving_loses_its_sessions_on_its_event(aws: Any, break_it: str) -> None:
    account, nlb = nlb_world(aws)
    elbv2 = conftest.SESSION.client("elbv2", region_name=REGION)
    if break_it == "DeleteListener":
        elbv2.delete_listener(ListenerArn=nlb.listener_arn)
        event = api_call(break_it, {"listenerArn": nlb.listener_arn}, "elasticloadbalancing")
    elif break_it == "DeregisterTargets":
        backends: list[Any] = [{"Id": i} for ids in nlb.instances.values() for i in ids]
        elbv2.deregister_targets(TargetGroupArn=nlb.target_group_arn, Targets=backends)
        event = api_call(break_it, {"targetGroupArn": nlb.target_group_arn, "targets": backends}, "elasticloadbalancing")
    else:
        elbv2.delete_load_balancer(LoadBalancerArn=nlb.arn)
        event = api_call(break_it, {"loadBalancerArn": nlb.arn}, "elasticloadbalancing")
    result = app.handle(event)
    assert result["counts"]["Modified"] == 3 and on_target(aws) == {account.targets["spare"]: 3}
    # New ENIs go to the usable sensor too, and the unusable NLB is reported as such.
    more = sandbox.launch(aws, account, account.subnets[AZ], count=2)
    app.handle(launch_event(more, "launch-more"))
    assert on_target(aws) == {account.targets["spare"]: 5}


@pytest.mark.parametrize(
    ("client", "operation", "key"),
    [
        ("elbv2", "DescribeListeners", "Listeners"),
        ("elbv2", "DescribeLoadBalancers", "LoadBalancers"),
        ("ec2", "DescribeInstances", "Reservations"),
    ],
)
def test_an_answer_emptied_on_its_way_moves_no_session_off_a_live_sensor(
    aws: Any, client: str, operation: str, key: str
) -> None:
    """Twice the same lie (the first read and the confirming one) is still contradicted by what
    AWS answers beside it: an NLB's target groups, the ENI's attachment, an error for a deleted NLB."""
    account, nlb = nlb_world(aws)
    if client == "ec2":  # an ENI sensor stands where the NLB stood
        conftest.SESSION.client("elbv2", region_name=REGION).delete_load_balancer(LoadBalancerArn=nlb.arn)
        app.handle(scheduled("move-to-spare"))
        assert on_target(aws) == {account.targets["spare"]: 3}
    before = on_target(aws)
    place = app.CONTAINER.clients.ec2(conftest.home().place) if client == "ec2" else None
    handler_client = place or app.CONTAINER.clients.elbv2(conftest.home().place)

    def emptied(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == operation:
            parsed[key] = []

    handler_client.meta.events.register("after-call", emptied)
    with pytest.raises(app.RetryableFailure):
        app.handle(scheduled("lied-to"))
    assert on_target(aws) == before


def test_an_nlb_whose_targets_all_fail_their_health_checks_is_left_by_the_sweep(aws: Any) -> None:
    account, nlb = nlb_world(aws)
    sandbox.fail_health_checks([i for ids in nlb.instances.values() for i in ids])
    result = app.handle(scheduled("sweep-unhealthy"))
    assert result["counts"]["Modified"] == 3 and on_target(aws) == {account.targets["spare"]: 3}


def test_an_nlb_serves_without_cross_zone_only_the_zones_with_a_healthy_target(aws: Any) -> None:
    elbv2 = conftest.SESSION.client("elbv2", region_name=REGION)
    account = sandbox.build_account(aws, sensors_per_az=0, ami=sandbox.moto_ami())
    nlb = sandbox.add_nlb_target(aws, elbv2, account, "sensors")
    sandbox.fail_health_checks(nlb.instances[f"{REGION}b"])
    a = sandbox.launch(aws, account, account.subnets[AZ])
    b = sandbox.launch(aws, account, account.subnets[f"{REGION}b"])
    result = app.handle(launch_event([*a, *b], "launch-ab"))
    assert result["problems"] == {"target-unhealthy": 1} and set(by_eni(aws)) == enis_of(a)
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=nlb.arn, Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": "true"}]
    )
    assert app.handle(scheduled("sweep-cross"))["counts"]["Created"] == 1


# --- capacity: the dry run, the sweep and coverage agree ------------------------------------------------


def test_plan_sweep_and_coverage_agree_when_the_sensor_is_full(endpoint: str) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    account = sandbox.build_account(ec2, azs=("a",), sensors_per_az=0)
    sandbox.add_eni_target(ec2, account, account.subnets[AZ], "small", "c5.xlarge")  # 10 sources
    sandbox.launch(ec2, account, account.subnets[AZ], count=12)
    code, plan = run("plan", *common(endpoint))
    assert code == 0 and "10 to create, 3 skipped" in plan and plan.count("every usable target has its maximum") == 2
    code, swept = run("sweep", "--apply", *common(endpoint))
    assert code == 0 and "failed" not in swept and len(sessions(ec2)) == 10
    code, out, _ = run_split("coverage", "--format", "json", *common(endpoint))
    report_ = json.loads(out)
    assert (report_["in_scope"], report_["mirrored"]) == (12, 10)
    assert [u["problem"] for u in report_["unmirrored"]] == ["target-full", "target-full"]
    (small,) = report_["sensors"]
    assert (small["sessions"], small["sources_limit"], small["usable"]) == (10, 10, True)


# --- coverage is delivery -----------------------------------------------------------------------------


def test_coverage_json_counts_only_sessions_on_usable_sensors(endpoint: str) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    account, sensors = two_sensors(ec2)
    sandbox.launch(ec2, account, account.subnets[AZ], count=4)
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    dead = max(sensors, key=lambda t: on_target(ec2)[t])
    moving = on_target(ec2)[dead]
    ec2.stop_instances(InstanceIds=[sensor_instance(ec2, account, dead)])

    code, out, _ = run_split("coverage", "--format", "json", *common(endpoint))
    found = json.loads(out)
    assert found["schema_version"] == 4
    assert (found["in_scope"], found["mirrored"]) == (4, 4 - moving)
    assert {(u["problem"], u["action"]) for u in found["unmirrored"]} == {("target-unhealthy", "modify")}
    rows = {s["target"]: s for s in found["sensors"]}
    assert set(rows) == set(sensors)
    assert (rows[dead]["usable"], rows[dead]["why"], rows[dead]["sessions"]) == (False, "instance-not-running", moving)
    assert "stopped" in rows[dead]["detail"]
    assert {r["kind"] for r in rows.values()} == {"network-interface"}
    assert {(r["az"], r["sources_limit"]) for r in rows.values()} == {(AZ, 100)}
    code, text = run("coverage", *common(endpoint))
    assert "Sensors (2, 1 unusable)" in text and "UNUSABLE: sensor instance" in text

    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    code, out, _ = run_split("coverage", "--format", "json", *common(endpoint))
    after = json.loads(out)
    assert code == 0
    assert (after["mirrored"], after["unmirrored"]) == (4, [])
    assert {s["target"]: s["sessions"] for s in after["sensors"]}[dead] == 0


def test_the_sweep_publishes_sensor_metrics(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    account = sandbox.build_account(aws, azs=("a",), ami=sandbox.moto_ami())
    sandbox.launch(aws, account, account.subnets[AZ], count=2)
    app.handle(scheduled("sweep-1"))
    aws.stop_instances(InstanceIds=[sensor_instance(aws, account, account.targets[f"sensor-{AZ}-0"])])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-fn")
    capsys.readouterr()
    app.handle(scheduled("sweep-2"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (emf,) = [line for line in lines if "SessionsOnUnusableTargets" in line]
    assert {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == set(report.COVERAGE_METRICS)
    assert (emf["UsableTargets"], emf["UnusableTargets"], emf["SessionsOnUnusableTargets"]) == (0, 1, 2)
    assert (emf["InScope"], emf["Mirrored"]) == (2, 0)


# --- organization: a hub sensor serves a member --------------------------------------------------------


@pytest.mark.moto
def test_a_stopped_or_deleted_hub_sensor_moves_the_members_sessions_through_the_member_role() -> None:
    """The hub's view lists the sessions a member made on its sensor (OwnerId: the member): the
    hub's handler moves them in the member, through its role, never with its own credentials."""
    from moto import mock_aws

    from tests.test_organization import HUB, MEMBER_A, LambdaContext, member_ec2

    settings = Settings(accounts=MEMBER_A)
    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        hub = conftest.SESSION.client("ec2", region_name=REGION)
        built = sandbox.build_account(hub, REGION, ("a",), sensors_per_az=0, ami=sandbox.moto_ami())
        sensors = [
            sandbox.add_eni_target(hub, built, built.subnets[AZ], f"central-{n}", "c5.24xlarge", {"Mirror": "true"})
            for n in range(2)
        ]
        for sensor in sensors:
            sandbox.share_target(sensor, HUB, [MEMBER_A])
        member = member_ec2(MEMBER_A)
        workloads = sandbox.build_account(member, REGION, ("a",), sensors_per_az=0, ami=sandbox.moto_ami())
        instances = sandbox.launch(member, workloads, workloads.subnets[AZ], count=4)
        launch = wrap(run_instances_record(instances, event_id="launch-member"), account=MEMBER_A)
        assert app.handle(launch, LambdaContext(), settings=settings)["counts"]["Created"] == 4
        per_sensor = Counter(s["TrafficMirrorTargetId"] for s in member.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])
        dead, live = sorted(sensors, key=lambda t: -per_sensor[t])
        (eni,) = hub.describe_network_interfaces(NetworkInterfaceIds=[built.target_enis[dead]])["NetworkInterfaces"]
        hub.stop_instances(InstanceIds=[eni["Attachment"]["InstanceId"]])

        result = app.handle(state_change(eni["Attachment"]["InstanceId"], "stopping", "sc-hub"), LambdaContext(), settings=settings)
        assert result["counts"]["Modified"] == per_sensor[dead] > 0
        found = member.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        assert {s["TrafficMirrorTargetId"] for s in found} == {live} and len(found) == 4
        assert sandbox.refused_writes() == [], "only the member changes its sessions"

        # The hub deletes the sensor its members use (AWS refuses only while its own sessions use
        # it): the hub no longer lists their sessions, its cached inventory did, and they move.
        hub.start_instances(InstanceIds=[eni["Attachment"]["InstanceId"]])
        hub.delete_traffic_mirror_target(TrafficMirrorTargetId=live)
        deleted = api_call("DeleteTrafficMirrorTarget", {"DeleteTrafficMirrorTargetRequest": {"TrafficMirrorTargetId": live}})
        result = app.handle(deleted, LambdaContext(), settings=settings)
        assert result["counts"]["Modified"] == 4
        found = member.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        assert {s["TrafficMirrorTargetId"] for s in found} == {dead} and sandbox.refused_writes() == []
    app.CONTAINER.reset()


def test_an_event_of_a_sensor_that_is_running_again_moves_nothing(aws: Any, counter: CallCounter) -> None:
    """The event is not the truth: the sensor is read again, and a running one keeps its sessions."""
    account, sensors = two_sensors(aws)
    instances = sandbox.launch(aws, account, account.subnets[AZ], count=4)
    app.handle(launch_event(instances, "launch-4"))
    busy = max(sensors, key=lambda t: on_target(aws)[t])
    instance = sensor_instance(aws, account, busy)
    aws.stop_instances(InstanceIds=[instance])
    inventory.inventory(home(), refresh=True)  # the container's copy says: stopped
    aws.start_instances(InstanceIds=[instance])
    before = sessions(aws)
    counter.clear()
    result = app.handle(state_change(instance, "stopping", "sc-late"))
    assert result["counts"]["Modified"] == 0 and sessions(aws) == before
    assert not any(op.startswith(("Create", "Modify", "Delete")) for op in counter.calls)


def test_the_container_counts_the_sessions_it_made_since_its_read(aws: Any, counter: CallCounter) -> None:
    """Two launches on a warm container: the second counts the first's sessions (no refused create)."""
    account = sandbox.build_account(aws, azs=("a",), sensors_per_az=0, ami=sandbox.moto_ami())
    sandbox.add_eni_target(aws, account, account.subnets[AZ], "small", "c5.xlarge")  # 10 sources
    first = sandbox.launch(aws, account, account.subnets[AZ], count=6)
    second = sandbox.launch(aws, account, account.subnets[AZ], count=6)
    assert app.handle(launch_event(first, "launch-first"))["counts"]["Created"] == 6
    counter.clear()
    result = app.handle(launch_event(second, "launch-second"))
    assert (result["counts"]["Created"], result["counts"]["Failed"]) == (4, 0)
    assert result["problems"] == {"target-full": 2} and counter.calls["CreateTrafficMirrorSession"] == 4
