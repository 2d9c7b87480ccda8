"""Event parsing, pure: every shape real records come in -> the right Change, or a clean Skip."""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traffic_mirror.handler.events import Change, Skip, parse, tags_of
from traffic_mirror.handler.settings import Settings

from testsupport.event_builders import EVENTS_DIR, api_call, load_record, scheduled, state_change, wrap

EVENTS = sorted(p for p in EVENTS_DIR.glob("*.json"))
ROLE_ARN = "arn:aws:iam::123456789012:role/mirror-automation"
FUNCTION = "mirror-automation-fn"
SETTINGS = Settings(role_arn=ROLE_ARN, function_name=FUNCTION)


def record(name: str) -> dict[str, Any]:
    return load_record(name)


def envelope(data: dict[str, Any]) -> dict[str, Any]:
    """EventBridge files as they are; bare CloudTrail records wrapped as EventBridge delivers them."""
    return data if "detail" in data else wrap(data)


def cloudtrail(
    name: str,
    request: Any = None,
    response: Any = None,
    *,
    identity: dict[str, Any] | None = None,
    error: str | None = None,
    event_id: str = "ev-1",
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity or {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": request,
        "responseElements": response,
        "eventID": event_id,
    }
    if error:
        rec["errorCode"] = error
    return wrap(rec)


def instances_set(*ids: str) -> dict[str, Any]:
    return {"instancesSet": {"items": [{"instanceId": i} for i in ids]}}


def tags_request(resources: list[str], tags: dict[str, str] | None) -> dict[str, Any]:
    request: dict[str, Any] = {"resourcesSet": {"items": [{"resourceId": r} for r in resources]}}
    if tags is not None:
        request["tagSet"] = {"items": [{"key": k, "value": v} for k, v in tags.items()]}
    return request


def assumed_role(role: str, session: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
        "accountId": "123456789012",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::123456789012:role/{role}",
                "accountId": "123456789012",
                "userName": role,
            },
            "attributes": {"creationDate": "2026-11-27T12:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def change(event: Any, settings: Settings = SETTINGS) -> Change:
    parsed = parse(event, settings)
    assert isinstance(parsed, Change), parsed
    return parsed


def skip(event: Any, settings: Settings = SETTINGS) -> Skip:
    parsed = parse(event, settings)
    assert isinstance(parsed, Skip), parsed
    return parsed


# --- tagSet and other shapes of RunInstances ---------------------------------------------


@pytest.mark.parametrize(
    ("tag_set", "expected"),
    [
        ("missing", {}),
        ({}, {}),
        ("", {}),
        (None, {}),
        ({"items": []}, {}),
        (
            {"items": [{"key": "Mirror", "value": "off"}, {"key": "Name", "value": "db"}]},
            {"Mirror": "off", "Name": "db"},
        ),
        ({"item": [{"key": "Mirror", "value": "pci"}]}, {"Mirror": "pci"}),
        ([{"key": "Mirror", "value": "yes"}], {"Mirror": "yes"}),
        ({"items": [{"key": "Mirror"}, "junk", {"value": "orphan"}]}, {"Mirror": ""}),
    ],
)
def test_every_tag_set_shape(tag_set: Any, expected: dict[str, str]) -> None:
    rec = record("RunInstances__Cloudryer-cloudryer-cli__2.json")
    item = rec["responseElements"]["instancesSet"]["items"][0]
    if tag_set == "missing":
        item.pop("tagSet", None)
    else:
        item["tagSet"] = tag_set
    parsed = change(wrap(rec))
    assert parsed.kind == "launch"
    (source,) = parsed.sources
    assert dict(source.instance_tags) == expected
    assert source.eni_id == "eni-0ee8a52bd5c8a75d8"


def test_tags_of_every_shape() -> None:
    assert tags_of(None) == {}
    assert tags_of("") == {}
    assert tags_of({}) == {}
    assert tags_of({"items": [{"Key": "Mirror", "Value": "on"}]}) == {"Mirror": "on"}
    assert tags_of({"items": [{"key": "Mirror", "value": None}]}) == {"Mirror": ""}
    assert tags_of({"items": "not a list"}) == {}


def test_private_ip_addresses_set_with_item_and_full_source() -> None:
    rec = record("RunInstances__elastic-integrations__1.json")
    eni = rec["responseElements"]["instancesSet"]["items"][0]["networkInterfaceSet"]["items"][0]
    assert "item" in eni["privateIpAddressesSet"]
    parsed = change(wrap(rec))
    (source,) = parsed.sources
    assert (source.eni_id, source.subnet_id, source.vpc_id) == (
        "eni-043138569d4a31e90",
        "subnet-c4bf5e9b",
        "vpc-73d2e309",
    )
    assert source.instance_id == "i-0f2f135de18b555e3"
    assert source.instance_type == "t1.micro"
    assert source.az.startswith("us-east-1")
    assert source.trigger == rec["eventID"]
    assert source.instance_tags["team"] == "cloud"


def test_legacy_eni_shape_takes_eni_level_az() -> None:
    """2015 record: ENI carries its own availabilityZone; attachment.instanceId is a number string."""
    rec = record("RunInstances__GorillaStack-auto-tag__1.json")
    rec["responseElements"]["instancesSet"]["items"][0].pop("placement")
    parsed = change(wrap(rec))
    (source,) = parsed.sources
    assert source.az == "ap-northeast-1a"
    assert source.instance_id == "i-e38a6646"


def test_incomplete_eni_data_is_described_not_guessed() -> None:
    rec = record("RunInstances__Cloudryer-cloudryer-cli__2.json")
    item = rec["responseElements"]["instancesSet"]["items"][0]
    item.pop("networkInterfaceSet")
    parsed = change(wrap(rec))
    assert parsed.sources == ()
    assert parsed.instance_ids == ("i-075ea41997e5fd321",)


def test_two_instances_in_one_record() -> None:
    parsed = change(wrap(record("RunInstances__cloud-custodian-cloud-custodian__1.json")))
    assert {s.instance_id for s in parsed.sources} == {"i-784cdacd", "i-7b4cdace"}
    assert len({s.eni_id for s in parsed.sources}) == 2


# --- failed, dry-run, unknown and malformed ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "RunInstances__panther-labs-panther-analysis__3.json",
        "RunInstances__panther-labs-panther-analysis__7.json",
        "CreateTrafficMirrorSession__panther-labs-panther-analysis__1.json",
    ],
)
def test_failed_and_dry_run_records_are_rejected(name: str) -> None:
    rec = record(name)
    assert rec.get("errorCode") and rec.get("responseElements") is None
    result = skip(wrap(rec))
    assert result.status == "rejected"
    assert "nothing was changed" in result.reason
    if "DryRun" in rec["errorCode"]:
        assert "dry run" in result.reason


