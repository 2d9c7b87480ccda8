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

moto cannot create requester-managed ENIs (a load balancer's nodes, a database's): `service_eni`
shapes them in moto's backend as AWS shows them, the one place that does; `aws_rules()` also
gives DescribeNetworkInterfaces the filters on them that EC2 has and moto lacks.

Sensors, where moto is laxer than AWS's documentation (also patched by `aws_rules()`):
- sources per ENI target: 10, or 100 on the instance types AWS lists (the handler's copy of that
  list, `handler/target_capacity.json`), counted at CreateTrafficMirrorSession and at
  ModifyTrafficMirrorSession when it names a new target (moto checks neither; a modify to another
  target must also name a target the account may use, in the source's AZ, as a create must);
- DescribeInstances' documented filter `network-interface.network-interface-id` (moto raises
  NotImplementedError);
- DeleteTrafficMirrorTarget is refused while a session of the owner's own uses the target (AWS:
  "You cannot delete a Traffic Mirror target that is in use by a Traffic Mirror session");
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from moto.core.utils import utcnow
from moto.ec2 import utils as ec2_utils
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ec2.models.instances import Instance
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from moto.ec2.responses.traffic_mirrors import TrafficMirrors
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup
from traffic_mirror.handler import health as handler_health

from testsupport import moto_gaps
from testsupport.moto_gaps import publish_mirror_metrics as publish_mirror_metrics

REFUSED_FAMILIES = frozenset({"t2", "m6i", "c6i", "r6i", "m7i", "m8i-flex", "t1", "m3"})
"""Families the fake API refuses (NetworkInterfaceNotSupported). m8i-flex is not in the
handler's support table, so it exercises 'the API's refusal is final'."""
LARGE_TYPES = handler_health.LARGE_TYPES
"""Instance types whose ENI targets take 100 sources (AWS's list, as the handler keeps it)."""
ENI_FILTER = "network-interface.network-interface-id"

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
    """Sources per ENI target: 10, or 100 on the instance types AWS lists (AWS quota)."""
    try:
        eni = backend.get_network_interface(eni_id)
    except Exception:
        return 10
    instance = getattr(eni, "instance", None)
    return 100 if getattr(instance, "instance_type", "") in LARGE_TYPES else 10


def _sources_of(owner: Any, target_id: str) -> set[str]:
    """Source ENIs of every session on this target, in the owner's account and in the others."""
    sessions: Iterable[Any] = [*owner.traffic_mirror_sessions.values(), *_cross_sessions(owner)]
    return {s.network_interface_id for s in sessions if s.traffic_mirror_target_id == target_id}


def _check_target(owner: Any, target: Any, source_backend: Any, eni: Any, target_id: str) -> None:
    """An ENI target serves its own AZ and at most its size's number of sources (AWS's rules for a
    session's target, at create and at modify)."""
    if not target.network_interface_id:
        return
    target_eni = owner.get_network_interface(target.network_interface_id)
    if _zone_id(owner, target_eni) != _zone_id(source_backend, eni):  # AZ ids: names differ per account
        raise EC2ClientError("InvalidParameterValue", "an ENI target must be in the source's AZ")
    if len(_sources_of(owner, target_id) | {eni.id}) > _size_limit(owner, target.network_interface_id):
        raise EC2ClientError("TrafficMirrorSourcesPerTargetLimitExceeded", "too many sources")


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
        _check_target(owner, target, self, eni, traffic_mirror_target_id)
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
        current = _own_session(self, "ModifyTrafficMirrorSession", traffic_mirror_session_id)
        owner = None
        if traffic_mirror_target_id:
            owner, target = _target_for(self, traffic_mirror_target_id)
            if traffic_mirror_target_id != current.traffic_mirror_target_id:
                eni = self.get_network_interface(current.network_interface_id)
                _check_target(owner, target, self, eni, traffic_mirror_target_id)
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
    """DeleteTrafficMirrorTarget, which moto lacks: the owner's only, and (AWS: "You cannot delete a
    Traffic Mirror target that is in use by a Traffic Mirror session") not while a session of the
    owner's own uses it. Sessions in other accounts stay (an assumption: docs/organization-emulation.md),
    inactive on AWS, here still listed with the gone target's id in their own account."""
    with _lock:
        target = self.traffic_mirror_targets.get(traffic_mirror_target_id)
        if target is None:
            if _shared_target(self, traffic_mirror_target_id) is not None:
                raise _refuse(self, "DeleteTrafficMirrorTarget", traffic_mirror_target_id)
            raise EC2ClientError(TARGET_NOT_FOUND, f"{traffic_mirror_target_id} not found")
        if any(s.traffic_mirror_target_id == traffic_mirror_target_id for s in self.traffic_mirror_sessions.values()):
            raise EC2ClientError("InvalidParameterValue", f"{traffic_mirror_target_id} is in use by a traffic mirror session")
        del self.traffic_mirror_targets[traffic_mirror_target_id]
        _shared.pop(traffic_mirror_target_id, None)
        return traffic_mirror_target_id


