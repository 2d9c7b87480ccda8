"""The deployer's IAM policies (deploy/*.json) against what the program really registers.

The program runs under Pulumi's mocks for one account (every optional resource on) and for an
organization; every resource type it registers must be in `ACTIONS` (what `pulumi up` and
`pulumi destroy` call for it, per the AWS provider's create, read and delete), and every action
there must be allowed by the shipped files, on the ARN the resource really gets where the mocks
know it. Writes in the files that no type needs are refused too, so the files stay least privilege.
Not checked here: a live account (IAM evaluation, which AWS alone does).
"""

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from moto.iam.policy_validation import IAMPolicyDocumentValidator
from traffic_mirror.components import TrafficMirrorAutomation

from testsupport.pulumi_mocks import ACCOUNT, Run, run_program

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "deploy" / "deployer-policy.json"
ORGANIZATION_POLICY = REPO / "deploy" / "deployer-organization-policy.json"
MANAGED_POLICY_LIMIT = 6_144
"""IAM's limit on a managed policy, in characters without whitespace."""

REGIONS = ["us-east-1", "eu-west-1"]
SINGLE_ACCOUNT = {
    "regions": REGIONS,
    "sensors": ["us-east-1/eni-0123456789abcdef0"],
    "log_expiration_days": 30,
    "coverage_alarm_percent": 90,
}
"""One account, with every optional resource (targets, the bucket's lifecycle, the coverage alarm)."""
ORGANIZATION = {
    "regions": REGIONS,
    "organization_units": ["ou-ab12-11111111"],
    "shared_target_arns": [f"arn:aws:ec2:us-east-1:{ACCOUNT}:traffic-mirror-target/tmt-0123456789abcdef0"],
    "operator_principal_arns": [f"arn:aws:iam::{ACCOUNT}:role/ops"],
}

ROLE, FUNCTION, QUEUE, RULE = "aws:iam/role:Role", "aws:lambda/function:Function", "aws:sqs/queue:Queue", "aws:cloudwatch/eventRule:EventRule"
BUCKET, FILTER, BUS = "aws:s3/bucket:Bucket", "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", "aws:cloudwatch/eventBus:EventBus"
POLICY_TYPE, STACK_SET = "aws:iam/policy:Policy", "aws:cloudformation/stackSet:StackSet"
Action = str | tuple[str, str]
"""An action checked on the resource's own ARN, or (action, type whose resources' ARNs it acts on)."""

