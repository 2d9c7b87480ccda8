"""Whether a traffic mirror target can receive packets now: pure, from the describe answers.

AWS documents each failure below as silent loss: mirroring stops when the target's resource is
deleted, a stopped instance receives nothing, and an NLB without its UDP listener "fails without
an error indication". The inventory reads the answers (batched, cached with it: `inventory.py`);
this module only judges them, so the same judgement serves the sweep, the events and the CLI.

- ENI target: the ENI exists and is attached to an instance whose state is `running`. It accepts
  10 sources, or 100 on the instance types AWS lists (`target_capacity.json`, copied from the
  Traffic Mirroring quotas).
- NLB target: the load balancer exists and is active, has a UDP (or TCP_UDP) listener on port
  4789, and at least one healthy target behind it; without cross-zone load balancing only the AZs
  with a healthy target are served (`Health.zones`).
- Gateway Load Balancer endpoint target: the endpoint exists and is `available`.
"""

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import Health, Target

VXLAN_PORT = 4789
"""Traffic Mirroring sends VXLAN over UDP to this port: an NLB target must listen on it."""
UDP_PROTOCOLS = frozenset({"UDP", "TCP_UDP"})
ACTIVE_NLB_STATES = frozenset({"active", "active_impaired"})
"""`active_impaired` still routes traffic (it lacks resources to scale): usable."""
CROSS_ZONE = "load_balancing.cross_zone.enabled"

# Why a target is not usable (`Health.why`): stable identifiers, with the words people read.
ENI_DELETED = "eni-deleted"
ENI_DETACHED = "eni-detached"
INSTANCE_NOT_RUNNING = "instance-not-running"
NLB_DELETED = "nlb-deleted"
NLB_NOT_ACTIVE = "nlb-not-active"
NO_UDP_LISTENER = "no-udp-4789-listener"
NO_HEALTHY_TARGET = "no-healthy-target"
ENDPOINT_DELETED = "endpoint-deleted"
ENDPOINT_UNAVAILABLE = "endpoint-unavailable"
TARGET_DELETED = "target-deleted"
WHY: Mapping[str, str] = {
    ENI_DELETED: "its ENI no longer exists",
    ENI_DETACHED: "its ENI is attached to no instance",
    INSTANCE_NOT_RUNNING: "its instance is not running",
    NLB_DELETED: "its load balancer no longer exists",
    NLB_NOT_ACTIVE: "its load balancer is not active",
    NO_UDP_LISTENER: f"its load balancer has no UDP listener on port {VXLAN_PORT}",
    NO_HEALTHY_TARGET: "its load balancer has no healthy target",
    ENDPOINT_DELETED: "its Gateway Load Balancer endpoint no longer exists",
    ENDPOINT_UNAVAILABLE: "its Gateway Load Balancer endpoint is not available",
    TARGET_DELETED: "the traffic mirror target no longer exists",
}

_DATA = json.loads((Path(__file__).parent / "target_capacity.json").read_text())
DEFAULT_SOURCES: int = _DATA["default_sources"]
LARGE_SOURCES: int = _DATA["large_sources"]
LARGE_TYPES: frozenset[str] = frozenset(t for types in _DATA["large"].values() for t in types)
"""Instance types whose ENI targets accept LARGE_SOURCES sources (AWS's list)."""


def sources_limit(instance_type: str) -> int:
    """Sources an ENI target on this instance type accepts (AWS quota, not adjustable)."""
    return LARGE_SOURCES if instance_type.strip().lower() in LARGE_TYPES else DEFAULT_SOURCES


def _unusable(why: str, detail: str = "", **kw: Any) -> Health:
    return Health(False, why, detail or WHY[why], **kw)


def eni_target(eni: Mapping[str, Any] | None, instance: Mapping[str, Any] | None) -> Health:
    """An ENI target: its ENI (DescribeNetworkInterfaces) and the instance it is attached to."""
    if eni is None:
        return _unusable(ENI_DELETED)
    attached = str((eni.get("Attachment") or {}).get("InstanceId") or "")
    if not attached:
        return _unusable(ENI_DETACHED, f"{eni.get('NetworkInterfaceId')} is attached to no instance")
    capacity = sources_limit(str(instance.get("InstanceType", ""))) if instance else DEFAULT_SOURCES
    state = str(((instance or {}).get("State") or {}).get("Name", "")) or "not found"
    if state != "running":
        detail = f"sensor instance {attached} is {state}"
        return _unusable(INSTANCE_NOT_RUNNING, detail, capacity=capacity, instance_id=attached)
    return Health(capacity=capacity, instance_id=attached)


def forwarded_groups(listener: Mapping[str, Any]) -> list[str]:
    """Target groups a listener's default actions forward to (plain or weighted forwards)."""
    groups: list[str] = []
    for action in listener.get("DefaultActions") or ():
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            groups.append(str(action["TargetGroupArn"]))
        for weighted in (action.get("ForwardConfig") or {}).get("TargetGroups") or ():
            if weighted.get("TargetGroupArn") and weighted.get("Weight", 1) != 0:
                groups.append(str(weighted["TargetGroupArn"]))
    return sorted(set(groups))


