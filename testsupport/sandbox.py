"""A moto account that behaves like AWS where it matters, shared by tests, demo and benchmarks.

moto is laxer than EC2: it ignores ClientToken, the 3-sessions-per-ENI quota, duplicate
session numbers, unsupported instance types and the target's AZ. `aws_rules()` patches moto's
traffic-mirror backend so those rules hold, with AWS's error codes, in-process and in server
mode alike (the patch lives in the backend, behind the HTTP layer).
"""

import contextlib
import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend

from testsupport import moto_gaps
from testsupport.moto_gaps import publish_mirror_metrics as publish_mirror_metrics

REFUSED_FAMILIES = frozenset({"t2", "m6i", "c6i", "r6i", "m7i", "m8i-flex", "t1", "m3"})
"""Families the fake API refuses (NetworkInterfaceNotSupported). m8i-flex is not in the
handler's support table, so it exercises 'the API's refusal is final'."""
LARGE_SIZES = frozenset({"8xlarge", "12xlarge", "16xlarge", "18xlarge", "24xlarge", "32xlarge", "48xlarge"})

_lock = threading.RLock()
_shared: dict[str, tuple[str, frozenset[str]]] = {}
"""RAM, as moto lacks it: target id -> (owner account, accounts it is shared with)."""


def share_target(target_id: str, owner: str, accounts: Sequence[str]) -> None:
    """Share a traffic mirror target with accounts, as an AWS RAM resource share would."""
    with _lock:
        _shared[target_id] = (owner, frozenset(accounts))


def unshare_all() -> None:
    with _lock:
        _shared.clear()


def permute_zones(account: str, region: str, shift: int = 1) -> dict[str, str]:
    """Give `account` its own AZ name -> id mapping in `region`, as AWS does per account.

    Call before creating subnets there. Returns the account's name -> id mapping.
    """
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[account][region]
    zones = list(type(backend).zones[region])
    ids = [z.zone_id for z in zones]
    rotated = ids[shift:] + ids[:shift]
    mine = [copy.copy(z) for z in zones]
    for zone, zone_id in zip(mine, rotated, strict=True):
        zone.zone_id = zone_id
    backend.zones = {**type(backend).zones, region: mine}
    return {z.name: z.zone_id for z in mine}


def _zone_id(backend: Any, eni: Any) -> str:
    zone = backend.get_zone_by_name(eni.subnet.availability_zone)
    return str(zone.zone_id) if zone else ""


def _shared_target(backend: Any, target_id: str) -> tuple[Any, Any] | None:
    """(owner's backend, target) if `target_id` is another account's target shared with this one."""
    from moto.ec2.models import ec2_backends

    entry = _shared.get(target_id)
    if entry is None or backend.account_id not in entry[1]:
        return None
    owner = ec2_backends[entry[0]][backend.region_name]
    target = owner.traffic_mirror_targets.get(target_id)
    return (owner, target) if target is not None else None


def _size_limit(backend: Any, eni_id: str | None) -> int:
    """Sources per ENI target: 10, or 100 on the largest sizes (AWS quota)."""
    try:
        eni = backend.get_network_interface(eni_id)
    except Exception:
        return 10
    instance = getattr(eni, "instance", None)
    size = getattr(instance, "instance_type", "x.small").split(".")[-1]
    return 100 if size in LARGE_SIZES else 10


