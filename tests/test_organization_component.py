"""Organization coverage under Pulumi's mocks: stack sets, the member bus, RAM shares, roles.

The policy documents are asserted directly (moto enforces none of them), and every generated
CloudFormation template is validated offline with cfn-lint against AWS's resource schemas.
"""

import json
from typing import Any

import pulumi
import pytest
from traffic_mirror.components import ConfigError, TrafficMirrorAutomation, member_template, organization
from traffic_mirror.components.config import resolve
from traffic_mirror.handler import events
from traffic_mirror.handler import settings as handler_settings
from traffic_mirror.handler.settings import Settings

from testsupport.pulumi_mocks import (
    ACCOUNT,
    MANAGEMENT_ACCOUNT,
    ORGANIZATION_ARN,
    ORGANIZATION_ID,
    Registered,
    Run,
    run_program,
)

REGIONS = ["us-east-1", "eu-west-1"]
UNITS = ["ou-ab12-11111111", "ou-ab12-22222222"]
LISTED = "arn:aws:ec2:us-east-1:123456789012:traffic-mirror-target/tmt-0123456789abcdef0"
TAGGED = {
    "eu-west-1": [
        ("arn:aws:ec2:eu-west-1:123456789012:traffic-mirror-target/tmt-0aaaaaaaaaaaaaaa1", {"Mirror": "true"}),
        ("arn:aws:ec2:eu-west-1:123456789012:traffic-mirror-target/tmt-0aaaaaaaaaaaaaaa2", {"Mirror": "pci"}),
        ("arn:aws:ec2:eu-west-1:123456789012:traffic-mirror-target/tmt-0bbbbbbbbbbbbbbb1", {"Mirror": "off"}),
    ]
}
ORG_TYPES = {
    "aws:cloudwatch/eventBus:EventBus",
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
    "aws:cloudformation/stackSet:StackSet",
    "aws:cloudformation/stackInstances:StackInstances",
    "aws:ram/resourceShare:ResourceShare",
    "aws:ram/resourceAssociation:ResourceAssociation",
    "aws:ram/principalAssociation:PrincipalAssociation",
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
}
OUTPUTS = ("member_stack_set_ids", "resource_share_arns", "member_role_name", "role_arn")


def deploy(args: dict[str, Any] | None = None, **run_kwargs: Any) -> Run:
    def build() -> TrafficMirrorAutomation:
        component = TrafficMirrorAutomation("mirror", {"regions": REGIONS, **(args or {})})  # type: ignore[typeddict-item]
        for key in OUTPUTS:
            pulumi.export(key, getattr(component, key))
        return component

    return run_program(build, **run_kwargs)


@pytest.fixture(scope="module")
def run() -> Run:
    return deploy({"organization_units": UNITS, "shared_target_arns": [LISTED]}, tagged_targets=TAGGED)


def stack_set(run: Run, kind: str) -> Registered:
    return run.named(f"mirror-member-{kind}")


def template(run: Run, kind: str) -> dict[str, Any]:
    return json.loads(stack_set(run, kind).inputs["templateBody"])


# --- off: exactly today's deployment ---------------------------------------------------------------------


def _registered(run: Run) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return sorted(value.assets) if isinstance(value, pulumi.AssetArchive) else value

    return {r.name: (r.type, {k: plain(v) for k, v in r.inputs.items()}) for r in run.resources}


def test_without_units_the_organization_options_change_nothing() -> None:
    plain = deploy()
    with_options = deploy({"call_as": "SELF", "create_member_filters": False, "share_tagged_targets": False})
    assert _registered(with_options) == _registered(plain)
    assert not {r.type for r in plain.resources} & ORG_TYPES
    assert not [name for name in plain.invokes if "organizations" in name or "resourcegroupstaggingapi" in name]
    env = plain.of_type("aws:lambda/function:Function")[0].inputs["environment"]["variables"]
    assert "MIRROR_ACCOUNTS" not in env
    assert plain.exports["member_stack_set_ids"] == {} and plain.exports["resource_share_arns"] == {}
    assert plain.exports["member_role_name"] is None