def test_failed_call_with_fake_region_still_rejected_cleanly() -> None:
    result = skip(wrap(record("RunInstances__DataDog-stratus-red-team__1.json")))
    assert result.status == "rejected"


@pytest.mark.parametrize("name", ["StartInstances", "AttachNetworkInterface", "DeleteTrafficMirrorSession"])
def test_failed_calls_of_every_kind_are_rejected(name: str) -> None:
    event = cloudtrail(name, instances_set("i-0123456789abcdef0"), None, error="Client.UnauthorizedOperation")
    result = skip(event)
    assert result.status == "rejected"
    assert "failed call (Client.UnauthorizedOperation)" in result.reason


@pytest.mark.parametrize("name", ["DescribeInstances", "CreateVpc", "ModifyInstanceAttribute", "", None])
def test_other_event_names_are_rejected(name: Any) -> None:
    result = skip(cloudtrail(name, {}, {}))
    assert result.status == "rejected"
    assert "unsupported event" in result.reason


def test_create_traffic_mirror_session_is_not_ours_to_handle() -> None:
    result = skip(wrap(record("CreateTrafficMirrorSession__elastic-integrations__1.json")))
    assert result.status == "rejected"


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "RunInstances",
        42,
        {},
        {"detail-type": "AWS API Call via CloudTrail", "region": "us-east-1", "detail": None},
        {"detail-type": "AWS API Call via CloudTrail", "region": "us-east-1", "detail": "junk"},
        {"detail-type": "AWS API Call via CloudTrail", "region": "us-east-1", "detail": []},
        {"detail-type": "AWS API Call via CloudTrail", "detail": {"eventName": "RunInstances"}},
        {"detail-type": "Something Else", "source": "aws.ec2", "region": "us-east-1", "detail": {}},
        {"detail-type": "Scheduled Event", "source": "custom.app", "region": "us-east-1", "detail": {}},
        {"Records": []},
    ],
)
def test_malformed_events_are_rejected(event: Any) -> None:
    assert skip(event).status == "rejected"


