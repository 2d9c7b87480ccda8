"""The member accounts' footprint as CloudFormation templates, generated from Python.

Two templates, deployed by two service-managed stack sets (see organization.py):
- `regional_template`, in every listed region of every member account: EventBridge rules with
  the hub's own rules (`handler/events.py`, `rules`) that forward matching events to the hub's
  member bus in the same region, the role EventBridge assumes to put them there, and (unless
  the user brings their own) the account's traffic mirror filter, since filters cannot be
  shared across accounts.
- `account_template`, in one region only (IAM is global): the member role the hub's handler
  assumes, trusting only the hub's execution role inside the organization, with the hub role's
  EC2 rules (one builder: permissions.py); and, when operators are listed, a read-only role
  they may assume to run the CLI's plan and coverage in the account.

Values known only at deploy time (the hub's account, role, bus, the organization) are template
parameters, so the template itself is static JSON: `cfn-lint` checks exactly what is deployed,
and the moto test deploys the same text with its own parameters.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..handler import events
from ..handler.settings import MANAGED_TAG_KEY, Settings
from . import permissions

MEMBER_SESSION_NAME = "traffic-mirror-automation"
"""The role session name the hub's handler uses; the member role's trust requires it."""
CREATE_FILTER = "CreateFilter"
"""Template parameter: "true" = the stack owns the account's filter (moto's CloudFormation
cannot create one, so the moto test passes "false" and creates it by API)."""
FILTER_RULES = (("ingress", "0.0.0.0/0", 100), ("egress", "0.0.0.0/0", 100))
"""All IPv4 traffic in and out (direction, CIDR, rule number). The resource's schema takes IPv4
CIDRs only (cfn-lint E3002 on `::/0`), so IPv6 needs a filter of the user's own."""
TEMPLATE_VERSION = "2010-09-09"


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _logical(kind: str) -> str:
    """`api-calls` -> `ApiCallsRule` (CloudFormation logical ids are alphanumeric)."""
    return "".join(part.capitalize() for part in kind.split("-")) + "Rule"


HUB_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${HubAccountId}:event-bus/${HubEventBusName}"
_ACCOUNT_ID = {"Type": "String", "AllowedPattern": "^\\d{12}$"}


def forwarder_role_name(forwarder_pattern: str) -> dict[str, str]:
    """The forwarding role's name in the stack's region: the pattern's `*` is the region.

    A fixed, per-region name (IAM is global, the template is regional) lets the hub's bus
    policy admit exactly these roles (`aws:PrincipalArn`), not any principal of the organization.
    """
    if forwarder_pattern.count("*") != 1:
        raise ValueError(f"forwarder pattern {forwarder_pattern!r} needs exactly one '*' for the region")
    return _sub(forwarder_pattern.replace("*", "${AWS::Region}"))


def regional_template(settings: Settings, forwarder_pattern: str) -> dict[str, Any]:
    """Rules forwarding to the hub, their role, and the account's filter (conditional)."""
    tag_key, managed_by = settings.tag_key, settings.managed_by
    forwarder = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": forwarder_role_name(forwarder_pattern),
            "Description": "Traffic mirror automation: lets EventBridge forward events to the hub",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "forward-to-hub",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "PutOnTheHubsMemberBusOnly",
                                "Effect": "Allow",
                                "Action": "events:PutEvents",
                                "Resource": _sub(HUB_BUS_ARN),
                            }
                        ],
                    },
                }
            ],
        },
    }
    resources: dict[str, Any] = {"ForwardingRole": forwarder}
    for kind, pattern in events.rules(settings).items():
        resources[_logical(kind)] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": f"Traffic mirror automation: forwards {events.RULES[kind]} to the hub",
                "EventPattern": pattern,
                "State": "ENABLED",
                # A bus target takes no RetryPolicy: EventBridge's default (24 h, 185 tries) applies.
                "Targets": [
                    {"Id": "hub", "Arn": _sub(HUB_BUS_ARN), "RoleArn": {"Fn::GetAtt": ["ForwardingRole", "Arn"]}}
                ],
            },
        }
    tags = [{"Key": MANAGED_TAG_KEY, "Value": managed_by}, {"Key": tag_key, "Value": "default"}]
    resources["Filter"] = {
        "Type": "AWS::EC2::TrafficMirrorFilter",
        "Condition": "OwnFilter",
        "Properties": {"Description": "Traffic mirror automation: all IPv4 traffic, in and out", "Tags": tags},
    }
    for index, (direction, cidr, number) in enumerate(FILTER_RULES):
        resources[f"FilterRule{index}"] = {
            "Type": "AWS::EC2::TrafficMirrorFilterRule",
            "Condition": "OwnFilter",
            "Properties": {
                "TrafficMirrorFilterId": {"Ref": "Filter"},
                "TrafficDirection": direction,
                "RuleNumber": number,
                "RuleAction": "accept",
                "SourceCidrBlock": cidr,
                "DestinationCidrBlock": cidr,
                "Description": f"all {direction} traffic",
            },
        }
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": "Traffic mirror automation, member account, one per region: forward EC2 events to the hub",
        "Parameters": {
            "HubAccountId": {**_ACCOUNT_ID, "Description": "The hub (security) account"},
            "HubEventBusName": {"Type": "String", "Description": "The hub's bus for member events (same name in every region)"},
            CREATE_FILTER: {
                "Type": "String",
                "AllowedValues": ["true", "false"],
                "Default": "true",
                "Description": "true: this stack owns the account's traffic mirror filter",
            },
        },
        "Conditions": {"OwnFilter": {"Fn::Equals": [{"Ref": CREATE_FILTER}, "true"]}},
        "Resources": resources,
        "Outputs": {
            "FilterId": {"Condition": "OwnFilter", "Value": {"Ref": "Filter"}},
            "ForwardingRoleArn": {"Value": {"Fn::GetAtt": ["ForwardingRole", "Arn"]}},
        },
    }