def test_with_units_the_single_account_resources_stay_and_only_organization_ones_are_added(run: Run) -> None:
    plain = _registered(deploy())
    org = _registered(run)
    added = {name: typ for name, (typ, _) in org.items() if name not in plain}
    assert set(added.values()) <= ORG_TYPES | {
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/metricAlarm:MetricAlarm",  # covered accounts the sweep could not read
    }
    alarms = [n for n, t in added.items() if t == "aws:cloudwatch/metricAlarm:MetricAlarm"]
    assert sorted(alarms) == sorted(f"mirror-failed-accounts-alarm-{r}" for r in REGIONS)
    assert all(org[name][0] == typ for name, (typ, _) in plain.items()), "nothing of today's is removed"
    # The member bus gets the hub's own rules, one per pattern, targeting the same queue.
    member_rules = [n for n, t in added.items() if t == "aws:cloudwatch/eventRule:EventRule"]
    assert len(member_rules) == len(REGIONS) * len(events.rules(Settings()))


# --- stack sets ---------------------------------------------------------------------------------------------


def test_stack_sets_are_service_managed_auto_deployed_to_the_units(run: Run) -> None:
    for kind, regions in (("regional", REGIONS), ("account", [REGIONS[0]])):
        inputs = stack_set(run, kind).inputs
        assert inputs["permissionModel"] == "SERVICE_MANAGED"
        assert inputs["autoDeployment"] == {"enabled": True, "retainStacksOnAccountRemoval": False}
        assert inputs["callAs"] == "DELEGATED_ADMIN"
        assert inputs["capabilities"] == ["CAPABILITY_NAMED_IAM"]
        assert inputs["region"] == REGIONS[0]
        instances = run.named(f"mirror-member-{kind}-instances").inputs
        assert instances["stackSetName"] == inputs["name"]
        assert instances["deploymentTargets"] == {"organizationalUnitIds": UNITS}
        assert instances["regions"] == regions, "the member role once per account: one region"
        assert instances["callAs"] == "DELEGATED_ADMIN"
    ids = run.exports["member_stack_set_ids"]
    assert ids == {k: stack_set(run, k).outputs["stackSetId"] for k in ("regional", "account")}
    assert run.exports["member_role_name"] == "traffic-mirror-automation-member"


def test_call_as_self_from_the_management_account() -> None:
    own = deploy({"organization_units": ["r-ab12"], "call_as": "SELF", "share_tagged_targets": False})
    assert {r.inputs["callAs"] for r in own.of_type("aws:cloudformation/stackSet:StackSet")} == {"SELF"}
    assert {r.inputs["callAs"] for r in own.of_type("aws:cloudformation/stackInstances:StackInstances")} == {"SELF"}


def test_stack_set_parameters_wire_the_hub(run: Run) -> None:
    role_arn = run.of_type("aws:iam/role:Role")[0].outputs["arn"]
    bus = run.named("mirror-members-bus-eu-west-1").outputs
    assert stack_set(run, "regional").inputs["parameters"] == {
        "HubAccountId": ACCOUNT,
        "HubEventBusName": bus["name"],
        "CreateFilter": "true",
    }
    assert stack_set(run, "account").inputs["parameters"] == {
        "HubAccountId": ACCOUNT,
        "HubRoleArn": role_arn,
        "OrganizationId": ORGANIZATION_ID,
        "Regions": ",".join(REGIONS),
    }
    # Every parameter the templates declare is given (or has a default), and nothing else.
    for kind in ("regional", "account"):
        declared = template(run, kind)["Parameters"]
        given = set(stack_set(run, kind).inputs["parameters"])
        assert given <= set(declared)
        assert {p for p, spec in declared.items() if "Default" not in spec} <= given


def _same(found: Any, expected: Any) -> bool:
    """The same patterns, whatever the order (templates are written with sorted keys)."""
    return sorted(json.dumps(p, sort_keys=True) for p in found) == sorted(json.dumps(p, sort_keys=True) for p in expected)