def vxlan_listeners(listeners: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The listeners that receive mirrored traffic: UDP (or TCP_UDP) on port 4789."""
    return [
        listener
        for listener in listeners
        if listener.get("Protocol") in UDP_PROTOCOLS and int(listener.get("Port") or 0) == VXLAN_PORT
    ]


def cross_zone(attributes: Iterable[Mapping[str, Any]]) -> bool:
    return any(a.get("Key") == CROSS_ZONE and str(a.get("Value", "")).lower() == "true" for a in attributes)


def nlb_target(
    load_balancer: Mapping[str, Any] | None,
    listeners: Sequence[Mapping[str, Any]],
    attributes: Sequence[Mapping[str, Any]],
    target_health: Mapping[str, Sequence[Mapping[str, Any]]],
    zone_of: Mapping[str, str],
) -> Health:
    """An NLB target, from its load balancer, listeners, attributes, the health of the targets of
    the groups its UDP 4789 listeners forward to (group ARN -> TargetHealthDescriptions), and where
    those targets are (target id -> AZ name: instances' placement, IP addresses' subnets)."""
    if load_balancer is None:
        return _unusable(NLB_DELETED)
    state = str((load_balancer.get("State") or {}).get("Code", ""))
    if state not in ACTIVE_NLB_STATES:
        return _unusable(NLB_NOT_ACTIVE, f"load balancer state is {state or 'unknown'}")
    udp = vxlan_listeners(listeners)
    if not udp:
        return _unusable(NO_UDP_LISTENER)
    groups = frozenset(g for listener in udp for g in forwarded_groups(listener))
    backends = frozenset(
        str((d.get("Target") or {}).get("Id", "")) for group in groups for d in target_health.get(group, ())
    )
    healthy = [
        described.get("Target") or {}
        for group in sorted(groups)
        for described in target_health.get(group, ())
        if (described.get("TargetHealth") or {}).get("State") == "healthy"
    ]
    if not healthy:
        return _unusable(NO_HEALTHY_TARGET, target_groups=groups, backends=backends)
    where = {str(t.get("AvailabilityZone") or zone_of.get(str(t.get("Id", "")), "")) for t in healthy}
    if "all" in where or cross_zone(attributes):
        return Health(target_groups=groups, backends=backends)
    zones = frozenset(where - {""})
    if not zones:  # where the healthy targets are could not be read: serve no AZ rather than guess
        detail = "its load balancer's healthy targets are in no AZ that could be read"
        return _unusable(NO_HEALTHY_TARGET, detail, target_groups=groups, backends=backends)
    return Health(zones=zones, target_groups=groups, backends=backends)


def gwlb_endpoint(endpoint: Mapping[str, Any] | None) -> Health:
    """A Gateway Load Balancer endpoint target (DescribeVpcEndpoints' State)."""
    if endpoint is None:
        return _unusable(ENDPOINT_DELETED)
    state = str(endpoint.get("State", "")).lower()
    if state != "available":
        return _unusable(ENDPOINT_UNAVAILABLE, f"endpoint state is {state or 'unknown'}")
    return Health()


def with_zone_ids(health: Health, zone_ids: Mapping[str, str]) -> Health:
    """The served zones also by AZ id (names differ between accounts, ids do not)."""
    if health.zones is None or not zone_ids:
        return health
    return dataclasses.replace(health, zone_ids=frozenset(zone_ids.get(z, z) for z in health.zones))


def words(health: Health) -> str:
    """`usable`, or why not, for people."""
    return "usable" if health.usable else (health.detail or WHY.get(health.why or "", health.why or "unusable"))


def load_balancer_of(arn: str) -> str:
    """A listener's ARN -> its load balancer's (`...:listener/net/NAME/LB/ID` -> `...:loadbalancer/net/NAME/LB`)."""
    head, sep, path = arn.partition(":listener/")
    if not sep:
        return arn
    return f"{head}:loadbalancer/{path.rsplit('/', 1)[0]}"


def named(targets: Iterable[Target], instance_ids: Iterable[str], resources: Iterable[str]) -> set[str]:
    """The targets (of this account: not another's shared with it) an event may have broken: an ENI
    target whose sensor instance it names, an NLB whose load balancer, listener, target group or
    registered instance it names, a target it names by id. Pure: read from the cached inventory."""
    instances, named_ = set(instance_ids), set(resources)
    balancers = {load_balancer_of(r) for r in named_}
    found = set()
    for target in targets:
        status = target.health
        if target.owner:
            continue
        if (
            target.target_id in named_
            or (status.instance_id and status.instance_id in instances)
            or target.resource_id in balancers
            or status.target_groups & named_
            or status.backends & instances
        ):
            found.add(target.target_id)
    return found