@pytest.mark.parametrize(
    "response",
    [
        None,
        {},
        {"instancesSet": None},
        {"instancesSet": {}},
        {"instancesSet": {"items": []}},
        {"instancesSet": ""},
        {"instancesSet": {"items": ["junk", 3]}},
    ],
)
def test_run_instances_without_usable_instances_is_rejected(response: Any) -> None:
    result = skip(cloudtrail("RunInstances", {}, response))
    assert result.status == "rejected"


def test_odd_instance_id_from_a_real_record_is_rejected() -> None:
    data = json.loads((EVENTS_DIR / "EventBridge-RunInstances__vikyol-aws-tags__1.json").read_text())
    result = skip(data)
    assert result.status == "rejected"
    assert "i-0cd10d631e4be6§122" in result.reason


def test_odd_ids_are_partially_rejected() -> None:
    """One good instance and one with a redaction artefact: keep the good one, report the other."""
    rec = record("RunInstances__cloud-custodian-cloud-custodian__1.json")
    items = rec["responseElements"]["instancesSet"]["items"]
    items[1]["instanceId"] = "i-0cd10d631e4be6§122"
    parsed = change(wrap(rec))
    assert {s.instance_id for s in parsed.sources} == {"i-784cdacd"}
    assert parsed.rejected == ("malformed instance id 'i-0cd10d631e4be6§122'",)


def test_odd_eni_id_sends_the_instance_to_be_described() -> None:
    rec = record("RunInstances__Cloudryer-cloudryer-cli__2.json")
    eni = rec["responseElements"]["instancesSet"]["items"][0]["networkInterfaceSet"]["items"][0]
    eni["networkInterfaceId"] = "eni-03e4999e8050000§"
    parsed = change(wrap(rec))
    assert parsed.sources == ()
    assert parsed.instance_ids == ("i-075ea41997e5fd321",)


def test_start_instances_partially_rejected() -> None:
    event = cloudtrail("StartInstances", instances_set("i-0123456789abcdef0", "i-bad§id"), None)
    parsed = change(event)
    assert parsed.instance_ids == ("i-0123456789abcdef0",)
    assert parsed.rejected == ("malformed instance id 'i-bad§id'",)
    assert skip(cloudtrail("StartInstances", instances_set("i-§"), None)).status == "rejected"
    assert skip(cloudtrail("StartInstances", {}, {})).status == "rejected"


