"""The plan's guardrails: settings that look fine and still lose or spoil mirrored packets. Pure.

`plan` reports each as one line saying what to change (nothing is changed):
- `security-group`: an ENI sensor whose security groups do not admit VXLAN (UDP 4789) from the
  sources it serves: the copies are sent, and dropped at the sensor;
- `mtu`: sources whose instance type's MTU (9001 by default in a VPC) exceeds what the target kind
  carries untruncated: VXLAN adds 54 bytes, so an ENI target (MTU 9001) carries 8947 bytes and a
  Gateway Load Balancer endpoint (8500) 8446; larger packets arrive truncated;
- `vxlan-filter`: a filter that mirrors the VXLAN port itself: the copies on their way to a sensor
  are mirrored again (a loop when a sensor's own instances are mirrored, as behind an NLB).

Fed by the reads the plan already made (`Inventory`: the sensors' ENIs with their security
groups, the filters' rules; the sources' addresses and groups) and one batched read
(`SecurityGroup`s). An NLB without cross-zone load balancing is not a guardrail: sensor health
(`health.py`) serves from it only the zones where it has a healthy target.
"""

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .model import Decision, FilterRule, MirrorFilter, Source, Target

VXLAN_PORT = 4789
VXLAN_OVERHEAD = 54
"""Bytes VXLAN adds to each mirrored packet (IPv4)."""
JUMBO_MTU, STANDARD_MTU = 9001, 1500
UNTRUNCATED: Mapping[str, int] = {
    "network-interface": JUMBO_MTU - VXLAN_OVERHEAD,
    "gateway-load-balancer-endpoint": 8500 - VXLAN_OVERHEAD,
}
"""The largest source packet a target kind receives whole (AWS truncates larger copies). An NLB
target forwards to its own targets: AWS documents no truncation there, so it is not checked."""
NON_JUMBO_FAMILIES = frozenset({"t1", "m1", "m2", "c1", "cc1", "cc2", "cg1", "cr1", "hi1", "hs1"})
"""Previous-generation families without jumbo frames (MTU 1500); every other type has 9001 in a VPC."""
KIND_WORDS: Mapping[str, str] = {
    "network-interface": "ENI sensor",
    "network-load-balancer": "NLB sensor",
    "gateway-load-balancer-endpoint": "Gateway Load Balancer endpoint sensor",
}
SHOWN = 3
"""Addresses or zones named in a line before `and N more`."""


@dataclass(frozen=True)
class Permission:
    """One inbound rule of a security group, as far as VXLAN from a source is concerned."""

    protocol: str
    """`-1` (all), `udp`, `17`, `tcp`, ..."""
    from_port: int | None = None
    to_port: int | None = None
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    prefix_lists: bool = False
    """Admits a managed prefix list (not resolved here: taken as admitting)."""


@dataclass(frozen=True)
class SecurityGroup:
    group_id: str
    inbound: tuple[Permission, ...] = ()


@dataclass(frozen=True)
class Finding:
    check: str
    """`security-group`, `mtu` or `vxlan-filter`."""
    subject: str
    """The sensor's target id, or the filter's id."""
    text: str
    """One line: what is wrong, and what to change."""


def serving(decisions: Iterable[Decision]) -> dict[str, list[Decision]]:
    """Target id -> the in-scope ENIs that send to it once the plan is applied."""
    found: dict[str, list[Decision]] = {}
    for d in decisions:
        keeps = d.outcome in ("mirrored", "create", "modify") or (d.outcome == "delete" and d.kept_session)
        if d.target_id and d.out_of_scope is None and keeps:
            found.setdefault(d.target_id, []).append(d)
    return found


def instance_mtu(instance_type: str) -> int:
    """The MTU an instance of this type has by default in a VPC."""
    family = instance_type.split(".")[0].lower()
    return STANDARD_MTU if family in NON_JUMBO_FAMILIES else JUMBO_MTU


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def _admits(permission: Permission, source: Source) -> bool:
    """Does this inbound rule let VXLAN from `source` in?"""
    if permission.protocol not in ("-1", "udp", "17"):
        return False
    low, high = permission.from_port, permission.to_port
    if permission.protocol != "-1" and low is not None and high is not None and not low <= VXLAN_PORT <= high:
        return False
    if permission.prefix_lists or set(permission.groups) & set(source.security_groups):
        return True
    try:
        address = ipaddress.ip_address(source.private_ip)
    except ValueError:
        return True  # no usable address: nothing to judge
    for cidr in permission.cidrs:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def security_groups(
    served: Mapping[str, Sequence[Decision]],
    targets: Mapping[str, Target],
    sources: Mapping[str, Source],
    groups: Mapping[str, SecurityGroup],
) -> list[Finding]:
    """ENI sensors whose security groups drop the VXLAN of some sources they serve."""
    findings = []
    for target_id, decisions in sorted(served.items()):
        target = targets.get(target_id)
        if target is None or target.kind != "network-interface" or not target.security_groups:
            continue
        if any(g not in groups for g in target.security_groups):
            continue  # not read: unknown, not a finding
        rules = [p for g in target.security_groups for p in groups[g].inbound]
        blocked = sorted(
            {
                s.private_ip
                for d in decisions
                if (s := sources.get(d.eni_id)) is not None and s.private_ip
                if not any(_admits(p, s) for p in rules)
            }
        )
        if blocked:
            findings.append(
                Finding(
                    "security-group",
                    target_id,
                    f"ENI sensor {target_id} ({target.resource_id}): its security groups"
                    f" ({', '.join(target.security_groups)}) do not admit UDP {VXLAN_PORT} (VXLAN) from"
                    f" {len(blocked)} source(s) it serves ({_listed(blocked)}): add an inbound rule for UDP"
                    f" {VXLAN_PORT} from their addresses or security groups",
                )
            )
    return findings