def _delete_target_response(self: Any) -> Any:
    from moto.core.responses import ActionResult

    target_id = self.ec2_backend.delete_traffic_mirror_target(self._get_param("TrafficMirrorTargetId"))
    return ActionResult({"TrafficMirrorTargetId": target_id})


_MOTO_ENI_FILTER = NetworkInterface.__dict__["get_filter_value"]


def _eni_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
    """EC2's filters on requester-managed ENIs, which moto's DescribeNetworkInterfaces lacks."""
    shown = {
        "requester-managed": self.requester_managed,
        "requester-id": self.requester_id,
        "interface-type": self.interface_type,
        "status": self.status,
    }
    if filter_name in shown:
        return shown[filter_name]
    return _MOTO_ENI_FILTER(self, filter_name, method_name)


def _eni_ids(instance: Any) -> list[str]:
    """An instance's attached ENIs, for the `network-interface.network-interface-id` filter."""
    return [nic.id for nic in instance.nics.values()]


_MOTO_TERMINATE = Instance.terminate
_MOTO_HEALTH = FakeTargetGroup.health_for


def _terminate(self: Any) -> Any:
    """TerminateInstances as AWS does it: the primary ENI made at launch goes, its sessions with it."""
    backend = self.ec2_backend
    primary = self.nics.get(0)
    if primary is not None and primary.id in backend.enis:
        primary.delete_on_termination = True
    before = set(backend.enis)
    state = _MOTO_TERMINATE(self)
    gone = before - set(backend.enis)
    with _lock:
        for session_id in [k for k, v in backend.traffic_mirror_sessions.items() if v.network_interface_id in gone]:
            del backend.traffic_mirror_sessions[session_id]
    return state


_MOTO_DELETE_LISTENER = ELBv2Backend.delete_listener


def _delete_listener(self: Any, listener_arn: str) -> Any:
    """DeleteListener as on AWS: a target group the listener forwarded to is no longer associated
    with the load balancer unless another of its listeners still forwards to it (moto keeps it)."""
    listener = _MOTO_DELETE_LISTENER(self, listener_arn)
    balancer = self.load_balancers.get(listener.load_balancer_arn)
    still = {
        str(action.data.get("TargetGroupArn", ""))
        for other in (balancer.listeners.values() if balancer else ())
        for action in other.default_actions
    }
    for group in self.target_groups.values():
        if listener.load_balancer_arn in group.load_balancer_arns and group.arn not in still:
            group.load_balancer_arns.remove(listener.load_balancer_arn)
    return listener


def _health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
    """FakeTargetGroup.health_for with AWS's rules for the targets moto calls healthy."""
    status = _MOTO_HEALTH(self, target, ec2_backend)
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


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (TrafficMirrorsBackend, "create_traffic_mirror_session", _create),
    (TrafficMirrorsBackend, "describe_traffic_mirror_targets", _describe_targets),
    (TrafficMirrorsBackend, "describe_traffic_mirror_sessions", _describe_sessions),
    (TrafficMirrorsBackend, "modify_traffic_mirror_session", _modify_session),
    (TrafficMirrorsBackend, "delete_traffic_mirror_session", _delete_session),
    (TrafficMirrorsBackend, "delete_traffic_mirror_target", _delete_target),
    (TrafficMirrors, "delete_traffic_mirror_target", _delete_target_response),
    (NetworkInterface, "get_filter_value", _eni_filter_value),
    (Instance, "terminate", _terminate),
    (Instance, "sandbox_eni_ids", property(_eni_ids)),
    (FakeTargetGroup, "health_for", _health_for),
    (ELBv2Backend, "delete_listener", _delete_listener),
)
def _install() -> None:
    ec2_utils.filter_dict_attribute_mapping[ENI_FILTER] = "sandbox_eni_ids"


def _forget() -> None:
    ec2_utils.filter_dict_attribute_mapping.pop(ENI_FILTER, None)
    with _lock:
        _tokens.clear()
        _failing.clear()
    unshare_all()


_RULES = moto_gaps.Patches(_PATCHES, on_install=_install, on_restore=_forget)


@contextlib.contextmanager
def aws_rules() -> Iterator[None]:
    """Make moto's traffic mirroring hold EC2's rules (and RAM's sharing) while the context is open.

    Blocks nest; the outermost one installs the rules and, at its end, takes them out and forgets
    every share, token and refused write.
    """
    with _RULES.installed(), moto_gaps.installed():
        yield


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


# --- services' ENIs, as AWS shows them ----------------------------------------------------


@dataclass(frozen=True)
class ServiceShape:
    """How AWS shows one service's ENIs (DescribeNetworkInterfaces)."""

    requester: str
    """`RequesterId`, and the attachment's `InstanceOwnerId`: the service's alias."""
    description: str
    """`Description`, with `{name}` and `{id}` of the resource it belongs to."""
    interface_type: str = "interface"


