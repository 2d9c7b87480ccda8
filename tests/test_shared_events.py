"""Every real record in tests/events through `handle()` under moto, as is and replayed with moto ids.

As is: each file is handled or rejected cleanly (never an exception). Replayed: the record keeps
its shape (every key, every quirk) and only its ids are swapped for those of resources created in
moto, so the record's own structure drives the handler end to end.
"""

import copy
import json
import logging
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.ec2.models.instance_types import INSTANCE_TYPES
from traffic_mirror.handler import app, support
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import DEFAULT_ACCOUNT, EVENTS_DIR, run_instances_record, wrap
from testsupport.logs import decisions

EVENTS = sorted(EVENTS_DIR.glob("*.json"))
REGIONS = frozenset(boto3.session.Session().get_available_regions("ec2"))
FALLBACK_REGION = "us-east-1"
WRITES = ("Create", "Modify", "Delete")


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def named(prefix: str) -> list[Path]:
    return [p for p in EVENTS if p.name.split("__")[0] == prefix]


def envelope(data: dict[str, Any]) -> dict[str, Any]:
    """EventBridge files as they are, bare CloudTrail records wrapped as EventBridge delivers them."""
    return data if "detail" in data else wrap(data)


def detail(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event["detail"])




# --- a moto account in the record's region -------------------------------------------------


class Replay:
    """A moto account in one region (the record's own when it is a real region), for id swapping."""

    def __init__(self, region: str) -> None:
        self.region = region if region in REGIONS else FALLBACK_REGION
        self.ec2: Any = boto3.client("ec2", region_name=self.region)
        zones = [z["ZoneName"] for z in self.ec2.describe_availability_zones()["AvailabilityZones"]][:2]
        self.account = sandbox.build_account(self.ec2, self.region, tuple(z[len(self.region) :] for z in zones))
        self.counter = CallCounter()
        app.CONTAINER.clients.ec2(Place(self.region)).meta.events.register("before-call", self.counter)

    def subnet(self, az: Any) -> str:
        return self.account.subnets.get(str(az), next(iter(self.account.subnets.values())))

    def launch(self, itype: Any = "m5.large", az: Any = None, extra_enis: int = 0) -> dict[str, Any]:
        moto_type = itype if isinstance(itype, str) and itype in INSTANCE_TYPES else "m5.large"
        (instance,) = sandbox.launch(
            self.ec2, self.account, self.subnet(az), moto_type, extra_enis=extra_enis
        )
        return instance

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])

    def writes(self) -> int:
        return sum(n for op, n in self.counter.calls.items() if op.startswith(WRITES))


def region_of(event: dict[str, Any]) -> str:
    return str(event.get("region") or detail(event).get("awsRegion") or FALLBACK_REGION)


def set_region(event: dict[str, Any], region: str) -> None:
    """Replay the record in the test's region and account (the handler rejects other accounts')."""
    event["region"] = region
    event["account"] = DEFAULT_ACCOUNT
    if isinstance(event.get("detail"), dict):
        if "awsRegion" in event["detail"]:
            event["detail"]["awsRegion"] = region
        if "recipientAccountId" in event["detail"]:
            event["detail"]["recipientAccountId"] = DEFAULT_ACCOUNT


