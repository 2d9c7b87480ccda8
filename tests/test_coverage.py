"""Coverage end to end under moto through `handle()`: every way an ENI can need (or lose) a session."""

import dataclasses
import json
import logging
import threading
from collections import Counter
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from traffic_mirror.handler import app, inventory
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from tests.conftest import home
from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import load_record, run_instances_record, scheduled, state_change, wrap
from testsupport.logs import decisions

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/traffic-mirror-automation"
FUNCTION = "traffic-mirror-automation"


# --- helpers -----------------------------------------------------------------------------


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def by_eni(ec2: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for s in sessions(ec2):
        found.setdefault(s["NetworkInterfaceId"], []).append(s)
    return found


def is_managed(session: dict[str, Any]) -> bool:
    return {t["Key"]: t["Value"] for t in session.get("Tags", [])}.get(
        MANAGED_TAG_KEY
    ) == Settings().managed_by


def enis_of(instances: list[dict[str, Any]]) -> set[str]:
    return {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}


def backend() -> Any:
    return ec2_backends[DEFAULT_ACCOUNT_ID][REGION]


def record(template: str, **fields: Any) -> dict[str, Any]:
    """A real CloudTrail record's shape, with `fields` replaced."""
    rec = load_record(template)
    rec.update(fields)
    rec["awsRegion"] = REGION
    return rec


def items(*instance_ids: str, state: str | None = None) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for i in instance_ids:
        entry: dict[str, Any] = {"instanceId": i}
        if state:
            entry["currentState"] = {"code": 0, "name": state}
        entries.append(entry)
    return {"items": entries}


def start_event(
    instance_ids: list[str], event_id: str, identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    rec = record(
        "StartInstances__Cloudryer-cloudryer-cli__1.json",
        requestParameters={"instancesSet": items(*instance_ids)},
        responseElements={"requestId": "r-1", "instancesSet": items(*instance_ids, state="pending")},
        eventID=event_id,
    )
    if identity:
        rec["userIdentity"] = identity
    return wrap(rec)


def stop_event(instance_ids: list[str], event_id: str) -> dict[str, Any]:
    rec = record(
        "StartInstances__Cloudryer-cloudryer-cli__1.json",
        eventName="StopInstances",
        requestParameters={"instancesSet": items(*instance_ids), "force": False},
        responseElements={"requestId": "r-2", "instancesSet": items(*instance_ids, state="stopping")},
        eventID=event_id,
    )
    return wrap(rec)


def attach_event(eni: str, instance_id: str, event_id: str) -> dict[str, Any]:
    return wrap(
        record(
            "AttachNetworkInterface__Cloudryer-cloudryer-cli__1.json",
            requestParameters={"networkInterfaceId": eni, "instanceId": instance_id, "deviceIndex": 1},
            eventID=event_id,
        )
    )


def detach_event(attachment_id: str, event_id: str) -> dict[str, Any]:
    return wrap(
        record(
            "AttachNetworkInterface__Cloudryer-cloudryer-cli__1.json",
            eventName="DetachNetworkInterface",
            requestParameters={"attachmentId": attachment_id, "force": False},
            responseElements={"requestId": "r-3", "_return": True},
            eventID=event_id,
        )
    )


def terminate_event(instance_ids: list[str], event_id: str) -> dict[str, Any]:
    return wrap(
        record(
            "TerminateInstances__Cloudryer-cloudryer-cli__2.json",
            requestParameters={"instancesSet": items(*instance_ids)},
            responseElements={
                "requestId": "r-4",
                "instancesSet": items(*instance_ids, state="shutting-down"),
            },
            eventID=event_id,
        )
    )


def assumed_role(role_arn: str, session_name: str) -> dict[str, Any]:
    role = role_arn.rsplit("/", 1)[-1]
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session_name}",
        "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session_name}",
        "accountId": "123456789012",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": role_arn, "userName": role},
            "attributes": {"creationDate": "2026-11-27T12:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def delete_session_event(
    session_id: str, event_id: str, shape: str = "documented", identity: dict[str, Any] | None = None
) -> dict[str, Any]:
    if shape == "documented":
        request: Any = {"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": session_id}}
        response: Any = {
            "DeleteTrafficMirrorSessionResponse": {
                "requestId": "r-5",
                "trafficMirrorSessionId": session_id,
                "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
            }
        }
    else:  # flat, like most EC2 records
        request, response = {"trafficMirrorSessionId": session_id}, None
    rec = record(
        "CreateTrafficMirrorSession__elastic-integrations__1.json",
        eventName="DeleteTrafficMirrorSession",
        requestParameters=request,
        responseElements=response,
        eventID=event_id,
    )
    if identity:
        rec["userIdentity"] = identity
    return wrap(rec)


