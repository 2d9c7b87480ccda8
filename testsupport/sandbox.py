"""A moto account that behaves like AWS where it matters, shared by tests, demo and benchmarks.

moto is laxer than EC2: it ignores ClientToken, the 3-sessions-per-ENI quota, duplicate
session numbers, unsupported instance types and the target's AZ. `aws_rules()` patches moto's
traffic-mirror backend so those rules hold, with AWS's error codes, in-process and in server
mode alike (the patch lives in the backend, behind the HTTP layer).

Sensors, where moto is laxer than AWS's documentation (also patched by `aws_rules()`):
- sources per ENI target: 10, or 100 on the instance types AWS lists (the handler's copy of that
  list, `handler/target_capacity.json`), counted at CreateTrafficMirrorSession and at
  ModifyTrafficMirrorSession when it names a new target (moto checks neither; a modify to another
  target must also name an existing target in the source's AZ, as a create must);
- DescribeInstances' documented filter `network-interface.network-interface-id` (moto raises
  NotImplementedError);
- TerminateInstances deletes the primary ENI made at launch (AWS's default DeleteOnTermination;
  moto keeps it unless the launch asked explicitly), and with it the ENI's sessions (as AWS
  does), so a terminated sensor's ENI is gone and its target points at nothing;
- an NLB target's health (DescribeTargetHealth): moto says `healthy` for every registered target
  unless its instance is `stopped`. AWS: a target whose instance is not running is `unused`
  (Target.InvalidState), one in an AZ not enabled for the load balancer is `unused`
  (Target.NotInUse), one failing its health checks is `unhealthy` (Target.FailedHealthChecks):
  moto runs no health checks, so `fail_health_checks` says which targets fail them.
`add_nlb_target` builds an NLB sensor as AWS documents one: a UDP listener on port 4789 in front
of running instances registered in the load balancer's AZs.
"""

import contextlib
import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.ec2 import utils as ec2_utils
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import Instance
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup
from traffic_mirror.handler import health as handler_health

REFUSED_FAMILIES = frozenset({"t2", "m6i", "c6i", "r6i", "m7i", "m8i-flex", "t1", "m3"})
"""Families the fake API refuses (NetworkInterfaceNotSupported). m8i-flex is not in the
handler's support table, so it exercises 'the API's refusal is final'."""
LARGE_TYPES = handler_health.LARGE_TYPES
"""Instance types whose ENI targets take 100 sources (AWS's list, as the handler keeps it)."""
ENI_FILTER = "network-interface.network-interface-id"

_lock = threading.RLock()
_shared: dict[str, tuple[str, frozenset[str]]] = {}
"""RAM, as moto lacks it: target id -> (owner account, accounts it is shared with)."""
_failing: set[str] = set()
"""Load balancer targets (instance ids or addresses) whose health checks fail (`fail_health_checks`)."""


def fail_health_checks(target_ids: Sequence[str], failing: bool = True) -> None:
    """Make these load balancer targets fail (or pass again) their health checks, as a sensor
    process that stopped answering would: moto runs no health checks."""
    with _lock:
        if failing:
            _failing.update(target_ids)
        else:
            _failing.difference_update(target_ids)


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
    """Sources per ENI target: 10, or 100 on the instance types AWS lists (AWS quota)."""
    try:
        eni = backend.get_network_interface(eni_id)
    except Exception:
        return 10
    instance = getattr(eni, "instance", None)
    return 100 if getattr(instance, "instance_type", "") in LARGE_TYPES else 10


def _check_target(owner: Any, target: Any, source_backend: Any, eni: Any, target_id: str) -> None:
    """An ENI target serves its own AZ and at most its size's number of sources (AWS's rules for a
    session's target, at create and at modify)."""
    if not target.network_interface_id:
        return
    target_eni = owner.get_network_interface(target.network_interface_id)
    if _zone_id(owner, target_eni) != _zone_id(source_backend, eni):  # AZ ids: names differ per account
        raise EC2ClientError("InvalidParameterValue", "an ENI target must be in the source's AZ")
    sources = {
        s.network_interface_id
        for s in source_backend.traffic_mirror_sessions.values()
        if s.traffic_mirror_target_id == target_id
    }
    if len(sources | {eni.id}) > _size_limit(owner, target.network_interface_id):
        raise EC2ClientError("TrafficMirrorSourcesPerTargetLimitExceeded", "too many sources")


