"""Tagging: opt out, opt in, routes; and CreateTags/DeleteTags events taking effect at once."""

import dataclasses
import logging
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from traffic_mirror.handler import app
from traffic_mirror.handler.model import Source
from traffic_mirror.handler.planner import tag_intent
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import run_instances_record, scheduled, wrap

REGION = "us-east-1"
FALSE_LIKE = ["false", "off", "no", "0", "disabled", "FALSE", "Off", " No ", "DISABLED"]
TRUE_LIKE = ["true", "on", "yes", "1", "enabled", "TRUE", "On", "Yes ", "ENABLED", ""]
ROUTES = [("pci", "pci"), ("PCI", "pci"), (" Team-A ", "team-a")]
TAGGED = Settings(scope="tagged")


# --- the rules, pure ---------------------------------------------------------------------


def src(instance_tags: dict[str, str] | None = None, eni_tags: dict[str, str] | None = None) -> Source:
    return Source(
        "eni-0000000000000001",
        "i-0000000000000001",
        "m5.large",
        "subnet-1",
        "vpc-1",
        "us-east-1a",
        instance_tags or {},
        eni_tags or {},
    )


@pytest.mark.parametrize("scope", ["all", "tagged"])
@pytest.mark.parametrize("value", FALSE_LIKE)
def test_false_like_values_opt_out_in_both_scopes(scope: str, value: str) -> None:
    for source in (src({"Mirror": value}), src(eni_tags={"Mirror": value})):
        intent = tag_intent(source, "Mirror", scope)
        assert not intent.in_scope and "opted out" in intent.reason


@pytest.mark.parametrize("scope", ["all", "tagged"])
@pytest.mark.parametrize("value", [*TRUE_LIKE, "default", "Default"])
def test_true_like_values_opt_in_unrouted_in_both_scopes(scope: str, value: str) -> None:
    for source in (src({"Mirror": value}), src(eni_tags={"Mirror": value})):
        intent = tag_intent(source, "Mirror", scope)
        assert intent.in_scope and intent.route is None


@pytest.mark.parametrize("scope", ["all", "tagged"])
@pytest.mark.parametrize(("value", "route"), ROUTES)
def test_any_other_value_is_a_route_in_both_scopes(scope: str, value: str, route: str) -> None:
    intent = tag_intent(src({"Mirror": value}), "Mirror", scope)
    assert intent.in_scope and intent.route == route


def test_untagged_depends_on_scope() -> None:
    assert tag_intent(src(), "Mirror", "all").in_scope
    assert not tag_intent(src(), "Mirror", "tagged").in_scope
    assert not tag_intent(src({"mirror": "true"}), "Mirror", "tagged").in_scope  # keys are case-sensitive


def test_custom_key_and_eni_overrides_instance() -> None:
    assert not tag_intent(src({"TrafficMirror": "off", "Mirror": "on"}), "TrafficMirror", "all").in_scope
    assert tag_intent(src({"Mirror": "off"}), "TrafficMirror", "all").in_scope
    assert tag_intent(src({"Mirror": "off"}, {"Mirror": "on"}), "Mirror", "all").in_scope
    assert not tag_intent(src({"Mirror": "on"}, {"Mirror": "off"}), "Mirror", "all").in_scope
    assert tag_intent(src({"Mirror": "pci"}, {"Mirror": "dmz"}), "Mirror", "all").route == "dmz"
    assert tag_intent(src({"Mirror": "pci"}, {"Mirror": "true"}), "Mirror", "all").route is None
    assert tag_intent(src({"Mirror": "off"}, {"Mirror": "pci"}), "Mirror", "tagged").route == "pci"


# --- end to end: helpers -----------------------------------------------------------------


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def sessions_of(ec2: Any, eni: str) -> list[dict[str, Any]]:
    return [s for s in sessions(ec2) if s["NetworkInterfaceId"] == eni]


def is_managed(session: dict[str, Any]) -> bool:
    return any(t["Key"] == MANAGED_TAG_KEY for t in session.get("Tags", []))