def launch_event(instances: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return wrap(run_instances_record(instances, event_id=event_id))


def foreign_session(ec2: Any, eni: str, target: str, filter_id: str, number: int) -> str:
    created = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=eni,
        TrafficMirrorTargetId=target,
        TrafficMirrorFilterId=filter_id,
        SessionNumber=number,
        TagSpecifications=[
            {"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "Owner", "Value": "ids-team"}]}
        ],
    )
    return str(created["TrafficMirrorSession"]["TrafficMirrorSessionId"])




# --- StartInstances, AttachNetworkInterface, state change ----------------------------------


def test_start_instances_one_describe_per_event_and_gone_ids_logged(
    aws: Any, account: sandbox.Account, counter: CallCounter, logged: list[logging.LogRecord]
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3, extra_enis=1)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], count=2)
    ids = [i["InstanceId"] for i in instances]
    aws.stop_instances(InstanceIds=ids)
    aws.start_instances(InstanceIds=ids)
    gone = "i-0123456789abcdef0"
    counter.calls.clear()
    result = app.handle(start_event([*ids, gone], "start-1"))
    # One for the event's instances, whatever their number; one for the sensors' instances, read
    # with the (here cold) inventory.
    assert counter.calls.get("DescribeInstances") == 2, counter.calls
    assert result["counts"]["Created"] == len(enis_of(instances)) == 8
    found = by_eni(aws)
    assert set(found) == enis_of(instances) and all(len(v) == 1 for v in found.values())
    missing = [d for d in decisions(logged) if d.get("instance") == gone]
    assert missing and "not found" in missing[0]["reason"]

    # Every id gone: a logged decision each, no exception, nothing written.
    counter.calls.clear()
    result = app.handle(start_event([gone, "i-0123456789abcdef1"], "start-2"))
    assert result["counts"]["Skipped"] == 2
    assert not any(op.startswith(("Create", "Modify", "Delete")) for op in counter.calls)


def test_attach_of_a_secondary_eni_later_is_mirrored(aws: Any, account: sandbox.Account) -> None:
    subnet = account.subnets["us-east-1a"]
    (instance,) = sandbox.launch(aws, account, subnet)
    app.handle(launch_event([instance], "launch-1"))
    eni = aws.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    aws.attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance["InstanceId"], DeviceIndex=1)
    result = app.handle(attach_event(eni, instance["InstanceId"], "attach-1"))
    assert result["counts"]["Created"] == 1
    found = by_eni(aws)
    assert set(found) == {eni, instance["NetworkInterfaces"][0]["NetworkInterfaceId"]}
    assert all(len(v) == 1 for v in found.values())
    # Redelivered: nothing more.
    again = app.handle(attach_event(eni, instance["InstanceId"], "attach-1"))
    assert again["counts"]["Created"] == 0 and again["counts"]["AlreadyMirrored"] == 1


def test_attach_of_an_eni_gone_or_detached_is_a_decision(aws: Any, account: sandbox.Account) -> None:
    subnet = account.subnets["us-east-1a"]
    (instance,) = sandbox.launch(aws, account, subnet)
    loose = aws.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    result = app.handle(attach_event(loose, instance["InstanceId"], "attach-2"))
    assert result["counts"]["Skipped"] == 1
    result = app.handle(attach_event("eni-0123456789abcdef0", instance["InstanceId"], "attach-3"))
    assert result["counts"]["Skipped"] == 1
    assert sessions(aws) == []


