"""A moto account that behaves like AWS where it matters, shared by tests, demo and benchmarks.

moto is laxer than EC2: it ignores ClientToken, the 3-sessions-per-ENI quota, duplicate
session numbers, unsupported instance types and the target's AZ, and it keeps every account to
itself. `aws_rules()` patches moto's traffic-mirror backend so those rules hold, with AWS's error
codes, in-process and in server mode alike (the patch lives in the backend, behind the HTTP layer).

Across accounts (docs/organization-emulation.md says which facts are documented, which assumed),
RAM's sharing of targets is emulated by `share_target`, as moto lacks it:
- a target shared with an account is listed in that account's DescribeTrafficMirrorTargets, with
  the owner's OwnerId and without the owner's tags (tag visibility: an assumption, see
  `foreign_tags`); the call's ids and filters apply to it as to the account's own targets;
- sessions other accounts create on a target are listed in the target owner's
  DescribeTrafficMirrorSessions (OwnerId: the source account);
- only the owner deletes a target, or modifies or deletes a session: another account that can
  see it gets `UnauthorizedOperation` (`refused_writes()` lists those attempts), one that cannot
  see it gets moto's account-scoped NotFound;
- ENIs stay account-scoped (moto's own behaviour): a member cannot describe the hub's ENIs.
"""

import contextlib
import copy
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from moto.ec2.responses.traffic_mirrors import TrafficMirrors

REFUSED_FAMILIES = frozenset({"t2", "m6i", "c6i", "r6i", "m7i", "m8i-flex", "t1", "m3"})
"""Families the fake API refuses (NetworkInterfaceNotSupported). m8i-flex is not in the
handler's support table, so it exercises 'the API's refusal is final'."""
LARGE_SIZES = frozenset({"8xlarge", "12xlarge", "16xlarge", "18xlarge", "24xlarge", "32xlarge", "48xlarge"})

NOT_OWNER = "UnauthorizedOperation"
"""AWS's answer when an account writes to a traffic-mirror resource it can see but does not own.
Not documented for traffic mirroring (the guide says only the owner may modify or delete): this is
EC2's code for a call the caller may not make, as observed for RAM-shared VPC objects ("the
provided object is not owned by you"). See docs/organization-emulation.md."""
SESSION_NOT_FOUND = "InvalidTrafficMirrorSessionId.NotFound"
TARGET_NOT_FOUND = "InvalidTrafficMirrorTargetId.NotFound"

_lock = threading.RLock()
_shared: dict[str, tuple[str, frozenset[str]]] = {}
"""RAM, as moto lacks it: target id -> (owner account, accounts it is shared with)."""
_cross: dict[tuple[str, str], set[tuple[str, str]]] = {}
"""(target owner, region) -> {(source account, session id)}: sessions other accounts made on its targets."""
_refused: list[tuple[str, str, str]] = []
"""(caller account, action, resource id) of each write refused because the caller is not the owner."""
_visibility = {"foreign_tags": False}


def share_target(target_id: str, owner: str, accounts: Sequence[str]) -> None:
    """Share a traffic mirror target with accounts (exactly these), as an AWS RAM resource share would."""
    with _lock:
        _shared[target_id] = (owner, frozenset(accounts))


def unshare_target(target_id: str, accounts: Sequence[str]) -> None:
    """Take these accounts out of the target's share (sessions made before stay, as on AWS)."""
    with _lock:
        owner, shared_with = _shared.get(target_id, ("", frozenset()))
        if owner:
            _shared[target_id] = (owner, shared_with - set(accounts))


def unshare_all() -> None:
    with _lock:
        _shared.clear()
        _cross.clear()
        _refused.clear()
        _visibility["foreign_tags"] = False


def refused_writes() -> list[tuple[str, str, str]]:
    """(caller account, action, resource id) of the writes refused so far because the caller was not the owner."""
    with _lock:
        return list(_refused)


@contextlib.contextmanager
def foreign_tags(visible: bool = True) -> Iterator[None]:
    """Whether an account sees the owner's tags on another account's target or session it can list.

    AWS documents neither; the default (hidden) is the assumption of docs/organization-emulation.md.
    Tests whose claim must hold either way run under both.
    """
    with _lock:
        before = _visibility["foreign_tags"]
        _visibility["foreign_tags"] = visible
    try:
        yield
    finally:
        with _lock:
            _visibility["foreign_tags"] = before


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


