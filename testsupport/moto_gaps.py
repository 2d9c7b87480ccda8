"""What moto lacks, as AWS documents it, that the evidence features read (installed by `sandbox.aws_rules()`).

- `CreateTrafficMirrorFilterRule`: moto has filters without rules (its DescribeTrafficMirrorFilters
  always answers empty rule lists). The rules are kept on moto's filter and shown by the describe,
  with EC2's checks: direction, action, a rule number 1-32766 unused in that direction, ports only
  with TCP or UDP, at most 10 rules per filter.
- A VPC's default security group admits all inbound traffic from the group itself (AWS creates it
  so); moto's has no inbound rule.
- `publish_mirror_metrics`: the per-instance mirror metrics EC2 publishes to CloudWatch itself
  (namespace AWS/EC2, which users may not write to; moto's PutMetricData accepts it).
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.security_groups import SecurityGroupBackend, SecurityGroupRule
from moto.ec2.models.traffic_mirrors import TrafficMirrorFilter
from moto.ec2.responses.traffic_mirrors import TrafficMirrors
from moto.moto_api._internal import mock_random

MAX_FILTER_RULES = 10
_MOTO_FILTER_TO_DICT = TrafficMirrorFilter.to_dict
_MOTO_CREATE_GROUP = SecurityGroupBackend.create_security_group


def _rules(mirror_filter: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = mirror_filter.__dict__.setdefault("_sandbox_rules", [])
    return found


def _filter_to_dict(self: Any) -> dict[str, Any]:
    shown = _MOTO_FILTER_TO_DICT(self)
    shown["IngressFilterRules"] = _direction(self, "ingress")
    shown["EgressFilterRules"] = _direction(self, "egress")
    return shown


def _direction(mirror_filter: Any, direction: str) -> list[dict[str, Any]]:
    return [r for r in _rules(mirror_filter) if r["TrafficDirection"] == direction]


# moto's response serializer reads the describe's objects by attribute.
_INGRESS = property(lambda self: _direction(self, "ingress"))
_EGRESS = property(lambda self: _direction(self, "egress"))


def _ports(raw: Any) -> dict[str, int] | None:
    if not raw:
        return None
    low = int(raw.get("FromPort", 0))
    return {"FromPort": low, "ToPort": int(raw.get("ToPort", low))}


def _create_filter_rule(self: Any) -> ActionResult:
    """EC2's CreateTrafficMirrorFilterRule, on moto's filter."""
    filter_id = self._get_param("TrafficMirrorFilterId")
    found = self.ec2_backend.traffic_mirror_filters.get(filter_id)
    if found is None:
        raise EC2ClientError("InvalidTrafficMirrorFilterId.NotFound", f"{filter_id} not found")
    direction, action = self._get_param("TrafficDirection"), self._get_param("RuleAction")
    number = int(self._get_param("RuleNumber") or 0)
    protocol = self._get_param("Protocol")
    if direction not in ("ingress", "egress") or action not in ("accept", "reject"):
        raise EC2ClientError("InvalidParameterValue", "TrafficDirection and RuleAction are ingress|egress, accept|reject")
    if not 1 <= number <= 32766:
        raise EC2ClientError("InvalidParameterValue", "RuleNumber must be between 1 and 32766")
    rules = _rules(found)
    if any(r["TrafficDirection"] == direction and r["RuleNumber"] == number for r in rules):
        raise EC2ClientError("InvalidParameterValue", f"rule number {number} is already in use for {direction}")
    if len(rules) >= MAX_FILTER_RULES:
        raise EC2ClientError("TrafficMirrorFilterRuleLimitExceeded", "a filter has at most 10 rules")
    destination_ports, source_ports = _ports(self._get_param("DestinationPortRange")), _ports(
        self._get_param("SourcePortRange")
    )
    if (destination_ports or source_ports) and str(protocol) not in ("6", "17"):
        raise EC2ClientError("InvalidParameterValue", "port ranges need protocol TCP (6) or UDP (17)")
    rule: dict[str, Any] = {
        "TrafficMirrorFilterRuleId": f"tmfr-{mock_random.get_random_hex(17)}",
        "TrafficMirrorFilterId": filter_id,
        "TrafficDirection": direction,
        "RuleNumber": number,
        "RuleAction": action,
        "DestinationCidrBlock": self._get_param("DestinationCidrBlock"),
        "SourceCidrBlock": self._get_param("SourceCidrBlock"),
        "Description": self._get_param("Description") or "",
    }
    if protocol not in (None, ""):
        rule["Protocol"] = int(protocol)
    if destination_ports:
        rule["DestinationPortRange"] = destination_ports
    if source_ports:
        rule["SourcePortRange"] = source_ports
    rules.append(rule)
    return ActionResult({"TrafficMirrorFilterRule": rule, "ClientToken": self._get_param("ClientToken")})


def _create_security_group(self: Any, *args: Any, **kwargs: Any) -> Any:
    group = _MOTO_CREATE_GROUP(self, *args, **kwargs)
    if group.is_default and not group.ingress_rules:
        group.ingress_rules.append(
            SecurityGroupRule(
                self,
                "-1",
                group.id,
                None,
                None,
                None,
                source_group={"GroupId": group.id, "UserId": self.account_id},
                is_egress=False,
            )
        )
    return group


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (TrafficMirrorFilter, "to_dict", _filter_to_dict),
    (TrafficMirrorFilter, "ingress_filter_rules", _INGRESS),
    (TrafficMirrorFilter, "egress_filter_rules", _EGRESS),
    (TrafficMirrors, "create_traffic_mirror_filter_rule", _create_filter_rule),
    (SecurityGroupBackend, "create_security_group", _create_security_group),
)
class Patches:
    """Class attributes replaced while a `with patches.installed():` block is open. Blocks nest
    (threads and tests open them in any order); the outermost one installs, and its end restores
    what each attribute was (or removes it when it was absent). `on_install`/`on_restore` run then."""

    def __init__(
        self,
        patches: tuple[tuple[Any, str, Any], ...],
        on_install: Callable[[], None] = lambda: None,
        on_restore: Callable[[], None] = lambda: None,
    ) -> None:
        self._patches, self._on_install, self._on_restore = patches, on_install, on_restore
        self._originals = {(cls, name): cls.__dict__.get(name) for cls, name, _ in patches}
        self._lock = threading.Lock()
        self._depth = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                for cls, name, patched in self._patches:
                    setattr(cls, name, patched)
                self._on_install()
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for cls, name, _ in self._patches:
                        original = self._originals[(cls, name)]
                        if original is None:
                            delattr(cls, name)
                        else:
                            setattr(cls, name, original)
                    self._on_restore()


_GAPS = Patches(_PATCHES)


def installed() -> "AbstractContextManager[None]":
    """The gaps filled while the block runs (blocks nest; the outermost one takes them out)."""
    return _GAPS.installed()


def publish_mirror_metrics(
    cloudwatch: Any,
    instance_id: str,
    mirrored: float,
    skipped: float = 0.0,
    at: datetime | None = None,
) -> None:
    """What EC2 publishes for a mirrored instance: bytes mirrored and skipped, split evenly in and out."""
    when = at or datetime.now(UTC)
    data = [
        ("NetworkMirrorIn", mirrored / 2),
        ("NetworkMirrorOut", mirrored / 2),
        ("NetworkSkipMirrorIn", skipped / 2),
        ("NetworkSkipMirrorOut", skipped / 2),
    ]
    cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Value": value,
                "Unit": "Bytes",
                "Timestamp": when,
            }
            for name, value in data
        ],
    )
