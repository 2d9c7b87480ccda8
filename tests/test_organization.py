"""One hub handler, several accounts: member events are mirrored in the member, to the hub's sensors.

moto keeps one backend per account and routes assumed-role credentials to the role's account; the
sandbox adds what moto lacks, as AWS documents it (docs/organization-emulation.md): RAM (a hub
target shared with the members is listed in their own DescribeTrafficMirrorTargets, without the
hub's tags, and its ENI stays the hub's), the hub's view of the sessions members make on its
targets, owner-only writes, and per-account AZ names (the member's `us-east-1a` is another zone
than the hub's). The issue 22 reproducers are in test_organization_aws.py.
"""

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sts.models import STSBackend
from traffic_mirror.handler import app, planner
from traffic_mirror.handler.model import Source
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from testsupport import sandbox
from testsupport.event_builders import (
    create_network_interface_record,
    load_record,
    run_instances_record,
    wrap,
)

pytestmark = pytest.mark.moto

REGION = "us-east-1"
HUB = "123456789012"  # moto's default account: the handler's own credentials
MEMBER_A, MEMBER_B = "111111111111", "222222222222"
ROLE = "traffic-mirror-automation-member"


class LambdaContext:
    """What Lambda passes: the function's ARN (its account) and the time left."""

    invoked_function_arn = f"arn:aws:lambda:{REGION}:{HUB}:function:mirror-handler"
    aws_request_id = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def member_ec2(account: str, service: str = "ec2") -> Any:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-setup", RoleSessionName="setup"
    )["Credentials"]
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


class World:
    """A hub with central sensors (tagged Mirror=true, shared with the members) and member accounts."""

    def __init__(self, members: tuple[str, ...] = (MEMBER_A, MEMBER_B)) -> None:
        self.hub = boto3.client("ec2", region_name=REGION)
        # A central sensor in every zone, so each member zone has one (by AZ id).
        self.hub_account = sandbox.build_account(self.hub, REGION, tuple("abcdef"), sensors_per_az=0)
        self.hub_zones = {
            z["ZoneName"]: z["ZoneId"] for z in self.hub.describe_availability_zones()["AvailabilityZones"]
        }
        self.sensors: dict[str, str] = {}  # zone id -> hub target id
        for az, subnet in self.hub_account.subnets.items():
            target = sandbox.add_eni_target(
                self.hub, self.hub_account, subnet, f"central-{az}", "c5.24xlarge", {"Mirror": "true"}
            )
            self.sensors[self.hub_zones[az]] = target
            sandbox.share_target(target, HUB, members)
        self.members: dict[str, tuple[Any, sandbox.Account, dict[str, str]]] = {}
        for account in members:
            self.add_member(account)

    def add_member(self, account: str) -> None:
        """A workload account with its own AZ names (shifted against the hub's) and its own filter."""
        zones = sandbox.permute_zones(account, REGION, shift=len(self.members) + 1)
        ec2 = member_ec2(account)
        self.members[account] = (ec2, sandbox.build_account(ec2, REGION, sensors_per_az=0), zones)
        for target in self.sensors.values():
            sandbox.share_target(target, HUB, tuple(self.members))

    def launch(self, account: str, az: str = "us-east-1a", count: int = 1) -> list[dict[str, Any]]:
        ec2, built, _ = self.members[account]
        return sandbox.launch(ec2, built, built.subnets[az], count=count)

    def event(self, account: str, instances: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
        return wrap(run_instances_record(instances, event_id=event_id), account=account)

    def sessions(self, account: str, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sessions on these instances' ENIs (the world is shared by the module's tests)."""
        enis = [e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]]
        ec2 = self.members[account][0] if account != HUB else self.hub
        found = ec2.describe_traffic_mirror_sessions(Filters=[{"Name": "network-interface-id", "Values": enis}])
        return list(found["TrafficMirrorSessions"])

    def hub_sessions(self) -> list[dict[str, Any]]:
        """Sessions the hub owns (its DescribeTrafficMirrorSessions also lists members' sessions on its targets)."""
        owned: Any = self.hub.describe_traffic_mirror_sessions(Filters=[{"Name": "owner-id", "Values": [HUB]}])
        return list(owned["TrafficMirrorSessions"])

    def expected_sensor(self, account: str, az: str) -> str:
        """The hub sensor in the same zone (by AZ id) as the member's `az`."""
        return self.sensors[self.members[account][2][az]]


SETTINGS = Settings(accounts=f"{MEMBER_A},{MEMBER_B}")



@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """One hub and two members for the module (building accounts is the slow part)."""
    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        yield World()
    app.CONTAINER.reset()


@pytest.fixture
def world(shared_world: World) -> World:
    app.CONTAINER.reset()  # a cold container for each test
    return shared_world


def handle(event: Any, settings: Settings = SETTINGS) -> dict[str, Any]:
    return app.handle(event, LambdaContext(), settings=settings)


def sqs_batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "body": json.dumps(e)} for i, e in enumerate(events)]}