SERVICE_SHAPES: Mapping[str, ServiceShape] = {
    "alb": ServiceShape("amazon-elb", "ELB app/{name}/{id}"),
    "clb": ServiceShape("amazon-elb", "ELB {name}"),
    "nlb": ServiceShape("amazon-elb", "ELB net/{name}/{id}", "network_load_balancer"),
    "gwlb": ServiceShape("amazon-elb", "ELB gwy/{name}/{id}", "gateway_load_balancer"),
    "rds": ServiceShape("amazon-rds", "RDSNetworkInterface"),
    "nat": ServiceShape("amazon-aws", "Interface for NAT Gateway {id}", "nat_gateway"),
    "vpce": ServiceShape("amazon-aws", "VPC Endpoint Interface {id}", "vpc_endpoint"),
    "efs": ServiceShape("amazon-aws", "EFS mount target for {name} ({id})"),
}
"""The services' ENIs tests build: real shapes (descriptions and types as AWS documents and shows them)."""


@dataclass
class _ServiceAttachment:
    """A service's attachment: its own instance, in AWS's accounts (no `InstanceId` shown to us)."""

    attachment_id: str
    attach_time: Any
    instance_owner_id: str
    delete_on_termination: bool = False
    device_index: int = 1
    network_card_index: int = 0
    status: str = "attached"
    instance_id: str | None = None


class _ServiceNetworkInterface(NetworkInterface):
    """A requester-managed ENI: made by a service in our subnet, attached to the service's node."""

    service_owner = ""

    @property
    def attachment(self) -> Any:
        return _ServiceAttachment(str(self.attachment_id), self.attach_time, self.service_owner)

    def get_filter_value(self, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "attachment.instance-owner-id":
            return self.service_owner
        return super().get_filter_value(filter_name, method_name)


def service_eni(
    ec2: Any,
    subnet: str,
    service: str,
    name: str = "",
    resource_id: str = "",
    tags: Mapping[str, str] | None = None,
    interface_type: str | None = None,
) -> str:
    """A service's ENI in `subnet` (the account and region of `ec2`), shaped in moto's backend as AWS
    shows it: requester-managed, the service as requester and as the attachment's instance owner,
    in use, its description naming the resource (`SERVICE_SHAPES[service]`)."""
    from moto.ec2.models import ec2_backends

    shape = SERVICE_SHAPES[service]
    found = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]
    backend = ec2_backends[found["OwnerId"]][ec2.meta.region_name]
    description = shape.description.format(name=name, id=resource_id)
    with _lock:
        eni = _ServiceNetworkInterface(  # type: ignore[abstract]  # moto's abstract CloudFormation hooks
            backend, subnet, [], description=description, tags=dict(tags or {})
        )
        eni.requester_managed = True
        eni.requester_id = shape.requester
        eni.service_owner = shape.requester
        eni.interface_type = interface_type or shape.interface_type
        eni.status = "in-use"
        eni.attachment_id = f"ela-attach-{eni.id[4:]}"
        eni.attach_time = utcnow()
        eni.device_index = 1
        backend.enis[eni.id] = eni
    return str(eni.id)


def delete_service_eni(ec2: Any, eni_id: str) -> None:
    """A load balancer node scales in: AWS deletes its ENI, and the ENI's sessions with it."""
    from moto.ec2.models import ec2_backends

    found = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    backend = ec2_backends[found["OwnerId"]][ec2.meta.region_name]
    with _lock:
        for session_id, session in list(backend.traffic_mirror_sessions.items()):
            if session.network_interface_id == eni_id:
                del backend.traffic_mirror_sessions[session_id]
        del backend.enis[eni_id]


def application_load_balancer(
    elbv2: Any, ec2: Any, account: Account, name: str, tags: Mapping[str, str] | None = None, per_az: int = 1
) -> tuple[str, list[str]]:
    """A real (moto) Application Load Balancer over the account's subnets, with its tags, and its
    nodes' ENIs (`per_az` in each subnet). Returns its ARN and the ENI ids."""
    spec = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    tagged: dict[str, Any] = {"Tags": spec} if spec else {}
    lb = elbv2.create_load_balancer(
        Name=name, Subnets=list(account.subnets.values()), Type="application", **tagged
    )["LoadBalancers"][0]
    arn = str(lb["LoadBalancerArn"])
    _, lb_name, lb_id = arn.split(":loadbalancer/")[1].split("/")
    enis = [
        service_eni(ec2, subnet, "alb", lb_name, lb_id)
        for subnet in account.subnets.values()
        for _ in range(per_az)
    ]
    return arn, enis


def classic_load_balancer(
    elb: Any, ec2: Any, account: Account, name: str, tags: Mapping[str, str] | None = None
) -> list[str]:
    """A real (moto) Classic Load Balancer over the account's subnets, with its tags, and one node's
    ENI in each subnet. Returns the ENI ids."""
    spec = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
    elb.create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        Subnets=list(account.subnets.values()),
        **({"Tags": spec} if spec else {}),
    )
    return [service_eni(ec2, subnet, "clb", name) for subnet in account.subnets.values()]


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