def test_member_rules_forward_the_hubs_patterns_to_the_hubs_bus(run: Run) -> None:
    resources = template(run, "regional")["Resources"]
    rules = {k: v for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"}
    assert _same([r["Properties"]["EventPattern"] for r in rules.values()], events.rules(Settings()).values())
    for rule in rules.values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::Sub": member_template.HUB_BUS_ARN}
        assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardingRole", "Arn"]}
    forwarder = resources["ForwardingRole"]["Properties"]
    (trust,) = forwarder["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = forwarder["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "PutOnTheHubsMemberBusOnly",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": {"Fn::Sub": member_template.HUB_BUS_ARN},
        }
    ]
    # Its name, per region, is what the hub's bus policy admits.
    assert forwarder["RoleName"] == {"Fn::Sub": organization.forwarder_pattern("mirror").replace("*", "${AWS::Region}")}


def test_tag_key_and_release_on_stop_reach_the_member_patterns() -> None:
    custom = deploy({"organization_units": UNITS, "tag_key": "Sensor", "release_on_stop": True, "share_tagged_targets": False})
    resources = json.loads(custom.named("mirror-member-regional").inputs["templateBody"])["Resources"]
    found = [v["Properties"]["EventPattern"] for v in resources.values() if v["Type"] == "AWS::Events::Rule"]
    assert _same(found, events.rules(Settings(tag_key="Sensor", release_on_stop=True)).values())


def test_member_filter_is_owned_and_conditional(run: Run) -> None:
    tmpl = template(run, "regional")
    resources = tmpl["Resources"]
    assert resources["Filter"]["Condition"] == "OwnFilter"
    assert {"Key": "ManagedBy", "Value": "traffic-mirror-automation"} in resources["Filter"]["Properties"]["Tags"]
    assert {"Key": "Mirror", "Value": "default"} in resources["Filter"]["Properties"]["Tags"]
    rules = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::EC2::TrafficMirrorFilterRule"]
    assert sorted(r["TrafficDirection"] for r in rules) == ["egress", "ingress"]
    assert all(r["RuleAction"] == "accept" and r["SourceCidrBlock"] == r["DestinationCidrBlock"] == "0.0.0.0/0" for r in rules)
    assert all(v.get("Condition") == "OwnFilter" for v in resources.values() if v["Type"].startswith("AWS::EC2::"))
    assert tmpl["Conditions"]["OwnFilter"] == {"Fn::Equals": [{"Ref": "CreateFilter"}, "true"]}
    own = deploy({"organization_units": UNITS, "create_member_filters": False, "share_tagged_targets": False})
    assert own.named("mirror-member-regional").inputs["parameters"]["CreateFilter"] == "false"


# --- the member role: trust and least privilege ---------------------------------------------------------------


def _statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def test_member_role_trusts_only_the_hubs_role_in_the_organization(run: Run) -> None:
    role = template(run, "account")["Resources"]["MemberRole"]["Properties"]
    assert role["RoleName"] == "traffic-mirror-automation-member"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}}
    assert trust["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": {"Ref": "HubRoleArn"}},
        "StringEquals": {
            "aws:PrincipalOrgID": {"Ref": "OrganizationId"},
            "sts:RoleSessionName": "traffic-mirror-automation",
        },
    }


