"""The organization as AWS really behaves: one test per defect an adversarial campaign found.

They run on the AWS-faithful sandbox (docs/organization-emulation.md): a hub's target shared with a
member is listed in the member's own DescribeTrafficMirrorTargets (without the hub's tags), whose
ENI the member cannot describe; the hub lists the sessions members make on its targets; only the
owner may change either. Each failed on the handler before its fix. Tests that change shared
state use a member account of their own.

Finding 4 (Organizations failing) is in test_organization_aws_faults.py: its errors are injected in
front of a moto server, which shares this process's backends and so cannot run beside this world.
"""

import contextlib
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from traffic_mirror.components.teardown import release_event
from traffic_mirror.handler import app
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from tests.test_organization import (
    HUB,
    MEMBER_A,
    MEMBER_B,
    REGION,
    SCHEDULED,
    World,
    handle,
    roles_refused_in,
    sqs_batch,
)
from testsupport import logs, sandbox
from testsupport.event_builders import load_record, run_instances_record, wrap

MANAGED = [
    {
        "ResourceType": "traffic-mirror-session",
        "Tags": [{"Key": MANAGED_TAG_KEY, "Value": "traffic-mirror-automation"}],
    }
]
FUNCTION, FUNCTION_ROLE = "mirror-handler", f"arn:aws:iam::{HUB}:role/mirror-handler-role"
_fresh = itertools.count(1)


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        yield World()
    app.CONTAINER.reset()


@pytest.fixture
def world(shared_world: World) -> World:
    app.CONTAINER.reset()
    return shared_world


def fresh_member(world: World) -> str:
    """A member of the test's own (the hub's sensors shared with it): shared state stays untouched."""
    account = f"3000000000{next(_fresh):02d}"
    world.add_member(account)
    return account


def enis_of(instances: list[dict[str, Any]]) -> list[str]:
    return [e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]]


def sessions_on(ec2: Any, enis: list[str]) -> list[dict[str, Any]]:
    found = ec2.describe_traffic_mirror_sessions(Filters=[{"Name": "network-interface-id", "Values": enis}])
    return list(found["TrafficMirrorSessions"])


def managed_session(ec2: Any, eni: str, target: str, filter_id: str, number: int = 1) -> str:
    """A session as the handler makes it (ManagedBy tag), made directly: setup that needs no handler."""
    made = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=eni,
        TrafficMirrorTargetId=target,
        TrafficMirrorFilterId=filter_id,
        SessionNumber=number,
        TagSpecifications=MANAGED,
    )
    return str(made["TrafficMirrorSession"]["TrafficMirrorSessionId"])


def sweep(settings: Settings) -> tuple[dict[str, Any] | None, list[logging.LogRecord]]:
    """A scheduled sweep; (its result, or None if it raised RetryableFailure) and the records it logged."""
    with logs.captured() as records:
        try:
            return handle(SCHEDULED, settings), records
        except app.RetryableFailure:
            return None, records


def mentions(record: logging.LogRecord, text: str) -> bool:
    return text in json.dumps(vars(record), default=str)


def hub_sensor_in(world: World, hub_az: str) -> str:
    return world.sensors[world.hub_zones[hub_az]]


# --- finding 1: members use the hub's shared sensors --------------------------------------------------


@pytest.mark.moto
def test_a_member_is_mirrored_to_the_hub_sensors_shared_with_it_and_counted(world: World) -> None:
    member = fresh_member(world)
    settings = Settings(accounts=member, sweep_grace_seconds=0)
    swept = world.launch(member, "us-east-1a", count=2) + world.launch(member, "us-east-1b")
    result, records = sweep(settings)
    assert result is not None, [d["reason"] for d in logs.decisions(records) if d["outcome"] == "failed"]
    for instance, az in zip(swept, ("us-east-1a", "us-east-1a", "us-east-1b"), strict=True):
        (session,) = world.sessions(member, [instance])
        assert session["TrafficMirrorTargetId"] == world.expected_sensor(member, az)
    counted = {d["eni"]: d["outcome"] for d in logs.decisions(records) if d.get("account") == member}
    assert {eni: counted.get(eni) for eni in enis_of(swept)} == dict.fromkeys(enis_of(swept), "created")
    (coverage,) = [r for r in records if r.getMessage() == "coverage"]
    assert vars(coverage)["in_scope"] >= len(swept) and vars(coverage)["mirrored"] >= len(swept)
    # And the launch event of a new instance (the path that failed 5 deliveries of 5).
    (launched,) = world.launch(member, "us-east-1b")
    assert handle(world.event(member, [launched], "launch-1"), settings)["counts"]["Created"] == 1
    (session,) = world.sessions(member, [launched])
    assert session["TrafficMirrorTargetId"] == world.expected_sensor(member, "us-east-1b")