def primary(instance: dict[str, Any]) -> str:
    return str(
        next(e for e in instance["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 0)[
            "NetworkInterfaceId"
        ]
    )


def secondary(instance: dict[str, Any]) -> str:
    return str(
        next(e for e in instance["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 1)[
            "NetworkInterfaceId"
        ]
    )


def launch_event(instances: list[dict[str, Any]], event_id: str = "launch-1") -> dict[str, Any]:
    return wrap(run_instances_record(instances, event_id=event_id))


def tag_event(name: str, resources: list[str], tags: dict[str, str | None], event_id: str) -> dict[str, Any]:
    """The shape of a real CloudTrail CreateTags/DeleteTags record (DeleteTags may omit values)."""
    items = [{"key": k} if v is None else {"key": k, "value": v} for k, v in tags.items()]
    record = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012",
            "userName": "alice",
        },
        "eventTime": "2026-11-27T12:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.17.60 md/command#ec2.create-tags",
        "requestParameters": {
            "resourcesSet": {"items": [{"resourceId": r} for r in resources]},
            "tagSet": {"items": items},
        },
        "responseElements": {"requestId": f"req-{event_id}", "_return": True},
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    return wrap(record)


def tag(ec2: Any, resource: str, value: str, key: str = "Mirror") -> dict[str, Any]:
    """Tag in moto and return the CloudTrail event that call produces."""
    ec2.create_tags(Resources=[resource], Tags=[{"Key": key, "Value": value}])
    return tag_event("CreateTags", [resource], {key: value}, f"tag-{resource}-{value}")


def untag(ec2: Any, resource: str, key: str = "Mirror") -> dict[str, Any]:
    ec2.delete_tags(Resources=[resource], Tags=[{"Key": key}])
    return tag_event("DeleteTags", [resource], {key: None}, f"untag-{resource}")


def tag_mirror_resource(resource: str, value: str, key: str = "Mirror") -> dict[str, Any]:
    """Tag a traffic mirror target or filter, and return the CloudTrail event AWS would send.

    moto refuses CreateTags on its own traffic-mirror ids (`traf-mir-tar-...`), and snapshots a
    target's or filter's tags at creation, so the tag is set on moto's object; the event names the
    resource the way AWS does (`tmt-...`, `tmf-...`).
    """
    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    obj = backend.traffic_mirror_targets.get(resource) or backend.traffic_mirror_filters[resource]
    obj.add_tags({key: value})
    obj.tags = obj.get_tags()
    aws_id = resource.replace("traf-mir-tar-", "tmt-").replace("traf-mir-fil-", "tmf-")
    return tag_event("CreateTags", [aws_id], {key: value}, f"tag-{resource}-{value}")


def foreign_session(ec2: Any, eni: str, target: str, filter_id: str, number: int = 7) -> str:
    created = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=eni,
        TrafficMirrorTargetId=target,
        TrafficMirrorFilterId=filter_id,
        SessionNumber=number,
    )
    return str(created["TrafficMirrorSession"]["TrafficMirrorSessionId"])