def test_member_role_policy_is_least_privilege(run: Run) -> None:
    (policy,) = template(run, "account")["Resources"]["MemberRole"]["Properties"]["Policies"]
    statements = _statements(policy["PolicyDocument"])
    regions = {"aws:RequestedRegion": {"Ref": "Regions"}}
    own = "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}"
    for statement in statements.values():
        assert statement["Effect"] == "Allow"
        assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == {"Ref": "Regions"}
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions)
    describe = statements["DescribeWhatToMirror"]
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in describe["Action"])
    assert "ec2:DescribeAvailabilityZones" in describe["Action"]
    create = statements["CreateOnlyManagedSessions"]
    assert create["Resource"] == {"Fn::Sub": f"{own}:traffic-mirror-session/*"}
    assert create["Condition"]["StringEquals"] == {"aws:RequestTag/ManagedBy": "traffic-mirror-automation", **regions}
    refs = statements["CreateSessionsOnOwnEnisAllowedTargetsAndOwnFilters"]
    assert refs["Resource"] == [
        {"Fn::Sub": f"{own}:network-interface/*"},
        {"Fn::Sub": f"{own}:traffic-mirror-target/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:ec2:*:${HubAccountId}:traffic-mirror-target/*"},
        {"Fn::Sub": f"{own}:traffic-mirror-filter/*"},
    ]
    assert statements["TagSessionsOnlyAtCreation"]["Condition"]["StringEquals"]["ec2:CreateAction"] == (
        "CreateTrafficMirrorSession"
    )
    change = statements["ChangeOnlyManagedSessions"]
    assert change["Action"] == ["ec2:DeleteTrafficMirrorSession", "ec2:ModifyTrafficMirrorSession"]
    assert change["Condition"]["StringEquals"]["aws:ResourceTag/ManagedBy"] == "traffic-mirror-automation"
    # Every action that writes is conditioned: no session of another tool can be changed.
    writes = [s for s in statements.values() if s["Sid"] != "DescribeWhatToMirror"]
    assert all(s["Resource"] != "*" for s in writes)
    every = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {a for a in every if not a.split(":")[1].startswith(("Describe", "Get"))} == {
        "ec2:CreateTrafficMirrorSession",
        "ec2:CreateTags",
        "ec2:DeleteTrafficMirrorSession",
        "ec2:ModifyTrafficMirrorSession",
    }


def test_managed_by_reaches_the_member_policy_and_filter() -> None:
    custom = deploy({"organization_units": UNITS, "managed_by": "team-x", "share_tagged_targets": False})
    account = json.loads(custom.named("mirror-member-account").inputs["templateBody"])
    (policy,) = account["Resources"]["MemberRole"]["Properties"]["Policies"]
    change = _statements(policy["PolicyDocument"])["ChangeOnlyManagedSessions"]
    assert change["Condition"]["StringEquals"]["aws:ResourceTag/ManagedBy"] == "team-x"


# --- the hub: member bus, its policy, the handler's role and settings -------------------------------------------


def test_member_bus_policy_admits_only_the_organizations_forwarders(run: Run) -> None:
    for region in REGIONS:
        bus = run.named(f"mirror-members-bus-{region}")
        assert bus.region == region
        policy = run.named(f"mirror-members-bus-policy-{region}")
        assert policy.region == region and policy.inputs["eventBusName"] == bus.outputs["name"]
        (statement,) = policy.json_input("policy")["Statement"]
        assert statement["Action"] == "events:PutEvents"
        assert statement["Resource"] == bus.outputs["arn"]
        assert statement["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": ORGANIZATION_ID}
        assert statement["Condition"]["ArnLike"] == {
            "aws:PrincipalArn": f"arn:aws:iam::*:role/{organization.forwarder_pattern('mirror')}"
        }
        assert len(policy.inputs["policy"]) < 10_240, "the bus policy's limit"


def test_member_bus_rules_feed_the_hubs_queue_and_the_queue_admits_them(run: Run) -> None:
    for region in REGIONS:
        queue = run.named(f"mirror-events-{region}")
        bus = run.named(f"mirror-members-bus-{region}").outputs["name"]
        for kind in events.rules(Settings()):
            rule = run.named(f"mirror-members-{kind}-{region}")
            assert rule.inputs["eventBusName"] == bus
            target = run.named(f"mirror-members-{kind}-target-{region}")
            assert target.inputs["eventBusName"] == bus and target.inputs["arn"] == queue.outputs["arn"]
            policy = run.named(f"mirror-events-policy-{region}").json_input("policy")
            allowed = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
            assert any(rule.outputs["arn"] in s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in allowed)


def test_hub_role_may_assume_member_roles_in_the_organization_and_list_accounts(run: Run) -> None:
    policy = run.named("mirror-organization-policy")
    statements = _statements(policy.json_input("policy"))
    assume = statements["AssumeTheMemberRoleInTheOrganization"]
    assert assume["Action"] == "sts:AssumeRole"
    assert assume["Resource"] == "arn:aws:iam::*:role/traffic-mirror-automation-member"
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORGANIZATION_ID}}
    assert statements["ListTheOrganizationsAccounts"]["Action"] == list(organization.ORGANIZATION_LIST_ACTIONS)
    attachment = run.named("mirror-organization-policy-attachment").inputs
    role = run.of_type("aws:iam/role:Role")[0]
    assert attachment == {"role": role.outputs["name"], "policyArn": policy.outputs["arn"]}