# --- finding 2: the hub's own sweep and the members' sessions on its sensors -----------------------------


@pytest.mark.moto
@pytest.mark.parametrize(
    "foreign_tags",
    [
        pytest.param(False, id="member-tags-hidden"),
        pytest.param(
            True,
            id="member-tags-visible",
        ),
    ],
)
def test_the_hubs_own_sweep_never_touches_member_sessions_on_its_sensors(
    world: World, foreign_tags: bool
) -> None:
    """Whether the hub sees the members' tags on those sessions is unknown: the claim must hold either way."""
    member = fresh_member(world)
    ec2, built, _ = world.members[member]
    theirs = world.launch(member, "us-east-1a", count=2)
    made = [
        managed_session(ec2, eni, world.expected_sensor(member, "us-east-1a"), built.filters["default"])
        for eni in enis_of(theirs)
    ]
    (own,) = sandbox.launch(world.hub, world.hub_account, world.hub_account.subnets["us-east-1c"])
    assert {s["TrafficMirrorSessionId"] for s in sessions_on(world.hub, enis_of(theirs))} == set(
        made
    )  # the hub sees them
    with sandbox.foreign_tags(foreign_tags):
        result, records = sweep(Settings(release_on_stop=True, sweep_grace_seconds=0))
    assert result is not None, [r.getMessage() for r in records]
    assert len(world.sessions(HUB, [own])) == 1  # the hub's own ENI is mirrored
    assert [w for w in sandbox.refused_writes() if w[0] == HUB] == []  # no write was even tried
    assert {s["TrafficMirrorSessionId"] for s in world.sessions(member, theirs)} == set(made)
    touched = {d.get("eni") for d in logs.decisions(records)} & set(enis_of(theirs))
    assert touched == set(), "the members' ENIs are never planned or counted by the hub's own sweep"


# --- finding 3: only the sensors shared with a member ---------------------------------------------------------


@pytest.mark.moto
def test_a_member_uses_only_the_hub_sensors_its_own_listing_shows(world: World) -> None:
    member = fresh_member(world)
    ec2, _, zones = world.members[member]
    hub_az = next(az for az, zone in world.hub_zones.items() if zone == zones["us-east-1a"])
    original = hub_sensor_in(world, hub_az)
    second = sandbox.add_eni_target(
        world.hub,
        world.hub_account,
        world.hub_account.subnets[hub_az],
        "central-second",
        "c5.24xlarge",
        {"Mirror": "true"},
    )
    sandbox.share_target(second, HUB, [member])
    settings = Settings(accounts=member)
    (instance,) = world.launch(member, "us-east-1a")
    try:
        handle(world.event(member, [instance], "launch-1"), settings)
        (first,) = world.sessions(member, [instance])
        chosen = first["TrafficMirrorTargetId"]  # the handler's own pick between two equal sensors
        ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=first["TrafficMirrorSessionId"])
        sandbox.unshare_target(chosen, [member])  # still tagged Mirror=true in the hub, no longer shared
        app.CONTAINER.reset()
        handle(world.event(member, [instance], "launch-2"), settings)
        (session,) = world.sessions(member, [instance])
        assert session["TrafficMirrorTargetId"] == ({original, second} - {chosen}).pop()
    finally:
        for session in sessions_on(ec2, enis_of([instance])):
            ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
        world.hub.delete_traffic_mirror_target(TrafficMirrorTargetId=second)
        sandbox.share_target(original, HUB, tuple(world.members))