ACTIONS: dict[str, tuple[Action, ...]] = {
    ROLE: ("iam:CreateRole", "iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
           "iam:ListInstanceProfilesForRole", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole"),
    "aws:iam/rolePolicy:RolePolicy": (("iam:PutRolePolicy", ROLE), ("iam:GetRolePolicy", ROLE), ("iam:DeleteRolePolicy", ROLE)),
    FUNCTION: ("lambda:CreateFunction", "lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig",
               "lambda:ListVersionsByFunction", "lambda:PutFunctionConcurrency", "lambda:UpdateFunctionCode",
               "lambda:UpdateFunctionConfiguration", "lambda:DeleteFunctionConcurrency", "lambda:TagResource",
               "lambda:DeleteFunction", ("iam:PassRole", ROLE)),
    "aws:cloudwatch/logGroup:LogGroup": ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DescribeLogGroups",
                                         "logs:ListTagsForResource", "logs:DeleteLogGroup"),
    QUEUE: ("sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:ListQueueTags", "sqs:DeleteQueue"),
    "aws:sqs/queuePolicy:QueuePolicy": (("sqs:SetQueueAttributes", QUEUE), ("sqs:GetQueueAttributes", QUEUE)),
    RULE: ("events:PutRule", "events:DescribeRule", "events:ListTagsForResource", "events:DeleteRule"),
    "aws:cloudwatch/eventTarget:EventTarget": (("events:PutTargets", RULE), ("events:ListTargetsByRule", RULE),
                                               ("events:RemoveTargets", RULE)),
    "aws:lambda/eventSourceMapping:EventSourceMapping": ("lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
                                                         "lambda:UpdateEventSourceMapping", "lambda:DeleteEventSourceMapping"),
    "aws:lambda/permission:Permission": (("lambda:AddPermission", FUNCTION), ("lambda:GetPolicy", FUNCTION),
                                         ("lambda:RemovePermission", FUNCTION)),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": (
        ("lambda:PutFunctionEventInvokeConfig", FUNCTION), ("lambda:GetFunctionEventInvokeConfig", FUNCTION),
        ("lambda:UpdateFunctionEventInvokeConfig", FUNCTION), ("lambda:DeleteFunctionEventInvokeConfig", FUNCTION)),
    "aws:lambda/invocation:Invocation": (("lambda:InvokeFunction", FUNCTION),),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms",
                                               "cloudwatch:ListTagsForResource", "cloudwatch:DeleteAlarms"),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"),
    FILTER: ("ec2:CreateTrafficMirrorFilter", "ec2:CreateTags", "ec2:DescribeTrafficMirrorFilters",
             "ec2:ModifyTrafficMirrorFilterNetworkServices", "ec2:DeleteTrafficMirrorFilter"),
    "aws:ec2/trafficMirrorFilterRule:TrafficMirrorFilterRule": (("ec2:CreateTrafficMirrorFilterRule", FILTER),
                                                                ("ec2:ModifyTrafficMirrorFilterRule", FILTER),
                                                                ("ec2:DeleteTrafficMirrorFilterRule", FILTER),
                                                                "ec2:DescribeTrafficMirrorFilterRules"),
    "aws:ec2/trafficMirrorTarget:TrafficMirrorTarget": ("ec2:CreateTrafficMirrorTarget", "ec2:CreateTags",
                                                        "ec2:DescribeTrafficMirrorTargets", "ec2:DeleteTrafficMirrorTarget"),
    "aws:cloudtrail/trail:Trail": ("cloudtrail:CreateTrail", "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging",
                                   "cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors",
                                   "cloudtrail:GetInsightSelectors", "cloudtrail:ListTags", "cloudtrail:UpdateTrail",
                                   "cloudtrail:DeleteTrail"),
    BUCKET: ("s3:CreateBucket", "s3:ListBucket", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketVersioning",
             "s3:GetBucketTagging", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration",
             "s3:GetReplicationConfiguration", "s3:GetAccelerateConfiguration", "s3:DeleteBucket",
             # only with force_destroy_trail_bucket: empty it first
             "s3:ListBucketVersions", "s3:DeleteObject", "s3:DeleteObjectVersion"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (("s3:PutBucketOwnershipControls", BUCKET),
                                                               ("s3:GetBucketOwnershipControls", BUCKET)),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (("s3:PutBucketPublicAccessBlock", BUCKET),
                                                               ("s3:GetBucketPublicAccessBlock", BUCKET)),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        ("s3:PutEncryptionConfiguration", BUCKET), ("s3:GetEncryptionConfiguration", BUCKET)),
    "aws:s3/bucketPolicy:BucketPolicy": (("s3:PutBucketPolicy", BUCKET), ("s3:GetBucketPolicy", BUCKET),
                                         ("s3:DeleteBucketPolicy", BUCKET)),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (("s3:PutLifecycleConfiguration", BUCKET),
                                                                         ("s3:GetLifecycleConfiguration", BUCKET)),
    # organization coverage
    BUS: ("events:CreateEventBus", "events:DescribeEventBus", "events:ListTagsForResource", "events:DeleteEventBus"),
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": (("events:PutPermission", BUS), ("events:DescribeEventBus", BUS),
                                                     ("events:RemovePermission", BUS)),
    POLICY_TYPE: ("iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
                  "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:DeletePolicy"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (("iam:AttachRolePolicy", ROLE), ("iam:DetachRolePolicy", ROLE),
                                                          ("iam:ListAttachedRolePolicies", ROLE)),
    STACK_SET: ("cloudformation:CreateStackSet", "cloudformation:DescribeStackSet", "cloudformation:UpdateStackSet",
                "cloudformation:DescribeStackSetOperation", "cloudformation:DeleteStackSet"),
    "aws:cloudformation/stackInstances:StackInstances": (
        ("cloudformation:CreateStackInstances", STACK_SET), ("cloudformation:ListStackInstances", STACK_SET),
        ("cloudformation:DescribeStackSetOperation", STACK_SET), ("cloudformation:UpdateStackInstances", STACK_SET),
        ("cloudformation:DeleteStackInstances", STACK_SET)),
    "aws:ram/resourceShare:ResourceShare": ("ram:CreateResourceShare", "ram:GetResourceShares", "ram:TagResource",
                                            "ram:DeleteResourceShare"),
    "aws:ram/resourceAssociation:ResourceAssociation": ("ram:AssociateResourceShare", "ram:GetResourceShareAssociations",
                                                        "ram:DisassociateResourceShare"),
    "aws:ram/principalAssociation:PrincipalAssociation": ("ram:AssociateResourceShare", "ram:GetResourceShareAssociations",
                                                          "ram:DisassociateResourceShare"),
}  # fmt: skip
"""Resource type -> what `pulumi up` and `pulumi destroy` call for it."""
INVOKES: dict[str, tuple[str, ...]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": (),  # sts:GetCallerIdentity needs no permission
    "aws:index/getPartition:getPartition": (),
    "aws:lambda/getFunctions:getFunctions": ("lambda:ListFunctions",),
    "aws:lambda/getFunction:getFunction": ("lambda:GetFunction",),
    "aws:organizations/getOrganization:getOrganization": ("organizations:DescribeOrganization",),
    "aws:resourcegroupstaggingapi/getResources:getResources": ("tag:GetResources",),
}
"""Data sources the program reads -> their actions (all authorized on "*")."""
UNSCOPED = frozenset(
    {
        "logs:DescribeLogGroups", "cloudwatch:DescribeAlarms", "cloudtrail:DescribeTrails", "lambda:ListFunctions",
        "lambda:GetEventSourceMapping", "lambda:CreateEventSourceMapping", "lambda:UpdateEventSourceMapping",
        "lambda:DeleteEventSourceMapping", "ec2:DescribeTrafficMirrorFilters", "ec2:DescribeTrafficMirrorFilterRules",
        "ec2:DescribeTrafficMirrorTargets", "ram:CreateResourceShare", "ram:GetResourceShares",
        "ram:GetResourceShareAssociations", "organizations:DescribeOrganization", "tag:GetResources",
    }
)  # fmt: skip
"""Actions IAM authorizes on "*" (no resource type, or none known before the call)."""
READ_VERBS = ("Describe", "Get", "List")
IAM_ONLY = frozenset({"iam:PassRole", "lambda:InvokeFunction", "lambda:ListTags"})
"""IAM actions that are not an API operation of the same name."""
BOTOCORE_NAMES = {"elasticloadbalancing": "elbv2"}


