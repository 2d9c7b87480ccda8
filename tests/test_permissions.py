"""The handler's EC2 permissions, written once: the hub's role, the member role, the read-only role.

One organization deployment under Pulumi's mocks gives the three documents as deployed: the
hub's inline policy (plain ARNs) and the member template's two roles (`Fn::Sub` ARNs). Rendered
with the stack's values, the member's statements must say what the hub's say.
"""

import json
from typing import Any

import pulumi
import pytest
from traffic_mirror.components import ConfigError, TrafficMirrorAutomation, member_template, permissions
from traffic_mirror.components.config import resolve
from traffic_mirror.handler.settings import Settings

from testsupport.pulumi_mocks import ACCOUNT, Run, run_program

REGIONS = ["us-east-1", "eu-west-1"]
UNITS = ["ou-ab12-11111111"]
MEMBER = "210987654321"
OPERATORS = [
    "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_SecurityAudit_*",
    "arn:aws:iam::111122223333:user/alice",
    f"arn:aws:iam::{ACCOUNT}:role/incident-response",
]
READ_VERBS = ("Describe", "Get", "List")


def deploy(args: dict[str, Any]) -> Run:
    def build() -> TrafficMirrorAutomation:
        component = TrafficMirrorAutomation("mirror", {"regions": REGIONS, **args})
        pulumi.export("read_only_role_name", component.read_only_role_name)
        return component

    return run_program(build)


@pytest.fixture(scope="module")
def run() -> Run:
    return deploy({"organization_units": UNITS, "operator_principal_arns": OPERATORS, "share_tagged_targets": False})


def account_template(run: Run) -> dict[str, Any]:
    return json.loads(run.named("mirror-member-account").inputs["templateBody"])