def _mutations(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*path, key)
            yield from _mutations(sub, (*path, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield (*path, index)
            yield from _mutations(sub, (*path, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copied = copy.deepcopy(value)
    node = copied
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return copied


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_no_shape_makes_parse_raise(path: Path) -> None:
    """Every node of every real record replaced by None, "", [], {}, 0 or a list: never an exception."""
    event = envelope(json.loads(path.read_text()))
    for where in _mutations(event):
        junks: tuple[Any, ...] = (None, "", [], {}, 0, ["x"])
        for junk in junks:
            result = parse(_replace(event, where, junk), SETTINGS)
            assert isinstance(result, Change | Skip)


# --- every event kind -> the right Change ------------------------------------------------


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_every_real_record_parses_to_a_change_or_skip(path: Path) -> None:
    result = parse(envelope(json.loads(path.read_text())), SETTINGS)
    assert isinstance(result, Change | Skip)
    name = path.name.split("__")[0]
    if name == "TerminateInstances":
        assert isinstance(result, Skip) and result.status == "ignored"
    if name == "StartInstances" and isinstance(result, Change):
        assert result.kind == "instances" and result.instance_ids


def test_start_instances_real_record_names_both_instances() -> None:
    parsed = change(wrap(record("StartInstances__panther-labs-panther-analysis__1.json")))
    assert parsed.kind == "instances"
    assert set(parsed.instance_ids) == {"i-EXAMPLEaff4840c22", "i-EXAMPLE56126103cb"}
    assert parsed.sources == ()


def test_start_instances_without_event_id_uses_envelope_id() -> None:
    rec = record("StartInstances__awsdocs-aws-cloudtrail-user-guide__1.json")
    assert "eventID" not in rec
    parsed = change(wrap(rec, event_id="envelope-7"))
    assert parsed.event_id == "envelope-7"
    assert parsed.region == "us-east-2"


def test_stop_instances_follows_release_on_stop() -> None:
    event = cloudtrail(
        "StopInstances", instances_set("i-0123456789abcdef0"), instances_set("i-0123456789abcdef0")
    )
    assert skip(event).status == "ignored"
    released = change(event, Settings(release_on_stop=True))
    assert released.kind == "release-instances"
    assert released.instance_ids == ("i-0123456789abcdef0",)


def test_attach_network_interface_real_record() -> None:
    parsed = change(wrap(record("AttachNetworkInterface__Cloudryer-cloudryer-cli__1.json")))
    assert parsed.kind == "enis"
    assert parsed.eni_ids == ("eni-0a9c4b60624c0e41d",)
    bad = cloudtrail("AttachNetworkInterface", {"networkInterfaceId": "eni-§"}, {})
    assert skip(bad).status == "rejected"


def test_detach_network_interface_follows_release_on_stop() -> None:
    event = cloudtrail("DetachNetworkInterface", {"attachmentId": "eni-attach-0123456789"}, {})
    assert skip(event).status == "ignored"
    assert change(event, Settings(release_on_stop=True)).kind == "sweep"


@pytest.mark.parametrize(
    "path", sorted(EVENTS_DIR.glob("TerminateInstances__*.json")), ids=lambda p: p.name
)
def test_terminate_instances_is_ignored(path: Path) -> None:
    result = skip(wrap(json.loads(path.read_text())))
    assert result.status == "ignored"


@pytest.mark.parametrize(
    ("request_", "response"),
    [
        (
            {"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": "tms-0123456789abcdef0"}},
            {
                "DeleteTrafficMirrorSessionResponse": {
                    "trafficMirrorSessionId": "tms-0123456789abcdef0",
                    "requestId": "r-1",
                }
            },
        ),
        ({"trafficMirrorSessionId": "tms-0123456789abcdef0"}, None),
        (None, None),
    ],
)
def test_delete_traffic_mirror_session_is_a_sweep(request_: Any, response: Any) -> None:
    parsed = change(cloudtrail("DeleteTrafficMirrorSession", request_, response))
    assert parsed.kind == "sweep"


def test_create_tags_on_instances_and_enis() -> None:
    on_instance = change(
        cloudtrail("CreateTags", tags_request(["i-0123456789abcdef0"], {"Mirror": "off"}), {})
    )
    assert (on_instance.kind, on_instance.instance_ids) == ("instances", ("i-0123456789abcdef0",))
    on_eni = change(cloudtrail("CreateTags", tags_request(["eni-0123456789abcdef0"], {"Mirror": "off"}), {}))
    assert (on_eni.kind, on_eni.eni_ids) == ("enis", ("eni-0123456789abcdef0",))
    both = change(
        cloudtrail(
            "CreateTags", tags_request(["i-0123456789abcdef0", "eni-0123456789abcdef1"], {"Mirror": "x"}), {}
        )
    )
    assert both.instance_ids == ("i-0123456789abcdef0",) and both.eni_ids == ("eni-0123456789abcdef1",)


def test_create_tags_on_targets_and_filters_sweep_with_fresh_inventory() -> None:
    for resource in ("tmt-0123456789abcdef0", "tmf-0123456789abcdef0"):
        parsed = change(cloudtrail("CreateTags", tags_request([resource], {"Mirror": "pci"}), {}))
        assert parsed.kind == "sweep" and parsed.refresh_inventory


def test_tag_events_without_our_key_are_ignored() -> None:
    event = cloudtrail("CreateTags", tags_request(["i-0123456789abcdef0"], {"Owner": "me"}), {})
    assert skip(event).status == "ignored"
    delete_other = cloudtrail("DeleteTags", tags_request(["i-0123456789abcdef0"], {"Owner": ""}), {})
    assert skip(delete_other).status == "ignored"
    custom = Settings(tag_key="TrafficMirror")
    assert skip(
        cloudtrail("CreateTags", tags_request(["i-0123456789abcdef0"], {"Mirror": "off"}), {}), custom
    )
    assert change(
        cloudtrail("CreateTags", tags_request(["i-0123456789abcdef0"], {"TrafficMirror": "off"}), {}), custom
    )
    on_vpc = cloudtrail("CreateTags", tags_request(["vpc-0123456789abcdef0"], {"Mirror": "off"}), {})
    assert skip(on_vpc).status == "ignored"


def test_delete_tags_with_and_without_keys() -> None:
    ours = change(cloudtrail("DeleteTags", tags_request(["eni-0123456789abcdef0"], {"Mirror": ""}), {}))
    assert ours.eni_ids == ("eni-0123456789abcdef0",)
    every_tag = change(cloudtrail("DeleteTags", tags_request(["i-0123456789abcdef0"], None), {}))
    assert every_tag.instance_ids == ("i-0123456789abcdef0",)


def test_state_changes() -> None:
    running = change(state_change("i-0389a92bd5b886c39", "running", "sc-1"))
    assert (running.kind, running.instance_ids) == ("instances", ("i-0389a92bd5b886c39",))
    assert skip(state_change("i-0389a92bd5b886c39", "pending", "sc-1")).status == "ignored"
    # A sensor stops receiving in each of these: checked against the cached inventory.
    for state in ("stopping", "stopped", "shutting-down", "terminated"):
        down = change(state_change("i-0389a92bd5b886c39", state, "sc-1"))
        assert (down.kind, down.instance_ids) == ("sensors", ("i-0389a92bd5b886c39",))
    stopped = change(state_change("i-0389a92bd5b886c39", "stopped", "sc-1"), Settings(release_on_stop=True))
    assert stopped.kind == "release-instances"
    assert skip(state_change("i-§", "running", "sc-1")).status == "rejected"


def test_real_state_change_records() -> None:
    running = json.loads(
        (
            EVENTS_DIR / "EC2InstanceStateChangeNotification__gtz4all-gtz4all.github.io__1.json"
        ).read_text()
    )
    assert change(running).instance_ids == ("i-0389a92bd5b886c39",)
    # AWS documentation sample: "terminated" with a stray space before the id: a sensor check.
    doc = json.loads(
        (
            EVENTS_DIR
            / "EC2InstanceStateChangeNotification__awsdocs-amazon-eventbridge-user-guide__1.json"
        ).read_text()
    )
    assert change(doc).kind == "sensors" and change(doc).instance_ids == ("i-1234567890abcdef0",)
    doc["detail"]["state"] = "running"
    assert change(doc).instance_ids == ("i-1234567890abcdef0",)


def test_scheduled_event_is_a_sweep() -> None:
    event = scheduled("sched-1", "eu-west-1", "mirror-sweep")
    parsed = change(event)
    assert (parsed.kind, parsed.region, parsed.event_id) == ("sweep", "eu-west-1", "sched-1")
    # The schedule is the backstop for deleted targets and filters: it never trusts the cache.
    assert parsed.refresh_inventory


# --- the tool's own calls ----------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        cloudtrail(
            "DeleteTrafficMirrorSession", {}, {}, identity=assumed_role("mirror-automation", "anything")
        ),
        cloudtrail(
            "StartInstances",
            instances_set("i-0123456789abcdef0"),
            None,
            identity=assumed_role("mirror-automation", FUNCTION),
        ),
    ],
)
def test_own_role_events_are_ignored(event: dict[str, Any]) -> None:
    result = skip(event)
    assert result.status == "ignored"
    assert "own role" in result.reason