def _backend(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _shared_target(backend: Any, target_id: str) -> tuple[Any, Any] | None:
    """(owner's backend, target) if `target_id` is another account's target shared with this one."""
    entry = _shared.get(target_id)
    if entry is None or backend.account_id not in entry[1] or entry[0] == backend.account_id:
        return None
    owner = _backend(entry[0], backend.region_name)
    target = owner.traffic_mirror_targets.get(target_id)
    return (owner, target) if target is not None else None


def _shared_with(backend: Any) -> list[Any]:
    """Other accounts' targets shared with this one (RAM's view), in a stable order."""
    found = (_shared_target(backend, target_id) for target_id in sorted(_shared))
    return [target for _, target in filter(None, found)]


def _cross_sessions(backend: Any) -> list[Any]:
    """Sessions other accounts made on this account's targets (still there, still on its targets)."""
    found = []
    for account, session_id in sorted(_cross.get((backend.account_id, backend.region_name), ())):
        session = _backend(account, backend.region_name).traffic_mirror_sessions.get(session_id)
        if session is not None and session.traffic_mirror_target_id in backend.traffic_mirror_targets:
            found.append(session)
    return found


class _Untagged:
    """Another account's resource as a Describe here shows it: every field of the owner's (OwnerId
    included), no tags."""

    tags: list[dict[str, str]] = []

    def __init__(self, resource: Any) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resource, name)

    def get_tags(self) -> list[dict[str, str]]:
        return []

    tag_list = tag_set = property(get_tags)  # what moto's serializer reads for `Tags`


def _seen_from_outside(resource: Any) -> Any:
    """The owner's tags only if `foreign_tags` says they are visible (an assumption either way)."""
    return resource if _visibility["foreign_tags"] else _Untagged(resource)


def _register_cross(owner_backend: Any, source: Any, session_id: str) -> None:
    if owner_backend is not source:
        _cross.setdefault((owner_backend.account_id, source.region_name), set()).add(
            (source.account_id, session_id)
        )


def _refuse(backend: Any, action: str, resource_id: str) -> EC2ClientError:
    _refused.append((backend.account_id, action, resource_id))
    return EC2ClientError(
        NOT_OWNER, f"You are not authorized to perform {action}: {resource_id} is not owned by you"
    )


def _target_for(backend: Any, target_id: str) -> tuple[Any, Any]:
    """(owner's backend, target) of a target this account may use: its own, or one shared with it."""
    target = backend.traffic_mirror_targets.get(target_id)
    if target is not None:
        return backend, target
    found = _shared_target(backend, target_id)
    if found is None:
        raise EC2ClientError(TARGET_NOT_FOUND, f"{target_id} not found")
    return found


def _size_limit(backend: Any, eni_id: str | None) -> int:
    """Sources per ENI target: 10, or 100 on the largest sizes (AWS quota)."""
    try:
        eni = backend.get_network_interface(eni_id)
    except Exception:
        return 10
    instance = getattr(eni, "instance", None)
    size = getattr(instance, "instance_type", "x.small").split(".")[-1]
    return 100 if size in LARGE_SIZES else 10


def _sources_of(owner: Any, target_id: str) -> set[str]:
    """Source ENIs of every session on this target, in the owner's account and in the others."""
    sessions: Iterable[Any] = [*owner.traffic_mirror_sessions.values(), *_cross_sessions(owner)]
    return {s.network_interface_id for s in sessions if s.traffic_mirror_target_id == target_id}


_MOTO: dict[str, Any] = {
    name: TrafficMirrorsBackend.__dict__[name]
    for name in (
        "create_traffic_mirror_session",
        "describe_traffic_mirror_targets",
        "describe_traffic_mirror_sessions",
        "modify_traffic_mirror_session",
        "delete_traffic_mirror_session",
    )
}
"""moto's own methods, taken at import: the rules call them whatever is patched over them later."""
_tokens: dict[tuple[int, str], tuple[tuple[Any, ...], Any]] = {}
"""(backend, ClientToken) -> (the create's parameters, its session)."""
_depth = [0]
"""How many `aws_rules()` blocks are open (they nest: fixtures of several scopes)."""