def test_a_launch_in_a_member_is_mirrored_there_to_the_hub_sensor_of_the_same_zone_id(world: World) -> None:
    (instance,) = world.launch(MEMBER_A, "us-east-1a")
    result = handle(world.event(MEMBER_A, [instance], "launch-a"))
    assert result["counts"]["Created"] == 1, result
    (session,) = world.sessions(MEMBER_A, [instance])
    assert session["NetworkInterfaceId"] == instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    expected = world.expected_sensor(MEMBER_A, "us-east-1a")
    assert session["TrafficMirrorTargetId"] == expected
    # Not the hub sensor that merely shares the AZ *name*: zones are matched by id.
    assert expected != world.sensors[world.hub_zones["us-east-1a"]]
    assert session["TrafficMirrorFilterId"] == world.members[MEMBER_A][1].filters["default"]
    tags = {t["Key"]: t["Value"] for t in session["Tags"]}
    assert tags[MANAGED_TAG_KEY] == "traffic-mirror-automation"
    # Nothing made in the hub. (The hub does list the member's session on its sensor, as on AWS.)
    assert world.hub_sessions() == []
    assert world.sessions(MEMBER_B, [instance]) == []


def test_a_batch_mixing_accounts_and_its_redelivery(world: World) -> None:
    a = world.launch(MEMBER_A, "us-east-1b", count=2)
    b = world.launch(MEMBER_B, "us-east-1a")
    batch = sqs_batch(world.event(MEMBER_A, a, "launch-a"), world.event(MEMBER_B, b, "launch-b"))
    assert handle(batch) == {"batchItemFailures": []}
    assert handle(batch) == {"batchItemFailures": []}  # redelivered: nothing twice
    for account, instances, az in ((MEMBER_A, a, "us-east-1b"), (MEMBER_B, b, "us-east-1a")):
        found = world.sessions(account, instances)
        assert sorted(s["NetworkInterfaceId"] for s in found) == sorted(
            i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in instances
        )
        assert {s["TrafficMirrorTargetId"] for s in found} == {world.expected_sensor(account, az)}


def per_vpc_vni(account: str, vpc: str) -> int:
    return planner.vni_for(Source("", "", "", "", vpc, "", account=account))


def test_with_vni_per_vpc_each_account_and_vpc_has_its_own_vni_on_every_session(world: World) -> None:
    """MIRROR_VNI_PER_VPC: a sensor tells two VPCs with the same CIDR apart by the sessions' VNI."""
    ec2_a, built_a, _ = world.members[MEMBER_A]
    twin = ec2_a.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]  # member A's VPC's CIDR again
    subnet = ec2_a.create_subnet(VpcId=twin, CidrBlock="10.0.0.0/20", AvailabilityZone="us-east-1a")
    a = world.launch(MEMBER_A, "us-east-1a") + world.launch(MEMBER_A, "us-east-1b")
    a_twin = sandbox.launch(ec2_a, built_a, subnet["Subnet"]["SubnetId"])
    b = world.launch(MEMBER_B, "us-east-1a")
    batch = sqs_batch(world.event(MEMBER_A, a + a_twin, "vni-a"), world.event(MEMBER_B, b, "vni-b"))
    assert handle(batch, Settings(accounts=f"{MEMBER_A},{MEMBER_B}", vni_per_vpc=True)) == {"batchItemFailures": []}
    expected = {
        (MEMBER_A, built_a.vpc): a,
        (MEMBER_A, twin): a_twin,
        (MEMBER_B, world.members[MEMBER_B][1].vpc): b,
    }
    vnis = set()
    for (account, vpc), instances in expected.items():
        found = world.sessions(account, instances)
        assert len(found) == len(instances)
        assert {s.get("VirtualNetworkId") for s in found} == {per_vpc_vni(account, vpc)}, (account, vpc)
        vnis.add(per_vpc_vni(account, vpc))
    assert len(vnis) == len(expected)  # one per (account, VPC)


