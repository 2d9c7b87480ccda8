"""Organization coverage beyond mocks: the generated member templates deployed into moto accounts.

The program runs under Pulumi's mocks with `organization_units`; the member templates and the
parameters it registered are deployed with a SELF_MANAGED stack set by account id (moto
deploys real resources that way; its SERVICE_MANAGED stack sets with OU targets deploy
nothing). The hub's member bus, its policy and its rules to the hub's queue are replayed from
the registered inputs. A member account's RunInstances event then goes through the member's
forwarding rule to the hub's bus, its rules, the hub's queue, and the hub's handler, which
mirrors the ENI in the member account through the member role the stack set created.

What moto lacks, and how this test covers it (the README says the same):
- `AWS::EC2::TrafficMirrorFilter` is not supported by moto's CloudFormation: the stack set is
  deployed with `CreateFilter=false` and the filter the template would create (same tags) is
  made by API.
- Cross-account delivery to an event bus: moto re-puts the event in the receiving account
  (the envelope's `account` becomes the hub's; AWS keeps the sender's) and enforces neither the
  bus policy nor the target's role. `organization_delivery` delivers like AWS: the envelope
  unchanged, only through the rule's role, only if the receiving bus's policy admits that role
  (its `aws:PrincipalOrgID` and `aws:PrincipalArn` conditions are evaluated).
- moto's SQS delivery drops the envelope's `account`; the patch restores it.
- IAM policies are not enforced by moto: the documents are asserted in test_organization.py.
"""

import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.events.models import Rule, events_backends
from moto.events.utils import EventTemplateParser
from moto.iam.models import iam_backends
from moto.utilities.arns import parse_arn
from traffic_mirror.components import TrafficMirrorAutomation, member_template
from traffic_mirror.handler import app
from traffic_mirror.handler import settings as handler_settings
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from testsupport import sandbox
from testsupport.event_builders import run_instances_record
from testsupport.pulumi_mocks import ACCOUNT as HUB
from testsupport.pulumi_mocks import ORGANIZATION_ID as MOCK_ORGANIZATION_ID
from testsupport.pulumi_mocks import Run, run_program

pytestmark = pytest.mark.moto

REGION = "us-east-1"
UNITS = ["ou-ab12-11111111"]


@pytest.fixture(scope="module")
def program() -> Run:
    args = {"regions": [REGION], "organization_units": UNITS, "share_tagged_targets": False}
    return run_program(lambda: TrafficMirrorAutomation("mirror", args))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def module_patch() -> Iterator[pytest.MonkeyPatch]:
    """One world for the module (building it costs seconds): patches live as long as it does."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def aws_env(module_patch: pytest.MonkeyPatch) -> None:
    module_patch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        module_patch.setenv(key, "testing")
    module_patch.delenv("AWS_PROFILE", raising=False)


# --- what moto's EventBridge lacks -----------------------------------------------------------------


@dataclass
class Delivery:
    """Cross-account deliveries the emulation made or refused (as AWS would)."""

    organization_of: Callable[[str], str | None]
    delivered: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _admits(policy: dict[str, Any], bus_arn: str, principal_arn: str, organization_id: str | None) -> bool:
    """Does one of the bus policy's statements allow this principal to put events? (What AWS checks.)"""
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow" or statement.get("Action") != "events:PutEvents":
            continue
        if statement.get("Resource") != bus_arn:
            continue
        condition = statement.get("Condition", {})
        org = condition.get("StringEquals", {}).get("aws:PrincipalOrgID")
        arn_like = condition.get("ArnLike", {}).get("aws:PrincipalArn")
        if org is not None and org != organization_id:
            continue
        if arn_like is not None and not fnmatch.fnmatchcase(principal_arn, arn_like):
            continue
        if set(condition) - {"StringEquals", "ArnLike"}:
            continue  # a condition this emulation does not evaluate: refuse, never guess
        return True
    return False