def test_state_change_running_is_mirrored(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1b"], extra_enis=1)
    result = app.handle(state_change(instance["InstanceId"], "running", "sc-1"))
    assert result["counts"]["Created"] == 2
    assert set(by_eni(aws)) == enis_of([instance])
    for s in sessions(aws):
        assert s["TrafficMirrorTargetId"] == account.targets["sensor-us-east-1b-0"]
    ignored = app.handle(state_change(instance["InstanceId"], "pending", "sc-2"))
    assert ignored["counts"]["Ignored"] == 1


# --- DeleteTrafficMirrorSession, own role -----------------------------------------------


@pytest.mark.parametrize("shape", ["documented", "flat"])
def test_deleted_managed_session_is_restored_in_the_same_invocation(
    aws: Any, account: sandbox.Account, shape: str
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"))
    (original,) = sessions(aws)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=original["TrafficMirrorSessionId"])
    assert sessions(aws) == []
    event = delete_session_event(
        original["TrafficMirrorSessionId"],
        f"del-{shape}",
        shape,
        assumed_role("arn:aws:iam::123456789012:role/ops", "bob"),
    )
    result = app.handle(
        event, settings=dataclasses.replace(Settings(), role_arn=ROLE_ARN, function_name=FUNCTION)
    )
    assert result["counts"]["Created"] == 1
    (restored,) = sessions(aws)
    assert restored["TrafficMirrorSessionId"] != original["TrafficMirrorSessionId"]
    for key in ("NetworkInterfaceId", "TrafficMirrorTargetId", "TrafficMirrorFilterId", "SessionNumber"):
        assert restored[key] == original[key]
    assert is_managed(restored)


def test_deleting_a_foreign_session_is_not_undone(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    app.handle(launch_event([instance], "launch-1"))
    theirs = foreign_session(aws, eni, account.targets["sensor-us-east-1a-0"], account.filters["default"], 5)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=theirs)
    app.handle(delete_session_event(theirs, "del-foreign"))
    (only,) = sessions(aws)
    assert is_managed(only)


def test_events_by_the_tools_own_role_are_ignored(aws: Any, account: sandbox.Account, counter: CallCounter) -> None:
    settings = dataclasses.replace(Settings(), role_arn=ROLE_ARN, function_name=FUNCTION)
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"), settings=settings)
    (original,) = sessions(aws)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=original["TrafficMirrorSessionId"])
    identity = assumed_role(ROLE_ARN, FUNCTION)
    counter.calls.clear()
    result = app.handle(
        delete_session_event(original["TrafficMirrorSessionId"], "del-own", identity=identity),
        settings=settings,
    )
    assert result["counts"]["Ignored"] == 1
    assert counter.total() == 0, counter.calls
    result = app.handle(
        start_event([instance["InstanceId"]], "start-own", identity=identity), settings=settings
    )
    assert result["counts"]["Ignored"] == 1
    assert counter.total() == 0 and sessions(aws) == []


def test_a_deletion_by_a_role_session_named_like_the_function_is_restored(
    aws: Any, account: sandbox.Account
) -> None:
    """Anyone may name a role session after the function: only the function's role ARN is ours."""
    settings = dataclasses.replace(Settings(), role_arn=ROLE_ARN, function_name=FUNCTION)
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"), settings=settings)
    (original,) = sessions(aws)
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=original["TrafficMirrorSessionId"])
    impostor = assumed_role("arn:aws:iam::123456789012:role/x", FUNCTION)
    result = app.handle(
        delete_session_event(original["TrafficMirrorSessionId"], "del-impostor", identity=impostor),
        settings=settings,
    )
    assert result["counts"]["Created"] == 1 and len(sessions(aws)) == 1