@pytest.mark.parametrize(
    "identity",
    [
        assumed_role("someone-else", "alice"),
        assumed_role("someone-else", f"{FUNCTION}-other"),
        # A role session named like the function is anyone's to choose: only the role's ARN counts.
        assumed_role("other-role", FUNCTION),
        assumed_role("mirror-automation-2", "x"),
        {"type": "Root", "arn": "arn:aws:iam::123456789012:root"},
        None,
    ],
)
def test_other_actors_are_not_ignored(identity: Any) -> None:
    event = cloudtrail("DeleteTrafficMirrorSession", {}, {}, identity=identity)
    if identity is None:
        event["detail"]["userIdentity"] = None
    assert change(event).kind == "sweep"


def test_own_role_needs_the_settings() -> None:
    event = cloudtrail(
        "DeleteTrafficMirrorSession", {}, {}, identity=assumed_role("mirror-automation", FUNCTION)
    )
    assert change(event, Settings()).kind == "sweep"


def _member_role_identity(account: str, role: str, session: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}"}},
    }


@pytest.mark.parametrize(
    ("role_account", "role", "session", "ours"),
    [
        ("111111111111", "traffic-mirror-automation-member", "traffic-mirror-automation", True),
        # The same names in an account other than the event's: not our member role there.
        ("222222222222", "traffic-mirror-automation-member", "traffic-mirror-automation", False),
        # Our member role, but a session someone else named: a person using the role, not us.
        ("111111111111", "traffic-mirror-automation-member", "alice", False),
        ("111111111111", "some-role", "traffic-mirror-automation", False),
    ],
)
def test_the_member_roles_own_calls_are_recognised_by_exact_arn(
    role_account: str, role: str, session: str, ours: bool
) -> None:
    settings = Settings(role_arn=ROLE_ARN, accounts="111111111111")
    record = cloudtrail("DeleteTrafficMirrorSession", {}, {}, identity=_member_role_identity(role_account, role, session))
    event = {**record, "account": "111111111111"}
    parsed = parse(event, settings)
    assert (isinstance(parsed, Skip) and "own role" in parsed.reason) is ours, parsed