@pytest.fixture(scope="module")
def organization_delivery(
    module_patch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Callable[[str], str | None]], Delivery]]:
    """Teach moto's rules to deliver to another account's bus the way EventBridge does."""
    original = Rule.send_to_targets
    state: dict[str, Delivery] = {}

    def send_to_targets(self: Rule, event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(event):
            return
        local = []
        for target in self.targets:
            arn = parse_arn(target["Arn"])
            if arn.service == "events" and arn.resource_type == "event-bus" and arn.account != self.account_id:
                _deliver(state["delivery"], self, target, event)
            else:
                local.append(target)
        if local:
            kept, self.targets = self.targets, local
            try:
                original(self, event, transform_input)
            finally:
                self.targets = kept

    def _deliver(delivery: Delivery, rule: Rule, target: dict[str, Any], event: dict[str, Any]) -> None:
        bus_arn = target["Arn"]
        arn = parse_arn(bus_arn)
        role_arn = target.get("RoleArn", "")
        role_name = role_arn.rsplit("/", 1)[-1]
        role_exists = any(r.name == role_name for r in iam_backends[rule.account_id]["global"].roles.values())
        bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
        policy = json.loads(bus.policy or "{}")
        if not role_exists or not _admits(policy, bus_arn, role_arn, delivery.organization_of(rule.account_id)):
            delivery.refused.append(f"{rule.account_id} -> {bus_arn} as {role_arn or 'no role'}")
            return
        forwarded = json.loads(json.dumps(event))  # the envelope as sent: `account` stays the sender's
        delivery.delivered.append(forwarded)
        for receiving_rule in list(bus.rules.values()):
            receiving_rule.send_to_targets(forwarded)

    module_patch.setattr(Rule, "send_to_targets", send_to_targets)
    # moto's default SQS body leaves out the envelope's account; EventBridge sends it.
    module_patch.setattr(
        EventTemplateParser,
        "DEFAULT_EVENT_INPUT_TEMPLATE",
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE.replace('"version": "0",', '"version": "0", "account": "<account>",'),
    )

    def start(organization_of: Callable[[str], str | None]) -> Delivery:
        state["delivery"] = Delivery(organization_of)
        return state["delivery"]

    yield start


# --- the world: a hub, a member, and an outsider -----------------------------------------------------


def as_account(account: str) -> boto3.Session:
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/test-admin", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


@dataclass
class World:
    organization_id: str
    member: str
    outsider: str
    queue_url: str
    hub_role_arn: str
    filter_id: str
    account: sandbox.Account
    delivery: Delivery
    unit: str
    """The OU the member account is in (moto's id for the program's UNITS[0])."""
    hub_sensor: str
    """The security account's sensor in the member's zone, designated and shared with the member."""


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@pytest.fixture(scope="module")
def built(
    program: Run, aws_env: None, organization_delivery: Callable[[Callable[[str], str | None]], Delivery]
) -> Iterator[World]:
    with mock_aws(), sandbox.aws_rules():
        hub = boto3.Session(region_name=REGION)
        orgs = hub.client("organizations")
        organization_id = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        created = orgs.create_account(AccountName="workload", Email="workload@example.com")
        member = orgs.describe_create_account_status(CreateAccountRequestId=created["CreateAccountStatus"]["Id"])[
            "CreateAccountStatus"
        ]["AccountId"]
        root = orgs.list_roots()["Roots"][0]["Id"]
        unit = orgs.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
        orgs.move_account(AccountId=member, SourceParentId=root, DestinationParentId=unit)
        members = {a["Id"] for a in orgs.list_accounts()["Accounts"]}
        delivery = organization_delivery(lambda account: organization_id if account in members else None)

        # The hub, replayed from what the program registered: queue, member bus + policy, its rules.
        sqs, events = hub.client("sqs"), hub.client("events")
        queue = program.named(f"mirror-events-{REGION}")
        queue_url = sqs.create_queue(QueueName=queue.inputs["name"])["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = program.named(f"mirror-members-bus-{REGION}")
        bus_arn = events.create_event_bus(Name=bus.inputs["name"])["EventBusArn"]
        # The registered policy, with moto's organization id for the mocks' (the bus ARNs agree:
        # same account, region and name).
        registered_policy = program.named(f"mirror-members-bus-policy-{REGION}").inputs["policy"]
        assert bus_arn in registered_policy
        events.put_permission(
            EventBusName=bus.inputs["name"], Policy=registered_policy.replace(MOCK_ORGANIZATION_ID, organization_id)
        )
        for rule in program.of_type("aws:cloudwatch/eventRule:EventRule"):
            if rule.inputs.get("eventBusName") != bus.inputs["name"]:
                continue
            events.put_rule(Name=rule.name, EventBusName=rule.inputs["eventBusName"], EventPattern=rule.inputs["eventPattern"])
            events.put_targets(Rule=rule.name, EventBusName=rule.inputs["eventBusName"], Targets=[{"Id": "queue", "Arn": queue_arn}])
        hub_role_arn = program.of_type("aws:iam/role:Role")[0].outputs["arn"]

        # The member footprint: the registered templates and parameters, by account id.
        cloudformation = hub.client("cloudformation")
        for kind in ("regional", "account"):
            stack_set = program.named(f"mirror-member-{kind}").inputs
            parameters = dict(stack_set["parameters"])
            if kind == "regional":
                parameters[member_template.CREATE_FILTER] = "false"  # moto's CloudFormation has no filter resource
            else:
                assert parameters["OrganizationId"] == MOCK_ORGANIZATION_ID
                parameters["OrganizationId"] = organization_id
            cloudformation.create_stack_set(
                StackSetName=stack_set["name"],
                TemplateBody=stack_set["templateBody"],
                Parameters=_parameters(parameters),
                Capabilities=stack_set["capabilities"],
                PermissionModel="SELF_MANAGED",
            )
            cloudformation.create_stack_instances(StackSetName=stack_set["name"], Accounts=[member], Regions=[REGION])

        # The hub's sensor, designated by tag and shared with the member (RAM, as the sandbox emulates it).
        hub_ec2 = hub.client("ec2")
        central = sandbox.build_account(hub_ec2, REGION, azs=("a",), sensors_per_az=0, ami=sandbox.moto_ami())
        hub_sensor = sandbox.add_eni_target(
            hub_ec2, central, central.subnets[f"{REGION}a"], "central", "c5.xlarge", {"Mirror": "true"}
        )
        sandbox.share_target(hub_sensor, DEFAULT_ACCOUNT_ID, [member])

        # The member's world: a VPC, a sensor of its own (not the security team's: never used by
        # default), and the filter the stack would own.
        ec2 = as_account(member).client("ec2")
        account = sandbox.build_account(ec2, REGION, azs=("a",))
        tags = {MANAGED_TAG_KEY: "traffic-mirror-automation", "Mirror": "default"}
        filter_id = ec2.create_traffic_mirror_filter(
            Description="as the stack set would create it",
            TagSpecifications=[{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        yield World(
            organization_id, member, "210987654321", queue_url, hub_role_arn, filter_id, account, delivery, unit, hub_sensor
        )


@pytest.fixture
def world(built: World) -> World:
    """The module's world, with no delivery or message left over from another test."""
    built.delivery.delivered.clear()
    built.delivery.refused.clear()
    receive(built)
    return built


def launch_event(world: World, session: boto3.Session) -> tuple[str, list[dict[str, Any]]]:
    """Launch in the member account and put its CloudTrail event on the member's own bus."""
    ec2 = session.client("ec2")
    instances = sandbox.launch(ec2, world.account, world.account.subnets[f"{REGION}a"], "m5.large", {"Name": "web-1"})
    record = run_instances_record(instances, event_id="member-launch-1")
    record["recipientAccountId"] = world.member
    entry = {"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(record)}
    result = session.client("events").put_events(Entries=[entry])
    assert result["FailedEntryCount"] == 0
    return instances[0]["NetworkInterfaces"][0]["NetworkInterfaceId"], instances


def receive(world: World) -> list[dict[str, Any]]:
    """What the hub's queue holds, taken off it (as Lambda's poller would once handled)."""
    sqs = boto3.client("sqs", region_name=REGION)
    messages = sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


# --- tests ----------------------------------------------------------------------------------------------------


def test_stack_sets_deploy_the_member_footprint(world: World, program: Run) -> None:
    member = as_account(world.member)
    rules = member.client("events").list_rules()["Rules"]
    assert len(rules) == 3
    bus_name = program.named(f"mirror-members-bus-{REGION}").inputs["name"]
    for rule in rules:
        (target,) = member.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
        assert target["Arn"] == f"arn:aws:events:{REGION}:{HUB}:event-bus/{bus_name}"
        assert target["RoleArn"].endswith(f"/mirror-fwd-{REGION}-" + bus_name.rsplit("-", 1)[-1])
    iam = member.client("iam")
    role = iam.get_role(RoleName="traffic-mirror-automation-member")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["ArnEquals"] == {"aws:PrincipalArn": world.hub_role_arn}
    assert trust["Condition"]["StringEquals"]["aws:PrincipalOrgID"] == world.organization_id
    # Nothing landed in the hub's own account but the stack sets themselves.
    assert [r["Name"] for r in boto3.client("events", region_name=REGION).list_rules()["Rules"]] == []


def test_a_member_event_reaches_the_hubs_queue_with_the_members_envelope(world: World) -> None:
    eni, _ = launch_event(world, as_account(world.member))
    (message,) = receive(world)
    body = json.loads(message["Body"])
    assert body["account"] == world.member, "the handler tells the account from the envelope"
    assert body["detail"]["eventName"] == "RunInstances"
    assert eni in json.dumps(body["detail"])
    assert world.delivery.refused == [] and len(world.delivery.delivered) == 1


def test_the_hubs_bus_refuses_accounts_outside_the_organization(world: World, program: Run) -> None:
    """An outsider with the same footprint (same forwarder name) is refused by the bus policy."""
    outsider = as_account(world.outsider)
    template = program.named("mirror-member-regional").inputs
    outsider.client("cloudformation").create_stack(
        StackName="copycat",
        TemplateBody=template["templateBody"],
        Parameters=_parameters({**template["parameters"], member_template.CREATE_FILTER: "false"}),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    record = run_instances_record([], event_id="outsider-1")
    entry = {"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(record)}
    outsider.client("events").put_events(Entries=[entry])
    assert receive(world) == []
    assert len(world.delivery.refused) == 1 and world.delivery.refused[0].startswith(world.outsider)


def test_member_launch_is_mirrored_in_the_member_account_by_the_hubs_handler(world: World, program: Run) -> None:
    member = as_account(world.member)
    eni, _ = launch_event(world, member)
    messages = receive(world)
    assert len(messages) == 1
    env = program.of_type("aws:lambda/function:Function")[0].inputs["environment"]["variables"]
    # The handler covers the accounts under the listed units (moto's id for the program's).
    assert env["MIRROR_ACCOUNTS"] == f"organization:{UNITS[0]}"
    covered = env["MIRROR_ACCOUNTS"].replace(UNITS[0], world.unit)
    settings = handler_settings.load({**env, "MIRROR_ACCOUNTS": covered, "MIRROR_ROLE_ARN": world.hub_role_arn})
    batch = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}
    result = app.handle(batch, settings=settings)
    assert result == {"batchItemFailures": []}
    (session,) = member.client("ec2").describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert session["NetworkInterfaceId"] == eni
    # The security team's shared sensor, not the member's own (MIRROR_SENSOR_OWNERS defaults to hub).
    assert session["TrafficMirrorTargetId"] == world.hub_sensor
    assert session["TrafficMirrorFilterId"] == world.filter_id
    assert {t["Key"]: t["Value"] for t in session["Tags"]}[MANAGED_TAG_KEY] == "traffic-mirror-automation"
    hub_ec2 = boto3.client("ec2", region_name=REGION)
    hub_view = hub_ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert all(s["OwnerId"] == world.member for s in hub_view), "nothing of the hub's own: only the member's, on its sensor"