def mtu(
    served: Mapping[str, Sequence[Decision]], targets: Mapping[str, Target], packet_length: int | None
) -> list[Finding]:
    """Targets some of whose sources send packets larger than the target kind carries whole."""
    findings = []
    for target_id, decisions in sorted(served.items()):
        target = targets.get(target_id)
        limit = UNTRUNCATED.get(target.kind) if target is not None else None
        if target is None or limit is None:
            continue
        if packet_length is not None and packet_length <= limit:
            continue  # the sessions truncate by choice (MIRROR_PACKET_LENGTH)
        over = [(d, instance_mtu(d.instance_type)) for d in decisions if instance_mtu(d.instance_type) > limit]
        if not over:
            continue
        types = sorted({d.instance_type for d, _ in over})
        findings.append(
            Finding(
                "mtu",
                target_id,
                f"{KIND_WORDS[target.kind]} {target_id}: {len(over)} source(s) it serves ({_listed(types)}) have an"
                f" MTU of {max(m for _, m in over)} by default and can send packets larger than the {limit} bytes"
                f" it receives untruncated (VXLAN adds {VXLAN_OVERHEAD}): lower those instances' MTU to {limit},"
                f" or accept truncation of larger packets (MIRROR_PACKET_LENGTH={limit} makes it explicit)",
            )
        )
    return findings


def _catches_vxlan(rule: FilterRule) -> bool:
    """The rule applies to some VXLAN packets (UDP to port 4789, IPv4)."""
    if rule.protocol not in (None, 17):
        return False
    ports = rule.destination_ports
    if ports is not None and not ports[0] <= VXLAN_PORT <= ports[1]:
        return False
    return ":" not in rule.source_cidr and ":" not in rule.destination_cidr


def mirrors_vxlan(rules: Iterable[FilterRule], direction: str) -> FilterRule | None:
    """The first rule (by number) accepting VXLAN in `direction`, unless a reject of every VXLAN packet comes first."""
    for rule in sorted((r for r in rules if r.direction == direction), key=lambda r: r.number):
        if not _catches_vxlan(rule):
            continue
        if rule.action == "accept":
            return rule
        every = rule.source_cidr == "0.0.0.0/0" and rule.destination_cidr == "0.0.0.0/0" and rule.source_ports is None
        if every:
            return None
    return None


def vxlan_filters(served: Mapping[str, Sequence[Decision]], filters: Mapping[str, MirrorFilter]) -> list[Finding]:
    """Filters in use that mirror VXLAN itself."""
    used = sorted({d.filter_id for decisions in served.values() for d in decisions if d.filter_id})
    findings = []
    for filter_id in used:
        found = filters.get(filter_id)
        if found is None:
            continue
        hits = [(way, rule) for way in ("ingress", "egress") if (rule := mirrors_vxlan(found.rules, way)) is not None]
        if hits:
            which = ", ".join(f"{way} rule {rule.number}" for way, rule in hits)
            findings.append(
                Finding(
                    "vxlan-filter",
                    filter_id,
                    f"filter {filter_id} mirrors VXLAN (UDP {VXLAN_PORT}) itself ({which} accepts it): add a reject"
                    f" rule for UDP destination port {VXLAN_PORT}, both directions, numbered below its accept rules,"
                    " so copies on their way to a sensor are not mirrored again",
                )
            )
    return findings


def check(
    decisions: Iterable[Decision],
    sources: Mapping[str, Source],
    targets: Mapping[str, Target],
    filters: Mapping[str, MirrorFilter],
    groups: Mapping[str, SecurityGroup],
    packet_length: int | None,
) -> list[Finding]:
    """Every guardrail over one place's plan, in a stable order."""
    served = serving(decisions)
    return [
        *security_groups(served, targets, sources, groups),
        *mtu(served, targets, packet_length),
        *vxlan_filters(served, filters),
    ]
