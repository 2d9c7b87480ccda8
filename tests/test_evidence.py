"""Evidence, pure: untrusted sessions and `intercepted` in the planner, mirror loss from CloudWatch's
answers, the plan's guardrails, and the sweep's metrics (EMF). The same behaviour through the CLI on
an embedded AWS: tests/test_cli_evidence.py."""

import json
import math
from typing import Any

import pytest
from traffic_mirror.handler import coverage, guardrails, loss, planner, report
from traffic_mirror.handler.apply import Result
from traffic_mirror.handler.model import FilterRule, Inventory, MirrorFilter, Session, Source, Target
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

SETTINGS = Settings()
SENSOR = Target("tmt-sensor", "network-interface", "eni-sensor", "vpc-1", "subnet-a1", "us-east-1a")
CENTRAL = Target("tmt-central", "network-interface", "eni-central", "vpc-9", "subnet-9", "us-east-1a", {"Mirror": "true"})
ROGUE = Target("tmt-rogue", "network-interface", "eni-rogue", "vpc-evil", "subnet-evil", "us-east-1a")
INVENTORY = Inventory((SENSOR, CENTRAL), (MirrorFilter("tmf-1"),), listed=(ROGUE,))


def source(eni: str = "eni-1", **kw: Any) -> Source:
    values: dict[str, Any] = {"eni_id": eni, "instance_id": "i-1", "instance_type": "m5.large",
                              "subnet_id": "subnet-a1", "vpc_id": "vpc-1", "az": "us-east-1a"}  # fmt: skip
    return Source(**{**values, **kw})


def session(sid: str, target: str, number: int, managed: bool = False, eni: str = "eni-1") -> Session:
    tags = {MANAGED_TAG_KEY: SETTINGS.managed_by} if managed else {"Owner": "someone"}
    return Session(sid, eni, target, "tmf-1", number, tags)


# --- untrusted sessions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "inventory", "finding"),
    [
        ("tmt-rogue", INVENTORY, planner.NOT_DESIGNATED),  # another VPC, not tagged as a sensor
        ("tmt-gone", INVENTORY, planner.NOT_LISTED),  # not shared with this account, or deleted
        ("tmt-sensor", INVENTORY, None),  # its own VPC
        ("tmt-central", INVENTORY, None),  # designated by the tag key
        # The same sensor, when MIRROR_SENSOR_OWNERS allows only the hub: this account's own target is not trusted.
        ("tmt-sensor", Inventory((), (MirrorFilter("tmf-1"),), listed=(SENSOR,), allowed_owners=frozenset({"hub1"}),
                                 account="member1"), planner.OWNER_NOT_ALLOWED),
        # Another account's target shared with this one, whose owner is not allowed.
        ("tmt-x", Inventory((), (), listed=(Target("tmt-x", "network-interface", "eni-x", None, None, None,
                                                   owner="999999999999"),)), planner.OWNER_NOT_ALLOWED),
        # A designated sensor of an allowed owner, not shared (any more): still the operator's.
        ("tmt-central", Inventory((), (MirrorFilter("tmf-1"),), not_shared=(CENTRAL,)), None),
    ],
)  # fmt: skip
def test_a_session_of_another_tool_is_judged_by_the_trust_model(
    target: str, inventory: Inventory, finding: str | None
) -> None:
    decision = planner.plan_source(source(), [session("tms-other", target, 5)], inventory, SETTINGS)
    assert [u.finding for u in decision.untrusted] == ([finding] if finding else [])
    if finding:
        (found,) = decision.untrusted
        assert (found.session_id, found.eni_id, found.instance_id, found.number, found.target_id) == (
            "tms-other", "eni-1", "i-1", 5, target
        )  # fmt: skip
        assert found.reason and not found.intercepts
    # Whatever it is, it is never touched.
    assert not any(a.session_id == "tms-other" for a in decision.actions)


def test_our_own_sessions_are_never_findings() -> None:
    mine = session("tms-mine", "tmt-rogue", 1, managed=True)
    decision = planner.plan_source(source(), [mine], INVENTORY, SETTINGS)
    assert decision.untrusted == ()
    assert decision.outcome == "modify"  # ours, to a target we may not use: moved, as before