def _eni_ids(instance: Any) -> list[str]:
    """An instance's attached ENIs, for the `network-interface.network-interface-id` filter."""
    return [nic.id for nic in instance.nics.values()]


def _healthy_as_aws_says(original: Any) -> Any:
    """FakeTargetGroup.health_for with AWS's rules for targets moto calls healthy."""

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        if status.status != "healthy":
            return status
        target_id = str(target["Id"])

        def answer(state: str, reason: str, description: str) -> Any:
            return FakeHealthStatus(target_id, status.port, status.health_check_port, state, reason, description)

        instance = ec2_backend.get_instance_by_id(target_id) if target_id.startswith("i-") else None
        if instance is not None and instance.state != "running":
            return answer("unused", "Target.InvalidState", f"Target is in the {instance.state} state")
        if instance is not None:
            from moto.elbv2.models import elbv2_backends

            balancers = elbv2_backends[self.account_id][self.region_name].load_balancers
            zones = {
                subnet.availability_zone
                for arn in self.load_balancer_arns
                if arn in balancers
                for subnet in balancers[arn].subnets
            }
            if zones and instance.placement.zone not in zones:
                description = "Target is in an Availability Zone that is not enabled for the load balancer"
                return answer("unused", "Target.NotInUse", description)
        with _lock:
            failing = target_id in _failing
        if failing:
            return answer("unhealthy", "Target.FailedHealthChecks", "Health checks failed")
        return status

    return health_for


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
            _check_target(owner, target, self, eni, traffic_mirror_target_id)
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

    original_modify = TrafficMirrorsBackend.modify_traffic_mirror_session

    def modify(self: Any, traffic_mirror_session_id: str, traffic_mirror_target_id: str | None, **kw: Any) -> Any:
        with _lock:
            session = self.traffic_mirror_sessions.get(traffic_mirror_session_id)
            if session is None:
                raise EC2ClientError(
                    "InvalidTrafficMirrorSessionId.NotFound", f"{traffic_mirror_session_id} not found"
                )
            if traffic_mirror_target_id and traffic_mirror_target_id != session.traffic_mirror_target_id:
                owner = self
                target = self.traffic_mirror_targets.get(traffic_mirror_target_id)
                if target is None:
                    found = _shared_target(self, traffic_mirror_target_id)
                    if found is None:
                        raise EC2ClientError(
                            "InvalidTrafficMirrorTargetId.NotFound", f"{traffic_mirror_target_id} not found"
                        )
                    owner, target = found
                eni = self.get_network_interface(session.network_interface_id)
                _check_target(owner, target, self, eni, traffic_mirror_target_id)
            return original_modify(self, traffic_mirror_session_id, traffic_mirror_target_id, **kw)

    original_terminate = Instance.terminate

    def terminate(self: Any) -> Any:
        backend = self.ec2_backend
        primary = self.nics.get(0)
        if primary is not None and primary.id in backend.enis:
            primary.delete_on_termination = True
        before = set(backend.enis)
        state = original_terminate(self)
        gone = before - set(backend.enis)
        with _lock:  # AWS deletes an ENI's sessions with the ENI
            for session_id in [k for k, v in backend.traffic_mirror_sessions.items() if v.network_interface_id in gone]:
                del backend.traffic_mirror_sessions[session_id]
        return state

    original_health = FakeTargetGroup.health_for
    TrafficMirrorsBackend.create_traffic_mirror_session = create  # type: ignore[method-assign]
    TrafficMirrorsBackend.modify_traffic_mirror_session = modify  # type: ignore[method-assign,assignment]
    FakeTargetGroup.health_for = _healthy_as_aws_says(original_health)  # type: ignore[method-assign]
    Instance.sandbox_eni_ids = property(_eni_ids)  # type: ignore[attr-defined]
    Instance.terminate = terminate  # type: ignore[method-assign]
    mapped = ec2_utils.filter_dict_attribute_mapping.get(ENI_FILTER)
    ec2_utils.filter_dict_attribute_mapping[ENI_FILTER] = "sandbox_eni_ids"
    try:
        yield
    finally:
        TrafficMirrorsBackend.create_traffic_mirror_session = original  # type: ignore[method-assign]
        TrafficMirrorsBackend.modify_traffic_mirror_session = original_modify  # type: ignore[method-assign]
        FakeTargetGroup.health_for = original_health  # type: ignore[method-assign]
        Instance.terminate = original_terminate  # type: ignore[method-assign]
        if mapped is None:
            ec2_utils.filter_dict_attribute_mapping.pop(ENI_FILTER, None)
        unshare_all()
        with _lock:
            _failing.clear()


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
) -> str:
    instance = launch(ec2, account, subnet, itype, {"Name": name})[0]
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
) -> list[dict[str, Any]]:
    """RunInstances in moto; `extra_enis` secondary ENIs are attached to each instance."""
    kwargs: dict[str, Any] = {
        "ImageId": account.ami,
        "InstanceType": itype,
        "MinCount": count,
        "MaxCount": count,
        "SubnetId": subnet,
    }
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