def test_listed_accounts_need_no_organizations_permissions() -> None:
    listed = deploy({"organization_units": UNITS, "accounts": "111111111111,222222222222", "share_tagged_targets": False})
    statements = _statements(listed.named("mirror-organization-policy").json_input("policy"))
    assert set(statements) == {"AssumeTheMemberRoleInTheOrganization"}
    env = listed.of_type("aws:lambda/function:Function")[0].inputs["environment"]["variables"]
    assert env["MIRROR_ACCOUNTS"] == "111111111111,222222222222"


def test_hub_handler_settings(run: Run) -> None:
    for function in run.of_type("aws:lambda/function:Function"):
        env = function.inputs["environment"]["variables"]
        assert env["MIRROR_ACCOUNTS"] == f"organization:{','.join(UNITS)}"
        loaded = handler_settings.load(env)  # the default role name is the handler's own: not set
        assert loaded.accounts == env["MIRROR_ACCOUNTS"]
        assert loaded.member_role_name == "traffic-mirror-automation-member"
    renamed = deploy({"organization_units": UNITS, "member_role_name": "mirror-member", "share_tagged_targets": False})
    env = renamed.of_type("aws:lambda/function:Function")[0].inputs["environment"]["variables"]
    assert env["MIRROR_MEMBER_ROLE_NAME"] == "mirror-member"
    account = json.loads(renamed.named("mirror-member-account").inputs["templateBody"])
    assert account["Resources"]["MemberRole"]["Properties"]["RoleName"] == "mirror-member"
    assume = _statements(renamed.named("mirror-organization-policy").json_input("policy"))
    assert assume["AssumeTheMemberRoleInTheOrganization"]["Resource"] == "arn:aws:iam::*:role/mirror-member"


# --- RAM shares -------------------------------------------------------------------------------------------------


def test_sensors_are_shared_per_region_with_the_units_only(run: Run) -> None:
    shares = {r.region: r for r in run.of_type("aws:ram/resourceShare:ResourceShare")}
    assert set(shares) == set(REGIONS)
    for region, share in shares.items():
        assert share.inputs["allowExternalPrincipals"] is False
        resources = [r for r in run.of_type("aws:ram/resourceAssociation:ResourceAssociation") if r.region == region]
        principals = [r for r in run.of_type("aws:ram/principalAssociation:PrincipalAssociation") if r.region == region]
        assert {r.inputs["resourceShareArn"] for r in resources + principals} == {share.outputs["arn"]}
        assert sorted(p.inputs["principal"] for p in principals) == [
            f"arn:aws:organizations::{MANAGEMENT_ACCOUNT}:ou/{ORGANIZATION_ID}/{unit}" for unit in UNITS
        ]
    shared = {
        region: sorted(r.inputs["resourceArn"] for r in run.of_type("aws:ram/resourceAssociation:ResourceAssociation") if r.region == region)
        for region in REGIONS
    }
    assert shared == {
        "us-east-1": [LISTED],  # listed
        "eu-west-1": [arn for arn, tags in TAGGED["eu-west-1"] if tags["Mirror"] != "off"],  # tagged, not opted out
    }
    assert run.exports["resource_share_arns"] == {region: s.outputs["arn"] for region, s in shares.items()}


def test_the_root_shares_with_the_whole_organization_and_nothing_to_share_makes_no_share() -> None:
    root = deploy({"organization_units": ["r-ab12"], "shared_target_arns": [LISTED], "share_tagged_targets": False})
    (principal,) = root.of_type("aws:ram/principalAssociation:PrincipalAssociation")
    assert principal.inputs["principal"] == ORGANIZATION_ARN
    assert [s.region for s in root.of_type("aws:ram/resourceShare:ResourceShare")] == ["us-east-1"]
    assert set(root.exports["resource_share_arns"]) == {"us-east-1"}