def role_policy(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    (policy,) = template["Resources"][role]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def hub_statements(run: Run) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = run.named("mirror-role-policy").json_input("policy")["Statement"]
    return statements


def rendered(value: Any, account: str) -> Any:
    """A template value as CloudFormation would deploy it in `account` of this hub's stack set."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, sub in (("AWS::Partition", "aws"), ("AWS::AccountId", account), ("HubAccountId", ACCOUNT)):
            text = text.replace("${" + name + "}", sub)
        return text
    if value == {"Ref": "Regions"}:
        return REGIONS
    if isinstance(value, dict):
        return {k: rendered(v, account) for k, v in value.items()}
    if isinstance(value, list):
        return [rendered(v, account) for v in value]
    return value


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- one builder: the member's statements are the hub's ----------------------------------------------


def test_member_role_has_the_hubs_ec2_statements_actions_and_conditions(run: Run) -> None:
    hub = hub_statements(run)
    member = [rendered(s, MEMBER) for s in role_policy(account_template(run), "MemberRole")]
    ec2 = hub[: len(member)]
    assert [s["Sid"] for s in member] == [s["Sid"] for s in ec2]
    assert all(
        a.startswith(("ec2:", "elasticloadbalancing:", "cloudwatch:")) for s in ec2 for a in _as_list(s["Action"])
    )
    for hub_statement, member_statement in zip(ec2, member, strict=True):
        assert member_statement["Effect"] == hub_statement["Effect"] == "Allow"
        assert member_statement["Action"] == hub_statement["Action"], hub_statement["Sid"]
        assert member_statement["Condition"] == hub_statement["Condition"], hub_statement["Sid"]
    # The create is conditioned on the request's tag keys in both (the member's used to lack it).
    create = {s["Sid"]: s for s in member}["CreateOnlyManagedSessions"]
    assert create["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["ManagedBy", "Name"]}
    # The hub's statements after the EC2 ones are its own (logs, queues): none is EC2.
    assert not [s["Sid"] for s in hub[len(member) :] if any(a.startswith("ec2:") for a in _as_list(s["Action"]))]


def test_member_resources_are_the_hubs_in_the_member_plus_the_hubs_targets(run: Run) -> None:
    hub = {s["Sid"]: s for s in hub_statements(run)}
    for statement in role_policy(account_template(run), "MemberRole"):
        in_member = _as_list(rendered(statement["Resource"], MEMBER))
        expected = [r.replace(f":{ACCOUNT}:", f":{MEMBER}:") for r in _as_list(hub[statement["Sid"]]["Resource"])]
        hub_targets = [r for r in in_member if r.endswith(f":{ACCOUNT}:traffic-mirror-target/*")]
        assert [r for r in in_member if r not in hub_targets] == expected, statement["Sid"]
        if any("traffic-mirror-target" in r for r in expected):
            assert hub_targets == [f"arn:aws:ec2:*:{ACCOUNT}:traffic-mirror-target/*"], statement["Sid"]
        else:
            assert hub_targets == []


# --- the read table ---------------------------------------------------------------------------------------


def test_reads_are_one_table_of_read_only_actions_with_the_sensor_health_reads() -> None:
    actions = permissions.read_actions(Settings())
    assert actions == tuple(r.action for r in permissions.READS if r.when is None)
    every = permissions.read_actions(Settings(sources="all"))  # every optional read's setting on
    assert every == tuple(r.action for r in permissions.READS)
    assert len(set(actions)) == len(actions)
    assert all(a.split(":")[1].startswith(READ_VERBS) for a in actions)
    assert {
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeLoadBalancerAttributes",
    } <= set(actions)


def test_a_read_added_to_the_table_reaches_every_role_when_its_setting_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a feature does: one line in READS, here only when the settings turn it on."""
    extra = permissions.Read("ec2:DescribeRouteTables", "a test feature", when=lambda s: s.vni_per_vpc)
    monkeypatch.setattr(permissions, "READS", (*permissions.READS, extra))
    for on in (False, True):
        run = deploy({"organization_units": UNITS, "operator_principal_arns": OPERATORS[:1],
                      "share_tagged_targets": False, "vni_per_vpc": on})  # fmt: skip
        template = account_template(run)
        describes = [
            hub_statements(run)[0]["Action"],
            role_policy(template, "MemberRole")[0]["Action"],
            role_policy(template, "ReadOnlyRole")[0]["Action"],
        ]
        assert [("ec2:DescribeRouteTables" in d) for d in describes] == [on, on, on]


# --- the read-only operator role -----------------------------------------------------------------------------


def test_read_only_role_trusts_exactly_the_listed_operators(run: Run) -> None:
    role = account_template(run)["Resources"]["ReadOnlyRole"]["Properties"]
    assert role["RoleName"] == "traffic-mirror-automation-member-read-only"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRole"
    assert rendered(trust["Principal"], MEMBER) == {
        "AWS": ["arn:aws:iam::111122223333:root", f"arn:aws:iam::{ACCOUNT}:root"]
    }
    assert trust["Condition"] == {"ArnLike": {"aws:PrincipalArn": OPERATORS}}
    # The member role still trusts the hub's function alone.
    (member_trust,) = account_template(run)["Resources"]["MemberRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert member_trust["Condition"]["ArnEquals"] == {"aws:PrincipalArn": {"Ref": "HubRoleArn"}}
    assert run.exports["read_only_role_name"] == "traffic-mirror-automation-member-read-only"


def test_read_only_role_may_only_read_what_the_cli_reads(run: Run) -> None:
    template = account_template(run)
    (statement,) = role_policy(template, "ReadOnlyRole")
    assert statement == role_policy(template, "MemberRole")[0], "the member role's describe statement, no more"
    assert statement["Action"] == list(permissions.read_actions(Settings()))
    assert all(a.split(":")[1].startswith(READ_VERBS) for a in statement["Action"])
    assert statement["Resource"] == "*"
    assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": {"Ref": "Regions"}}}
    assert template["Outputs"]["ReadOnlyRoleArn"] == {"Value": {"Fn::GetAtt": ["ReadOnlyRole", "Arn"]}}


def test_no_operators_no_read_only_role() -> None:
    plain = member_template.account_template("m", "x", permissions.read_actions(Settings()))
    assert set(plain["Resources"]) == {"MemberRole"} and set(plain["Outputs"]) == {"MemberRoleArn"}
    run = deploy({"organization_units": UNITS, "share_tagged_targets": False})
    assert "ReadOnlyRole" not in account_template(run)["Resources"]
    assert run.exports["read_only_role_name"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"operator_principal_arns": OPERATORS[:1]}, "operator_principal_arns needs organization_units"),
        ({"organization_units": UNITS, "operator_principal_arns": ["alice"]}, "is not an IAM role or user ARN"),
        ({"organization_units": UNITS, "operator_principal_arns": ["arn:aws:sts::111122223333:assumed-role/ops/alice"]},
         "an assumed-role session's ARN is not a principal"),
        ({"organization_units": UNITS, "operator_principal_arns": ["arn:aws-cn:iam::111122223333:role/ops"]},
         "not in the deployment's partition (aws)"),
        ({"organization_units": UNITS, "operator_principal_arns": OPERATORS[:1] * 2}, "lists an ARN twice"),
        ({"organization_units": UNITS, "operator_principal_arns": OPERATORS[:1], "member_role_name": "m" * 60},
         "longer than IAM's 64 characters"),
    ],
)  # fmt: skip
def test_invalid_operator_principals(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        resolve({"regions": REGIONS, **args})
    assert message in str(raised.value)


def test_service_kinds_add_only_the_reads_they_need_and_only_when_enabled() -> None:
    default = set(permissions.read_actions(Settings()))
    assert "elasticloadbalancing:DescribeTags" not in default
    with_lbs = set(permissions.read_actions(Settings(sources="instances,load-balancers")))
    assert with_lbs - default == {"elasticloadbalancing:DescribeTags"}  # a load balancer's tags
    assert set(permissions.read_actions(Settings(sources="databases"))) == default  # its ENI is enough
