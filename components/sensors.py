"""Sensors as code: traffic mirror targets created from what the user already has.

Each entry of the `sensors` argument is one string, so the same list works from stack config
and from every Pulumi language:

- a Network Load Balancer ARN (its region is in the ARN):
  `arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/ids/0123456789abcdef`
- `<region>/<eni-id>` for a sensor's network interface: `us-east-1/eni-0123456789abcdef0`
- `<region>/<vpce-id>` for a Gateway Load Balancer endpoint: `eu-west-1/vpce-0123456789abcdef0`

optionally followed by `=<route>` (`us-east-1/eni-0123456789abcdef0=pci`). Every target is
tagged `<tag_key>=true` (or the route): the operator designates it as a sensor, so under the
trust model it may receive copies from any VPC it can reach, not only its own.
"""

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from ..handler.settings import MANAGED_TAG_KEY

SensorKind = Literal["network-load-balancer", "network-interface", "gateway-load-balancer-endpoint"]
DESIGNATED = "true"
"""Tag value marking an unrouted sensor the operator designated (a route value designates it for that route)."""

_NLB_ARN = re.compile(
    r"^arn:aws[a-z-]*:elasticloadbalancing:(?P<region>[a-z0-9-]+):\d{12}:loadbalancer/net/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$"
)
_REGIONAL = re.compile(r"^(?P<region>[a-z0-9-]+)/(?P<id>(eni|vpce)-[0-9a-f]{8,17})$")
_ROUTE = re.compile(r"^[A-Za-z0-9 _.:/+@-]{1,256}$")
_ROUTE_IS_NOT = frozenset({"false", "off", "no", "0", "disabled"})


class SensorError(ValueError):
    """A `sensors` entry is malformed; the message shows the accepted forms."""


@dataclass(frozen=True)
class Sensor:
    region: str
    kind: SensorKind
    resource: str
    route: str | None = None

    @property
    def tag_value(self) -> str:
        return self.route or DESIGNATED

    @property
    def key(self) -> str:
        """Stable logical-name part: the same sensor keeps its resource whatever the list order."""
        return hashlib.sha256(f"{self.kind}|{self.resource}".encode()).hexdigest()[:8]


FORMS = (
    "an NLB ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/net/NAME/ID), "
    "REGION/eni-... or REGION/vpce-..., optionally followed by =ROUTE"
)


def parse_sensor(spec: str, regions: tuple[str, ...]) -> Sensor:
    """One `sensors` entry -> Sensor; the region must be one the component deploys to."""
    if not isinstance(spec, str):
        raise SensorError(f"sensors: {spec!r} is not a string; each entry is {FORMS}")
    text, _, route = spec.strip().partition("=")
    route_value = route.strip() or None
    if route and (route_value is None or not _ROUTE.match(route_value) or route_value.lower() in _ROUTE_IS_NOT):
        raise SensorError(f"sensors: {spec!r}: the route after '=' must be a tag value naming a route, not {route!r}")
    nlb = _NLB_ARN.match(text)
    regional = _REGIONAL.match(text)
    if nlb:
        sensor = Sensor(nlb.group("region"), "network-load-balancer", text, route_value)
    elif regional:
        kind: SensorKind = "network-interface" if regional.group("id").startswith("eni-") else "gateway-load-balancer-endpoint"
        sensor = Sensor(regional.group("region"), kind, regional.group("id"), route_value)
    else:
        raise SensorError(f"sensors: {spec!r} is not {FORMS}")
    if sensor.region not in regions:
        raise SensorError(f"sensors: {spec!r} is in {sensor.region}, which is not one of the regions {list(regions)}")
    return sensor


def parse_sensors(specs: object, regions: tuple[str, ...]) -> tuple[Sensor, ...]:
    if specs is None:
        return ()
    if isinstance(specs, str) or not isinstance(specs, (list, tuple)):
        raise SensorError(f"sensors must be a list of strings, each {FORMS}; got {specs!r}")
    sensors = tuple(parse_sensor(spec, regions) for spec in specs)
    seen: set[str] = set()
    for sensor in sensors:
        if sensor.resource in seen:
            raise SensorError(f"sensors lists {sensor.resource} twice; one mirror target per sensor")
        seen.add(sensor.resource)
    return sensors


def create_targets(
    name: str,
    region: str,
    sensors: tuple[Sensor, ...],
    tag_key: str,
    managed_by: str,
    parent: pulumi.Resource,
) -> list[aws.ec2.TrafficMirrorTarget]:
    """One traffic mirror target per sensor of `region`, tagged at creation as a designated sensor."""
    targets = []
    for sensor in (s for s in sensors if s.region == region):
        targets.append(
            aws.ec2.TrafficMirrorTarget(
                f"{name}-sensor-{region}-{sensor.key}",
                description=f"Traffic mirror automation sensor: {sensor.resource}"[:255],
                network_load_balancer_arn=sensor.resource if sensor.kind == "network-load-balancer" else None,
                network_interface_id=sensor.resource if sensor.kind == "network-interface" else None,
                gateway_load_balancer_endpoint_id=(
                    sensor.resource if sensor.kind == "gateway-load-balancer-endpoint" else None
                ),
                tags={tag_key: sensor.tag_value, MANAGED_TAG_KEY: managed_by, "Name": f"{name}-sensor"},
                region=region,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    return targets