@contextlib.contextmanager
def aws_rules() -> Iterator[None]:
    """Make moto's CreateTrafficMirrorSession hold EC2's rules while the context is open."""
    original = TrafficMirrorsBackend.create_traffic_mirror_session
    tokens: dict[tuple[int, str], tuple[tuple[Any, ...], Any]] = {}

    def create(
        self: Any,
        network_interface_id: str,
        traffic_mirror_target_id: str,
        traffic_mirror_filter_id: str,
        session_number: int,
        packet_length: int | None,
        virtual_network_id: int | None,
        description: str | None,
        tag_specifications: Any,
        client_token: str | None,
    ) -> Any:
        with _lock:
            params = (
                network_interface_id,
                traffic_mirror_target_id,
                traffic_mirror_filter_id,
                session_number,
            )
            if client_token:
                seen = tokens.get((id(self), client_token))
                if seen is not None:
                    if seen[0] != params:
                        raise EC2ClientError(
                            "IdempotentParameterMismatch", "ClientToken reused with other parameters"
                        )
                    return seen[1]
            eni = self.get_network_interface(network_interface_id)  # InvalidNetworkInterfaceID.NotFound
            owner = self
            target = self.traffic_mirror_targets.get(traffic_mirror_target_id)
            if target is None:
                found = _shared_target(self, traffic_mirror_target_id)
                if found is None:
                    raise EC2ClientError(
                        "InvalidTrafficMirrorTargetId.NotFound", f"{traffic_mirror_target_id} not found"
                    )
                owner, target = found
            if traffic_mirror_filter_id not in self.traffic_mirror_filters:
                raise EC2ClientError(
                    "InvalidTrafficMirrorFilterId.NotFound", f"{traffic_mirror_filter_id} not found"
                )
            if not 1 <= int(session_number or 0) <= 32766:
                raise EC2ClientError("InvalidParameterValue", "SessionNumber must be between 1 and 32766")
            instance = getattr(eni, "instance", None)
            family = getattr(instance, "instance_type", "").split(".")[0]
            if family in REFUSED_FAMILIES or getattr(instance, "instance_type", "").endswith(".metal"):
                raise EC2ClientError(
                    "NetworkInterfaceNotSupported", f"{network_interface_id} is not supported"
                )
            if any(
                t.network_interface_id == network_interface_id for t in self.traffic_mirror_targets.values()
            ):
                raise EC2ClientError(
                    "InvalidParameterValue", "a traffic mirror target's ENI cannot be a source"
                )
            existing = [
                s
                for s in self.traffic_mirror_sessions.values()
                if s.network_interface_id == network_interface_id
            ]
            if len(existing) >= 3:
                raise EC2ClientError(
                    "TrafficMirrorSessionsPerInterfaceLimitExceeded", "3 sessions per interface"
                )
            if any(s.session_number == session_number for s in existing):
                raise EC2ClientError(
                    "InvalidParameterValue", f"session number {session_number} is already in use"
                )
            if target.network_interface_id:
                target_eni = owner.get_network_interface(target.network_interface_id)
                if _zone_id(owner, target_eni) != _zone_id(self, eni):  # AZ ids: names differ per account
                    raise EC2ClientError("InvalidParameterValue", "an ENI target must be in the source's AZ")
                sources = {
                    s.network_interface_id
                    for s in self.traffic_mirror_sessions.values()
                    if s.traffic_mirror_target_id == traffic_mirror_target_id
                }
                if len(sources | {network_interface_id}) > _size_limit(owner, target.network_interface_id):
                    raise EC2ClientError("TrafficMirrorSourcesPerTargetLimitExceeded", "too many sources")
            session = original(
                self,
                network_interface_id,
                traffic_mirror_target_id,
                traffic_mirror_filter_id,
                session_number,
                packet_length,
                virtual_network_id,
                description,
                tag_specifications,
                client_token,
            )
            if client_token:
                tokens[(id(self), client_token)] = (params, session)
            return session

    TrafficMirrorsBackend.create_traffic_mirror_session = create  # type: ignore[method-assign]
    try:
        with moto_gaps.installed():
            yield
    finally:
        TrafficMirrorsBackend.create_traffic_mirror_session = original  # type: ignore[method-assign]
        unshare_all()


# --- a small account ---------------------------------------------------------------------


@dataclass
class Account:
    """Ids of what `build_account` created."""

    region: str
    vpc: str
    subnets: dict[str, str]  # AZ -> subnet
    targets: dict[str, str] = field(default_factory=dict)  # name -> tmt id
    target_enis: dict[str, str] = field(default_factory=dict)  # tmt id -> ENI id
    filters: dict[str, str] = field(default_factory=dict)  # name -> tmf id
    ami: str = ""


def build_account(
    ec2: Any,
    region: str = "us-east-1",
    azs: Sequence[str] = ("a", "b"),
    sensors_per_az: int = 1,
    sensor_type: str = "c5.24xlarge",
    ami: str | None = None,
) -> Account:
    """A VPC over `azs`, one subnet each, sensor instances as ENI targets, one filter.

    `ami`: an image id to launch from; by default the first of moto's Amazon images (listing
    them costs moto about two seconds, so callers that build many accounts pass `moto_ami()`).
    """
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for index, suffix in enumerate(azs):
        az = f"{region}{suffix}"
        subnets[az] = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index * 16}.0/20", AvailabilityZone=az)[
            "Subnet"
        ]["SubnetId"]
    ami = ami or ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    account = Account(region, vpc, subnets, ami=ami)
    for az, subnet in subnets.items():
        for n in range(sensors_per_az):
            add_eni_target(ec2, account, subnet, f"sensor-{az}-{n}", sensor_type)
    account.filters["default"] = ec2.create_traffic_mirror_filter(Description="all traffic")[
        "TrafficMirrorFilter"
    ]["TrafficMirrorFilterId"]
    return account