# --- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"organization_units": ["ou-1"]}, "'ou-1' is not an organization unit id"),
        ({"organization_units": "ou-ab12-11111111"}, "organization_units must be a list"),
        ({"organization_units": [UNITS[0], UNITS[0]]}, "lists an id twice"),
        ({"shared_target_arns": [LISTED]}, "shared_target_arns needs organization_units"),
        ({"organization_units": UNITS, "shared_target_arns": ["tmt-0123"]}, "is not a traffic mirror target ARN"),
        ({"organization_units": UNITS, "shared_target_arns": [LISTED.replace("us-east-1", "ap-south-1")]},
         "not one of the regions"),
        ({"organization_units": UNITS, "call_as": "ADMIN"}, "call_as must be one of DELEGATED_ADMIN, SELF"),
        ({"organization_units": UNITS, "accounts": "all"}, "accounts must be account ids, 'organization', or"),
    ],
)  # fmt: skip
def test_invalid_organization_args(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve({"regions": REGIONS, **args})
    assert message in str(raised.value)


# --- cfn-lint on every generated template -------------------------------------------------------------------------


def _lint(template_text: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in lint(template_text, config=ManualArgs(regions=REGIONS))]


def test_cfn_lint_passes_on_every_generated_template(run: Run) -> None:
    variants = {
        "regional": template(run, "regional"),
        "account": template(run, "account"),
        "regional, other tag key, release on stop": member_template.regional_template(
            Settings(tag_key="Sensor", release_on_stop=True, managed_by="x"), "a-fwd-*-b"
        ),
        "account, with the read-only operator role": member_template.account_template(
            "m", "x", ["ec2:DescribeInstances"], ["arn:aws:iam::111122223333:role/ops", "arn:aws:iam::111122223333:user/a*"]
        ),
    }
    for label, body in variants.items():
        assert _lint(member_template.to_json(body)) == [], label
    # cfn-lint can fail: it reports a broken template.
    broken = json.loads(json.dumps(variants["regional"]))
    broken["Resources"]["FilterRule0"]["Properties"]["SourceCidrBlock"] = "::/0"
    assert any(problem.startswith("E3002") for problem in _lint(json.dumps(broken)))


def test_templates_and_member_policy_fit_aws_limits(run: Run) -> None:
    """TemplateBody takes 51,200 bytes; a role's inline policies 10,240 characters (without whitespace)."""
    for kind in ("regional", "account"):
        assert len(stack_set(run, kind).inputs["templateBody"].encode()) < 51_200
    (policy,) = template(run, "account")["Resources"]["MemberRole"]["Properties"]["Policies"]
    assert len(json.dumps(policy["PolicyDocument"], separators=(",", ":"))) < 10_240


def test_destroy_releases_member_sessions_before_the_member_stacks_and_the_filter_go(run: Run) -> None:
    """The release hook depends on the member stack instances (their roles) and the owned filter,
    so `pulumi destroy` deletes it, and so releases every account's sessions, before they go."""
    for region in REGIONS:
        hook = run.named(f"mirror-release-on-destroy-{region}")
        assert hook.depends_on(f"mirror-function-{region}")
        for kind in ("regional", "account"):
            assert hook.depends_on(f"mirror-member-{kind}-instances"), (region, kind)
        assert hook.depends_on(f"mirror-filter-{region}"), region


def test_the_event_queue_drives_more_containers_when_accounts_share_it() -> None:
    """Several accounts share the hub's queue: 10 containers by default (measured in the scale
    benchmark: 1.20x one account's bound at 5 x 200 ENIs, against 1.46x with 2); one account: 2."""
    from traffic_mirror.components.config import resolve

    assert resolve({"regions": ["us-east-1"]}).max_concurrency == 2
    assert resolve({"regions": ["us-east-1"], "organization_units": UNITS}).max_concurrency == 10
    assert resolve({"regions": ["us-east-1"], "accounts": "111111111111"}).max_concurrency == 10
    assert resolve({"regions": ["us-east-1"], "organization_units": UNITS, "max_concurrency": 4}).max_concurrency == 4