def member_policy(managed_by: str, reads: Sequence[str]) -> dict[str, Any]:
    """The member role's permissions: the hub role's EC2 rules (the same builder), in the member.

    Targets may be the member's own or the hub's (shared through RAM); filters and ENIs only
    the member's own.
    """
    style = permissions.TEMPLATE_STYLE
    return {
        "Version": "2012-10-17",
        "Statement": permissions.ec2_statements(
            style, reads, managed_by, target_owners=(permissions.HUB_ACCOUNT_IN_TEMPLATE,)
        ),
    }


def read_only_policy(reads: Sequence[str]) -> dict[str, Any]:
    """The read-only operator role: the describe calls of the member role, nothing that writes."""
    return {"Version": "2012-10-17", "Statement": [permissions.read_statement(permissions.TEMPLATE_STYLE, reads)]}


def operator_trust(principals: Sequence[str]) -> dict[str, Any]:
    """The listed operators (IAM role or user ARNs, wildcards allowed in the name).

    As for the member role, the principal is each ARN's account with `aws:PrincipalArn`
    pinned to the list: an operator's role that is recreated keeps its access, and a
    wildcard can match an IAM Identity Center role (`AWSReservedSSO_<set>_<suffix>`).
    """
    accounts = sorted({arn.split(":")[4] for arn in principals})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheListedOperators",
                "Effect": "Allow",
                "Principal": {"AWS": [_sub(f"arn:${{AWS::Partition}}:iam::{a}:root") for a in accounts]},
                "Action": "sts:AssumeRole",
                "Condition": {"ArnLike": {"aws:PrincipalArn": list(principals)}},
            }
        ],
    }


def member_trust() -> dict[str, Any]:
    """Only the hub's execution role, from inside the organization, with the tool's session name.

    The principal is the hub account with `aws:PrincipalArn` pinned to the role, rather than
    the role itself: a principal ARN is turned into the role's unique id, so a recreated hub
    role would otherwise be locked out until the stack set is updated.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyTheHubsHandler",
                "Effect": "Allow",
                "Principal": {"AWS": _sub("arn:${AWS::Partition}:iam::${HubAccountId}:root")},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "ArnEquals": {"aws:PrincipalArn": {"Ref": "HubRoleArn"}},
                    "StringEquals": {
                        "aws:PrincipalOrgID": {"Ref": "OrganizationId"},
                        "sts:RoleSessionName": MEMBER_SESSION_NAME,
                    },
                },
            }
        ],
    }


def account_template(
    member_role_name: str, managed_by: str, reads: Sequence[str], operators: Sequence[str] = ()
) -> dict[str, Any]:
    """The member role, once per account (deployed to a single region), and with `operators`
    the read-only role they may assume (`traffic-mirror plan|coverage --account`)."""
    resources: dict[str, Any] = {
        "MemberRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": member_role_name,
                "Description": "Traffic mirror automation: the hub's handler mirrors this account's ENIs",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": member_trust(),
                "Policies": [{"PolicyName": "traffic-mirror-sessions", "PolicyDocument": member_policy(managed_by, reads)}],
            },
        }
    }
    outputs: dict[str, Any] = {"MemberRoleArn": {"Value": {"Fn::GetAtt": ["MemberRole", "Arn"]}}}
    if operators:
        resources["ReadOnlyRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": permissions.read_only_role_name(member_role_name),
                "Description": "Traffic mirror automation: operators read this account (traffic-mirror plan, coverage)",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": operator_trust(operators),
                "Policies": [{"PolicyName": "traffic-mirror-read", "PolicyDocument": read_only_policy(reads)}],
            },
        }
        outputs["ReadOnlyRoleArn"] = {"Value": {"Fn::GetAtt": ["ReadOnlyRole", "Arn"]}}
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": "Traffic mirror automation, member account, once per account: the role the hub's handler assumes",
        "Parameters": {
            "HubAccountId": {**_ACCOUNT_ID, "Description": "The hub (security) account"},
            "HubRoleArn": {
                "Type": "String",
                "AllowedPattern": "^arn:aws[a-z-]*:iam::\\d{12}:role/.+$",
                "Description": "The hub handler's execution role",
            },
            "OrganizationId": {
                "Type": "String",
                "AllowedPattern": "^o-[a-z0-9]{10,32}$",
                "Description": "The organization the hub's role must belong to",
            },
            "Regions": {"Type": "CommaDelimitedList", "Description": "Regions the role may act in"},
        },
        "Resources": resources,
        "Outputs": outputs,
    }


def to_json(template: Mapping[str, Any]) -> str:
    """Deterministic text, so an unchanged template never shows as a stack set update."""
    return json.dumps(template, sort_keys=True, separators=(",", ":"))
