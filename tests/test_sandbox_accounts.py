"""The sandbox across accounts: what AWS documents for cross-account traffic mirror targets, in moto.

docs/organization-emulation.md lists each rule, documented or assumed. A hub shares one sensor with
member A (RAM's share, `sandbox.share_target`); member B has nothing shared with it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from testsupport import sandbox

pytestmark = pytest.mark.moto

REGION = "us-east-1"
HUB, MEMBER_A, MEMBER_B = "123456789012", "111111111111", "222222222222"


def client_in(account: str, endpoint: str | None = None) -> Any:
    """An EC2 client acting in `account` (moto routes assumed-role credentials to the role's account)."""
    sts = boto3.client("sts", region_name=REGION, endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/setup", RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


@dataclass
class Two:
    """A hub whose sensor (tagged Mirror=true) is shared with A, a session of A's on it, and B."""

    hub: Any
    a: Any
    b: Any
    hub_account: sandbox.Account
    a_account: sandbox.Account
    sensor: str
    a_eni: str
    a_session: str


def build(endpoint: str | None = None) -> Two:
    ami = sandbox.moto_ami()
    hub = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    hub_account = sandbox.build_account(hub, REGION, azs=("a",), sensors_per_az=0, ami=ami)
    sensor = sandbox.add_eni_target(
        hub, hub_account, hub_account.subnets["us-east-1a"], "central", "c5.xlarge", {"Mirror": "true"}
    )
    sandbox.share_target(sensor, HUB, [MEMBER_A])
    a, b = client_in(MEMBER_A, endpoint), client_in(MEMBER_B, endpoint)
    a_account = sandbox.build_account(a, REGION, azs=("a",), sensors_per_az=1, ami=ami)  # a target of A's own
    (instance,) = sandbox.launch(a, a_account, a_account.subnets["us-east-1a"])
    a_eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    a_session = a.create_traffic_mirror_session(
        NetworkInterfaceId=a_eni,
        TrafficMirrorTargetId=sensor,
        TrafficMirrorFilterId=a_account.filters["default"],
        SessionNumber=1,
        TagSpecifications=[
            {"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "ManagedBy", "Value": "x"}]}
        ],
    )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    return Two(hub, a, b, hub_account, a_account, sensor, a_eni, a_session)


@pytest.fixture
def two() -> Iterator[Two]:
    with mock_aws(), sandbox.aws_rules():
        yield build()


def targets(ec2: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
    return {
        t["TrafficMirrorTargetId"]: t
        for t in ec2.describe_traffic_mirror_targets(**kwargs)["TrafficMirrorTargets"]
    }


def sessions(ec2: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
    found = ec2.describe_traffic_mirror_sessions(**kwargs)["TrafficMirrorSessions"]
    return {s["TrafficMirrorSessionId"]: s for s in found}


def code_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return str(refused.value.response["Error"]["Code"])


def test_a_shared_target_is_listed_by_the_account_it_is_shared_with_without_its_tags_or_its_eni(
    two: Two,
) -> None:
    (own,) = two.a_account.targets.values()
    listed = targets(two.a)
    assert set(listed) == {own, two.sensor}  # its own target and the one shared with it
    assert listed[two.sensor]["OwnerId"] == HUB and listed[own]["OwnerId"] == MEMBER_A
    assert listed[two.sensor]["Tags"] == []  # the owner's Mirror=true is the owner's
    assert targets(two.hub)[two.sensor]["Tags"] == [{"Key": "Mirror", "Value": "true"}]
    # The call's ids and filters apply to shared targets as to the account's own.
    assert set(targets(two.a, Filters=[{"Name": "traffic-mirror-target-id", "Values": [two.sensor]}])) == {
        two.sensor
    }
    assert set(targets(two.a, Filters=[{"Name": "owner-id", "Values": [MEMBER_A]}])) == {own}
    assert set(targets(two.a, Filters=[{"Name": "owner-id", "Values": [HUB]}])) == {two.sensor}
    assert set(targets(two.a, TrafficMirrorTargetIds=[two.sensor])) == {two.sensor}
    assert targets(two.b) == {}  # not shared with B
    # Named in the listing, the sensor's ENI is still the hub's: the member cannot describe it.
    hub_eni = two.hub_account.target_enis[two.sensor]
    assert listed[two.sensor]["NetworkInterfaceId"] == hub_eni
    found = two.a.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [hub_eni]}])
    assert found["NetworkInterfaces"] == []
    enis = {"NetworkInterfaceIds": [hub_eni]}
    assert code_of(two.a.describe_network_interfaces, **enis) == "InvalidNetworkInterfaceID.NotFound"
    assert two.hub.describe_network_interfaces(**enis)["NetworkInterfaces"]
    with sandbox.foreign_tags():  # the other assumption: the owner's tags visible
        assert targets(two.a)[two.sensor]["Tags"] == [{"Key": "Mirror", "Value": "true"}]
    sandbox.unshare_target(two.sensor, [MEMBER_A])  # RAM's truth, right now
    assert set(targets(two.a)) == {own}
    refused = code_of(
        two.a.create_traffic_mirror_session,
        NetworkInterfaceId=two.a_eni,
        TrafficMirrorTargetId=two.sensor,
        TrafficMirrorFilterId=two.a_account.filters["default"],
        SessionNumber=2,
    )
    assert refused == sandbox.TARGET_NOT_FOUND


def test_sessions_another_account_makes_on_a_target_are_listed_by_the_targets_owner(two: Two) -> None:
    seen = sessions(two.hub)
    assert set(seen) == {two.a_session}
    assert (
        seen[two.a_session]["OwnerId"] == MEMBER_A and seen[two.a_session]["NetworkInterfaceId"] == two.a_eni
    )
    assert seen[two.a_session]["Tags"] == []  # A's tags are A's (assumed)
    with sandbox.foreign_tags():
        assert sessions(two.hub)[two.a_session]["Tags"] == [{"Key": "ManagedBy", "Value": "x"}]
    assert set(sessions(two.hub, Filters=[{"Name": "network-interface-id", "Values": [two.a_eni]}])) == {
        two.a_session
    }
    assert sessions(two.hub, Filters=[{"Name": "owner-id", "Values": [HUB]}]) == {}
    assert set(sessions(two.a)) == {two.a_session}  # listed once in its own account
    assert sessions(two.b) == {}
    # Moved to A's own target, it is no longer the hub's business.
    (own,) = two.a_account.targets.values()
    two.a.modify_traffic_mirror_session(TrafficMirrorSessionId=two.a_session, TrafficMirrorTargetId=own)
    assert sessions(two.hub) == {}


def test_only_the_owner_deletes_a_target_or_changes_a_session(two: Two) -> None:
    session = {"TrafficMirrorSessionId": two.a_session}
    assert code_of(two.hub.delete_traffic_mirror_session, **session) == sandbox.NOT_OWNER
    assert code_of(two.hub.modify_traffic_mirror_session, **session, SessionNumber=7) == sandbox.NOT_OWNER
    assert code_of(two.a.delete_traffic_mirror_target, TrafficMirrorTargetId=two.sensor) == sandbox.NOT_OWNER
    # An account that cannot even see the resource gets EC2's account-scoped NotFound.
    assert code_of(two.b.delete_traffic_mirror_session, **session) == sandbox.SESSION_NOT_FOUND
    assert (
        code_of(two.b.delete_traffic_mirror_target, TrafficMirrorTargetId=two.sensor)
        == sandbox.TARGET_NOT_FOUND
    )
    assert sandbox.refused_writes() == [
        (HUB, "DeleteTrafficMirrorSession", two.a_session),
        (HUB, "ModifyTrafficMirrorSession", two.a_session),
        (MEMBER_A, "DeleteTrafficMirrorTarget", two.sensor),
    ]
    assert sessions(two.a)[two.a_session]["SessionNumber"] == 1  # nothing changed
    # A session that does not exist: moto answers a modify with a 500 and a delete with success.
    gone = {"TrafficMirrorSessionId": "tms-0123456789abcdef0"}
    assert (
        code_of(two.hub.modify_traffic_mirror_session, **gone, SessionNumber=2) == sandbox.SESSION_NOT_FOUND
    )
    assert code_of(two.hub.delete_traffic_mirror_session, **gone) == sandbox.SESSION_NOT_FOUND
    # A target that is not shared cannot be moved to either.
    unshared = sandbox.add_eni_target(
        two.hub, two.hub_account, two.hub_account.subnets["us-east-1a"], "private"
    )
    refused = code_of(two.a.modify_traffic_mirror_session, **session, TrafficMirrorTargetId=unshared)
    assert refused == sandbox.TARGET_NOT_FOUND
    # The owners can.
    two.a.delete_traffic_mirror_session(**session)
    assert sessions(two.hub) == {} and sessions(two.a) == {}
    two.hub.delete_traffic_mirror_target(TrafficMirrorTargetId=two.sensor)
    assert two.sensor not in targets(two.hub) and two.sensor not in targets(two.a)


def test_a_targets_source_quota_counts_the_sources_of_every_account(two: Two) -> None:
    """10 sources per ENI target below the largest sizes: A has 1 on the hub's sensor, the hub adds 9."""
    hub_subnet = two.hub_account.subnets["us-east-1a"]
    for instance in sandbox.launch(two.hub, two.hub_account, hub_subnet, count=9):
        two.hub.create_traffic_mirror_session(
            NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
            TrafficMirrorTargetId=two.sensor,
            TrafficMirrorFilterId=two.hub_account.filters["default"],
            SessionNumber=1,
        )
    (eleventh,) = sandbox.launch(two.a, two.a_account, two.a_account.subnets["us-east-1a"])
    refused = code_of(
        two.a.create_traffic_mirror_session,
        NetworkInterfaceId=eleventh["NetworkInterfaces"][0]["NetworkInterfaceId"],
        TrafficMirrorTargetId=two.sensor,
        TrafficMirrorFilterId=two.a_account.filters["default"],
        SessionNumber=1,
    )
    assert refused == "TrafficMirrorSourcesPerTargetLimitExceeded"


def test_the_cross_account_rules_hold_in_server_mode(endpoint: str) -> None:
    two = build(endpoint)
    assert targets(two.a)[two.sensor]["OwnerId"] == HUB
    assert sessions(two.hub)[two.a_session]["OwnerId"] == MEMBER_A
    assert (
        code_of(two.hub.delete_traffic_mirror_session, TrafficMirrorSessionId=two.a_session)
        == sandbox.NOT_OWNER
    )
    two.hub.delete_traffic_mirror_target(
        TrafficMirrorTargetId=two.sensor
    )  # moto lacks the call: the sandbox has it
    assert two.sensor not in targets(two.a)
