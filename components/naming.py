"""Physical names for the resources that policies must reference before they exist.

The function, its log group, the two queues per region and the trail are named explicitly:
the execution role's policy and the trail bucket's policy name them up front. Every such name
ends in a short hash of (project, stack, component name), so two instances in one stack, or
the same program in two stacks of one account, never collide, and a name stays the same on
every `pulumi up`. Names are `<component>-<kind>[-<region>]-<hash>`, so one ARN pattern
`<component>-<kind>-*-<hash>` covers exactly this instance's resources of a kind in every
region: the role's policy keeps the same size however many regions are listed.
"""

import hashlib
import re

import pulumi

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9-]+")
MAX_REGION_LENGTH = 16
"""Room reserved for the region, so the component part is cut the same way in every region."""
_SUFFIX_LENGTH = 8


def instance_suffix(component_name: str) -> str:
    """8 hex characters, stable for this component instance in this stack and project."""
    key = f"{pulumi.get_project()}/{pulumi.get_stack()}/{component_name}"
    return hashlib.sha256(key.encode()).hexdigest()[:_SUFFIX_LENGTH]


def _base(component_name: str, kind: str, max_length: int) -> str:
    room = max_length - len(kind) - MAX_REGION_LENGTH - _SUFFIX_LENGTH - 3
    if room < 1:
        raise ValueError(f"no room for a {kind!r} name within {max_length} characters")
    base = _NOT_ALLOWED.sub("-", component_name).strip("-") or "mirror"
    return base[:room].rstrip("-") or "m"


def physical_name(component_name: str, kind: str, region: str | None = None, max_length: int = 64) -> str:
    """`<component>-<kind>[-<region>]-<hash>`, within `max_length` characters."""
    if region is not None and len(region) > MAX_REGION_LENGTH:
        raise ValueError(f"region name {region!r} is longer than {MAX_REGION_LENGTH} characters")
    parts = [_base(component_name, kind, max_length), kind, *([region] if region else []), instance_suffix(component_name)]
    return "-".join(parts)


def name_pattern(component_name: str, kind: str, max_length: int = 64) -> str:
    """IAM wildcard matching `physical_name(component_name, kind, <any region>, max_length)`."""
    return f"{_base(component_name, kind, max_length)}-{kind}-*-{instance_suffix(component_name)}"