def load(*paths: Path) -> list[dict[str, Any]]:
    return [s for path in paths for s in json.loads(path.read_text())["Statement"]]


def allowed(statements: list[dict[str, Any]], action: str, resource: str | None) -> bool:
    """Some Allow statement grants `action` on `resource` (None: on any resource). Conditions
    only narrow a grant; the ones that matter are asserted by name below."""

    def matches(patterns: Any, value: str, fold: bool) -> bool:
        items = patterns if isinstance(patterns, list) else [patterns]
        if fold:
            return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in items)
        return any(fnmatch.fnmatchcase(value, p) for p in items)

    return any(
        s["Effect"] == "Allow"
        and matches(s["Action"], action, fold=True)
        and (resource is None or matches(s["Resource"], resource, fold=False))
        for s in statements
    )


def checks(run: Run) -> Iterator[tuple[str, str, str | None]]:
    """(resource type, action, resource ARN or "*" or None) for everything the run registered."""
    arns: dict[str, list[str]] = {}
    for r in run.custom():
        if "arn" in r.outputs:
            arns.setdefault(r.type, []).append(r.outputs["arn"])
    for typ in sorted({r.type for r in run.custom()}):
        for entry in ACTIONS[typ]:
            action, on = (entry, typ) if isinstance(entry, str) else entry
            if action in UNSCOPED:
                yield typ, action, "*"
            elif on in arns and action.split(":")[0] == arns[on][0].split(":")[2]:
                for arn in arns[on]:
                    yield typ, action, arn
            else:
                yield typ, action, None
    for token in sorted(set(run.invokes)):
        for action in INVOKES[token]:
            yield token, action, "*"


def deploy(args: dict[str, Any]) -> Run:
    return run_program(lambda: TrafficMirrorAutomation("mirror", args))


