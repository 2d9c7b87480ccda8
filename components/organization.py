"""Organization coverage, the hub's side: member footprint, the member bus, sensor sharing.

With `organization_units` set, one `pulumi up` in the hub (security) account covers every
account under those units, in every listed region, including accounts that join later:

- **Member footprint** through two service-managed CloudFormation stack sets with
  auto-deployment (member_template.py): the forwarding rules and the account's filter in every
  listed region, and the member role once per account (a stack set of its own, in the home
  region only, since IAM is global). StackSets never deploy to the management account.
- **Forwarding path**: member rule -> the hub's *member bus* in the same region (one custom bus
  per region, same name everywhere) -> the hub's own rules on that bus -> the hub's event queue.
  Chosen over member rule -> hub queue because: the bus is ours alone, so its policy (one
  statement scoped with `aws:PrincipalOrgID` and the forwarders' role name, constant size
  whatever the number of accounts, far below the bus policy's 10 KB) replaces nothing of the
  hub's; the queue's policy keeps admitting only the hub's own rules; the hub's default bus
  and its other rules never see member events; and moto delivers a rule to another account's
  bus (not to another account's queue), so the path is exercised end to end. The price is one
  more EventBridge hop (sub-second) and EventBridge's cross-account event charge.
- **Sensors**: per region, an AWS RAM share of the hub's targets (listed, and/or tagged with
  the tag key: the trust model's designated sensors) with the units, no external principals.
- **Operators** listed in `operator_principal_arns` get a read-only role in every member account
  (the account stack set), for the CLI's `plan` and `coverage` with `--account`.
- **The hub's handler** may assume the member role in accounts of the organization
  (`aws:ResourceOrgID`), and list the organization's accounts when it sweeps `organization`.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from ..handler.planner import FALSE_LIKE
from ..handler.settings import MANAGED_TAG_KEY
from . import member_template, permissions
from .config import Options
from .naming import name_pattern, physical_name

MEMBER_BUS_KIND = "members"
FORWARDER_KIND = "fwd"
ROLE_NAME_MAX, STACK_SET_NAME_MAX, SHARE_NAME_MAX = 64, 128, 255
ORGANIZATION_LIST_ACTIONS = (
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "organizations:ListAccountsForParent",
    "organizations:ListChildren",
)
TARGET_RESOURCE_TYPE = "ec2:traffic-mirror-target"
STACK_SET_CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
OPERATION_PREFERENCES = aws.cloudformation.StackSetOperationPreferencesArgs(
    # Accounts are independent: one that fails (e.g. a conflicting role name) must not stop the rest.
    failure_tolerance_percentage=100,
    max_concurrent_percentage=100,
    region_concurrency_type="PARALLEL",
)


def member_bus_name(component_name: str) -> str:
    """The hub's bus for member events: the same name in every region (the template needs one)."""
    return physical_name(component_name, MEMBER_BUS_KIND, None, 256)


def forwarder_pattern(component_name: str) -> str:
    """IAM wildcard of the member forwarding roles' names; `*` is the region."""
    return name_pattern(component_name, FORWARDER_KIND, ROLE_NAME_MAX)


