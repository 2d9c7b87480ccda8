"""Sensor health, capacity and failover in the pure core: `handler/health.py` judges the describe
answers, the planner sends sessions only to usable targets with room and moves ours off unusable
ones, `handler/coverage.py` counts only what is delivered. No AWS here (the moto tier is
tests/test_sensor_health.py)."""

import dataclasses
from typing import Any

import pytest
from traffic_mirror.handler import coverage, health, planner
from traffic_mirror.handler.model import (
    USABLE,
    Decision,
    Health,
    Inventory,
    MirrorFilter,
    Session,
    Source,
    Target,
)
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

SETTINGS = Settings()
MANAGED = {MANAGED_TAG_KEY: SETTINGS.managed_by}
STOPPED = Health(False, health.INSTANCE_NOT_RUNNING, "sensor instance i-1 is stopped", capacity=10, instance_id="i-1")


def source(eni: str = "eni-0000000000000001", az: str = "us-east-1a", subnet: str = "subnet-a1") -> Source:
    return Source(eni, f"i-{eni[4:]}", "m5.large", subnet, "vpc-1", az)


def eni_target(tid: str, subnet: str = "subnet-a1", az: str = "us-east-1a", status: Health = USABLE) -> Target:
    return Target(tid, "network-interface", f"eni-{tid}", "vpc-1", subnet, az, health=status)


def nlb(tid: str, status: Health = USABLE) -> Target:
    return Target(tid, "network-load-balancer", f"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/{tid}/1",
                  "vpc-1", None, None, health=status)  # fmt: skip


def inventory(*targets: Target, on: dict[str, tuple[Session, ...]] | None = None) -> Inventory:
    return Inventory(tuple(targets), (MirrorFilter("tmf-1"),), sessions_on=on or {})


def ours(eni: str, target: str, sid: str = "tms-1", number: int = 1) -> Session:
    return Session(sid, eni, target, "tmf-1", number, MANAGED)


def theirs(eni: str, target: str) -> Session:
    return Session(f"tms-{eni}", eni, target, "tmf-1", 1, {"Owner": "ids-team"})


# --- health.py: judging the describe answers ------------------------------------------------------


def instance(state: str, itype: str = "c5.xlarge") -> dict[str, Any]:
    return {"InstanceId": "i-1", "InstanceType": itype, "State": {"Name": state}}


def test_an_eni_target_is_usable_only_attached_to_a_running_instance() -> None:
    eni = {"NetworkInterfaceId": "eni-1", "Attachment": {"InstanceId": "i-1"}}
    assert health.eni_target(None, None).why == health.ENI_DELETED
    assert health.eni_target({"NetworkInterfaceId": "eni-1"}, None).why == health.ENI_DETACHED
    for state in ("pending", "stopping", "stopped", "shutting-down", "terminated"):
        found = health.eni_target(eni, instance(state))
        assert (found.usable, found.why, found.instance_id) == (False, health.INSTANCE_NOT_RUNNING, "i-1"), state
        assert state in found.detail
    running = health.eni_target(eni, instance("running"))
    assert (running.usable, running.capacity, running.instance_id) == (True, 10, "i-1")


@pytest.mark.parametrize(
    ("itype", "limit"),
    [("c5.xlarge", 10), ("c5.24xlarge", 100), ("c5.18xlarge", 100), ("c5.12xlarge", 10), ("m5.24xlarge", 100),
     ("r7iz.32xlarge", 100), ("u7inh-32tb.480xlarge", 100), ("p5.4xlarge", 100), ("p5.2xlarge", 10), ("", 10)],
)  # fmt: skip
def test_sources_per_eni_target_follow_aws_list_of_instance_types(itype: str, limit: int) -> None:
    assert health.sources_limit(itype) == limit
    eni = {"NetworkInterfaceId": "eni-1", "Attachment": {"InstanceId": "i-1"}}
    assert health.eni_target(eni, instance("running", itype)).capacity == limit


LB = {"LoadBalancerArn": "arn:lb", "State": {"Code": "active"}, "VpcId": "vpc-1"}
UDP = {"Protocol": "UDP", "Port": 4789, "DefaultActions": [{"Type": "forward", "TargetGroupArn": "arn:tg"}]}


def described(target_id: str, state: str, zone: str | None = None) -> dict[str, Any]:
    target: dict[str, Any] = {"Id": target_id, "Port": 4789}
    if zone:
        target["AvailabilityZone"] = zone
    return {"Target": target, "TargetHealth": {"State": state}}