def test_a_rogue_session_numbered_below_ours_intercepts() -> None:
    ours = session("tms-ours", "tmt-sensor", 2, managed=True)
    rogue = session("tms-rogue", "tmt-rogue", 1)
    decision = planner.plan_source(source(), [rogue, ours], INVENTORY, SETTINGS)
    assert decision.problem == planner.INTERCEPTED
    assert decision.outcome == "mirrored" and decision.kept_session == "tms-ours"
    assert not coverage.is_mirrored(decision)
    (found,) = decision.untrusted
    assert found.intercepts and decision.reason.startswith("intercepted: session tms-rogue (number 1)")
    # Behind ours, it only gets what our filter leaves: reported, but the ENI is mirrored.
    behind = planner.plan_source(source(), [session("tms-rogue", "tmt-rogue", 3), ours], INVENTORY, SETTINGS)
    assert behind.problem is None and coverage.is_mirrored(behind)
    assert [u.intercepts for u in behind.untrusted] == [False]


def test_a_create_behind_a_rogue_session_is_made_and_still_not_mirrored() -> None:
    decision = planner.plan_source(source(), [session("tms-rogue", "tmt-rogue", 1)], INVENTORY, SETTINGS)
    assert decision.outcome == "create" and decision.session_number == 2
    assert decision.problem == planner.INTERCEPTED
    assert not coverage.is_mirrored(decision, "created")
    # A trusted session of another tool ahead of ours is not a finding, and the ENI is mirrored.
    trusted = planner.plan_source(source(), [session("tms-ids", "tmt-sensor", 1)], INVENTORY, SETTINGS)
    assert trusted.untrusted == () and trusted.problem is None and coverage.is_mirrored(trusted, "created")


def test_an_out_of_scope_eni_still_reports_its_rogue_session() -> None:
    opted_out = source(instance_tags={"Mirror": "off"})
    decision = planner.plan_source(opted_out, [session("tms-rogue", "tmt-rogue", 1)], INVENTORY, SETTINGS)
    assert decision.out_of_scope == planner.OPTED_OUT and decision.problem is None
    assert [u.session_id for u in decision.untrusted] == ["tms-rogue"]


# --- mirror loss -----------------------------------------------------------------------------------------

INSTANCES = (
    loss.Mirrored("i-1", ("eni-1",), "us-east-1a"),
    loss.Mirrored("i-2", ("eni-2", "eni-3"), "us-east-1b", "use1-az2"),
    loss.Mirrored("i-3", ("eni-4",), "us-east-1a"),
)


def answers(per_instance: dict[int, tuple[float, float, float, float]]) -> dict[str, list[Any]]:
    return {loss.query_id(i, m): [v] for i, values in per_instance.items() for m, v in enumerate(values)}


def test_loss_is_skipped_over_mirrored_plus_skipped_and_unknown_without_bytes() -> None:
    queries = loss.queries(INSTANCES, 3600)
    assert len(queries) == 12 and len({q["Id"] for q in queries}) == 12
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries} == set(loss.METRICS)
    assert all(q["MetricStat"]["Period"] == 3600 and q["MetricStat"]["Stat"] == "Sum" for q in queries)
    measured = loss.measure(INSTANCES, answers({0: (40, 50, 5, 5), 1: (500, 500, 0, 0)}), 3600)
    assert measured.unknown == ("i-3",)  # no datapoint at all: unknown, never 0%
    assert (measured.mirrored_bytes, measured.skipped_bytes) == (1090, 10)
    assert measured.percent == pytest.approx(10 / 1100 * 100)
    assert [(i.instance_id, i.percent) for i in measured.worst()] == [("i-1", 10.0)]
    assert [(z.zone, z.percent) for z in measured.by_zone()] == [("us-east-1a", 10.0), ("use1-az2", 0.0)]
    document = measured.to_json()
    assert document["instances"] == [{"instance": "i-1", "enis": ["eni-1"], "az": "us-east-1a",
                                      "mirrored_bytes": 90, "skipped_bytes": 10, "percent": 10.0}]  # fmt: skip
    assert (document["measured_instances"], document["unknown_instances"], document["percent"]) == (2, 1, 0.91)
    # Zero bytes counted is no traffic: unknown, not 0% loss.
    idle = loss.measure(INSTANCES[:1], answers({0: (0, 0, 0, 0)}), 3600)
    assert idle.percent is None and idle.to_json()["percent"] is None and idle.to_json()["mirrored_bytes"] is None