def test_a_teardown_from_the_event_queue_is_refused() -> None:
    event = {"source": "traffic-mirror.teardown", "detail-type": "Release Managed Sessions", "region": "us-east-1"}
    direct = parse(event, SETTINGS)
    assert isinstance(direct, Change) and direct.kind == "release-region"
    queued = parse(event, SETTINGS, queued=True)
    assert isinstance(queued, Skip) and queued.status == "rejected" and "direct invocation" in queued.reason


# --- the calls that break a sensor ------------------------------------------------------------------

LB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/sensors/50dc6c495c0c9188"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/sensors/50dc6c495c0c9188/f2f7dc8efc522ab2"
GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/vxlan/73e2d6bc24d8a067"


@pytest.mark.parametrize(
    ("name", "request_", "resource"),
    [
        ("DeleteLoadBalancer", {"loadBalancerArn": LB_ARN}, LB_ARN),
        ("DeleteListener", {"listenerArn": LISTENER}, LISTENER),
        ("DeregisterTargets", {"targetGroupArn": GROUP, "targets": [{"id": "i-0123456789abcdef0"}]}, GROUP),
    ],
)
def test_load_balancer_calls_name_the_resource_a_sensor_may_depend_on(
    name: str, request_: dict[str, Any], resource: str
) -> None:
    event = api_call(name, request_, "elasticloadbalancing")
    found = change(event)
    assert (found.kind, found.resources, found.instance_ids) == ("sensors", (resource,), ())
    # Only Elastic Load Balancing puts these: the same record from another source is refused.
    assert skip({**event, "source": "aws.ec2"}).status == "rejected"
    # A classic load balancer (named, no ARN) is never a traffic mirror target.
    classic = skip(api_call(name, {"loadBalancerName": "web"}, "elasticloadbalancing"))
    assert classic.status == "ignored"


def test_a_deleted_traffic_mirror_target_is_a_sensor_change() -> None:
    nested = {"DeleteTrafficMirrorTargetRequest": {"TrafficMirrorTargetId": "tmt-0c62986bff32556ac"}}
    found = change(api_call("DeleteTrafficMirrorTarget", nested))
    assert (found.kind, found.resources) == ("sensors", ("tmt-0c62986bff32556ac",))
    assert change(api_call("DeleteTrafficMirrorTarget", {"trafficMirrorTargetId": "tmt-0c62986bff32556ac"}))
    bad = skip(api_call("DeleteTrafficMirrorTarget", {"DeleteTrafficMirrorTargetRequest": {"TrafficMirrorTargetId": "x"}}))
    assert bad.status == "rejected"