@pytest.fixture(scope="module")
def single() -> Run:
    return deploy(SINGLE_ACCOUNT)


@pytest.fixture(scope="module")
def organization() -> Run:
    return deploy(ORGANIZATION)


def test_every_registered_type_and_data_source_is_in_the_table(single: Run, organization: Run) -> None:
    for run in (single, organization):
        missing = {r.type for r in run.custom()} - set(ACTIONS)
        assert not missing, f"add what pulumi up/destroy call for {missing} to ACTIONS and to deploy/*.json"
        assert not set(run.invokes) - set(INVOKES)
    covered = {r.type for run in (single, organization) for r in run.custom()}
    assert covered == set(ACTIONS), "every row of the table is a type the program registers"


@pytest.mark.parametrize(
    ("configuration", "files"),
    [("single", (POLICY,)), ("organization", (POLICY, ORGANIZATION_POLICY))],
)
def test_the_shipped_policy_allows_every_action_of_every_registered_type(
    configuration: str, files: tuple[Path, ...], request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(configuration)
    statements = load(*files)
    refused = [(typ, action, on) for typ, action, on in checks(run) if not allowed(statements, action, on)]
    assert refused == [], "missing from " + ", ".join(p.name for p in files)
    # And a single account needs nothing of the organization's file.
    if configuration == "single":
        assert all(allowed(load(POLICY), action, on) for _, action, on in checks(run))


def test_the_policy_grants_no_write_that_no_resource_needs() -> None:
    needed = {e if isinstance(e, str) else e[0] for row in ACTIONS.values() for e in row}
    needed |= {a for row in INVOKES.values() for a in row}
    granted = {a for s in load(POLICY, ORGANIZATION_POLICY) for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    writes = {a for a in granted if not a.split(":")[1].startswith(READ_VERBS)}
    assert writes - needed == set()
    assert all("*" not in a for a in writes), "no wildcard writes"


def test_the_policies_are_valid_scoped_and_fit_a_managed_policy() -> None:
    session = botocore.session.get_session()
    operations: dict[str, set[str]] = {}
    for path in (POLICY, ORGANIZATION_POLICY):
        text = path.read_text()
        IAMPolicyDocumentValidator(text).validate()
        assert len(json.dumps(json.loads(text), separators=(",", ":"))) <= MANAGED_POLICY_LIMIT, path.name
        for s in json.loads(text)["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            writes = [a for a in actions if not a.split(":")[1].startswith(READ_VERBS)]
            if s["Resource"] == "*":
                assert all(a in UNSCOPED for a in writes) and (not writes or "Condition" in s), s["Sid"]
            for action in actions:
                prefix, name = action.split(":")
                if prefix in ("s3", "tag") or action in IAM_ONLY:
                    continue  # S3's IAM actions are not its operation names; tag is resourcegroupstaggingapi
                service = BOTOCORE_NAMES.get(prefix, prefix)
                if service not in operations:
                    operations[service] = set(session.get_service_model(service).operation_names)
                assert fnmatch.filter(operations[service], name), f"{action}: no such {service} operation"


def test_the_sensitive_grants_are_conditioned() -> None:
    statements = {s["Sid"]: s for s in load(POLICY, ORGANIZATION_POLICY)}
    assert statements["PassTheRoleToLambdaOnly"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
    }
    assert statements["AttachOnlyThatPolicyToTheFunctionsRole"]["Condition"] == {
        "ArnLike": {"iam:PolicyARN": "arn:aws:iam::*:policy/*-organization-policy-*"}
    }
    assert statements["DeleteOnlyManagedFiltersAndTargets"]["Condition"] == {
        "Null": {"aws:ResourceTag/ManagedBy": "false"}
    }
    assert statements["CreateOnlySharesWithinTheOrganization"]["Condition"] == {
        "Bool": {"ram:RequestedAllowsExternalPrincipals": "false"}
    }
    # Only the trail bucket's objects may be deleted, and nothing may be read from them.
    objects = [s for s in statements.values() if any(r.endswith("/*") and ":s3:::" in r for r in _as_list(s["Resource"]))]
    assert [s["Sid"] for s in objects] == ["EmptyTheTrailBucketOnlyWithForceDestroyTrailBucket"]
    assert not [a for a in _as_list(objects[0]["Action"]) if a.startswith("s3:Get")]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