def test_values_that_are_not_byte_counts_are_ignored() -> None:
    values = {loss.query_id(0, 0): [math.nan, -5, math.inf, "x", True, 100.0], loss.query_id(0, 2): [None, 100]}
    measured = loss.measure(INSTANCES[:1], values, 600)
    assert (measured.mirrored_bytes, measured.skipped_bytes, measured.percent) == (100, 100, 50.0)


def test_a_failed_read_is_every_instance_unknown_with_the_reason() -> None:
    failed = loss.failed(INSTANCES, 3600, "Throttling: Rate exceeded")
    assert failed.percent is None and failed.unknown == ("i-1", "i-2", "i-3")
    assert failed.to_json()["error"] == "Throttling: Rate exceeded"
    both = loss.combine([failed, loss.measure(INSTANCES[:1], answers({0: (90, 0, 10, 0)}), 3600)], 3600)
    assert both.percent == 10.0 and both.error == "Throttling: Rate exceeded" and len(both.unknown) == 3


# --- guardrails ------------------------------------------------------------------------------------------

SOURCE = source(private_ip="10.0.1.5", security_groups=("sg-app",))
SERVED = planner.plan_source(SOURCE, [], Inventory((SENSOR,), (MirrorFilter("tmf-1"),)), SETTINGS)


def findings(**kw: Any) -> list[guardrails.Finding]:
    args: dict[str, Any] = {
        "decisions": [SERVED], "sources": {SOURCE.eni_id: SOURCE}, "targets": {SENSOR.target_id: SENSOR},
        "filters": {}, "groups": {}, "packet_length": 8000,
    }  # fmt: skip
    return guardrails.check(**{**args, **kw})


@pytest.mark.parametrize(
    ("inbound", "admitted"),
    [
        ((guardrails.Permission("tcp", 22, 22, ("0.0.0.0/0",)),), False),
        ((guardrails.Permission("udp", 4789, 4789, ("10.9.0.0/16",)),), False),  # not the source's address
        ((guardrails.Permission("udp", 4789, 4789, ("10.0.0.0/16",)),), True),
        ((guardrails.Permission("udp", 1, 65535, (), ("sg-app",)),), True),  # from the source's group
        ((guardrails.Permission("-1", None, None, (), ("sg-app",)),), True),  # all traffic, as the default group
        ((guardrails.Permission("17", 4789, 4789, (), (), True),), True),  # a prefix list: not resolved, taken as admitting
    ],
)
def test_an_eni_sensor_must_admit_vxlan_from_its_sources(
    inbound: tuple[guardrails.Permission, ...], admitted: bool
) -> None:
    sensor = Target(**{**SENSOR.__dict__, "security_groups": ("sg-sensor",)})
    found = findings(targets={sensor.target_id: sensor}, groups={"sg-sensor": guardrails.SecurityGroup("sg-sensor", inbound)})
    lines = [f.text for f in found if f.check == "security-group"]
    assert bool(lines) != admitted
    if lines:
        assert "10.0.1.5" in lines[0] and "add an inbound rule for UDP 4789" in lines[0]
    # A group that could not be read is unknown, never a finding.
    assert not [f for f in findings(targets={sensor.target_id: sensor}) if f.check == "security-group"]


def test_sources_with_jumbo_frames_are_truncated_at_an_eni_or_gwlb_endpoint_target() -> None:
    assert guardrails.instance_mtu("m5.large") == 9001 and guardrails.instance_mtu("m1.small") == 1500
    (found,) = [f for f in findings(packet_length=None) if f.check == "mtu"]
    assert "8947 bytes" in found.text and "lower those instances' MTU to 8947" in found.text
    assert not [f for f in findings(packet_length=8500) if f.check == "mtu"]  # truncation chosen
    endpoint = Target("tmt-gwlbe", "gateway-load-balancer-endpoint", "vpce-1", "vpc-1", "subnet-a1", "us-east-1a")
    served = planner.plan_source(SOURCE, [], Inventory((endpoint,), (MirrorFilter("tmf-1"),)), SETTINGS)
    (gwlb,) = [f for f in findings(decisions=[served], targets={endpoint.target_id: endpoint}, packet_length=8500)
               if f.check == "mtu"]  # fmt: skip
    assert "8446 bytes" in gwlb.text  # MIRROR_PACKET_LENGTH may go to 8500: still too long for an endpoint
    assert not [f for f in findings(decisions=[served], targets={endpoint.target_id: endpoint}, packet_length=8446)
                if f.check == "mtu"]  # fmt: skip