def test_an_account_not_covered_is_rejected_and_nothing_is_done(world: World) -> None:
    (instance,) = world.launch(MEMBER_B)
    result = handle(world.event(MEMBER_B, [instance], "launch-b"), Settings(accounts=MEMBER_A))
    assert result["counts"]["Rejected"] == 1 and result["counts"]["Created"] == 0
    assert world.sessions(MEMBER_B, [instance]) == []


def test_a_deleted_session_in_a_member_is_restored(world: World) -> None:
    (instance,) = world.launch(MEMBER_A)
    handle(world.event(MEMBER_A, [instance], "launch-restore"))
    (session,) = world.sessions(MEMBER_A, [instance])
    ec2 = world.members[MEMBER_A][0]
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
    record = load_record("RunInstances__elastic-integrations__1.json")
    record.update(
        eventName="DeleteTrafficMirrorSession",
        eventID="delete-1",
        requestParameters={"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": "x"}},
        responseElements=None,
    )
    result = handle(wrap(record, account=MEMBER_A))
    assert result["counts"]["Created"] >= 1, result
    (restored,) = world.sessions(MEMBER_A, [instance])
    assert restored["TrafficMirrorSessionId"] != session["TrafficMirrorSessionId"]


SCHEDULED = {
    "version": "0",
    "id": "tick-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": HUB,
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{HUB}:rule/mirror-sweep"],
    "detail": {},
}


def test_the_scheduled_sweep_covers_every_listed_account(world: World) -> None:
    a, b = world.launch(MEMBER_A), world.launch(MEMBER_B, "us-east-1b")
    own = sandbox.launch(world.hub, world.hub_account, world.hub_account.subnets["us-east-1a"])
    result = handle(SCHEDULED, Settings(accounts=f"{MEMBER_A},{MEMBER_B}", sweep_grace_seconds=0))
    assert result["counts"]["Created"] >= 3, result
    for account, instances in ((MEMBER_A, a), (MEMBER_B, b), (HUB, own)):
        assert len(world.sessions(account, instances)) == 1, account
    again = handle(SCHEDULED, SETTINGS)
    assert again["counts"]["Created"] == 0 and again["counts"]["AlreadyMirrored"] >= 3


def test_organization_means_every_active_account_of_the_organization(world: World) -> None:
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    joined = org.create_account(Email="a@example.com", AccountName="workload")["CreateAccountStatus"]
    member = str(joined["AccountId"])
    world.add_member(member)  # joins later: no configuration changes
    (instance,) = world.launch(member)
    everywhere = Settings(accounts="organization", sweep_grace_seconds=0)
    result = handle(SCHEDULED, everywhere)
    assert result["counts"]["Created"] >= 1, result
    assert len(world.sessions(member, [instance])) == 1
    assert handle(world.event(member, [instance], "launch-1"), everywhere)["counts"]["AlreadyMirrored"] == 1
    (other,) = world.launch(MEMBER_A)  # not in the organization
    assert handle(world.event(MEMBER_A, [other], "launch-2"), everywhere)["counts"]["Rejected"] == 1