# --- sweeps ------------------------------------------------------------------------------


def test_scheduled_sweep_finds_unannounced_instances_and_is_idempotent(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3, extra_enis=1)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], count=2)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], "t2.micro")  # never mirrored
    first = app.handle(scheduled("sched-1"))
    expected = enis_of(instances[:-1])
    assert first["counts"]["Created"] == len(expected) == 8
    found = by_eni(aws)
    assert set(found) == expected and all(len(v) == 1 for v in found.values())
    assert not set(found) & set(account.target_enis.values())
    counter.calls.clear()
    second = app.handle(scheduled("sched-2"))
    assert second["counts"]["Created"] == 0
    assert second["counts"]["AlreadyMirrored"] == 8
    assert not any(op.startswith(("Create", "Modify", "Delete")) for op in counter.calls), counter.calls
    assert by_eni(aws) == found


def test_sweep_repairs_a_session_whose_target_was_deleted(aws: Any, account: sandbox.Account) -> None:
    subnet = account.subnets["us-east-1a"]
    (instance,) = sandbox.launch(aws, account, subnet)
    app.handle(launch_event([instance], "launch-1"))  # the inventory is now cached
    (original,) = sessions(aws)
    old_target = account.targets["sensor-us-east-1a-0"]
    assert original["TrafficMirrorTargetId"] == old_target
    new_target = sandbox.add_eni_target(aws, account, subnet, "sensor-new", "c5.24xlarge")
    del backend().traffic_mirror_targets[old_target]  # moto has no DeleteTrafficMirrorTarget
    result = app.handle(scheduled("sched-1"))
    assert result["counts"]["Modified"] == 1
    (repaired,) = by_eni(aws)[original["NetworkInterfaceId"]]
    assert repaired["TrafficMirrorSessionId"] == original["TrafficMirrorSessionId"]
    assert repaired["TrafficMirrorTargetId"] == new_target
    # The old sensor is an ordinary instance now: it is mirrored like any other.
    assert account.target_enis[old_target] in by_eni(aws)