def add_filter(ec2: Any, account: sandbox.Account, name: str, tags: dict[str, str] | None = None) -> str:
    pairs = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    spec = [{"ResourceType": "traffic-mirror-filter", "Tags": pairs}] if pairs else []
    created = ec2.create_traffic_mirror_filter(Description=name, TagSpecifications=spec)
    account.filters[name] = created["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    return str(account.filters[name])


@pytest.fixture
def routed(aws: Any, account: sandbox.Account) -> sandbox.Account:
    """The account plus a `pci` sensor beside the default one in us-east-1a, and a `pci` filter."""
    sandbox.add_eni_target(
        aws, account, account.subnets["us-east-1a"], "pci", "c5.24xlarge", {"Mirror": "pci"}
    )
    add_filter(aws, account, "pci", {"Mirror": "PCI"})
    return account



# --- value classes, end to end -----------------------------------------------------------


@pytest.mark.parametrize("scope", ["all", "tagged"])
@pytest.mark.parametrize(
    ("value", "expect"),
    [
        *((v, "none") for v in FALSE_LIKE[:6]),
        *((v, "default") for v in TRUE_LIKE[:6]),
        ("PCI", "pci"),
        (None, "untagged"),
    ],
)
def test_every_value_class_end_to_end(
    aws: Any, routed: sandbox.Account, scope: str, value: str | None, expect: str
) -> None:
    tags = {"Name": "web"} if value is None else {"Name": "web", "Mirror": value}
    (instance,) = sandbox.launch(aws, routed, routed.subnets["us-east-1a"], tags=tags)
    app.handle(launch_event([instance]), settings=dataclasses.replace(Settings(), scope=scope))
    found = sessions(aws)
    if expect == "untagged":
        expect = "default" if scope == "all" else "none"
    if expect == "none":
        assert found == []
        return
    (session,) = found
    assert session["NetworkInterfaceId"] == primary(instance)
    assert (
        session["TrafficMirrorTargetId"]
        == routed.targets["sensor-us-east-1a-0" if expect == "default" else "pci"]
    )
    assert session["TrafficMirrorFilterId"] == routed.filters[expect]


def test_custom_tag_key(aws: Any, account: sandbox.Account) -> None:
    settings = dataclasses.replace(Settings(), tag_key="TrafficMirror")
    subnet = account.subnets["us-east-1a"]
    (opted_out,) = sandbox.launch(aws, account, subnet, tags={"TrafficMirror": "Off", "Mirror": "on"})
    (other_key,) = sandbox.launch(aws, account, subnet, tags={"Mirror": "off"})
    app.handle(launch_event([opted_out, other_key]), settings=settings)
    assert {s["NetworkInterfaceId"] for s in sessions(aws)} == {primary(other_key)}
    # A CreateTags of the default key means nothing under a custom key.
    assert app.handle(tag(aws, primary(other_key), "off"), settings=settings)["counts"]["Ignored"] == 1
    app.handle(tag(aws, opted_out["InstanceId"], "yes", key="TrafficMirror"), settings=settings)
    assert {s["NetworkInterfaceId"] for s in sessions(aws)} == {primary(other_key), primary(opted_out)}


@pytest.mark.parametrize(("instance_value", "eni_value"), [("off", "on"), ("on", "off"), ("off", "pci")])
def test_eni_tag_overrides_instance_tag(
    aws: Any, routed: sandbox.Account, instance_value: str, eni_value: str
) -> None:
    (instance,) = sandbox.launch(
        aws, routed, routed.subnets["us-east-1a"], tags={"Mirror": instance_value}, extra_enis=1
    )
    aws.create_tags(Resources=[secondary(instance)], Tags=[{"Key": "Mirror", "Value": eni_value}])
    app.handle(launch_event([instance]))
    mirrored = {s["NetworkInterfaceId"]: s for s in sessions(aws)}
    expected_eni = secondary(instance) if eni_value != "off" else primary(instance)
    assert set(mirrored) == {expected_eni}
    if eni_value == "pci":
        assert mirrored[expected_eni]["TrafficMirrorTargetId"] == routed.targets["pci"]


# --- routes ------------------------------------------------------------------------------


def test_route_to_target_and_filter_and_default_filter_without_one(aws: Any, routed: sandbox.Account) -> None:
    subnet = routed.subnets["us-east-1a"]
    sandbox.add_eni_target(aws, routed, subnet, "dmz", "c5.24xlarge", {"Mirror": "dmz"})
    (pci,) = sandbox.launch(aws, routed, subnet, tags={"Mirror": "pci"})
    (dmz,) = sandbox.launch(aws, routed, subnet, tags={"Mirror": "DMZ"})
    app.handle(launch_event([pci, dmz]))
    by = {s["NetworkInterfaceId"]: s for s in sessions(aws)}
    assert by[primary(pci)]["TrafficMirrorTargetId"] == routed.targets["pci"]
    assert by[primary(pci)]["TrafficMirrorFilterId"] == routed.filters["pci"]
    assert by[primary(dmz)]["TrafficMirrorTargetId"] == routed.targets["dmz"]
    assert by[primary(dmz)]["TrafficMirrorFilterId"] == routed.filters["default"]


def test_route_with_no_eligible_target_is_not_mirrored_anywhere(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    # The only pci sensor is in us-east-1b: an ENI target cannot serve us-east-1a.
    sandbox.add_eni_target(
        aws, account, account.subnets["us-east-1b"], "pci-b", "c5.24xlarge", {"Mirror": "pci"}
    )
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], tags={"Mirror": "pci"})
    result = app.handle(launch_event([instance]))
    assert result["counts"]["Skipped"] == 1 and sessions(aws) == []
    reasons = [r.__dict__.get("reason", "") for r in logged if r.getMessage() == "decision"]
    assert any("no target tagged Mirror=pci can serve us-east-1a" in r for r in reasons), reasons


def test_routed_targets_and_filters_never_serve_unrouted_enis(aws: Any, routed: sandbox.Account) -> None:
    instances = sandbox.launch(aws, routed, routed.subnets["us-east-1a"], count=12)
    app.handle(launch_event(instances))
    found = sessions(aws)
    assert len(found) == 12
    assert {s["TrafficMirrorTargetId"] for s in found} == {routed.targets["sensor-us-east-1a-0"]}
    assert {s["TrafficMirrorFilterId"] for s in found} == {routed.filters["default"]}