# --- finding 5: a member that cannot be read is in the coverage ------------------------------------------------


@pytest.mark.moto
def test_a_member_that_cannot_be_read_is_failed_in_the_sweeps_coverage_and_logged_at_error(
    world: World,
) -> None:
    world.launch(MEMBER_B, "us-east-1a", count=2)
    with roles_refused_in(MEMBER_B):
        _, records = sweep(Settings(accounts=f"{MEMBER_A},{MEMBER_B}", sweep_grace_seconds=0))
    assert any(r.levelno >= logging.ERROR and mentions(r, MEMBER_B) for r in records), "an operator must look"
    (coverage,) = [r for r in records if r.getMessage() == "coverage"]
    assert mentions(coverage, MEMBER_B), "the coverage line names the account it could not read"


# --- finding 6: the security team's sensors, not the members' own -----------------------------------------------


@pytest.mark.moto
def test_in_an_organization_members_are_mirrored_to_the_hubs_sensors_not_their_own(world: World) -> None:
    member = fresh_member(world)
    ec2, built, _ = world.members[member]
    theirs = sandbox.add_eni_target(
        ec2, built, built.subnets["us-east-1a"], "member-admin-sensor"
    )  # untagged
    hub_sensor = world.expected_sensor(member, "us-east-1a")
    settings = Settings(accounts=member, sweep_grace_seconds=0)
    (instance,) = world.launch(member, "us-east-1a")
    handle(world.event(member, [instance], "launch-1"), settings)
    (session,) = world.sessions(member, [instance])
    assert session["TrafficMirrorTargetId"] == hub_sensor
    # Someone moves our session to the member's own target: it goes back.
    ec2.modify_traffic_mirror_session(
        TrafficMirrorSessionId=session["TrafficMirrorSessionId"], TrafficMirrorTargetId=theirs
    )
    sweep(settings)
    (moved,) = world.sessions(member, [instance])
    assert moved["TrafficMirrorTargetId"] == hub_sensor


@pytest.mark.moto
@pytest.mark.parametrize(
    ("owners", "expected"),
    [("hub,member", "member"), ("member", "member"), ("hub", "hub"), (None, "hub")],
)
def test_sensor_owners_say_whose_targets_serve_a_member(world: World, owners: str | None, expected: str) -> None:
    """MIRROR_SENSOR_OWNERS: with the member's own targets allowed, its same-VPC sensor is nearer
    than the hub's (cross-VPC); with only the hub's (the organization default), the hub's."""
    member = fresh_member(world)
    ec2, built, _ = world.members[member]
    theirs = sandbox.add_eni_target(ec2, built, built.subnets["us-east-1a"], "member-sensor")
    settings = Settings(accounts=member, sensor_owners=owners)
    (instance,) = world.launch(member, "us-east-1a")
    handle(world.event(member, [instance], f"launch-owners-{owners}"), settings)
    (session,) = world.sessions(member, [instance])
    wanted = theirs if expected == "member" else world.expected_sensor(member, "us-east-1a")
    assert session["TrafficMirrorTargetId"] == wanted


# --- finding 7: the smaller ones ---------------------------------------------------------------------------------


def deleted_by(actor_role: str, session_name: str, event_id: str) -> dict[str, Any]:
    """A DeleteTrafficMirrorSession record, made by `actor_role` with this role session name, in the hub."""
    record = load_record("RunInstances__elastic-integrations__1.json")
    record.update(
        eventName="DeleteTrafficMirrorSession",
        eventID=event_id,
        requestParameters={
            "DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": "tms-0123456789abcdef0"}
        },
        responseElements=None,
        userIdentity={
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{HUB}:assumed-role/{actor_role.split('/')[-1]}/{session_name}",
            "accountId": HUB,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": actor_role, "accountId": HUB}},
        },
    )
    return wrap(record, account=HUB)