@contextlib.contextmanager
def roles_refused_in(*accounts: str) -> Iterator[None]:
    """STS refuses AssumeRole into these accounts (a member without the role, or a wrong trust)."""
    original = STSBackend.assume_role

    def assume_role(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("role_arn", "").split(":")[4] in accounts:
            from moto.sts.exceptions import STSClientError

            raise STSClientError("AccessDenied", f"not authorized to assume {kwargs.get('role_arn')}")
        return original(self, **kwargs)

    STSBackend.assume_role = assume_role  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        STSBackend.assume_role = original  # type: ignore[method-assign]


def test_a_member_whose_role_cannot_be_assumed_fails_only_its_own_messages(world: World) -> None:
    a, b = world.launch(MEMBER_A), world.launch(MEMBER_B)
    batch = sqs_batch(world.event(MEMBER_A, a, "launch-a"), world.event(MEMBER_B, b, "launch-b"))
    with roles_refused_in(MEMBER_B):
        result = handle(batch)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert len(world.sessions(MEMBER_A, a)) == 1 and world.sessions(MEMBER_B, b) == []
    assert handle(batch) == {"batchItemFailures": []}  # the role works again: the retry finishes
    assert len(world.sessions(MEMBER_B, b)) == 1


def test_one_assume_role_per_account_and_container(world: World) -> None:
    calls: list[str] = []
    original = STSBackend.assume_role

    def counting(self: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["role_arn"])
        return original(self, **kwargs)

    STSBackend.assume_role = counting  # type: ignore[method-assign,assignment]
    try:
        for n in range(3):
            (instance,) = world.launch(MEMBER_A)
            handle(world.event(MEMBER_A, [instance], f"launch-{n}"))
    finally:
        STSBackend.assume_role = original  # type: ignore[method-assign]
    assert calls == [f"arn:aws:iam::{MEMBER_A}:role/{ROLE}"]


def test_without_accounts_member_events_are_rejected(world: World) -> None:
    (instance,) = world.launch(MEMBER_A)
    result = handle(world.event(MEMBER_A, [instance], "launch-a"), Settings())
    assert result["counts"]["Rejected"] == 1
    assert world.sessions(MEMBER_A, [instance]) == []


def test_destroy_releases_managed_sessions_in_every_covered_account_and_nothing_else(world: World) -> None:
    from traffic_mirror.components.teardown import release_event

    a, b = world.launch(MEMBER_A), world.launch(MEMBER_B)
    handle(sqs_batch(world.event(MEMBER_A, a, "launch-a"), world.event(MEMBER_B, b, "launch-b")))
    ec2_b, built_b, _ = world.members[MEMBER_B]
    (other,) = sandbox.launch(ec2_b, built_b, built_b.subnets["us-east-1a"])
    eni = other["NetworkInterfaces"][0]["NetworkInterfaceId"]
    foreign = ec2_b.create_traffic_mirror_session(  # another tool's session: never ours to delete
        NetworkInterfaceId=eni,
        TrafficMirrorTargetId=world.expected_sensor(MEMBER_B, "us-east-1a"),
        TrafficMirrorFilterId=built_b.filters["default"],
        SessionNumber=5,
    )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    result = handle(release_event(REGION))
    assert result["counts"]["Deleted"] >= 2, result
    assert world.sessions(MEMBER_A, a) == [] and world.sessions(MEMBER_B, b) == []
    assert [s["TrafficMirrorSessionId"] for s in world.sessions(MEMBER_B, [other])] == [foreign]


def test_a_members_load_balancer_node_is_mirrored_there_to_the_hub_sensor_of_its_zone(world: World) -> None:
    ec2, built, _ = world.members[MEMBER_A]
    _, enis = sandbox.application_load_balancer(member_ec2(MEMBER_A, "elbv2"), ec2, built, "shop", {"Team": "a"})
    settings = Settings(accounts=f"{MEMBER_A},{MEMBER_B}", sources="all", sweep_grace_seconds=0)
    try:
        node = ec2.describe_network_interfaces(NetworkInterfaceIds=[enis[0]])["NetworkInterfaces"][0]
        record = create_network_interface_record(node, event_id="alb-node-a", account=MEMBER_A)
        assert handle(wrap(record, account=MEMBER_A), settings)["counts"]["Created"] == 1
        found = ec2.describe_traffic_mirror_sessions(Filters=[{"Name": "network-interface-id", "Values": enis}])
        (session,) = found["TrafficMirrorSessions"]
        assert session["TrafficMirrorTargetId"] == world.expected_sensor(MEMBER_A, node["AvailabilityZone"])
        hub_listed = world.hub.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        assert [s for s in hub_listed if s["NetworkInterfaceId"] in enis and s["OwnerId"] == HUB] == []
        # The fleet's sweep finds the other node (another zone, another hub sensor) and no duplicate.
        handle(SCHEDULED, settings)
        found = ec2.describe_traffic_mirror_sessions(Filters=[{"Name": "network-interface-id", "Values": enis}])
        by_eni = {s["NetworkInterfaceId"]: s["TrafficMirrorTargetId"] for s in found["TrafficMirrorSessions"]}
        assert len(found["TrafficMirrorSessions"]) == 2 and set(by_eni) == set(enis)
        zone = ec2.describe_network_interfaces(NetworkInterfaceIds=[enis[1]])["NetworkInterfaces"][0]["AvailabilityZone"]
        assert by_eni[enis[1]] == world.expected_sensor(MEMBER_A, zone)
    finally:
        for eni in enis:  # the world is the module's: its nodes scale in
            sandbox.delete_service_eni(ec2, eni)