def moto_ami() -> str:
    """An image id moto knows (in-process or server mode: the same data), without listing them all."""
    from moto.ec2.models.amis import AMIS

    return str(AMIS[0]["ami_id"])


def add_eni_target(
    ec2: Any,
    account: Account,
    subnet: str,
    name: str,
    itype: str = "c5.xlarge",
    tags: Mapping[str, str] | None = None,
    security_groups: Sequence[str] = (),
) -> str:
    instance = launch(ec2, account, subnet, itype, {"Name": name}, security_groups=security_groups)[0]
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    spec = [
        {
            "ResourceType": "traffic-mirror-target",
            "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        }
    ]
    target = ec2.create_traffic_mirror_target(
        NetworkInterfaceId=eni, Description=name, TagSpecifications=spec if tags else []
    )["TrafficMirrorTarget"]
    account.targets[name] = target["TrafficMirrorTargetId"]
    account.target_enis[target["TrafficMirrorTargetId"]] = eni
    return str(target["TrafficMirrorTargetId"])


def launch(
    ec2: Any,
    account: Account,
    subnet: str,
    itype: str = "m5.large",
    tags: Mapping[str, str] | None = None,
    count: int = 1,
    extra_enis: int = 0,
    security_groups: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """RunInstances in moto; `extra_enis` secondary ENIs are attached to each instance."""
    kwargs: dict[str, Any] = {
        "ImageId": account.ami,
        "InstanceType": itype,
        "MinCount": count,
        "MaxCount": count,
        "SubnetId": subnet,
    }
    if security_groups:
        kwargs["SecurityGroupIds"] = list(security_groups)
    if tags:
        kwargs["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    instances = ec2.run_instances(**kwargs)["Instances"]
    for instance in instances:
        for index in range(extra_enis):
            eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
            ec2.attach_network_interface(
                NetworkInterfaceId=eni, InstanceId=instance["InstanceId"], DeviceIndex=index + 1
            )
    ids = [i["InstanceId"] for i in instances]
    return [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]


def add_nlb_target(
    ec2: Any,
    elbv2: Any,
    account: Account,
    azs: Sequence[str],
    name: str,
    cross_zone: bool = False,
    tags: Mapping[str, str] | None = None,
) -> str:
    """An NLB sensor as AWS would run one: nodes in `azs` (AZ names of `account`), a UDP 4789
    listener forwarding to a sensor instance in each of those AZs (healthy), and its mirror target."""
    subnets = [account.subnets[az] for az in azs]
    arn = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="network", Scheme="internal")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[{"Key": "load_balancing.cross_zone.enabled", "Value": str(cross_zone).lower()}],
    )
    group = elbv2.create_target_group(
        Name=f"{name}-vxlan", Protocol="UDP", Port=4789, VpcId=account.vpc, TargetType="instance",
        HealthCheckProtocol="TCP", HealthCheckPort="80",
    )["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    appliances = [launch(ec2, account, subnet, "c5.xlarge", {"Name": f"{name}-appliance"})[0] for subnet in subnets]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i["InstanceId"]} for i in appliances])
    elbv2.create_listener(
        LoadBalancerArn=arn, Protocol="UDP", Port=4789, DefaultActions=[{"Type": "forward", "TargetGroupArn": group}]
    )
    spec = [{"ResourceType": "traffic-mirror-target", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    target = ec2.create_traffic_mirror_target(
        NetworkLoadBalancerArn=arn, Description=name, TagSpecifications=spec if tags else []
    )["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    account.targets[name] = target
    return str(target)


def launch_sample_workloads(ec2: Any, account: Account) -> None:
    """One instance of each kind the CLI reports on: mirrored, two ENIs, opted out, unsupported,
    routed without a target (web-1, app-1, db-1, build-1, payments-1)."""
    region = account.region
    a, b = account.subnets[f"{region}a"], account.subnets[f"{region}b"]
    launch(ec2, account, a, "m5.large", {"Name": "web-1"})
    launch(ec2, account, b, "m5.large", {"Name": "app-1"}, extra_enis=1)
    launch(ec2, account, b, "m5.large", {"Name": "db-1", "Mirror": "off"})
    launch(ec2, account, a, "t2.micro", {"Name": "build-1"})
    launch(ec2, account, b, "m5.large", {"Name": "payments-1", "Mirror": "pci"})
