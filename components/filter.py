"""The deployment's own traffic mirror filter, one per region, whose id the handler is given.

With its own filter the automation no longer depends on "the only unrouted filter" of a
region, so a colleague's new filter cannot stop it. AWS allows 10 rules per filter (inbound
and outbound together), numbered 1-32766, lower numbers evaluated first:

| numbers | rules |
| --- | --- |
| 100, 200, ... | the user's `filter_rules`, in the order given, per direction |
| 30000 | reject UDP 4789 (VXLAN), both directions: the copies sent to sensors themselves (`filter_exclude_vxlan`) |
| 32000, 32001 | accept all IPv4, accept all IPv6, both directions |

Amazon DNS is mirrored only with `filter_mirror_amazon_dns` (AWS's `amazon-dns` network
service); instance metadata, NTP, DHCP and ARP are never mirrored by AWS.

A user rule is one string: `<ingress|egress> <accept|reject> <protocol> <source CIDR>
<destination CIDR> [<destination port or range>]`, e.g. `ingress reject tcp 0.0.0.0/0
10.0.0.0/8 22` or `egress accept all 10.0.0.0/8 0.0.0.0/0`; protocol is all, tcp, udp, icmp,
icmpv6 or an IANA number.
"""

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from ..handler.settings import MANAGED_TAG_KEY

MAX_RULES = 10
"""AWS's limit of rules per traffic mirror filter (not adjustable)."""
VXLAN_PORT = 4789
USER_RULE_STEP = 100
VXLAN_RULE_NUMBER = 30000
ACCEPT_IPV4_NUMBER, ACCEPT_IPV6_NUMBER = 32000, 32001
DIRECTIONS = ("ingress", "egress")
PROTOCOLS = {"all": None, "icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}

Direction = Literal["ingress", "egress"]


class FilterRuleError(ValueError):
    """A filter rule is malformed or the rules do not fit AWS's limit."""


@dataclass(frozen=True)
class Rule:
    direction: str
    action: str
    protocol: int | None
    source: str
    destination: str
    ports: tuple[int, int] | None = None
    number: int = 0
    description: str = ""


def _cidr(value: str, rule: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise FilterRuleError(f"filter_rules: {rule!r}: {value!r} is not a CIDR block") from None


def parse_rule(text: object) -> Rule:
    """One user rule string -> Rule (numbered later)."""
    if not isinstance(text, str):
        raise FilterRuleError(f"filter_rules: {text!r} is not a string")
    parts = text.split()
    if len(parts) not in (5, 6):
        raise FilterRuleError(
            f"filter_rules: {text!r} must be '<ingress|egress> <accept|reject> <protocol> <source CIDR> "
            "<destination CIDR> [<port>[-<port>]]'"
        )
    direction, action, protocol_text = parts[0].lower(), parts[1].lower(), parts[2].lower()
    if direction not in DIRECTIONS:
        raise FilterRuleError(f"filter_rules: {text!r}: direction must be ingress or egress")
    if action not in ("accept", "reject"):
        raise FilterRuleError(f"filter_rules: {text!r}: action must be accept or reject")
    if protocol_text in PROTOCOLS:
        protocol = PROTOCOLS[protocol_text]
    elif protocol_text.isdigit() and 0 <= int(protocol_text) <= 255:
        protocol = int(protocol_text)
    else:
        raise FilterRuleError(f"filter_rules: {text!r}: protocol must be one of {', '.join(PROTOCOLS)} or 0-255")
    source, destination = _cidr(parts[3], text), _cidr(parts[4], text)
    if ipaddress.ip_network(source).version != ipaddress.ip_network(destination).version:
        raise FilterRuleError(f"filter_rules: {text!r}: source and destination must both be IPv4 or both IPv6")
    ports = None
    if len(parts) == 6:
        if protocol not in (6, 17):
            raise FilterRuleError(f"filter_rules: {text!r}: ports need protocol tcp or udp")
        low, _, high = parts[5].partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise FilterRuleError(f"filter_rules: {text!r}: port must be N or N-M")
        ports = (int(low), int(high or low))
        if not 0 <= ports[0] <= ports[1] <= 65535:
            raise FilterRuleError(f"filter_rules: {text!r}: ports must be 0-65535, low to high")
    return Rule(direction, action, protocol, source, destination, ports, description=text[:255])


def rules(user_rules: tuple[str, ...], exclude_vxlan: bool) -> tuple[Rule, ...]:
    """Every rule of the owned filter, numbered; raise FilterRuleError beyond AWS's 10."""
    numbered: list[Rule] = []
    for direction in DIRECTIONS:
        mine = [r for r in map(parse_rule, user_rules) if r.direction == direction]
        for index, rule in enumerate(mine, start=1):
            numbered.append(Rule(**{**rule.__dict__, "number": index * USER_RULE_STEP}))
        if exclude_vxlan:
            numbered.append(
                Rule(
                    direction,
                    "reject",
                    PROTOCOLS["udp"],
                    "0.0.0.0/0",
                    "0.0.0.0/0",
                    (VXLAN_PORT, VXLAN_PORT),
                    VXLAN_RULE_NUMBER,
                    "exclude VXLAN (UDP 4789): mirrored copies on their way to sensors",
                )
            )
        numbered.append(Rule(direction, "accept", None, "0.0.0.0/0", "0.0.0.0/0", None, ACCEPT_IPV4_NUMBER, "all IPv4"))
        numbered.append(Rule(direction, "accept", None, "::/0", "::/0", None, ACCEPT_IPV6_NUMBER, "all IPv6"))
    if len(numbered) > MAX_RULES:
        defaults = len(numbered) - len(user_rules)
        raise FilterRuleError(
            f"filter_rules: {len(user_rules)} rule(s) plus the {defaults} default rules make {len(numbered)}, "
            f"over AWS's {MAX_RULES} per filter; give at most {MAX_RULES - defaults} "
            "(filter_exclude_vxlan=false frees 2)"
        )
    return tuple(numbered)


def create_filter(
    name: str,
    region: str,
    filter_rules: tuple[Rule, ...],
    mirror_amazon_dns: bool,
    managed_by: str,
    parent: pulumi.Resource,
) -> tuple[aws.ec2.TrafficMirrorFilter, list[aws.ec2.TrafficMirrorFilterRule]]:
    """The filter and its rules in `region` (rule resources named by direction and number)."""
    mirror_filter = aws.ec2.TrafficMirrorFilter(
        f"{name}-filter-{region}",
        description="Traffic mirror automation: the deployment's default filter",
        network_services=["amazon-dns"] if mirror_amazon_dns else None,
        tags={MANAGED_TAG_KEY: managed_by, "Name": f"{name}-filter"},
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    created = []
    for rule in filter_rules:
        ports = (
            aws.ec2.TrafficMirrorFilterRuleDestinationPortRangeArgs(from_port=rule.ports[0], to_port=rule.ports[1])
            if rule.ports
            else None
        )
        created.append(
            aws.ec2.TrafficMirrorFilterRule(
                f"{name}-filter-{rule.direction}-{rule.number}-{region}",
                traffic_mirror_filter_id=mirror_filter.id,
                traffic_direction=rule.direction,
                rule_number=rule.number,
                rule_action=rule.action,
                protocol=rule.protocol,
                source_cidr_block=rule.source,
                destination_cidr_block=rule.destination,
                destination_port_range=ports,
                description=rule.description,
                region=region,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    return mirror_filter, created