def _create(
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
            seen = _tokens.get((id(self), client_token))
            if seen is not None:
                if seen[0] != params:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch", "ClientToken reused with other parameters"
                    )
                return seen[1]
        eni = self.get_network_interface(network_interface_id)  # InvalidNetworkInterfaceID.NotFound
        owner, target = _target_for(self, traffic_mirror_target_id)
        if traffic_mirror_filter_id not in self.traffic_mirror_filters:
            raise EC2ClientError(
                "InvalidTrafficMirrorFilterId.NotFound", f"{traffic_mirror_filter_id} not found"
            )
        if not 1 <= int(session_number or 0) <= 32766:
            raise EC2ClientError("InvalidParameterValue", "SessionNumber must be between 1 and 32766")
        instance = getattr(eni, "instance", None)
        family = getattr(instance, "instance_type", "").split(".")[0]
        if family in REFUSED_FAMILIES or getattr(instance, "instance_type", "").endswith(".metal"):
            raise EC2ClientError("NetworkInterfaceNotSupported", f"{network_interface_id} is not supported")
        if any(t.network_interface_id == network_interface_id for t in self.traffic_mirror_targets.values()):
            raise EC2ClientError("InvalidParameterValue", "a traffic mirror target's ENI cannot be a source")
        existing = [
            s for s in self.traffic_mirror_sessions.values() if s.network_interface_id == network_interface_id
        ]
        if len(existing) >= 3:
            raise EC2ClientError("TrafficMirrorSessionsPerInterfaceLimitExceeded", "3 sessions per interface")
        if any(s.session_number == session_number for s in existing):
            raise EC2ClientError(
                "InvalidParameterValue", f"session number {session_number} is already in use"
            )
        if target.network_interface_id:
            target_eni = owner.get_network_interface(target.network_interface_id)
            if _zone_id(owner, target_eni) != _zone_id(self, eni):  # AZ ids: names differ per account
                raise EC2ClientError("InvalidParameterValue", "an ENI target must be in the source's AZ")
            sources = _sources_of(owner, traffic_mirror_target_id)
            if len(sources | {network_interface_id}) > _size_limit(owner, target.network_interface_id):
                raise EC2ClientError("TrafficMirrorSourcesPerTargetLimitExceeded", "too many sources")
        session = _MOTO["create_traffic_mirror_session"](
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
        _register_cross(owner, self, session.id)
        if client_token:
            _tokens[(id(self), client_token)] = (params, session)
        return session


def _describe_targets(self: Any, traffic_mirror_target_ids: Any, filters: Any) -> list[Any]:
    """The account's own targets, then those shared with it (ids and filters apply to both)."""
    own = _MOTO["describe_traffic_mirror_targets"](self, traffic_mirror_target_ids, filters)
    with _lock:
        shared = {t.id: _seen_from_outside(t) for t in _shared_with(self)}
    outside = SimpleNamespace(traffic_mirror_targets=shared)
    return [*own, *_MOTO["describe_traffic_mirror_targets"](outside, traffic_mirror_target_ids, filters)]


def _describe_sessions(self: Any, traffic_mirror_session_ids: Any, filters: Any) -> list[Any]:
    """The account's own sessions, then those other accounts made on its targets."""
    own = _MOTO["describe_traffic_mirror_sessions"](self, traffic_mirror_session_ids, filters)
    with _lock:
        cross = {s.id: _seen_from_outside(s) for s in _cross_sessions(self)}
    outside = SimpleNamespace(traffic_mirror_sessions=cross)
    return [*own, *_MOTO["describe_traffic_mirror_sessions"](outside, traffic_mirror_session_ids, filters)]


def _own_session(self: Any, action: str, session_id: str) -> Any:
    """The caller's own session; NOT_OWNER for one it only sees (on its target); else NotFound."""
    session = self.traffic_mirror_sessions.get(session_id)
    if session is not None:
        return session
    if any(s.id == session_id for s in _cross_sessions(self)):
        raise _refuse(self, action, session_id)
    raise EC2ClientError(SESSION_NOT_FOUND, f"The traffic mirror session '{session_id}' does not exist.")


def _modify_session(
    self: Any,
    traffic_mirror_session_id: str,
    traffic_mirror_target_id: str | None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    with _lock:
        _own_session(self, "ModifyTrafficMirrorSession", traffic_mirror_session_id)
        owner = _target_for(self, traffic_mirror_target_id)[0] if traffic_mirror_target_id else None
        session = _MOTO["modify_traffic_mirror_session"](
            self, traffic_mirror_session_id, traffic_mirror_target_id, *args, **kwargs
        )
        if owner is not None:
            _register_cross(owner, self, session.id)
        return session


def _delete_session(self: Any, traffic_mirror_session_id: str) -> Any:
    with _lock:
        _own_session(self, "DeleteTrafficMirrorSession", traffic_mirror_session_id)
        return _MOTO["delete_traffic_mirror_session"](self, traffic_mirror_session_id)


def _delete_target(self: Any, traffic_mirror_target_id: str) -> str:
    """DeleteTrafficMirrorTarget, which moto lacks: the owner's only. (The API's refusal of a
    target in use by the owner's own sessions is not emulated; sessions in other accounts stay,
    inactive on AWS, here still listed with the gone target's id.)"""
    with _lock:
        target = self.traffic_mirror_targets.get(traffic_mirror_target_id)
        if target is None:
            if _shared_target(self, traffic_mirror_target_id) is not None:
                raise _refuse(self, "DeleteTrafficMirrorTarget", traffic_mirror_target_id)
            raise EC2ClientError(TARGET_NOT_FOUND, f"{traffic_mirror_target_id} not found")
        del self.traffic_mirror_targets[traffic_mirror_target_id]
        _shared.pop(traffic_mirror_target_id, None)
        return traffic_mirror_target_id


def _delete_target_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    target_id = self.ec2_backend.delete_traffic_mirror_target(self._get_param("TrafficMirrorTargetId"))
    return ActionResult({"TrafficMirrorTargetId": target_id})


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (TrafficMirrorsBackend, "create_traffic_mirror_session", _create),
    (TrafficMirrorsBackend, "describe_traffic_mirror_targets", _describe_targets),
    (TrafficMirrorsBackend, "describe_traffic_mirror_sessions", _describe_sessions),
    (TrafficMirrorsBackend, "modify_traffic_mirror_session", _modify_session),
    (TrafficMirrorsBackend, "delete_traffic_mirror_session", _delete_session),
    (TrafficMirrorsBackend, "delete_traffic_mirror_target", _delete_target),
    (TrafficMirrors, "delete_traffic_mirror_target", _delete_target_response),
)


@contextlib.contextmanager
def aws_rules() -> Iterator[None]:
    """Make moto's traffic mirroring hold EC2's rules (and RAM's sharing) while the context is open.

    Blocks nest; the outermost one installs the rules and, at its end, takes them out and forgets
    every share, token and refused write.
    """
    with _lock:
        _depth[0] += 1
        if _depth[0] == 1:
            for cls, name, patched in _PATCHES:
                setattr(cls, name, patched)
    try:
        yield
    finally:
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                for cls, name, _ in _PATCHES:
                    if name in _MOTO and cls is TrafficMirrorsBackend:
                        setattr(cls, name, _MOTO[name])
                    else:
                        delattr(cls, name)
                _tokens.clear()
                unshare_all()


SESSION_QUOTA_CODE = "TrafficMirrorSessionLimitExceeded"
SESSION_QUOTA_MESSAGE = "The maximum number of Traffic Mirror sessions has been exceeded."
"""AWS's error code and message (EC2 API reference, "Error codes") when the account's session quota is reached."""


@contextlib.contextmanager
def session_quota(limit: int) -> Iterator[None]:
    """AWS's quota of traffic mirror sessions per account, at `limit` instead of 10,000 (a test
    cannot make 10,000): CreateTrafficMirrorSession is refused with AWS's error once the account
    holds `limit` sessions in the region (ours and any other tool's; Service Quotas count per
    Region). A ClientToken it already answered is answered again, as EC2's idempotency does.

    Wraps whatever create is in force when it opens: open it inside `aws_rules()`.
    """
    inner = TrafficMirrorsBackend.create_traffic_mirror_session
    answered: set[tuple[int, str]] = set()

    def create(self: Any, **kwargs: Any) -> Any:
        with _lock:
            token = kwargs.get("client_token")
            replay = bool(token) and (id(self), token) in answered
            if not replay and len(self.traffic_mirror_sessions) >= limit:
                raise EC2ClientError(SESSION_QUOTA_CODE, SESSION_QUOTA_MESSAGE)
            session = inner(self, **kwargs)
            if token:
                answered.add((id(self), token))
            return session

    TrafficMirrorsBackend.create_traffic_mirror_session = create  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TrafficMirrorsBackend.create_traffic_mirror_session = inner  # type: ignore[method-assign]


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
    subnet_bits: int = 20,
) -> Account:
    """A VPC over `azs`, one subnet each, sensor instances as ENI targets, one filter.

    `ami`: an image id to launch from; by default the first of moto's Amazon images (listing
    them costs moto about two seconds, so callers that build many accounts pass `moto_ami()`).
    `subnet_bits`: the subnets' prefix length (/20: about 4,000 addresses each; /18 for 10,000 ENIs).
    """
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    step = 2 ** (24 - subnet_bits)
    for index, suffix in enumerate(azs):
        az = f"{region}{suffix}"
        cidr = f"10.0.{index * step}.0/{subnet_bits}"
        subnets[az] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
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
