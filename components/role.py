"""The Lambda's execution role: one for all regions, least privilege.

What the handler may do, and nothing else:
- with EC2, what `permissions.ec2_statements` says (the same builder writes the member role's
  statements): describe, create sessions only with the managed-by tag, change only those;
- write to its own log groups, consume its own event queues, send to its own dead-letter queues.
EC2 statements are limited to the configured regions with `aws:RequestedRegion`; logs and
queues are matched by name patterns that carry the instance's hash (see naming.py). Both keep
the policy's size nearly independent of the number of regions (IAM allows 10,240 characters).
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from . import permissions
from .config import IAM_INLINE_POLICY_LIMIT, ConfigError, Options

QUEUE_CONSUMER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
)


def assume_role_policy(partition: str, account: str, own_functions: str) -> str:
    """Only Lambda, on behalf of this account and of this instance's functions, may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": f"arn:{partition}:lambda:*:{account}:function:{own_functions}"},
                    },
                }
            ],
        }
    )


@dataclass(frozen=True)
class OwnNames:
    """IAM wildcards that match exactly this instance's functions and queues, in every region."""

    functions: str
    event_queues: str
    dead_letter_queues: str


def execution_policy(options: Options, partition: str, account: str, own: OwnNames) -> dict[str, Any]:
    """The role's permissions as a policy document (plain values, so tests can read it)."""
    style = permissions.plain_style(partition, account, options.regions)
    ec2 = permissions.ec2_statements(style, permissions.read_actions(options.settings), options.settings.managed_by)
    return {
        "Version": "2012-10-17",
        "Statement": [
            *ec2,
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"arn:{partition}:logs:*:{account}:log-group:/aws/lambda/{own.functions}:*",
            },
            {
                "Sid": "ConsumeOwnEventQueues",
                "Effect": "Allow",
                "Action": list(QUEUE_CONSUMER_ACTIONS),
                "Resource": f"arn:{partition}:sqs:*:{account}:{own.event_queues}",
            },
            {
                "Sid": "SendToOwnDeadLetterQueues",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": f"arn:{partition}:sqs:*:{account}:{own.dead_letter_queues}",
            },
        ],
    }


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against its limit: the JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))


def check_policy_fits(options: Options, own: OwnNames) -> None:
    """Fail at preview, not half-way through `up`, if the policy would be too big for IAM."""
    size = policy_size(execution_policy(options, options.partition, "123456789012", own))
    if size > IAM_INLINE_POLICY_LIMIT:
        raise ConfigError(
            f"the execution role's policy for {len(options.regions)} regions would be {size} characters, "
            f"over IAM's {IAM_INLINE_POLICY_LIMIT}; split the regions between two component instances"
        )


def create_role(
    name: str, partition: pulumi.Input[str], account: pulumi.Input[str], own: OwnNames, parent: pulumi.Resource
) -> aws.iam.Role:
    return aws.iam.Role(
        f"{name}-role",
        description="Traffic mirror automation: the Lambda that creates traffic mirror sessions",
        assume_role_policy=pulumi.Output.all(partition, account).apply(
            lambda v: assume_role_policy(v[0], v[1], own.functions)
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def create_role_policy(
    name: str,
    role: aws.iam.Role,
    options: Options,
    partition: pulumi.Input[str],
    account: pulumi.Input[str],
    own: OwnNames,
    parent: pulumi.Resource,
) -> aws.iam.RolePolicy:
    document = pulumi.Output.all(partition, account).apply(
        lambda v: json.dumps(execution_policy(options, v[0], v[1], own))
    )
    return aws.iam.RolePolicy(
        f"{name}-role-policy",
        role=role.id,
        policy=document,
        opts=pulumi.ResourceOptions(parent=parent),
    )