def bus_policy_document(
    bus_arn: str, organization_id: str, partition: str, forwarder: str
) -> dict[str, Any]:
    """Only the member forwarders, from inside the organization, may put events on the member bus."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MemberForwardersOfTheOrganization",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {
                    "StringEquals": {"aws:PrincipalOrgID": organization_id},
                    "ArnLike": {"aws:PrincipalArn": f"arn:{partition}:iam::*:role/{forwarder}"},
                },
            }
        ],
    }


def hub_policy(partition: str, member_role_name: str, organization_id: str, list_accounts: bool) -> dict[str, Any]:
    """What the hub's execution role needs beyond its own account's."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AssumeTheMemberRoleInTheOrganization",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": f"arn:{partition}:iam::*:role/{member_role_name}",
            "Condition": {"StringEquals": {"aws:ResourceOrgID": organization_id}},
        }
    ]
    if list_accounts:
        statements.append(
            {
                "Sid": "ListTheOrganizationsAccounts",
                "Effect": "Allow",
                "Action": list(ORGANIZATION_LIST_ACTIONS),
                "Resource": "*",  # these List calls take no resource ARN
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def read_only_role(options: Options) -> str | None:
    """The read-only operator role's name in member accounts; None when no operator is listed."""
    if not options.deployment.operator_principal_arns:
        return None
    return permissions.read_only_role_name(options.settings.member_role_name)


def unit_principal(unit: str, organization_id: str, organization_arn: str, management_account: str, partition: str) -> str:
    """A RAM principal: the organization's ARN for the root, the OU's ARN for an OU."""
    if unit.startswith("r-"):
        return organization_arn
    return f"arn:{partition}:organizations::{management_account}:ou/{organization_id}/{unit}"


def sensor_arns(tagged: Sequence[tuple[str, Mapping[str, str]]], tag_key: str) -> list[str]:
    """Targets designated as sensors by their tag (any value but an opt-out): (ARN, tags) pairs."""
    return [arn for arn, tags in tagged if tag_key in tags and tags[tag_key].strip().lower() not in FALSE_LIKE]


def region_of(arn: str) -> str:
    return arn.split(":")[3]


# --- resources ----------------------------------------------------------------------------------


def lookup(parent: pulumi.Resource) -> pulumi.Output[aws.organizations.GetOrganizationResult]:
    """The hub's organization (DescribeOrganization works from any account of it)."""
    return aws.organizations.get_organization_output(
        return_organization_only=True, opts=pulumi.InvokeOutputOptions(parent=parent)
    )


def create_buses(
    name: str,
    options: Options,
    organization: pulumi.Output[aws.organizations.GetOrganizationResult],
    partition: pulumi.Output[str],
    parent: pulumi.Resource,
) -> dict[str, aws.cloudwatch.EventBus]:
    """Per region, the member bus and its policy (the rules on it are the regional plumbing's)."""
    buses = {}
    for region in options.regions:
        bus = aws.cloudwatch.EventBus(
            f"{name}-members-bus-{region}",
            name=member_bus_name(name),
            description="Traffic mirror automation: EC2 events forwarded by the organization's member accounts",
            region=region,
            opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
        )
        forwarder = forwarder_pattern(name)

        def policy(v: list[Any], forwarder: str = forwarder) -> str:
            return json.dumps(bus_policy_document(v[0], v[1], v[2], forwarder))

        aws.cloudwatch.EventBusPolicy(
            f"{name}-members-bus-policy-{region}",
            event_bus_name=bus.name,
            policy=pulumi.Output.all(bus.arn, organization.id, partition).apply(policy),
            region=region,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        buses[region] = bus
    return buses


def create_member_footprint(
    name: str,
    options: Options,
    organization: pulumi.Output[aws.organizations.GetOrganizationResult],
    account: pulumi.Output[str],
    partition: pulumi.Output[str],
    execution_role: aws.iam.Role,
    parent: pulumi.Resource,
) -> tuple[pulumi.Output[dict[str, str]], list[pulumi.Resource]]:
    """The two stack sets and their instances in the units; returns the stack set ids by kind, and
    the instances (the release on destroy must run while the member roles still exist)."""
    footprint: list[pulumi.Resource] = []
    settings = options.settings
    units = list(options.deployment.organization_units)
    call_as = options.deployment.call_as
    home = options.home_region
    regional = member_template.regional_template(settings, forwarder_pattern(name))
    account_wide = member_template.account_template(
        settings.member_role_name,
        settings.managed_by,
        permissions.read_actions(settings),
        options.deployment.operator_principal_arns,
    )
    stacks: dict[str, tuple[dict[str, Any], dict[str, pulumi.Input[str]], list[str]]] = {
        "regional": (
            regional,
            {
                "HubAccountId": account,
                "HubEventBusName": member_bus_name(name),
                member_template.CREATE_FILTER: "true" if options.deployment.create_member_filters else "false",
            },
            list(options.regions),
        ),
        "account": (
            account_wide,
            {
                "HubAccountId": account,
                "HubRoleArn": execution_role.arn,
                "OrganizationId": organization.id,
                "Regions": ",".join(options.regions),
            },
            [home],  # IAM is global: the member role exists once per account
        ),
    }
    ids: dict[str, pulumi.Output[str]] = {}
    for kind, (template, parameters, regions) in stacks.items():
        stack_set = aws.cloudformation.StackSet(
            f"{name}-member-{kind}",
            name=physical_name(name, f"member-{kind}", None, STACK_SET_NAME_MAX),
            description=template["Description"],
            permission_model="SERVICE_MANAGED",
            auto_deployment=aws.cloudformation.StackSetAutoDeploymentArgs(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            call_as=call_as,
            capabilities=STACK_SET_CAPABILITIES,
            managed_execution=aws.cloudformation.StackSetManagedExecutionArgs(active=True),
            operation_preferences=OPERATION_PREFERENCES,
            template_body=member_template.to_json(template),
            parameters=parameters,
            region=home,
            # Service-managed stack sets report an administration role the program never sets.
            opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["administrationRoleArn"]),
        )
        instances = aws.cloudformation.StackInstances(
            f"{name}-member-{kind}-instances",
            stack_set_name=stack_set.name,
            call_as=call_as,
            deployment_targets=aws.cloudformation.StackInstancesDeploymentTargetsArgs(organizational_unit_ids=units),
            regions=regions,
            operation_preferences=aws.cloudformation.StackInstancesOperationPreferencesArgs(
                failure_tolerance_percentage=100, max_concurrent_percentage=100, region_concurrency_type="PARALLEL"
            ),
            region=home,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        ids[kind] = stack_set.stack_set_id
        footprint.append(instances)
    return pulumi.Output.all(**ids), footprint


def create_hub_permissions(
    name: str,
    options: Options,
    organization: pulumi.Output[aws.organizations.GetOrganizationResult],
    partition: pulumi.Output[str],
    execution_role: aws.iam.Role,
    parent: pulumi.Resource,
) -> aws.iam.RolePolicyAttachment:
    """A managed policy (its own 6,144-character budget, not the role's inline 10,240)."""
    list_accounts = (options.settings.accounts or "").startswith("organization")
    policy = aws.iam.Policy(
        f"{name}-organization-policy",
        description="Traffic mirror automation: act in the organization's member accounts",
        policy=pulumi.Output.all(partition, organization.id).apply(
            lambda v: json.dumps(hub_policy(v[0], options.settings.member_role_name, v[1], list_accounts))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return aws.iam.RolePolicyAttachment(
        f"{name}-organization-policy-attachment",
        role=execution_role.name,
        policy_arn=policy.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def shared_targets(options: Options, region: str, parent: pulumi.Resource) -> list[str]:
    """The region's targets to share: the listed ones, plus (optionally) those tagged as sensors.

    The tag lookup runs at deploy time (a synchronous invoke), so the shares are plain resources
    that preview shows; a sensor tagged later is shared by the next `pulumi up`.
    """
    arns = [arn for arn in options.deployment.shared_target_arns if region_of(arn) == region]
    if options.deployment.share_tagged_targets:
        found = aws.resourcegroupstaggingapi.get_resources(
            region=region,
            resource_type_filters=[TARGET_RESOURCE_TYPE],
            tag_filters=[aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=options.settings.tag_key)],
            opts=pulumi.InvokeOptions(parent=parent),
        )
        mappings = [(m.resource_arn, dict(m.tags)) for m in found.resource_tag_mapping_lists]
        arns += [arn for arn in sensor_arns(mappings, options.settings.tag_key) if arn not in arns]
    return arns


def create_shares(
    name: str,
    options: Options,
    organization: pulumi.Output[aws.organizations.GetOrganizationResult],
    partition: pulumi.Output[str],
    parent: pulumi.Resource,
) -> pulumi.Output[dict[str, str]]:
    """Per region with sensors to share: one RAM share, its targets, and the units as principals."""
    child = pulumi.ResourceOptions(parent=parent)
    arns: dict[str, pulumi.Output[str]] = {}
    for region in options.regions:
        targets = shared_targets(options, region, parent)
        if not targets:
            continue
        share = aws.ram.ResourceShare(
            f"{name}-sensors-share-{region}",
            name=physical_name(name, "sensors", region, SHARE_NAME_MAX),
            allow_external_principals=False,
            tags={MANAGED_TAG_KEY: options.settings.managed_by},
            region=region,
            opts=child,
        )
        for target in targets:
            aws.ram.ResourceAssociation(
                f"{name}-sensor-{region}-{target.rsplit('/', 1)[-1]}",
                resource_arn=target,
                resource_share_arn=share.arn,
                region=region,
                opts=child,
            )
        for unit in options.deployment.organization_units:
            def arn_of(v: list[Any], unit: str = unit) -> str:
                return unit_principal(unit, v[0], v[1], v[2], v[3])

            principal = pulumi.Output.all(
                organization.id, organization.arn, organization.master_account_id, partition
            ).apply(arn_of)
            aws.ram.PrincipalAssociation(
                f"{name}-sensors-principal-{region}-{unit}",
                principal=principal,
                resource_share_arn=share.arn,
                region=region,
                opts=child,
            )
        arns[region] = share.arn
    return pulumi.Output.all(**arns) if arns else pulumi.Output.from_input({})
