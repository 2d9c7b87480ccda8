"""What the handler may do with EC2 in an account: one builder for every role that does it.

The hub's execution role (role.py) writes its policy with plain ARNs; the member role and the
read-only operator role live in a CloudFormation template (member_template.py) and write them
with `Fn::Sub`. Both come from `ec2_statements`, told how to write an ARN (`ArnStyle`), so the
hub's and the member's rules cannot drift apart (tests/test_permissions.py asserts it).

The rules:
- the describe calls it makes (they take no resource ARNs, hence resource "*"), from `READS`;
- create traffic mirror sessions only with the ManagedBy request tag and no other tag keys than
  ours, and tag them only as part of that creation;
- delete or modify only sessions carrying the ManagedBy tag;
- every EC2 call only in the deployment's regions (`aws:RequestedRegion`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..handler.settings import MANAGED_TAG_KEY, Settings


@dataclass(frozen=True)
class Read:
    """One read the handler (and the CLI's plan/coverage) makes, and why."""

    action: str
    why: str
    when: Callable[[Settings], bool] | None = None
    """None: every deployment needs it; otherwise only those whose settings say so."""


READS: tuple[Read, ...] = (
    Read("ec2:DescribeInstances", "instances: state, tags, their ENIs"),
    Read("ec2:DescribeNetworkInterfaces", "the ENIs to mirror, and ENI sensors"),
    Read("ec2:DescribeTags", "the mirror and priority tags on ENIs and instances"),
    Read("ec2:DescribeTrafficMirrorTargets", "the sensors"),
    Read("ec2:DescribeTrafficMirrorFilters", "the filter for new sessions"),
    Read("ec2:DescribeTrafficMirrorSessions", "the sessions that exist"),
    Read("ec2:DescribeVpcEndpoints", "Gateway Load Balancer endpoint sensors: their subnet"),
    Read("ec2:DescribeSubnets", "Gateway Load Balancer endpoint sensors: their VPC and zone"),
    Read("ec2:DescribeAvailabilityZones", "zone ids: zones are matched across accounts by id"),
    Read("elasticloadbalancing:DescribeLoadBalancers", "NLB sensors: their VPC and zones"),
    # sensor health
    Read("elasticloadbalancing:DescribeListeners", "sensor health: an NLB sensor's UDP 4789 listener"),
    Read(
        "elasticloadbalancing:DescribeTargetGroups",
        "sensor health: no target group associated with an NLB sensor whose listener read is empty",
    ),
    Read("elasticloadbalancing:DescribeTargetHealth", "sensor health: healthy targets behind an NLB sensor"),
    Read("elasticloadbalancing:DescribeLoadBalancerAttributes", "sensor health: cross-zone load balancing"),
    # evidence
    Read("cloudwatch:GetMetricData", "mirror loss: the mirrored instances' NetworkMirror/NetworkSkipMirror bytes"),
    Read("ec2:DescribeSecurityGroups", "plan's guardrails: do ENI sensors admit VXLAN (UDP 4789) from their sources"),
    # service ENIs (MIRROR_SOURCES): their ENIs come from DescribeNetworkInterfaces (above); a
    # database's ENI carries its own tags, a load balancer's ENIs take its tags too
    Read(
        "elasticloadbalancing:DescribeTags",
        "load balancers' ENIs: the load balancer's tags (MIRROR_SOURCES with load-balancers)",
        when=lambda settings: "load-balancers" in settings.kinds,
    ),
    # A feature that needs another read adds one line here (with `when` if only some deployments
    # need it); the hub's role, the member role, the read-only role and docs/permissions.md follow.
)
SESSION_TAG_KEYS = (MANAGED_TAG_KEY, "Name")
"""The only tags the handler puts on a session (handler/apply.py)."""
READ_ONLY_SUFFIX = "-read-only"
"""The read-only operator role in member accounts is `<member_role_name>-read-only`."""
ROLE_NAME_MAX = 64


def read_actions(settings: Settings) -> tuple[str, ...]:
    """The reads this deployment's handler makes (and an operator's plan/coverage)."""
    return tuple(r.action for r in READS if r.when is None or r.when(settings))


def read_only_role_name(member_role_name: str) -> str:
    return f"{member_role_name}{READ_ONLY_SUFFIX}"


@dataclass(frozen=True)
class ArnStyle:
    """How one policy document writes an EC2 ARN and the regions: the only things that differ."""

    ec2: Callable[[str, str], Any]
    """(account as the style spells it, resource) -> the ARN as the document writes it."""
    own_account: str
    regions: Any
    """The value `aws:RequestedRegion` must match: a list of names, or a template reference."""


def plain_style(partition: str, account: str, regions: Sequence[str]) -> ArnStyle:
    """The hub's execution role: a policy with the values known at deploy time."""
    return ArnStyle(lambda acct, res: f"arn:{partition}:ec2:*:{acct}:{res}", account, list(regions))


TEMPLATE_STYLE = ArnStyle(
    lambda acct, res: {"Fn::Sub": f"arn:${{AWS::Partition}}:ec2:*:{acct}:{res}"},
    "${AWS::AccountId}",
    {"Ref": "Regions"},
)
"""A member account's roles, in the template: partition and account are the stack's own, the
regions its `Regions` parameter."""
HUB_ACCOUNT_IN_TEMPLATE = "${HubAccountId}"


def read_statement(style: ArnStyle, reads: Sequence[str]) -> dict[str, Any]:
    """The describe calls, in the deployment's regions only."""
    return {
        "Sid": "DescribeWhatToMirror",
        "Effect": "Allow",
        "Action": list(reads),
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestedRegion": style.regions}},
    }


def ec2_statements(
    style: ArnStyle, reads: Sequence[str], managed_by: str, target_owners: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every EC2 statement of a role that mirrors an account's ENIs.

    `target_owners`: accounts, besides the role's own, whose targets sessions may use (a member
    uses the hub's sensors, shared through RAM). ENIs and filters are always the account's own.
    """
    in_regions = {"aws:RequestedRegion": style.regions}
    own = style.own_account
    sessions = style.ec2(own, "traffic-mirror-session/*")
    targets = [style.ec2(account, "traffic-mirror-target/*") for account in (own, *target_owners)]
    filters = style.ec2(own, "traffic-mirror-filter/*")
    return [
        read_statement(style, reads),
        {
            # CreateTrafficMirrorSession authorizes on four resources; the request's tags
            # belong to the new session only, so the tag conditions sit on that resource.
            "Sid": "CreateOnlyManagedSessions",
            "Effect": "Allow",
            "Action": "ec2:CreateTrafficMirrorSession",
            "Resource": sessions,
            "Condition": {
                "StringEquals": {f"aws:RequestTag/{MANAGED_TAG_KEY}": managed_by, **in_regions},
                "ForAllValues:StringEquals": {"aws:TagKeys": list(SESSION_TAG_KEYS)},
            },
        },
        {
            "Sid": "CreateSessionsOnOwnEnisAllowedTargetsAndOwnFilters",
            "Effect": "Allow",
            "Action": "ec2:CreateTrafficMirrorSession",
            "Resource": [style.ec2(own, "network-interface/*"), *targets, filters],
            "Condition": {"StringEquals": in_regions},
        },
        {
            "Sid": "TagSessionsOnlyAtCreation",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": sessions,
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateTrafficMirrorSession", **in_regions}},
        },
        {
            "Sid": "ChangeOnlyManagedSessions",
            "Effect": "Allow",
            "Action": ["ec2:DeleteTrafficMirrorSession", "ec2:ModifyTrafficMirrorSession"],
            "Resource": sessions,
            "Condition": {"StringEquals": {f"aws:ResourceTag/{MANAGED_TAG_KEY}": managed_by, **in_regions}},
        },
        {
            "Sid": "ModifyReferencesAllowedTargetsAndOwnFilters",
            "Effect": "Allow",
            "Action": "ec2:ModifyTrafficMirrorSession",
            "Resource": [*targets, filters],
            "Condition": {"StringEquals": in_regions},
        },
    ]