@pytest.mark.moto
def test_a_delete_by_another_role_using_our_functions_name_as_session_name_is_undone(world: World) -> None:
    settings = Settings(function_name=FUNCTION, role_arn=FUNCTION_ROLE)
    (instance,) = sandbox.launch(world.hub, world.hub_account, world.hub_account.subnets["us-east-1d"])
    assert (
        handle(wrap(run_instances_record([instance], event_id="hub-launch-7b")), settings)["counts"][
            "Created"
        ]
        == 1
    )
    (session,) = world.sessions(HUB, [instance])
    world.hub.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
    ours = handle(deleted_by(FUNCTION_ROLE, FUNCTION, "delete-by-us"), settings)
    assert ours["counts"]["Ignored"] == 1  # our own role's call: never fought
    impostor = handle(
        deleted_by(f"arn:aws:iam::{HUB}:role/someone-else", FUNCTION, "delete-by-them"), settings
    )
    assert impostor["counts"]["Ignored"] == 0
    assert len(world.sessions(HUB, [instance])) == 1, "another role's delete is undone"


@contextlib.contextmanager
def deleted_before_modify() -> Iterator[list[str]]:
    """Another tool deletes the session just before our ModifyTrafficMirrorSession reaches EC2."""
    patched = TrafficMirrorsBackend.modify_traffic_mirror_session
    raced: list[str] = []

    def modify(self: Any, traffic_mirror_session_id: str, *args: Any, **kwargs: Any) -> Any:
        if not raced and traffic_mirror_session_id in self.traffic_mirror_sessions:
            raced.append(traffic_mirror_session_id)
            self.delete_traffic_mirror_session(traffic_mirror_session_id)
        return patched(self, traffic_mirror_session_id, *args, **kwargs)

    TrafficMirrorsBackend.modify_traffic_mirror_session = modify  # type: ignore[method-assign]
    try:
        yield raced
    finally:
        TrafficMirrorsBackend.modify_traffic_mirror_session = patched  # type: ignore[method-assign]


@pytest.mark.moto
def test_a_modify_answered_not_found_after_another_tools_delete_is_planned_again(world: World) -> None:
    hub, built = world.hub, world.hub_account
    (instance,) = sandbox.launch(hub, built, built.subnets["us-east-1e"])
    (eni,) = enis_of([instance])
    disabled = hub.create_traffic_mirror_filter(
        Description="not ours",
        TagSpecifications=[
            {"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "Mirror", "Value": "off"}]}
        ],
    )["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    managed_session(
        hub, eni, hub_sensor_in(world, "us-east-1e"), disabled
    )  # ours, on a filter we must move off
    event = wrap(run_instances_record([instance], event_id="hub-launch-7c"))
    with deleted_before_modify() as raced:
        try:
            handle(event)
        except app.RetryableFailure:
            handle(event)  # Lambda's retry of the same event
    assert raced, "the race happened"
    found = world.sessions(HUB, [instance])
    assert [s["TrafficMirrorFilterId"] for s in found] == [built.filters["default"]], "mirrored again, by us"


# The hub's and the member's EC2 statements (one builder, equal conditions) and the read-only
# operator role are tested on the deployed policies in tests/test_permissions.py.


@pytest.mark.moto
def test_a_teardown_event_from_the_queue_deletes_nothing(world: World) -> None:
    """Last in the module: today it deletes every managed session of the hub and the member."""
    member = fresh_member(world)
    ec2, built, _ = world.members[member]
    (theirs,) = world.launch(member, "us-east-1b")
    managed_session(
        ec2, enis_of([theirs])[0], world.expected_sensor(member, "us-east-1b"), built.filters["default"]
    )
    (own,) = sandbox.launch(world.hub, world.hub_account, world.hub_account.subnets["us-east-1f"])
    managed_session(
        world.hub, enis_of([own])[0], hub_sensor_in(world, "us-east-1f"), world.hub_account.filters["default"]
    )
    result = handle(sqs_batch(release_event(REGION)), Settings(accounts=member))
    assert result == {"batchItemFailures": []}  # rejected, not retried
    assert len(world.sessions(member, [theirs])) == 1 and len(world.sessions(HUB, [own])) == 1
