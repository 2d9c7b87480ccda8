"""Which kinds of ENI can be a traffic mirror source, and how a service's ENI is recognised.

Data, like the instance support table: `source_kinds.json` beside this file lists the services
whose ENIs AWS lets us mirror (Application and Classic Load Balancers, RDS), each recognised from
the ENI itself: requester-managed, its requester (`RequesterId`, or the attachment's
`InstanceOwnerId`, where AWS shows the service's alias) and its `Description`. Update the table
when AWS documents another service; nothing else changes.

Instances are the built-in kind (found through DescribeInstances). A requester-managed ENI of a
service the table does not know is of kind `OTHER`: out of scope, with its own reason.
"""

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DATA = json.loads((Path(__file__).parent / "source_kinds.json").read_text())

INSTANCES = "instances"
"""EC2 instances' ENIs: the default, and the only kind before MIRROR_SOURCES existed."""
ALL = "all"
"""Every kind this tool knows AWS can mirror."""
OTHER = "other-services"
"""A requester-managed ENI of a service the table does not know: never selectable, never mirrored."""
INTERFACE_TYPE: str = _DATA["interface_type"]
"""The only interface type a service's ENI can be mirrored with (AWS: a source is a network
interface of type `interface`)."""


@dataclass(frozen=True)
class Service:
    """One service whose ENIs can be mirrored (a row of the table)."""

    service: str
    kind: str
    label: str
    requester: str
    description: re.Pattern[str]
    tags: str | None
    """Where its resources' tags are read: `elbv2` (by ARN), `elb` (by name), None (the ENI's own only)."""


SERVICES: tuple[Service, ...] = tuple(
    Service(s["service"], s["kind"], s["label"], s["requester"], re.compile(s["description"]), s["tags"])
    for s in _DATA["services"]
)
KINDS: tuple[str, ...] = tuple(_DATA["kinds"])
"""Every selectable kind, instances first."""
_OWNER: Mapping[str, str] = {k: v["owner"] for k, v in _DATA["kinds"].items()}
SERVICE_KINDS: frozenset[str] = frozenset(KINDS) - {INSTANCES}
PATTERN = "({0})(,({0}))*".format("|".join(re.escape(k) for k in (*KINDS, ALL)))
"""What MIRROR_SOURCES must look like (checked by the setting's declaration)."""


@functools.cache
def parse(text: str) -> frozenset[str]:
    """`instances,load-balancers` -> those kinds; `all` -> every kind ("" -> instances)."""
    names = {n.strip().lower() for n in text.split(",") if n.strip()} or {INSTANCES}
    return frozenset(KINDS) if ALL in names else frozenset(names) & frozenset(KINDS)


def owner(kind: str) -> str:
    """What a source of this kind belongs to, in words ("instance", "load balancer", ...)."""
    return _OWNER.get(kind, "service")


def with_services(kinds: frozenset[str]) -> bool:
    """Any kind other than instances: the service ENIs are read, and their events subscribed."""
    return bool(kinds & SERVICE_KINDS)


def selected(kind: str, kinds: frozenset[str]) -> bool:
    """Whether ENIs of `kind` are planned under these kinds: the chosen ones, and, whenever any
    service's ENIs are read, those of services the table does not know (reported out of scope)."""
    return kind in kinds or (kind == OTHER and with_services(kinds))


@dataclass(frozen=True)
class ServiceEni:
    """What an ENI says about the service it belongs to."""

    kind: str
    """The service's kind (`load-balancers`, `databases`), or OTHER."""
    service: Service | None
    """None: a service the table does not know."""
    name: str = ""
    """The resource's name, where the description carries it (a load balancer's)."""
    resource_id: str = ""
    """The rest of the resource's identity in the description (an ALB's id)."""


def recognise(eni: Mapping[str, Any]) -> ServiceEni | None:
    """The service an ENI (as DescribeNetworkInterfaces shows it) belongs to.

    None: not a service's ENI (not requester-managed), or attached to an instance (the instance's
    own path covers it, whoever created the ENI). Its interface type is the planner's to judge.
    """
    if eni.get("RequesterManaged") is not True:
        return None
    attachment = eni.get("Attachment") or {}
    if attachment.get("InstanceId"):
        return None
    requesters = {str(eni.get("RequesterId") or ""), str(attachment.get("InstanceOwnerId") or "")} - {""}
    description = str(eni.get("Description") or "")
    for service in SERVICES:
        found = service.description.match(description)
        if service.requester in requesters and found:
            named = found.groupdict()
            return ServiceEni(service.kind, service, named.get("name") or "", named.get("id") or "")
    return ServiceEni(OTHER, None)


def alb_arn(partition: str, region: str, account: str, name: str, resource_id: str) -> str:
    """An Application Load Balancer's ARN from its ENI's description (`ELB app/<name>/<id>` is the
    ARN's resource part, as AWS's own tools read it)."""
    return f"arn:{partition}:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{resource_id}"


_ALB_ARN = re.compile(r"^arn:[\w-]+:elasticloadbalancing:[\w-]+:\d{12}:loadbalancer/app/([^/]+)/([^/]+)$")
_CLB_NAME = re.compile(r"^[A-Za-z0-9-]{1,32}$")


def alb_description(arn: str) -> str | None:
    """The description of an Application Load Balancer's ENIs (None: not an ALB's ARN)."""
    found = _ALB_ARN.match(arn)
    return f"ELB app/{found[1]}/{found[2]}" if found else None


def clb_description(name: str) -> str | None:
    """The description of a Classic Load Balancer's ENIs (None: not such a name)."""
    return f"ELB {name}" if _CLB_NAME.match(name) else None
