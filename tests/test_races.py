"""Two writers on one ENI (launch event vs state-change event or sweep), and the sweep's grace."""

import dataclasses
from typing import Any

from traffic_mirror.handler import app, inventory, reconcile
from traffic_mirror.handler.events import Change, parse
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from tests.conftest import home
from testsupport import sandbox
from testsupport.event_builders import run_instances_record, scheduled, wrap

SCHEDULED = scheduled("tick-1", rule="mirror-sweep-us-east-1")


def plan_from_a_stale_read(change: Change) -> list[Any]:
    """Plan and apply as if the sessions read had found none (the other writer came after it)."""
    ctx = home()
    return reconcile._plan_and_apply(ctx, inventory.inventory(ctx), change.sources, (), [], (), None)


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]


def test_a_lost_session_number_race_is_settled_in_the_same_invocation(
    aws: Any, account: sandbox.Account, counter: Any
) -> None:
    """Plan from a stale read (no sessions) while our session already exists: the create loses the
    number, the ENI is read again, and it is reported mirrored, not a retryable failure."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    event = wrap(run_instances_record(instances))
    app.handle(event)  # the other writer wins
    winner = {s["NetworkInterfaceId"]: s["TrafficMirrorSessionId"] for s in sessions(aws)}
    change = parse(
        wrap(run_instances_record(instances, event_id="state-change-1")), Settings()
    )
    assert isinstance(change, Change)
    counter.calls.clear()
    results = plan_from_a_stale_read(change)
    assert {r.status for r in results} == {"mirrored"}, [r.reason for r in results]
    assert not any(r.retryable for r in results)
    assert {s["NetworkInterfaceId"]: s["TrafficMirrorSessionId"] for s in sessions(aws)} == winner
    assert counter.calls["DescribeTrafficMirrorSessions"] == 1  # one batched re-read for both ENIs


def test_a_race_with_a_foreign_session_takes_the_next_number(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = instances[0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    change = parse(wrap(run_instances_record(instances)), Settings())
    assert isinstance(change, Change)
    aws.create_traffic_mirror_session(  # someone else, between our read and our write
        NetworkInterfaceId=eni,
        TrafficMirrorTargetId=account.targets["sensor-us-east-1a-0"],
        TrafficMirrorFilterId=account.filters["default"],
        SessionNumber=1,
    )
    results = plan_from_a_stale_read(change)
    assert [r.status for r in results] == ["created"]
    ours = [
        s
        for s in sessions(aws)
        if {"Key": MANAGED_TAG_KEY, "Value": "traffic-mirror-automation"} in s["Tags"]
    ]
    assert [s["SessionNumber"] for s in ours] == [2]


def test_scheduled_sweep_leaves_just_attached_enis_to_their_events(
    aws: Any, account: sandbox.Account
) -> None:
    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=3)
    graceful = dataclasses.replace(Settings(), sweep_grace_seconds=120)
    result = app.handle(SCHEDULED, settings=graceful)
    assert result["counts"]["Created"] == 0 and sessions(aws) == []
    # Neither a sweep by hand (or right after deploy: no rule in `resources`) nor one for a
    # deleted session waits for the grace period.
    manual = {**SCHEDULED, "id": "by-hand", "resources": []}
    assert app.handle(manual, settings=graceful)["counts"]["Created"] == 3
    aws.delete_traffic_mirror_session(TrafficMirrorSessionId=sessions(aws)[0]["TrafficMirrorSessionId"])
    deleted = {
        **SCHEDULED,
        "id": "del-1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "detail": {
            "eventName": "DeleteTrafficMirrorSession",
            "eventSource": "ec2.amazonaws.com",
            "awsRegion": "us-east-1",
            "eventID": "del-1",
            "requestParameters": {"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": "tms-1"}},
            "responseElements": {"DeleteTrafficMirrorSessionResponse": {"trafficMirrorSessionId": "tms-1"}},
        },
    }
    assert app.handle(deleted, settings=graceful)["counts"]["Created"] == 1
    # Without a grace period the scheduled sweep takes every ENI.
    sandbox.launch(aws, account, account.subnets["us-east-1b"])
    assert app.handle(SCHEDULED, settings=Settings())["counts"]["Created"] == 1


def test_grace_never_releases_young_enis_sessions(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    app.handle(wrap(run_instances_record(instances)))
    assert len(sessions(aws)) == 1
    releasing = dataclasses.replace(Settings(), sweep_grace_seconds=120, release_on_stop=True)
    result = app.handle(SCHEDULED, settings=releasing)
    assert result["counts"]["Deleted"] == 0 and len(sessions(aws)) == 1