def test_an_nlb_target_needs_its_udp_4789_listener_and_a_healthy_target() -> None:
    zones = {"i-a": "us-east-1a", "i-b": "us-east-1b"}
    healthy = {"arn:tg": [described("i-a", "healthy"), described("i-b", "unhealthy")]}
    assert health.nlb_target(None, [UDP], [], healthy, zones).why == health.NLB_DELETED
    provisioning = {**LB, "State": {"Code": "provisioning"}}
    assert health.nlb_target(provisioning, [UDP], [], healthy, zones).why == health.NLB_NOT_ACTIVE
    for listener in ({**UDP, "Protocol": "TCP"}, {**UDP, "Port": 4790}):
        assert health.nlb_target(LB, [listener], [], healthy, zones).why == health.NO_UDP_LISTENER
    none_healthy = {"arn:tg": [described("i-a", "unused"), described("i-b", "unhealthy")]}
    assert health.nlb_target(LB, [UDP], [], none_healthy, zones).why == health.NO_HEALTHY_TARGET
    # Without cross-zone load balancing only the AZs with a healthy target are served.
    found = health.nlb_target(LB, [UDP], [], healthy, zones)
    assert (found.usable, found.zones, found.target_groups, found.backends) == (
        True, frozenset({"us-east-1a"}), frozenset({"arn:tg"}), frozenset({"i-a", "i-b"})
    )  # fmt: skip
    cross = [{"Key": health.CROSS_ZONE, "Value": "true"}]
    assert health.nlb_target(LB, [UDP], cross, healthy, zones).zones is None
    # TCP_UDP listens to UDP too; an IP target registered for every AZ ("all") serves all.
    both = {**UDP, "Protocol": "TCP_UDP"}
    assert health.nlb_target(LB, [both], [], {"arn:tg": [described("10.0.0.5", "healthy", "all")]}, {}).zones is None
    # A weighted forward counts its groups with weight; a listener on another group counts nothing there.
    weighted = {**UDP, "DefaultActions": [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": "arn:tg", "Weight": 1}, {"TargetGroupArn": "arn:off", "Weight": 0}]}}]}  # fmt: skip
    assert health.forwarded_groups(weighted) == ["arn:tg"]


def test_a_gateway_load_balancer_endpoint_target_must_be_available() -> None:
    assert health.gwlb_endpoint(None).why == health.ENDPOINT_DELETED
    assert health.gwlb_endpoint({"State": "pending"}).why == health.ENDPOINT_UNAVAILABLE
    assert health.gwlb_endpoint({"State": "Available"}).usable


def test_an_event_names_a_sensor_by_its_instance_load_balancer_listener_group_or_id() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:111122223333:loadbalancer/net/sensors/50dc6c495c0c9188"
    listener = "arn:aws:elasticloadbalancing:us-east-1:111122223333:listener/net/sensors/50dc6c495c0c9188/f2f7dc8efc522ab2"
    assert health.load_balancer_of(listener) == arn
    eni = eni_target("tmt-eni", status=Health(instance_id="i-sensor"))
    balancer = dataclasses.replace(
        nlb("tmt-nlb", Health(target_groups=frozenset({"arn:tg"}), backends=frozenset({"i-back"}))), resource_id=arn
    )
    shared = dataclasses.replace(eni_target("tmt-hub", status=Health(instance_id="i-hub")), owner="999999999999")
    targets = [eni, balancer, shared]
    assert health.named(targets, ["i-sensor"], []) == {"tmt-eni"}
    assert health.named(targets, ["i-back"], []) == {"tmt-nlb"}
    assert health.named(targets, [], [listener]) == health.named(targets, [], [arn]) == {"tmt-nlb"}
    assert health.named(targets, [], ["arn:tg"]) == {"tmt-nlb"}
    assert health.named(targets, [], ["tmt-eni"]) == {"tmt-eni"}
    # Another account's target is read (and failed over) by that account; a stranger is nobody's.
    assert health.named(targets, ["i-hub", "i-stranger"], ["arn:other"]) == set()


# --- the planner: usable targets only, capacity, failover -----------------------------------------


def test_a_new_session_goes_only_to_a_usable_target() -> None:
    near, far = eni_target("tmt-near", status=STOPPED), eni_target("tmt-far", subnet="subnet-x")
    decision = planner.plan_source(source(), [], inventory(near, far), SETTINGS)
    assert (decision.outcome, decision.target_id, decision.problem) == ("create", "tmt-far", None)
    alone = planner.plan_source(source(), [], inventory(near), SETTINGS)
    assert (alone.outcome, alone.actions, alone.problem) == ("skipped", (), planner.TARGET_UNHEALTHY)
    assert "stopped" in alone.reason


def test_an_nlb_without_cross_zone_serves_only_zones_with_a_healthy_target() -> None:
    zonal = nlb("tmt-nlb", Health(zones=frozenset({"us-east-1a"})))
    assert planner.plan_source(source(), [], inventory(zonal), SETTINGS).target_id == "tmt-nlb"
    in_b = planner.plan_source(source(az="us-east-1b", subnet="subnet-b1"), [], inventory(zonal), SETTINGS)
    assert in_b.problem == planner.TARGET_UNHEALTHY
    # Across accounts zones are compared by id.
    shared = dataclasses.replace(zonal, owner="999", health=Health(zones=frozenset({"us-east-1a"}), zone_ids=frozenset({"use1-az4"})))
    src = dataclasses.replace(source(), az_id="use1-az4")
    assert planner.usable_for(src, shared) and not planner.usable_for(dataclasses.replace(src, az_id="use1-az1"), shared)


def test_the_plan_never_gives_a_target_more_sources_than_it_accepts() -> None:
    small = eni_target("tmt-small", status=Health(capacity=10))
    sources = [source(f"eni-{n:017d}") for n in range(12)]
    decisions = planner.plan(sources, {}, inventory(small), SETTINGS)
    assert [d.outcome for d in decisions].count("create") == 10
    full = [d for d in decisions if d.outcome != "create"]
    assert [(d.problem, d.actions) for d in full] == [(planner.TARGET_FULL, ())] * 2
    # Sessions already there count, as the target's owner lists them (another account's included)
    # and as read for the plan (another tool's included).
    there = tuple(Session(f"tms-{n}", f"eni-elsewhere-{n}", "tmt-small", "tmf-1", 1, owner="222") for n in range(8))
    foreign = {sources[0].eni_id: [theirs(sources[0].eni_id, "tmt-small")]}
    counted = planner.plan(sources, foreign, inventory(small, on={"tmt-small": there}), SETTINGS)
    # 8 + another tool's source (ours joins it on the same ENI: no new source) + 1 = 10
    assert [d.outcome for d in counted].count("create") == 2
    # A second target takes the rest; learned-full targets are tried last, still counted.
    big = eni_target("tmt-big", subnet="subnet-x", status=Health(capacity=100))
    spread = planner.plan(sources, {}, inventory(small, big), SETTINGS)
    assert sorted(d.target_id or "" for d in spread).count("tmt-small") == 10


def test_our_session_on_an_unusable_target_moves_keeping_its_number_and_filter() -> None:
    dead, live = eni_target("tmt-dead", status=STOPPED), eni_target("tmt-live", subnet="subnet-x")
    session = ours(source().eni_id, "tmt-dead", number=7)
    decision = planner.plan_source(source(), [session], inventory(dead, live), SETTINGS)
    (action,) = decision.actions
    assert (action.kind, action.session_id, action.target_id, action.filter_id) == ("modify", "tms-1", "tmt-live", None)
    assert (decision.session_number, decision.repairs, decision.problem) == (7, planner.TARGET_UNHEALTHY, None)
    assert "tmt-dead is unusable" in decision.reason
    # Someone else's session on the dead sensor is never touched.
    foreign = planner.plan_source(source(), [theirs(source().eni_id, "tmt-dead")], inventory(dead, live), SETTINGS)
    assert [a.kind for a in foreign.actions] == ["create"]


def test_with_no_usable_alternative_the_session_stays_and_the_eni_is_reported() -> None:
    dead = eni_target("tmt-dead", status=STOPPED)
    session = ours(source().eni_id, "tmt-dead")
    decision = planner.plan_source(source(), [session], inventory(dead), SETTINGS)
    assert (decision.outcome, decision.actions, decision.kept_session) == ("skipped", (), "tms-1")
    assert decision.problem == planner.TARGET_UNHEALTHY
    # Its sensor's resource is gone (no placement to trust it by): still never deleted for health.
    gone = eni_target("tmt-dead", status=Health(False, health.ENI_DELETED))
    gone = dataclasses.replace(gone, vpc_id=None, subnet_id=None, az=None)
    kept = planner.plan_source(source(), [session], inventory(gone), SETTINGS)
    assert (kept.actions, kept.problem, kept.kept_session) == ((), planner.TARGET_UNHEALTHY, "tms-1")
    # The target deleted altogether: the same.
    assert planner.plan_source(source(), [session], inventory(), SETTINGS).actions == ()
    # Only a usable one that is full: reported as full, kept.
    full = eni_target("tmt-full", subnet="subnet-x", status=Health(capacity=1))
    on = {"tmt-full": (theirs("eni-other", "tmt-full"),)}
    stuck = planner.plan_source(source(), [session], inventory(dead, full, on=on), SETTINGS)
    assert (stuck.actions, stuck.problem) == ((), planner.TARGET_FULL)


def test_a_session_moved_away_does_not_come_back_when_its_sensor_returns() -> None:
    near, far = eni_target("tmt-near"), eni_target("tmt-far", subnet="subnet-x")
    moved = ours(source().eni_id, "tmt-far")
    decision = planner.plan_source(source(), [moved], inventory(near, far), SETTINGS)
    assert (decision.outcome, decision.actions) == ("mirrored", ())


def test_a_move_counts_against_the_capacity_of_its_new_target() -> None:
    dead = eni_target("tmt-dead", status=STOPPED)
    small = eni_target("tmt-small", subnet="subnet-x", status=Health(capacity=2))
    sessions = {f"eni-{n:017d}": [ours(f"eni-{n:017d}", "tmt-dead", f"tms-{n}")] for n in range(3)}
    decisions = planner.plan([source(e) for e in sessions], sessions, inventory(dead, small), SETTINGS)
    assert [d.outcome for d in decisions] == ["modify", "modify", "skipped"]
    assert decisions[2].problem == planner.TARGET_FULL and decisions[2].kept_session == "tms-2"


# --- coverage: only what is delivered --------------------------------------------------------------


def test_coverage_counts_a_session_on_an_unusable_target_as_not_mirrored() -> None:
    dead, live = eni_target("tmt-dead", status=STOPPED), eni_target("tmt-live", subnet="subnet-x")
    a, b, c = (source(f"eni-{n:017d}") for n in range(3))
    sessions = {a.eni_id: [ours(a.eni_id, "tmt-dead", "tms-a")], b.eni_id: [ours(b.eni_id, "tmt-live", "tms-b")]}
    decisions = planner.plan([a, b], sessions, inventory(dead, live), SETTINGS)
    moving, fine = decisions
    dry = coverage.count("us-east-1", decisions)
    assert (dry.in_scope, dry.mirrored, dry.stranded) == (2, 1, 1)
    assert coverage.problem(moving) == planner.TARGET_UNHEALTHY and coverage.problem(fine) is None
    applied = coverage.count("us-east-1", decisions, {a.eni_id: "modified"})
    assert (applied.mirrored, applied.stranded) == (2, 0)
    failed = coverage.count("us-east-1", decisions, {a.eni_id: "failed"})
    assert (failed.mirrored, failed.stranded) == (1, 1)
    stuck = planner.plan([c], {c.eni_id: [ours(c.eni_id, "tmt-dead", "tms-c")]}, inventory(dead), SETTINGS)
    assert coverage.count("us-east-1", stuck).stranded == 1


def test_the_sensors_section_shows_health_sessions_and_limits() -> None:
    dead = eni_target("tmt-dead", status=STOPPED)
    balancer = nlb("tmt-nlb", Health(zones=frozenset({"us-east-1a"}), zone_ids=frozenset({"use1-az4"})))
    on = {"tmt-dead": (Session("tms-x", "eni-member", "tmt-dead", "tmf-1", 1, owner="222"),)}
    rows = coverage.sensors(inventory(dead, balancer, on=on), [ours("eni-1", "tmt-dead"), ours("eni-2", "tmt-nlb")])
    by_id = {r.target_id: r for r in rows}
    assert (by_id["tmt-dead"].usable, by_id["tmt-dead"].why, by_id["tmt-dead"].sessions) == (
        False, health.INSTANCE_NOT_RUNNING, 2
    )  # fmt: skip
    assert by_id["tmt-dead"].sources_limit == 10 and by_id["tmt-nlb"].sources_limit is None
    assert by_id["tmt-nlb"].zones == ("use1-az4",)
    assert coverage.usable_counts([*rows, *rows]) == (1, 1)


def test_a_decision_that_repairs_nothing_is_not_counted_twice() -> None:
    plain = Decision("eni-1", "i-1", "mirrored", "ok", kept_session="tms-1")
    assert not coverage.stranded(plain) and coverage.problem(plain) is None