def test_sweep_repairs_a_session_whose_filter_was_deleted(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"))
    (original,) = sessions(aws)
    del backend().traffic_mirror_filters[account.filters["default"]]  # moto has no DeleteTrafficMirrorFilter
    replacement = aws.create_traffic_mirror_filter(Description="replacement")["TrafficMirrorFilter"][
        "TrafficMirrorFilterId"
    ]
    result = app.handle(scheduled("sched-1"))
    assert result["counts"]["Modified"] == 1
    (repaired,) = sessions(aws)
    assert repaired["TrafficMirrorSessionId"] == original["TrafficMirrorSessionId"]
    assert repaired["TrafficMirrorFilterId"] == replacement


def test_a_foreign_session_number_1_means_we_take_2(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    theirs = foreign_session(aws, eni, account.targets["sensor-us-east-1a-0"], account.filters["default"], 1)
    result = app.handle(launch_event([instance], "launch-1"))
    assert result["counts"]["Created"] == 1
    numbers = {s["TrafficMirrorSessionId"]: s["SessionNumber"] for s in sessions(aws)}
    assert numbers.pop(theirs) == 1
    assert list(numbers.values()) == [2]


def test_three_foreign_sessions_no_fourth_attempt(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    for number in (1, 2, 3):
        foreign_session(aws, eni, account.targets["sensor-us-east-1a-0"], account.filters["default"], number)
    counter.calls.clear()
    result = app.handle(launch_event([instance], "launch-1"))
    assert result["counts"]["Skipped"] == 1
    result = app.handle(scheduled("sched-1"))
    assert result["counts"]["Created"] == 0
    assert counter.calls.get("CreateTrafficMirrorSession", 0) == 0
    assert len(sessions(aws)) == 3 and not any(is_managed(s) for s in sessions(aws))


def test_a_sensor_eni_is_never_mirrored(
    aws: Any, account: sandbox.Account, counter: CallCounter, logged: list[logging.LogRecord]
) -> None:
    """The handler never even tries: the sandbox (like EC2) would refuse it, which proves nothing."""
    sensor_enis = set(account.target_enis.values())
    sensor_instances = [
        e["Attachment"]["InstanceId"]
        for e in aws.describe_network_interfaces(NetworkInterfaceIds=sorted(sensor_enis))["NetworkInterfaces"]
    ]
    app.handle(scheduled("sched-1"))
    app.handle(start_event(sensor_instances, "start-sensors"))
    for eni, instance_id in zip(sorted(sensor_enis), sensor_instances, strict=False):
        app.handle(attach_event(eni, instance_id, f"attach-{eni}"))
    described = [
        i
        for r in aws.describe_instances(InstanceIds=sensor_instances)["Reservations"]
        for i in r["Instances"]
    ]
    app.handle(launch_event(described, "launch-sensors"))
    assert sessions(aws) == []
    assert counter.calls.get("CreateTrafficMirrorSession", 0) == 0
    sensor_decisions = [d for d in decisions(logged) if d.get("eni") in sensor_enis]
    assert {d["eni"] for d in sensor_decisions} == sensor_enis
    assert all(d["outcome"] == "skipped" for d in sensor_decisions), sensor_decisions


class WriteClock:
    """A Lambda context whose clock moves only with writes: each create takes `per_write` seconds.

    (Reads take no time here, so what the test sees is the deadline logic alone.)
    """

    def __init__(self, start: float, per_write: float = 1.0) -> None:
        self.left, self.per_write = start, per_write
        self.lock = threading.Lock()
        ec2 = app.CONTAINER.clients.ec2(Place(REGION))
        ec2.meta.events.register("before-call.ec2.CreateTrafficMirrorSession", self._tick)
        self.ec2 = ec2

    def _tick(self, **_: Any) -> None:
        with self.lock:
            self.left -= self.per_write

    def get_remaining_time_in_millis(self) -> int:
        with self.lock:
            return int(self.left * 1000)

    def close(self) -> None:
        self.ec2.meta.events.unregister("before-call.ec2.CreateTrafficMirrorSession", self._tick)


def test_sweep_with_a_short_deadline_stops_in_time_and_the_next_finishes(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=20)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], count=10)
    clock = WriteClock(start=Settings().deadline_margin_seconds + 15)  # margin 15 s: room for ~15 writes
    first = app.handle(scheduled("sched-1"), clock)  # no exception: the next sweep continues
    clock.close()
    created, deferred = first["counts"]["Created"], first["counts"]["Deferred"]
    assert 0 < created < 30 and created + deferred == 30
    assert counter.calls.get("CreateTrafficMirrorSession") == created
    second = app.handle(scheduled("sched-2"), WriteClock(start=900, per_write=0))
    assert second["counts"]["Created"] == deferred and second["counts"]["AlreadyMirrored"] == created
    found = by_eni(aws)
    assert set(found) == enis_of(instances) and all(len(v) == 1 for v in found.values())


def test_a_budget_below_the_margin_setting_still_makes_progress(aws: Any, account: sandbox.Account) -> None:
    """With 10 s left and a 15 s margin setting, the margin shrinks with the budget: sweeps write, and
    over a few ticks every ENI is mirrored (a fixed margin would write nothing, forever)."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=12)
    done = 0
    for tick in range(12):
        clock = WriteClock(start=10.0, per_write=1.0)  # margin: 60% of 10 s
        done += app.handle(scheduled(f"short-{tick}"), clock)["counts"]["Created"]
        clock.close()
        if done == 12:
            break
    assert done == 12 and tick < 6
    assert set(by_eni(aws)) == enis_of(instances)


class LateContext:
    """An invocation that had `budget` seconds and now has `left` (its reads took the rest)."""

    def __init__(self, budget: float, left: float) -> None:
        self.answers = [budget]
        self.left = left

    def get_remaining_time_in_millis(self) -> int:
        return int((self.answers.pop() if self.answers else self.left) * 1000)


def test_a_deferred_event_is_retried(aws: Any, account: sandbox.Account) -> None:
    """Not a sweep: an event that ran out of time raises, so Lambda retries it."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    with pytest.raises(app.RetryableFailure):
        app.handle(launch_event(instances, "launch-late"), LateContext(budget=100, left=10))
    assert sessions(aws) == []
    assert app.handle(launch_event(instances, "launch-late"))["counts"]["Created"] == 3


# --- MIRROR_RELEASE_ON_STOP ----------------------------------------------------------------

RELEASE = dataclasses.replace(Settings(), release_on_stop=True)


def test_release_on_stop_releases_only_ours_and_start_restores(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], extra_enis=1)
    iid = instance["InstanceId"]
    primary = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    app.handle(launch_event([instance], "launch-1"), settings=RELEASE)
    theirs = foreign_session(
        aws, primary, account.targets["sensor-us-east-1a-0"], account.filters["default"], 9
    )
    assert len(sessions(aws)) == 3
    aws.stop_instances(InstanceIds=[iid])
    result = app.handle(stop_event([iid], "stop-1"), settings=RELEASE)
    assert result["counts"]["Deleted"] == 2
    assert [s["TrafficMirrorSessionId"] for s in sessions(aws)] == [theirs]
    # Without the option a stop changes nothing.
    assert app.handle(stop_event([iid], "stop-2"))["counts"]["Ignored"] == 1
    # A sweep with the option does not bring them back while the instance is stopped.
    assert app.handle(scheduled("sched-1"), settings=RELEASE)["counts"]["Created"] == 0
    aws.start_instances(InstanceIds=[iid])
    result = app.handle(start_event([iid], "start-1"), settings=RELEASE)
    assert result["counts"]["Created"] == 2
    found = by_eni(aws)
    assert set(found) == enis_of([instance])
    assert sum(is_managed(s) for v in found.values() for s in v) == 2
    assert theirs in {s["TrafficMirrorSessionId"] for s in found[primary]}