def primary_first(instance: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(instance["NetworkInterfaces"], key=lambda e: e["Attachment"]["DeviceIndex"])


def swap_run_instances(
    event: dict[str, Any], replay: Replay
) -> tuple[dict[str, Any], list[tuple[str, list[str]]]]:
    """Each instance item gets a moto instance of its type (m5.large where moto lacks it).

    Only instanceId, subnetId, vpcId, placement.availabilityZone and each ENI's
    networkInterfaceId/subnetId/vpcId/availabilityZone are replaced, and only where the record
    has them: every other key stays exactly as the record has it. Returns the swapped event and
    (record's instance type, moto ENI ids) per instance.
    """
    swapped = copy.deepcopy(event)
    set_region(swapped, replay.region)
    launched: list[tuple[str, list[str]]] = []
    for item in swapped["detail"]["responseElements"]["instancesSet"]["items"]:
        placement = item.get("placement") if isinstance(item.get("placement"), dict) else {}
        record_enis = item.get("networkInterfaceSet", {}).get("items", [])
        instance = replay.launch(
            item.get("instanceType"), placement.get("availabilityZone"), len(record_enis) - 1
        )
        moto_enis = primary_first(instance)
        item["instanceId"] = instance["InstanceId"]
        for key, value in (("subnetId", instance["SubnetId"]), ("vpcId", instance["VpcId"])):
            if key in item:
                item[key] = value
        if "availabilityZone" in placement:
            placement["availabilityZone"] = instance["Placement"]["AvailabilityZone"]
        for entry, eni in zip(record_enis, moto_enis, strict=True):
            entry["networkInterfaceId"] = eni["NetworkInterfaceId"]
            for key, value in (
                ("subnetId", eni["SubnetId"]),
                ("vpcId", eni["VpcId"]),
                ("availabilityZone", instance["Placement"]["AvailabilityZone"]),
            ):
                if key in entry:
                    entry[key] = value
        launched.append((str(item.get("instanceType")), [e["NetworkInterfaceId"] for e in moto_enis]))
    return swapped, launched


def swap_values(value: Any, mapping: dict[str, str]) -> Any:
    """Replace ids wherever they appear as a whole value (keeping stray whitespace) or end an ARN."""
    if isinstance(value, dict):
        return {k: swap_values(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [swap_values(v, mapping) for v in value]
    if isinstance(value, str):
        stripped = value.strip()
        if stripped in mapping:
            return value.replace(stripped, mapping[stripped])
        for old, new in mapping.items():
            if value.endswith(f"/{old}"):
                return value[: -len(old)] + new
    return value


def instance_ids_in(value: Any) -> list[str]:
    """Values of every instanceId / instance-id key (the record's instances, in order, once each)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                if (
                    key in ("instanceId", "instance-id")
                    and isinstance(sub, str)
                    and sub.strip().startswith("i-")
                ):
                    if sub.strip() not in found:
                        found.append(sub.strip())
                else:
                    walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(value)
    return found


# --- every file, as it is ------------------------------------------------------------------


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_every_file_is_handled_or_rejected_cleanly(aws: Any, path: Path) -> None:
    replay = Replay(region_of(envelope(load(path))))  # sensors and a filter in the record's region
    result = app.handle(envelope(load(path)))
    counts = result["counts"]
    assert sum(counts.values()) >= 1, counts  # an event skipped, or a decision per ENI or instance
    # The record's own ids do not exist in moto: an attempt ends in a final, logged NotFound.
    assert counts["Deferred"] == 0
    assert replay.sessions() == []  # nothing of the record's exists here, so nothing was mirrored


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_every_file_in_an_sqs_batch(aws: Any, path: Path) -> None:
    Replay(region_of(envelope(load(path))))
    batch = {"Records": [{"messageId": "m1", "body": json.dumps(envelope(load(path)))}]}
    assert app.handle(batch) == {"batchItemFailures": []}


# --- RunInstances, replayed with moto ids --------------------------------------------------


RUN_INSTANCES = [
    p
    for p in [*named("RunInstances"), *named("EventBridge-RunInstances")]
    if isinstance(detail(envelope(load(p))).get("responseElements"), dict)
]


def test_replayed_run_instances_cover_the_interesting_records() -> None:
    names = {p.name for p in RUN_INSTANCES}
    assert len(names) == 17  # 20 RunInstances records, 3 of them failed or dry runs
    assert "EventBridge-RunInstances__vikyol-aws-tags__1.json" in names
    assert "RunInstances__panther-labs-panther-analysis__5.json" in names  # two instances


@pytest.mark.parametrize("path", RUN_INSTANCES, ids=lambda p: p.name)
def test_run_instances_replayed_with_moto_ids(aws: Any, path: Path, logged: list[logging.LogRecord]) -> None:
    original = envelope(load(path))
    replay = Replay(region_of(original))
    event, launched = swap_run_instances(original, replay)
    app.handle(event)
    app.handle(event)  # redelivered: still one session per ENI
    found: dict[str, list[dict[str, Any]]] = {}
    for s in replay.sessions():
        found.setdefault(s["NetworkInterfaceId"], []).append(s)
    reasons = {d.get("eni"): d["reason"] for d in decisions(logged)}
    for itype, enis in launched:
        unsupported = support.unsupported_reason(itype)
        for eni in enis:
            if unsupported is None:
                assert len(found.get(eni, [])) == 1, (itype, eni, reasons.get(eni))
                (session,) = found[eni]
                assert {t["Key"] for t in session["Tags"]} >= {MANAGED_TAG_KEY}
                assert session["TrafficMirrorTargetId"] in replay.account.targets.values()
            else:
                assert eni not in found
                assert reasons[eni] == unsupported
    if path.name.startswith(("RunInstances__Cloudryer-cloudryer-cli__1", "RunInstances__elastic")):
        assert any(support.unsupported_reason(t) for t, _ in launched)  # t1/t2 records do exercise the skip


def test_the_swap_keeps_every_other_key() -> None:
    """The swapper itself: only ids change, every other key and value of the record stays."""
    path = EVENTS_DIR / "RunInstances__GorillaStack-auto-tag__1.json"
    original = envelope(load(path))

    class Fake:
        region = "ap-northeast-1"

        def launch(self, itype: Any, az: Any, extra: int) -> dict[str, Any]:
            eni = {
                "NetworkInterfaceId": "eni-moto",
                "SubnetId": "subnet-moto",
                "VpcId": "vpc-moto",
                "Attachment": {"DeviceIndex": 0},
            }
            return {
                "InstanceId": "i-moto",
                "SubnetId": "subnet-moto",
                "VpcId": "vpc-moto",
                "Placement": {"AvailabilityZone": "ap-northeast-1c"},
                "NetworkInterfaces": [eni],
            }

    swapped, _ = swap_run_instances(original, Fake())  # type: ignore[arg-type]
    before = original["detail"]["responseElements"]["instancesSet"]["items"][0]
    after = swapped["detail"]["responseElements"]["instancesSet"]["items"][0]
    assert set(before) == set(after)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"instanceId", "subnetId", "vpcId", "placement", "networkInterfaceSet"}
    eni_before = before["networkInterfaceSet"]["items"][0]
    eni_after = after["networkInterfaceSet"]["items"][0]
    assert {k for k in eni_before if eni_before[k] != eni_after[k]} == {
        "networkInterfaceId",
        "subnetId",
        "vpcId",
        "availabilityZone",
    }
    assert eni_after["attachment"] == eni_before["attachment"]  # the numeric-looking instanceId stays
    assert eni_after["privateIpAddressesSet"] == eni_before["privateIpAddressesSet"]


# --- StartInstances, AttachNetworkInterface, TerminateInstances, state change, CreateTrafficMirrorSession


@pytest.mark.parametrize("path", named("StartInstances"), ids=lambda p: p.name)
def test_start_instances_replayed_with_moto_ids(aws: Any, path: Path) -> None:
    original = envelope(load(path))
    replay = Replay(region_of(original))
    old_ids = instance_ids_in(original["detail"])
    instances = [replay.launch(extra_enis=1) for _ in old_ids]
    mapping = {old: i["InstanceId"] for old, i in zip(old_ids, instances, strict=True)}
    event = swap_values(original, mapping)
    set_region(event, replay.region)
    result = app.handle(event)
    enis = {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}
    assert result["counts"]["Created"] == len(enis) == 2 * len(old_ids)
    assert sorted(s["NetworkInterfaceId"] for s in replay.sessions()) == sorted(enis)
    # One for the event's instances; one for the sensors' instances with the (cold) inventory.
    assert replay.counter.calls.get("DescribeInstances") == 2


@pytest.mark.parametrize("path", named("AttachNetworkInterface"), ids=lambda p: p.name)
def test_attach_network_interface_replayed_with_moto_ids(aws: Any, path: Path) -> None:
    original = envelope(load(path))
    replay = Replay(region_of(original))
    instance = replay.launch()
    subnet = instance["SubnetId"]
    eni = replay.ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    replay.ec2.attach_network_interface(
        NetworkInterfaceId=eni, InstanceId=instance["InstanceId"], DeviceIndex=1
    )
    request = original["detail"]["requestParameters"]
    event = swap_values(
        original, {request["networkInterfaceId"]: eni, request["instanceId"]: instance["InstanceId"]}
    )
    set_region(event, replay.region)
    result = app.handle(event)
    assert result["counts"]["Created"] == 1
    assert [s["NetworkInterfaceId"] for s in replay.sessions()] == [eni]


@pytest.mark.parametrize("path", named("TerminateInstances"), ids=lambda p: p.name)
def test_terminate_instances_replayed_with_moto_ids(aws: Any, path: Path) -> None:
    original = envelope(load(path))
    replay = Replay(region_of(original))
    old_ids = instance_ids_in(original["detail"])
    instances = [replay.launch() for _ in old_ids]
    app.handle(wrap(run_instances_record(instances, event_id="launch-before-terminate")))
    mirrored = replay.sessions()
    assert len(mirrored) == len(old_ids)
    replay.ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in instances])
    event = swap_values(original, {old: i["InstanceId"] for old, i in zip(old_ids, instances, strict=True)})
    set_region(event, replay.region)
    replay.counter.calls.clear()
    result = app.handle(event)
    assert result["counts"]["Ignored"] == 1
    assert replay.counter.total() == 0


@pytest.mark.parametrize("path", named("EC2InstanceStateChangeNotification"), ids=lambda p: p.name)
@pytest.mark.parametrize("state", ["as recorded", "running"])
def test_state_change_replayed_with_moto_ids(aws: Any, path: Path, state: str) -> None:
    original = load(path)
    replay = Replay(region_of(original))
    instance = replay.launch(extra_enis=1)
    (old,) = instance_ids_in(original["detail"])
    event = swap_values(original, {old: instance["InstanceId"]})
    set_region(event, replay.region)
    if state == "running":
        event["detail"]["state"] = "running"
    assert event["detail"]["instance-id"].strip() == instance["InstanceId"]
    assert event["resources"][0].endswith(instance["InstanceId"])
    result = app.handle(event)
    if event["detail"]["state"] == "running":
        assert result["counts"]["Created"] == 2
        assert len(replay.sessions()) == 2
    else:
        assert result["counts"]["Ignored"] == 1 and replay.sessions() == []


@pytest.mark.parametrize("path", named("CreateTrafficMirrorSession"), ids=lambda p: p.name)
def test_create_traffic_mirror_session_replayed_with_moto_ids(aws: Any, path: Path) -> None:
    """Someone else's session (or failed attempt): not ours to handle, and left exactly as it is."""
    original = envelope(load(path))
    replay = Replay(region_of(original))
    instance = replay.launch()
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    target = replay.account.targets[f"sensor-{instance['Placement']['AvailabilityZone']}-0"]
    filter_id = replay.account.filters["default"]
    theirs = replay.ec2.create_traffic_mirror_session(
        NetworkInterfaceId=eni, TrafficMirrorTargetId=target, TrafficMirrorFilterId=filter_id, SessionNumber=1
    )["TrafficMirrorSession"]
    request = original["detail"]["requestParameters"]["CreateTrafficMirrorSessionRequest"]
    mapping = {
        request["NetworkInterfaceId"]: eni,
        request["TrafficMirrorTargetId"]: target,
        request["TrafficMirrorFilterId"]: filter_id,
    }
    response = original["detail"].get("responseElements") or {}
    old_session = response.get("CreateTrafficMirrorSessionResponse", {}).get("trafficMirrorSession", {})
    if old_session:
        mapping[old_session["trafficMirrorSessionId"]] = theirs["TrafficMirrorSessionId"]
    event = swap_values(original, mapping)
    set_region(event, replay.region)
    assert json.dumps(event).count(eni) >= 1
    replay.counter.calls.clear()
    result = app.handle(event)
    assert result["counts"]["Rejected"] == 1
    assert replay.counter.total() == 0
    assert [s["TrafficMirrorSessionId"] for s in replay.sessions()] == [theirs["TrafficMirrorSessionId"]]
