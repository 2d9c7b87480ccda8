"""The moto account a scenario runs against: sensors, instances, and what got mirrored."""

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from benchmarks.scale.constants import REGION, SOURCES_PER_LARGE_SENSOR
from testsupport import throttle


def setup_client(url: str) -> Any:
    import boto3

    return throttle.bypass(boto3.client("ec2", region_name=REGION, endpoint_url=url))


def member_client(url: str, account: str) -> Any:
    """An EC2 client acting in `account` (moto routes assumed-role credentials to the role's account)."""
    import boto3

    sts = throttle.bypass(boto3.client("sts", region_name=REGION, endpoint_url=url))
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bench-setup", RoleSessionName="setup")[
        "Credentials"
    ]
    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return throttle.bypass(ec2)


def scale_account(ec2: Any, enis: int, instances: int = 0, sensors: bool = True) -> Any:
    """A VPC over two AZs with large sensors (100 sources each) for `enis` sources, at most 2/3 full,
    and room for `instances` instances (default: `enis`).

    The planner spreads ENIs over equally near sensors by hashing, not by load: at 75% average
    load a sensor overflows in about 1 run in 300 (TrafficMirrorSourcesPerTargetLimitExceeded),
    which is not what this benchmark measures. `sensors=False`: a workload account without any.
    """
    from testsupport import sandbox

    per_az = _sensors_per_az(enis) if sensors else 0
    bits = 20 if max(enis, instances) <= 7000 else 18  # two /20s hold about 8,000 addresses
    return sandbox.build_account(ec2, REGION, sensors_per_az=per_az, sensor_type="c5.24xlarge", subnet_bits=bits)


def _sensors_per_az(enis: int) -> int:
    return max(1, -(-enis * 3 // (2 * 2 * SOURCES_PER_LARGE_SENSOR)))


def hub_sensors(hub: Any, enis: int, members: Sequence[str]) -> Any:
    """The hub's account: sensors for `enis` sources over two AZs, tagged Mirror=true and shared
    with `members` (AZ names are the same in every account of the emulation)."""
    from moto.core import DEFAULT_ACCOUNT_ID as owner

    from testsupport import sandbox

    account = sandbox.build_account(hub, REGION, sensors_per_az=0)
    for az, subnet in account.subnets.items():
        for n in range(_sensors_per_az(enis)):
            target = sandbox.add_eni_target(
                hub, account, subnet, f"central-{az}-{n}", "c5.24xlarge", {"Mirror": "true"}
            )
            sandbox.share_target(target, owner, members)
    return account


def launch_in_batches(ec2: Any, account: Any, count: int, per_call: int) -> Iterator[list[dict[str, Any]]]:
    """`count` m5.large instances (one ENI each), `per_call` per RunInstances, alternating AZs."""
    from testsupport import sandbox

    subnets = list(account.subnets.values())
    launched = 0
    while launched < count:
        n = min(per_call, count - launched)
        yield sandbox.launch(
            ec2, account, subnets[(launched // per_call) % len(subnets)], "m5.large", count=n
        )
        launched += n


def enis_of(instances: Sequence[dict[str, Any]]) -> set[str]:
    return {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}


def coverage(ec2: Any, expected: set[str]) -> tuple[int, int, int]:
    """(ENIs with more than one session, expected ENIs with none, sessions on unexpected ENIs)."""
    per_eni: Counter[str] = Counter()
    for page in ec2.get_paginator("describe_traffic_mirror_sessions").paginate():
        per_eni.update(s["NetworkInterfaceId"] for s in page["TrafficMirrorSessions"])
    duplicates = sum(1 for n in per_eni.values() if n > 1)
    strays = sum(n for eni, n in per_eni.items() if eni not in expected)
    return duplicates, len(expected - set(per_eni)), strays