def rule(direction: str, number: int, action: str, protocol: int | None = None, ports: tuple[int, int] | None = None,
         cidr: str = "0.0.0.0/0") -> FilterRule:  # fmt: skip
    return FilterRule(direction, number, action, protocol, cidr, cidr, None, ports)


@pytest.mark.parametrize(
    ("rules", "mirrored"),
    [
        ((), False),  # a filter without rules mirrors nothing
        ((rule("ingress", 100, "accept"),), True),
        ((rule("ingress", 10, "reject", 17, (4789, 4789)), rule("ingress", 100, "accept")), False),
        ((rule("ingress", 200, "reject", 17, (4789, 4789)), rule("ingress", 100, "accept")), True),  # too late
        ((rule("ingress", 10, "reject", 17, (4789, 4789), "10.0.0.0/8"), rule("ingress", 100, "accept")), True),
        ((rule("egress", 100, "accept", 6),), False),  # TCP only
        ((rule("egress", 100, "accept", 17, (1, 1024)),), False),  # not the VXLAN port
        ((rule("egress", 100, "accept", None, None, "::/0"),), False),  # IPv6 only: VXLAN is IPv4
    ],
)
def test_a_filter_must_not_mirror_vxlan_itself(rules: tuple[FilterRule, ...], mirrored: bool) -> None:
    found = [f for f in findings(filters={"tmf-1": MirrorFilter("tmf-1", rules=rules)}) if f.check == "vxlan-filter"]
    assert bool(found) == mirrored
    if found:
        assert found[0].subject == "tmf-1" and "add a reject rule for UDP destination port 4789" in found[0].text


# --- the sweep's metrics ---------------------------------------------------------------------------------


def emf(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith('{"_aws"')]


def test_the_sweep_publishes_untrusted_sessions_by_account_and_loss_by_zone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-fn")
    hub = planner.plan_source(source(), [session("tms-r1", "tmt-rogue", 5)], INVENTORY, SETTINGS)
    member = planner.plan_source(source("eni-2"), [session("tms-r2", "tmt-gone", 5, eni="eni-2")], INVENTORY, SETTINGS)
    results = [Result(hub, "created", ""), Result(member, "created", "", account="111111111111")]
    measured = {"": loss.measure(INSTANCES, answers({0: (40, 50, 5, 5), 1: (500, 500, 0, 0)}), 3600)}
    report.evidence(results, measured, "us-east-1", "123456789012", SETTINGS)
    lines = emf(capsys.readouterr().out)
    by_dims = {tuple(d for d in line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]): line for line in lines}
    untrusted = [line for line in lines if "UntrustedSessions" in line]
    assert [(line.get("Account"), line["UntrustedSessions"]) for line in untrusted] == [
        (None, 2), ("111111111111", 1), ("123456789012", 1)
    ]  # fmt: skip
    zones = {line.get("AvailabilityZone"): line["MirrorLossPercent"] for line in lines if "MirrorLossPercent" in line}
    assert zones == {None: 10.0, "us-east-1a": 10.0, "use1-az2": 0.0}  # the worst AZ, then each
    assert ("FunctionName", "AvailabilityZone") in by_dims
    # No loss read (not the schedule's sweep, or nothing mirrored): nothing published, never a 0%.
    report.evidence([Result(planner.plan_source(source(), [], INVENTORY, SETTINGS), "created", "")], {}, "us-east-1",
                    "123456789012", SETTINGS)  # fmt: skip
    assert [line["UntrustedSessions"] for line in emf(capsys.readouterr().out)] == [0]