def test_filter_tagged_default_stays_the_default(aws: Any, routed: sandbox.Account) -> None:
    subnet = routed.subnets["us-east-1a"]
    chosen = add_filter(aws, routed, "chosen", {"Mirror": "default"})  # now three filters, one tagged default
    add_filter(aws, routed, "spare")
    sandbox.add_eni_target(aws, routed, subnet, "dmz", "c5.24xlarge", {"Mirror": "dmz"})
    (plain,) = sandbox.launch(aws, routed, subnet)
    (pci,) = sandbox.launch(aws, routed, subnet, tags={"Mirror": "pci"})
    (dmz,) = sandbox.launch(aws, routed, subnet, tags={"Mirror": "dmz"})
    app.handle(launch_event([plain, pci, dmz]))
    filters = {s["NetworkInterfaceId"]: s["TrafficMirrorFilterId"] for s in sessions(aws)}
    assert filters == {primary(plain): chosen, primary(pci): routed.filters["pci"], primary(dmz): chosen}


# --- CreateTags / DeleteTags events --------------------------------------------------------


@pytest.mark.parametrize("on", ["instance", "eni"])
def test_opt_out_removes_only_managed_sessions(aws: Any, account: sandbox.Account, on: str) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = primary(instance)
    app.handle(launch_event([instance]))
    theirs = foreign_session(aws, eni, account.targets["sensor-us-east-1a-0"], account.filters["default"])
    result = app.handle(tag(aws, instance["InstanceId"] if on == "instance" else eni, "off"))
    assert result["counts"]["Deleted"] == 1
    assert [s["TrafficMirrorSessionId"] for s in sessions(aws)] == [theirs]
    # Opting back in brings ours back, beside theirs.
    result = app.handle(tag(aws, instance["InstanceId"] if on == "instance" else eni, "on"))
    assert result["counts"]["Created"] == 1
    assert sum(is_managed(s) for s in sessions(aws)) == 1 and len(sessions(aws)) == 2


@pytest.mark.parametrize("on", ["instance", "eni"])
def test_route_change_modifies_the_session_in_place(
    aws: Any, routed: sandbox.Account, counter: CallCounter, on: str
) -> None:
    (instance,) = sandbox.launch(aws, routed, routed.subnets["us-east-1a"])
    eni = primary(instance)
    app.handle(launch_event([instance]))
    (before,) = sessions(aws)
    theirs = foreign_session(aws, eni, routed.targets["sensor-us-east-1a-0"], routed.filters["default"])
    counter.calls.clear()
    result = app.handle(tag(aws, instance["InstanceId"] if on == "instance" else eni, "pci"))
    assert result["counts"]["Modified"] == 1
    assert counter.calls.get("ModifyTrafficMirrorSession") == 1
    assert (
        "CreateTrafficMirrorSession" not in counter.calls
        and "DeleteTrafficMirrorSession" not in counter.calls
    )
    after = {s["TrafficMirrorSessionId"]: s for s in sessions(aws)}
    moved = after[before["TrafficMirrorSessionId"]]
    assert moved["TrafficMirrorTargetId"] == routed.targets["pci"]
    assert moved["TrafficMirrorFilterId"] == routed.filters["pci"]
    assert moved["SessionNumber"] == before["SessionNumber"]
    assert after[theirs]["TrafficMirrorTargetId"] == routed.targets["sensor-us-east-1a-0"]
    # And back: the route tag removed.
    result = app.handle(untag(aws, instance["InstanceId"] if on == "instance" else eni))
    assert result["counts"]["Modified"] == 1
    back = {s["TrafficMirrorSessionId"]: s for s in sessions(aws)}[before["TrafficMirrorSessionId"]]
    assert back["TrafficMirrorTargetId"] == routed.targets["sensor-us-east-1a-0"]
    assert back["TrafficMirrorFilterId"] == routed.filters["default"]


@pytest.mark.parametrize("on", ["instance", "eni"])
def test_newly_in_scope_gets_mirrored_at_once(aws: Any, account: sandbox.Account, on: str) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1b"], extra_enis=1)
    app.handle(launch_event([instance]), settings=TAGGED)
    app.handle(scheduled("sched-1", rule=None), settings=TAGGED)
    assert sessions(aws) == []
    resource = instance["InstanceId"] if on == "instance" else secondary(instance)
    result = app.handle(tag(aws, resource, "true"), settings=TAGGED)
    expected = {primary(instance), secondary(instance)} if on == "instance" else {secondary(instance)}
    assert result["counts"]["Created"] == len(expected)
    assert {s["NetworkInterfaceId"] for s in sessions(aws)} == expected
    # Out of scope again when the tag goes.
    result = app.handle(untag(aws, resource), settings=TAGGED)
    assert result["counts"]["Deleted"] == len(expected) and sessions(aws) == []