# --- an NLB sensor -------------------------------------------------------------------------


@dataclass
class NlbSensor:
    """What `add_nlb_target` created."""

    arn: str
    target_id: str
    listener_arn: str
    target_group_arn: str
    instances: dict[str, list[str]]
    """AZ -> the sensor instances registered there."""


def add_nlb_target(
    ec2: Any,
    elbv2: Any,
    account: Account,
    name: str,
    azs: Sequence[str] | None = None,
    per_az: int = 1,
    cross_zone: bool = False,
    tags: Mapping[str, str] | None = None,
    itype: str = "c5.xlarge",
    mirror_target: bool = True,
) -> NlbSensor:
    """An internal Network Load Balancer sensor as AWS documents one: enabled in `azs` (AZ names of
    the account's subnets; all by default), a UDP target group on 4789 (TCP health checks, as a UDP
    target group requires) with `per_az` running sensor instances registered in each AZ (tagged
    `Mirror=off`), a UDP
    listener on port 4789 forwarding to it, cross-zone load balancing as asked, and (unless
    `mirror_target` is false: a deployment makes it) a traffic mirror target for it
    (`account.targets[name]`)."""
    zones = list(azs or account.subnets)
    subnets = [account.subnets[az] for az in zones]
    arn = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="network", Scheme="internal")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(
        Name=f"{name}-vxlan",
        Protocol="UDP",
        Port=handler_health.VXLAN_PORT,
        VpcId=account.vpc,
        TargetType="instance",
        HealthCheckProtocol="TCP",
        HealthCheckPort="80",
    )["TargetGroups"][0]["TargetGroupArn"]
    instances: dict[str, list[str]] = {}
    for az, subnet in zip(zones, subnets, strict=True):
        # Opted out, as an operator tags the appliances behind an NLB sensor: their traffic is the
        # mirrored traffic (the handler cannot tell them from workloads by a read that may fail).
        launched = launch(ec2, account, subnet, itype, {"Name": f"{name}-{az}", "Mirror": "off"}, count=per_az)
        instances[az] = [i["InstanceId"] for i in launched]
    targets = [{"Id": i} for ids in instances.values() for i in ids]
    if targets:
        elbv2.register_targets(TargetGroupArn=group, Targets=targets)
    listener = elbv2.create_listener(
        LoadBalancerArn=arn,
        Protocol="UDP",
        Port=handler_health.VXLAN_PORT,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Listeners"][0]["ListenerArn"]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn,
        Attributes=[{"Key": handler_health.CROSS_ZONE, "Value": "true" if cross_zone else "false"}],
    )
    if not mirror_target:
        return NlbSensor(arn, "", listener, group, instances)
    spec = [{"ResourceType": "traffic-mirror-target", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    target = ec2.create_traffic_mirror_target(
        NetworkLoadBalancerArn=arn, Description=name, TagSpecifications=spec if tags else []
    )["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    account.targets[name] = target
    return NlbSensor(arn, target, listener, group, instances)