def test_state_change_stopped_releases_with_the_option(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"), settings=RELEASE)
    aws.stop_instances(InstanceIds=[instance["InstanceId"]])
    result = app.handle(state_change(instance["InstanceId"], "stopped", "sc-stop"), settings=RELEASE)
    assert result["counts"]["Deleted"] == 1 and sessions(aws) == []


def test_detach_releases_via_the_sweep(aws: Any, account: sandbox.Account) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], extra_enis=1)
    app.handle(launch_event([instance], "launch-1"), settings=RELEASE)
    secondary = next(e for e in instance["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 1)
    attachment = secondary["Attachment"]["AttachmentId"]
    aws.detach_network_interface(AttachmentId=attachment)
    # Without the option: ignored, kept.
    assert app.handle(detach_event(attachment, "detach-0"))["counts"]["Ignored"] == 1
    assert len(sessions(aws)) == 2
    result = app.handle(detach_event(attachment, "detach-1"), settings=RELEASE)
    assert result["counts"]["Deleted"] == 1
    assert set(by_eni(aws)) == {instance["NetworkInterfaces"][0]["NetworkInterfaceId"]}


def test_terminate_instances_is_ignored_cleanly(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(launch_event([instance], "launch-1"))
    aws.terminate_instances(InstanceIds=[instance["InstanceId"]])
    counter.calls.clear()
    for settings in (Settings(), RELEASE):
        result = app.handle(terminate_event([instance["InstanceId"]], "term-1"), settings=settings)
        assert result["counts"]["Ignored"] == 1
    assert counter.total() == 0


# --- SQS batches and the sources-per-target limit -----------------------------------------


def small_sensor_account(aws: Any, second_sensor: bool) -> tuple[sandbox.Account, str, str | None]:
    """One AZ; a c5.xlarge sensor (10 sources) in the sources' subnet, maybe a big one next door."""
    account = sandbox.build_account(aws, azs=("a",), sensors_per_az=0)
    subnet = account.subnets["us-east-1a"]
    small = sandbox.add_eni_target(aws, account, subnet, "small", "c5.xlarge")
    big = None
    if second_sensor:
        other = aws.create_subnet(VpcId=account.vpc, CidrBlock="10.0.128.0/20", AvailabilityZone="us-east-1a")
        big = sandbox.add_eni_target(aws, account, other["Subnet"]["SubnetId"], "big", "c5.24xlarge")
    return account, small, big


def test_the_eleventh_eni_goes_to_another_target_without_a_refusal(aws: Any, counter: CallCounter) -> None:
    """The planner counts the sources on each target: ten fill the small sensor, the eleventh goes
    to the big one at once (no create is refused, nothing is retried)."""
    account, small, big = small_sensor_account(aws, second_sensor=True)
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=11)
    counter.clear()
    result = app.handle(launch_event(instances, "launch-11"))
    assert result["counts"]["Created"] == 11 and counter.calls["CreateTrafficMirrorSession"] == 11
    targets = Counter(s["TrafficMirrorTargetId"] for s in sessions(aws))
    assert targets == {small: 10, big: 1}


def test_a_stale_count_is_refused_by_aws_and_the_retry_finds_another_target(aws: Any) -> None:
    """Another tool filled the small sensor after this container read its sessions: AWS refuses the
    create (TrafficMirrorSourcesPerTargetLimitExceeded), retryable; the retry goes elsewhere."""
    account, small, big = small_sensor_account(aws, second_sensor=True)
    subnet = account.subnets["us-east-1a"]
    inventory.inventory(home())  # the container's count: the small sensor is empty
    for n, inst in enumerate(sandbox.launch(aws, account, subnet, count=10)):
        foreign_session(aws, inst["NetworkInterfaces"][0]["NetworkInterfaceId"], small, account.filters["default"], n + 1)
    (late,) = sandbox.launch(aws, account, subnet)
    event = launch_event([late], "launch-late")
    eni = late["NetworkInterfaces"][0]["NetworkInterfaceId"]
    with pytest.raises(app.RetryableFailure):  # the small sensor shares the source's subnet: nearest
        app.handle(event)
    assert eni not in by_eni(aws)
    app.handle(event)  # the retry (Lambda's or SQS's) of the same event
    assert [s["TrafficMirrorTargetId"] for s in by_eni(aws)[eni]] == [big]


def test_the_eleventh_eni_with_no_other_target_is_target_full(aws: Any, counter: CallCounter) -> None:
    """Nothing else can serve it: the eleventh ENI is reported `target-full` (the plan, the sweep and
    coverage agree), no create is tried; it is mirrored once a source leaves the sensor."""
    account, small, _ = small_sensor_account(aws, second_sensor=False)
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=11)
    counter.clear()
    result = app.handle(launch_event(instances, "launch-11"))
    assert counter.calls["CreateTrafficMirrorSession"] == 10
    assert result["problems"] == {"target-full": 1} and result["counts"]["Created"] == 10
    assert {s["TrafficMirrorTargetId"] for s in sessions(aws)} == {small} and len(sessions(aws)) == 10
    (left,) = enis_of(instances) - set(by_eni(aws))
    swept = app.handle(scheduled("sweep-full"))
    assert swept["problems"] == {"target-full": 1} and swept["counts"]["Created"] == 0
    gone = next(i for i in instances if i["NetworkInterfaces"][0]["NetworkInterfaceId"] != left)
    aws.terminate_instances(InstanceIds=[gone["InstanceId"]])  # its ENI and session go with it (AWS)
    assert len(sessions(aws)) == 9
    assert app.handle(scheduled("sweep-room"))["counts"]["Created"] == 1
    assert left in by_eni(aws)


def test_sqs_batch_reports_only_retryable_messages(aws: Any) -> None:
    account, small, _ = small_sensor_account(aws, second_sensor=False)
    subnet_a = account.subnets["us-east-1a"]
    subnet_b = aws.create_subnet(VpcId=account.vpc, CidrBlock="10.0.64.0/20", AvailabilityZone="us-east-1b")[
        "Subnet"
    ]["SubnetId"]
    sandbox.add_eni_target(aws, account, subnet_b, "sensor-b", "c5.24xlarge")
    inventory.inventory(home())  # counted empty: the sessions below come after this container's read
    fillers = sandbox.launch(aws, account, subnet_a, count=10)
    for inst in fillers:  # the small sensor is full of someone else's sessions
        foreign_session(
            aws, inst["NetworkInterfaces"][0]["NetworkInterfaceId"], small, account.filters["default"], 1
        )
    fine = sandbox.launch(aws, account, subnet_b)
    blocked = sandbox.launch(aws, account, subnet_a)
    batch = {
        "Records": [
            {"messageId": "m1", "body": json.dumps(launch_event(fine, "ok-1"))},
            {"messageId": "m2", "body": "{not json"},
            {"messageId": "m3", "body": json.dumps(launch_event(blocked, "full-1"))},
            {"messageId": "m4", "body": json.dumps({"detail-type": "Nope", "region": REGION})},
            {"messageId": "m5", "body": json.dumps(terminate_event([fine[0]["InstanceId"]], "term-1"))},
        ]
    }
    result = app.handle(batch)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert set(by_eni(aws)) - enis_of(fillers) == enis_of(fine)


# --- scale: API calls of a sweep over 1,000 ENIs (not timed: the benchmarks time) ----------------


def test_sweep_api_calls_over_1000_enis(aws: Any, counter: CallCounter) -> None:
    account = sandbox.build_account(aws, sensors_per_az=8, sensor_type="c5.24xlarge")
    for subnet in account.subnets.values():  # RunInstances alone: nothing here reads the instances back
        aws.run_instances(ImageId=account.ami, InstanceType="m5.large", MinCount=500, MaxCount=500, SubnetId=subnet)
    counter.clear()
    first = app.handle(scheduled("scale-1"))
    first_calls = counter.snapshot()
    counter.clear()
    second = app.handle(scheduled("scale-2"))
    second_calls = counter.snapshot()
    assert first["counts"]["Created"] == 1000, first["counts"]
    assert first_calls["CreateTrafficMirrorSession"] == 1000, first_calls
    # 1,000 creates, 7 reads (paginated): the sweep's 3 (instances, tagged ENIs, sessions) and its
    # inventory's 4 (targets, filters, the sensors' instances with their ENIs, the sessions on the
    # sensors), read again by every scheduled sweep
    assert first_calls.total() == 1007, first_calls
    assert second["counts"]["AlreadyMirrored"] == 1000, second["counts"]
    assert sum(n for op, n in second_calls.items() if not op.startswith("Describe")) == 0, second_calls
    assert second_calls.total() == 7, second_calls
    per_target = Counter(s["TrafficMirrorTargetId"] for s in sessions(aws))
    assert len(per_target) == 16 and max(per_target.values()) <= 100


# --- one definition of coverage ----------------------------------------------------------


def test_the_sweeps_coverage_and_the_clis_agree_on_one_world(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    """The sweep's published coverage and the CLI's report count the same ENIs as mirrored."""
    from traffic_mirror.cli.coverage import coverage
    from traffic_mirror.handler import reconcile
    from traffic_mirror.handler.context import Container, Context

    sandbox.launch_sample_workloads(aws, account)
    app.handle(scheduled("sweep-agree"))
    (line,) = [vars(r) for r in logged if r.getMessage() == "coverage"]
    ctx = Context(Place(REGION), Settings(), Container())
    decisions, _ = reconcile.read_only_plan(ctx)
    report = coverage(REGION, decisions)
    assert (line["in_scope"], line["mirrored"]) == (report.in_scope, report.mirrored)
    assert 0 < report.mirrored < report.in_scope  # a world with both: payments-1 has no PCI sensor