def test_delete_tags_of_an_opt_out_brings_the_eni_back(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], tags={"Mirror": "off"})
    app.handle(launch_event([instance]))
    assert sessions(aws) == []
    assert app.handle(untag(aws, instance["InstanceId"]))["counts"]["Created"] == 1


def test_tagging_a_target_with_a_route_takes_effect_at_once(aws: Any, account: sandbox.Account) -> None:
    subnet = account.subnets["us-east-1a"]
    spare = sandbox.add_eni_target(aws, account, subnet, "spare", "c5.24xlarge")
    (pci,) = sandbox.launch(aws, account, subnet, tags={"Mirror": "pci"})
    (plain,) = sandbox.launch(aws, account, subnet)
    app.handle(launch_event([pci, plain]))
    assert {s["NetworkInterfaceId"] for s in sessions(aws)} == {primary(plain)}
    result = app.handle(tag_mirror_resource(spare, "pci"))
    assert result["counts"]["Created"] == 1
    by = {s["NetworkInterfaceId"]: s for s in sessions(aws)}
    assert by[primary(pci)]["TrafficMirrorTargetId"] == spare
    assert by[primary(plain)]["TrafficMirrorTargetId"] != spare


def test_tagging_a_filter_with_a_route_takes_effect_at_once(aws: Any, routed: sandbox.Account) -> None:
    (pci,) = sandbox.launch(aws, routed, routed.subnets["us-east-1a"], tags={"Mirror": "pci"})
    app.handle(launch_event([pci]))
    (before,) = sessions(aws)
    assert before["TrafficMirrorFilterId"] == routed.filters["pci"]
    newer = add_filter(aws, routed, "pci-2", {"Mirror": "staging"})
    # The old pci filter retired: the route falls back to the default filter...
    assert app.handle(tag_mirror_resource(routed.filters["pci"], "retired"))["counts"]["Modified"] == 1
    (between,) = sessions(aws)
    assert between["TrafficMirrorFilterId"] == routed.filters["default"]
    # ...and the new one tagged for the route takes over, in place.
    assert app.handle(tag_mirror_resource(newer, "PCI"))["counts"]["Modified"] == 1
    (after,) = sessions(aws)
    assert after["TrafficMirrorSessionId"] == before["TrafficMirrorSessionId"]
    assert after["TrafficMirrorFilterId"] == newer
    assert after["TrafficMirrorTargetId"] == routed.targets["pci"]


@pytest.mark.parametrize(
    "event",
    [
        tag_event("CreateTags", ["i-0123456789abcdef0"], {"Name": "web", "Owner": "team"}, "t1"),
        tag_event("DeleteTags", ["eni-0123456789abcdef0"], {"Owner": None}, "t2"),
        tag_event("CreateTags", ["vpc-0123456789abcdef0", "sg-0123456789abcdef0"], {"Mirror": "off"}, "t3"),
        tag_event("CreateTags", ["i-0123456789abcdef0"], {"mirror": "off"}, "t4"),
    ],
)
def test_tag_events_without_our_key_cost_nothing(
    aws: Any, counter: CallCounter, event: dict[str, Any]
) -> None:
    result = app.handle(event)
    assert result["counts"]["Ignored"] == 1
    assert counter.total() == 0, counter.calls


# --- order independence --------------------------------------------------------------------


@pytest.mark.parametrize("order", ["tag-event-first", "launch-event-first", "as-it-happened"])
@pytest.mark.parametrize(("launched", "now"), [("true", "off"), ("off", "true")])
def test_tag_and_launch_events_in_any_order_agree(
    aws: Any, account: sandbox.Account, order: str, launched: str, now: str
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], tags={"Mirror": launched})
    launch = launch_event([instance])  # carries Mirror=<launched> in its tagSet
    assert {"key": "Mirror", "value": launched} in launch["detail"]["responseElements"]["instancesSet"][
        "items"
    ][0]["tagSet"]["items"]
    if order == "as-it-happened":
        app.handle(launch)
        app.handle(tag(aws, instance["InstanceId"], now))
    else:
        retag = tag(aws, instance["InstanceId"], now)
        first, second = (retag, launch) if order == "tag-event-first" else (launch, retag)
        app.handle(first)
        app.handle(second)
    expected = [primary(instance)] if now == "true" else []
    assert [s["NetworkInterfaceId"] for s in sessions(aws)] == expected
