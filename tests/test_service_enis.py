"""Load balancers' and databases' ENIs as mirror sources (MIRROR_SOURCES), and nothing new without it.

The ENIs are shaped in moto's backend as AWS shows them (`sandbox.service_eni`: requester-managed,
the service as requester and as the attachment's owner, in use, the description naming the
resource); the load balancers themselves are real moto ALBs and Classic Load Balancers, so their
tags are read as on AWS.
"""

import copy
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.model import StringShape
from moto.ec2.models.traffic_mirrors import TrafficMirrorsBackend
from rich.console import Console
from traffic_mirror.cli import main
from traffic_mirror.handler import app, coverage, events, inventory, kinds, planner, reconcile
from traffic_mirror.handler.apply import apply_all
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Context
from traffic_mirror.handler.model import Decision, Inventory, Learned, Source
from traffic_mirror.handler.settings import Settings, SettingsError, load

from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import create_network_interface_record, load_record, scheduled, wrap

REGION = "us-east-1"
ALL = Settings(sources="all")
SWEEP = scheduled(rule=None)  # a sweep by hand: no grace period


# --- the kinds table and the setting, pure ----------------------------------------------------


def test_kinds_are_the_tables_instances_first_and_every_service_of_a_known_kind() -> None:
    assert kinds.KINDS == ("instances", "load-balancers", "databases")
    assert {s.kind for s in kinds.SERVICES} == set(kinds.KINDS) - {"instances"}
    assert kinds.parse("all") == frozenset(kinds.KINDS)
    assert kinds.parse("databases,load-balancers") == {"databases", "load-balancers"}


def test_the_setting_defaults_to_instances_and_is_validated_like_every_setting() -> None:
    assert load({}).kinds == {"instances"}
    assert load({"MIRROR_SOURCES": "Instances,Databases"}).kinds == {"instances", "databases"}
    assert load({"MIRROR_SOURCES": "ALL"}).kinds == frozenset(kinds.KINDS)
    for bad in ("nat-gateways", "instances,", "load balancers", "instances;databases"):
        with pytest.raises(SettingsError, match="MIRROR_SOURCES"):
            load({"MIRROR_SOURCES": bad})


def eni_as_aws_shows_it(description: str, requester: str = "amazon-elb", **more: Any) -> dict[str, Any]:
    """An ALB node's ENI as DescribeNetworkInterfaces showed it on a real account (see the sandbox)."""
    return {
        "NetworkInterfaceId": "eni-0b55f98929a277251",
        "Attachment": {"DeviceIndex": 1, "InstanceOwnerId": requester, "Status": "attached"},
        "Description": description,
        "InterfaceType": "interface",
        "RequesterId": requester,
        "RequesterManaged": True,
        "Status": "in-use",
        **more,
    }


def test_a_services_eni_is_recognised_from_the_eni_itself() -> None:
    alb = kinds.recognise(eni_as_aws_shows_it("ELB app/quest-alb/b4967228f2fd4342"))
    assert alb is not None and alb.service is not None
    assert (alb.kind, alb.service.service, alb.name, alb.resource_id) == (
        "load-balancers", "alb", "quest-alb", "b4967228f2fd4342"
    )  # fmt: skip
    clb = kinds.recognise(eni_as_aws_shows_it("ELB legacy-web"))
    assert clb is not None and clb.service is not None and (clb.service.service, clb.name) == ("clb", "legacy-web")
    rds = kinds.recognise(eni_as_aws_shows_it("RDSNetworkInterface", "amazon-rds"))
    assert rds is not None and rds.kind == "databases"
    # Network and Gateway Load Balancers' nodes: not one of the table's (their types are others too).
    for description in ("ELB net/internal-nlb/abc123", "ELB gwy/inspection/def456"):
        assert kinds.recognise(eni_as_aws_shows_it(description)) == kinds.ServiceEni(kinds.OTHER, None)
    # The description alone is not enough: the requester must be the service's.
    assert kinds.recognise(eni_as_aws_shows_it("ELB app/x/1", "123456789012")) == kinds.ServiceEni(kinds.OTHER, None)
    # Not a service's: an ENI someone made, or any ENI attached to an instance (the instance's path).
    assert kinds.recognise({**eni_as_aws_shows_it("ELB app/x/1"), "RequesterManaged": False}) is None
    attached = eni_as_aws_shows_it("ELB app/x/1", Attachment={"InstanceId": "i-0123456789abcdef0"})
    assert kinds.recognise(attached) is None


def service_source(kind: str = "load-balancers", **more: Any) -> Source:
    fields: dict[str, Any] = dict(
        eni_id="eni-0000000000000001", instance_id="", instance_type="", subnet_id="subnet-1",
        vpc_id="vpc-1", az="us-east-1a", kind=kind, service="alb",
        resource="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1",
    )  # fmt: skip
    fields.update(more)
    return Source(**fields)


def test_the_planner_judges_a_services_eni_like_an_instances_but_for_what_only_instances_have() -> None:
    inventory = Inventory((), ())
    # Only type `interface` (an instance's EFA may be mirrored; a service's ENI of another type never).
    for itype in ("efa", "network_load_balancer", "nat_gateway", "lambda"):
        decided = planner.plan_source(service_source(interface_type=itype), (), inventory, ALL)
        assert decided.out_of_scope == planner.INTERFACE_TYPE, itype
    unknown = planner.plan_source(service_source(kind=kinds.OTHER, service=""), (), inventory, ALL)
    assert unknown.out_of_scope == planner.UNKNOWN_SERVICE
    # No instance type: the instance support table does not apply; AWS's refusal of this ENI does.
    assert planner.plan_source(service_source(), (), inventory, ALL).out_of_scope is None
    refused = Learned(refused_enis=frozenset({"eni-0000000000000001"}))
    decided = planner.plan_source(service_source(), (), inventory, ALL, learned=refused)
    assert decided.out_of_scope == planner.UNSUPPORTED and "refused" in decided.reason
    assert (decided.kind, decided.resource) == ("load-balancers", "alb app/web/1")


@pytest.mark.parametrize("scope", ["all", "tagged"])
def test_a_load_balancers_tags_apply_to_its_enis_and_the_enis_own_tag_wins(scope: str) -> None:
    intent = planner.tag_intent
    assert not intent(service_source(instance_tags={"Mirror": "false"}), "Mirror", scope).in_scope
    opted = intent(service_source(instance_tags={"Mirror": "off"}), "Mirror", scope)
    assert "load balancer tag" in opted.reason
    assert intent(service_source(instance_tags={"Mirror": "pci"}), "Mirror", scope).route == "pci"
    assert intent(service_source(instance_tags={"Mirror": "false"}, eni_tags={"Mirror": "true"}), "Mirror", scope).in_scope
    routed = intent(service_source(instance_tags={"Mirror": "pci"}, eni_tags={"Mirror": "dmz"}), "Mirror", scope)
    assert routed.route == "dmz"
    assert not intent(service_source(instance_tags={"Mirror": "true"}, eni_tags={"Mirror": "no"}), "Mirror", scope).in_scope
    assert intent(service_source(), "Mirror", scope).in_scope == (scope == "all")


# --- the event, pure ------------------------------------------------------------------------


EFS_SAMPLE = load_record("CreateNetworkInterface__awsdocs-amazon-efs-user-guide__1.json")


def test_create_network_interface_is_subscribed_only_when_a_service_kind_is() -> None:
    default = events.rules(Settings())
    assert "CreateNetworkInterface" not in json.dumps(default)
    assert default["api-calls"]["detail"] == {  # the sources' and the sensors' events, nothing else
        "eventSource": ["ec2.amazonaws.com", "elasticloadbalancing.amazonaws.com"],
        "eventName": [
            "RunInstances", "StartInstances", "AttachNetworkInterface", "DeleteTrafficMirrorSession",
            "DeleteTrafficMirrorTarget", "DeleteLoadBalancer", "DeleteListener", "DeregisterTargets",
        ],
        "errorCode": [{"exists": False}],
    }  # fmt: skip
    for sources in ("databases", "load-balancers", "all"):
        detail = events.rules(Settings(sources=sources))["api-calls"]["detail"]
        assert "eventName" not in detail and detail["errorCode"] == [{"exists": False}]
        plain, made_by_a_service = detail["$or"]
        assert plain == {"eventName": default["api-calls"]["detail"]["eventName"]}
        assert made_by_a_service == {
            "eventName": ["CreateNetworkInterface"],
            "sourceIPAddress": [{"suffix": ".amazonaws.com"}],
        }


def test_a_services_create_network_interface_names_its_eni_only_when_a_service_kind_is_enabled() -> None:
    event = wrap(EFS_SAMPLE)
    skipped = events.parse(event, Settings())
    assert isinstance(skipped, events.Skip) and skipped.status == "ignored" and "MIRROR_SOURCES" in skipped.reason
    change = events.parse(event, ALL)
    assert isinstance(change, events.Change)
    assert (change.kind, change.eni_ids, change.event_id) == (
        "enis", ("eni-0123456789abcdef0",), "aaaabbbb-1111-2222-3333-444444555555"
    )  # fmt: skip
    by_a_person = copy.deepcopy(EFS_SAMPLE)
    by_a_person["sourceIPAddress"] = "198.51.100.7"
    by_a_person["userIdentity"].pop("invokedBy")
    assert isinstance(events.parse(wrap(by_a_person), ALL), events.Skip)


# --- end to end under moto ----------------------------------------------------------------------


@dataclass
class World:
    ec2: Any
    account: sandbox.Account
    alb_arn: str
    alb: list[str]  # the ALB's ENIs, one per AZ
    clb: list[str]
    rds: str
    instance_eni: str

    def sessions(self, eni: str | None = None) -> list[dict[str, Any]]:
        found = self.ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        return [s for s in found if eni is None or s["NetworkInterfaceId"] == eni]

    def eni(self, eni_id: str) -> dict[str, Any]:
        return dict(self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0])

    def sensor_of(self, eni_id: str) -> str:
        """The sensor in the ENI's own AZ (each AZ has one)."""
        az = self.eni(eni_id)["AvailabilityZone"]
        return self.account.targets[f"sensor-{az}-0"]


def build_world(aws: Any, alb_tags: dict[str, str] | None = None, clb_tags: dict[str, str] | None = None) -> World:
    account = sandbox.build_account(aws, ami=sandbox.moto_ami())
    elbv2, elb = boto3.client("elbv2", region_name=REGION), boto3.client("elb", region_name=REGION)
    arn, alb = sandbox.application_load_balancer(elbv2, aws, account, "web", alb_tags)
    clb = sandbox.classic_load_balancer(elb, aws, account, "legacy", clb_tags)
    rds = sandbox.service_eni(aws, account.subnets[f"{REGION}b"], "rds")
    (instance,) = sandbox.launch(aws, account, account.subnets[f"{REGION}a"])
    return World(aws, account, arn, alb, clb, rds, instance["NetworkInterfaces"][0]["NetworkInterfaceId"])


@pytest.fixture
def world(aws: Any) -> World:
    return build_world(aws)


def sweep(settings: Settings) -> tuple[list[Decision], dict[str, Any]]:
    """A sweep by hand through the handler, and what it decided (the CLI's read-only plan after it)."""
    result = app.handle(SWEEP, settings=settings)
    decisions, _ = reconcile.read_only_plan(Context(Place(REGION), settings, app.CONTAINER))
    return decisions, result


def test_the_default_is_unchanged_no_service_eni_is_read_or_mirrored(world: World, counter: CallCounter) -> None:
    result = app.handle(SWEEP, settings=Settings())
    assert result["counts"]["Created"] == 1  # the instance's ENI, nothing else
    assert [s["NetworkInterfaceId"] for s in world.sessions()] == [world.instance_eni]
    # The same reads as before MIRROR_SOURCES: the tag key's ENIs (the sensors' come with their
    # instances), no load balancer's.
    calls = counter.snapshot()
    assert calls["DescribeNetworkInterfaces"] == 1 and calls["DescribeTags"] == 0
    decisions, _ = reconcile.read_only_plan(Context(Place(REGION), Settings(), app.CONTAINER))
    assert {d.kind for d in decisions} == {"instances"}
    assert not {d.eni_id for d in decisions} & {*world.alb, *world.clb, world.rds}
    # An event for a load balancer's new ENI is not even looked at.
    event = wrap(create_network_interface_record(world.eni(world.alb[0])))
    assert app.handle(event, settings=Settings())["counts"]["Ignored"] == 1
    assert world.sessions(world.alb[0]) == []
    # With the load balancers' and databases' ENIs: one more ENI read, and the ALB's tags.
    counter.clear()
    app.handle(SWEEP, settings=ALL)
    calls = counter.snapshot()
    assert calls["DescribeNetworkInterfaces"] == 2 and calls["DescribeTags"] == 1


def test_a_sweep_mirrors_alb_clb_and_rds_enis_to_the_sensor_of_their_zone(world: World) -> None:
    decisions, result = sweep(ALL)
    assert result["counts"]["Created"] == 1 + 2 + 2 + 1
    for eni in (*world.alb, *world.clb, world.rds):
        (session,) = world.sessions(eni)
        assert session["TrafficMirrorTargetId"] == world.sensor_of(eni)
        assert "ManagedBy" in {t["Key"] for t in session["Tags"]}
    counted = coverage.count(REGION, decisions)
    assert counted.in_scope == counted.mirrored == 6
    assert {g.key: (g.in_scope, g.mirrored) for g in counted.by_kind} == {
        "instances": (1, 1), "load-balancers": (4, 4), "databases": (1, 1)
    }  # fmt: skip
    by_eni = {d.eni_id: d for d in decisions}
    assert by_eni[world.alb[0]].resource == f"alb {world.alb_arn.split(':loadbalancer/')[1]}"
    assert by_eni[world.clb[0]].resource == "clb legacy"
    # Only the kinds asked for: databases alone leaves the load balancers' ENIs as they are.
    app.CONTAINER.reset()
    only = sweep(Settings(sources="databases"))[0]
    assert {d.kind for d in only if d.out_of_scope is None} == {"databases"}


def test_every_interface_type_but_interface_is_never_a_source_even_with_all(world: World) -> None:
    types = botocore.session.get_session().get_service_model("ec2").shape_for("NetworkInterfaceType")
    assert isinstance(types, StringShape)
    others = [t for t in types.enum if t != "interface"]
    subnet = world.account.subnets[f"{REGION}a"]
    never = [
        sandbox.service_eni(world.ec2, subnet, "nlb", "internal", "abc123"),
        sandbox.service_eni(world.ec2, subnet, "gwlb", "inspection", "def456"),
        sandbox.service_eni(world.ec2, subnet, "nat", resource_id="nat-0a8b0e0d28266841f"),
        sandbox.service_eni(world.ec2, subnet, "vpce", resource_id="vpce-0f00567fa8477a1e6"),
        *(sandbox.service_eni(world.ec2, subnet, "alb", "web", "1", interface_type=t) for t in others),
    ]
    unknown = sandbox.service_eni(world.ec2, subnet, "efs", "fs-1234567", "fsmt-1234567")  # type interface
    decisions, _ = sweep(ALL)
    assert {s["NetworkInterfaceId"] for s in world.sessions()}.isdisjoint({*never, unknown})
    by_eni = {d.eni_id: d for d in decisions}
    assert not set(never) & set(by_eni)  # EC2 leaves them out of the read: never planned, never counted
    assert by_eni[unknown].out_of_scope == planner.UNKNOWN_SERVICE
    assert coverage.count(REGION, decisions).out_of_scope == {planner.SENSOR: 2, planner.UNKNOWN_SERVICE: 1}
    # Named by an event (CreateNetworkInterface), one of them is judged, and never mirrored either.
    event = wrap(create_network_interface_record(world.eni(never[0]), event_id="nlb-node"))
    assert app.handle(event, settings=ALL)["counts"]["Skipped"] == 1
    assert world.sessions(never[0]) == []


def test_an_alb_node_is_mirrored_by_its_event_once_despite_redelivery_and_the_sweep(
    world: World, counter: CallCounter
) -> None:
    eni = world.alb[0]
    event = wrap(create_network_interface_record(world.eni(eni), event_id="alb-node-1"))
    assert app.handle(event, settings=ALL)["counts"]["Created"] == 1
    (session,) = world.sessions(eni)
    assert session["TrafficMirrorTargetId"] == world.sensor_of(eni)
    assert counter.snapshot()["DescribeTags"] == 1  # the ALB's tags, read by ARN
    assert app.handle(event, settings=ALL)["counts"]["Created"] == 0  # redelivered
    decisions, _ = sweep(ALL)
    assert [s["TrafficMirrorSessionId"] for s in world.sessions(eni)] == [session["TrafficMirrorSessionId"]]
    assert next(d for d in decisions if d.eni_id == eni).outcome == "mirrored"


def test_load_balancer_tags_opt_out_and_route_and_the_enis_own_tag_wins_by_sweep_and_by_event(aws: Any) -> None:
    world = build_world(aws, alb_tags={"Mirror": "off", "Name": "web"}, clb_tags={"Mirror": "pci"})
    world.ec2.create_tags(Resources=[world.alb[1]], Tags=[{"Key": "Mirror", "Value": "true"}])
    decisions, _ = sweep(ALL)
    by_eni = {d.eni_id: d for d in decisions}
    assert by_eni[world.alb[0]].out_of_scope == planner.OPTED_OUT  # the ALB's own tag
    assert world.sessions(world.alb[0]) == []
    assert len(world.sessions(world.alb[1])) == 1  # its ENI's tag overrides the ALB's
    # The Classic Load Balancer's tag routes its ENIs: no sensor serves `pci`, so none is used.
    assert {by_eni[e].problem for e in world.clb} == {planner.NO_TARGET}
    # In scope `tagged`, only what is tagged: the ALB node tagged true and the routed CLB nodes.
    app.CONTAINER.reset()
    tagged = sweep(Settings(sources="all", scope="tagged"))[0]
    scoped = {d.eni_id for d in tagged if d.out_of_scope is None}
    assert scoped == {world.alb[1], *world.clb}
    # The ENI's tag changes (CreateTags on it): the event takes it out at once, session deleted.
    world.ec2.create_tags(Resources=[world.alb[1]], Tags=[{"Key": "Mirror", "Value": "false"}])
    from tests.test_tags import tag_event

    removed = app.handle(tag_event("CreateTags", [world.alb[1]], {"Mirror": "false"}, "eni-off"), settings=ALL)
    assert removed["counts"]["Deleted"] == 1
    assert world.sessions(world.alb[1]) == []


def test_an_eni_gone_with_its_load_balancer_node_takes_its_session_and_is_not_counted(world: World) -> None:
    sweep(ALL)
    gone = world.alb[0]
    sandbox.delete_service_eni(world.ec2, gone)  # the node scaled in: AWS deletes its sessions too
    decisions, result = sweep(ALL)
    assert gone not in {d.eni_id for d in decisions}
    assert result["counts"]["Failed"] == 0
    assert coverage.count(REGION, decisions).in_scope == 5
    # Gone between the sweep's read and its write: skipped, out of scope, never an unmirrored ENI.
    ctx = Context(Place(REGION), ALL, app.CONTAINER)
    (source,) = inventory.service_sources(ctx, [world.eni(world.alb[1])], "race")
    decided = planner.plan_source(source, (), inventory.inventory(ctx), ALL)
    assert decided.outcome == "create"
    sandbox.delete_service_eni(world.ec2, world.alb[1])
    (done,) = apply_all([decided], ctx)
    assert (done.status, done.decision.out_of_scope) == ("skipped", planner.GONE)
    assert coverage.count(REGION, [done.decision], {world.alb[1]: done.status}).in_scope == 0


@pytest.fixture
def refusing(world: World) -> Iterator[str]:
    """EC2 answers NetworkInterfaceNotSupported for one ALB node's ENI (as for an unsupported type)."""
    refused = world.alb[0]
    original = TrafficMirrorsBackend.create_traffic_mirror_session

    def create(self: Any, network_interface_id: str, *args: Any, **kwargs: Any) -> Any:
        if network_interface_id == refused:
            from moto.ec2.exceptions import EC2ClientError

            raise EC2ClientError("NetworkInterfaceNotSupported", f"{refused} is not supported")
        return original(self, network_interface_id, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrafficMirrorsBackend, "create_traffic_mirror_session", create)
        yield refused


def test_awss_refusal_of_a_services_eni_is_final_for_that_eni(world: World, refusing: str, counter: CallCounter) -> None:
    first = app.handle(SWEEP, settings=ALL)
    assert first["counts"]["Failed"] == 1 and world.sessions(refusing) == []
    counter.clear()
    decisions, again = sweep(ALL)
    assert again["counts"]["Failed"] == 0
    assert counter.snapshot()["CreateTrafficMirrorSession"] == 0  # not tried again in this container
    assert next(d for d in decisions if d.eni_id == refusing).out_of_scope == planner.UNSUPPORTED
    assert len(world.sessions(world.alb[1])) == 1  # the other node of the same ALB is mirrored


# --- the operator CLI ---------------------------------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        list(argv),
        console=Console(file=out, width=220, color_system=None),
        err_console=Console(file=err, width=220, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def test_plan_and_coverage_show_each_sources_kind_and_what_enabling_the_others_would_cost(endpoint: str) -> None:
    clients = {name: boto3.client(name, region_name=REGION, endpoint_url=endpoint) for name in ("ec2", "elbv2")}
    ec2 = clients["ec2"]
    account = sandbox.build_account(ec2, ami=sandbox.moto_ami())
    sandbox.launch(ec2, account, account.subnets[f"{REGION}a"], tags={"Name": "web-1"})
    _, alb = sandbox.application_load_balancer(clients["elbv2"], ec2, account, "shop")
    rds = sandbox.service_eni(ec2, account.subnets[f"{REGION}b"], "rds")
    where = ("--region", REGION, "--endpoint-url", endpoint)

    code, today, _ = cli("plan", *where)  # the deployment's own MIRROR_SOURCES (unset: instances)
    assert code == 0 and "Enabling" not in today and "by kind" not in today
    assert alb[0] not in today and rds not in today

    code, out, _ = cli("plan", "--sources", "all", *where)
    assert code == 0
    assert "alb app/shop/" in out and "load-balancers, vpc-" in out and "databases, vpc-" in out
    assert "In scope by kind: 1 instances, 2 load-balancers, 1 databases." in out
    added = "Enabling load-balancers, databases (this deployment's MIRROR_SOURCES=instances) would add"
    assert f"{added} 3 mirrored ENIs: $32.85 per month (3 session(s) x 730 h x $0.015/h)." in out

    code, raw, _ = cli("plan", "--format", "json", "--sources", "all", *where)
    planned = json.loads(raw)
    assert {e["eni"]: e["kind"] for e in planned["enis"]}[rds] == "databases"
    added = planned["sources_added"]
    assert (added["kinds"], added["mirrored_enis"], added["monthly_usd"]) == (["load-balancers", "databases"], 3, 32.85)
    assert json.loads(cli("plan", "--format", "json", *where)[1])["sources_added"]["kinds"] == []

    code, text, _ = cli("coverage", "--sources", "all", *where)
    assert "By Kind" in text and "load-balancers" in text
    code, raw, _ = cli("coverage", "--format", "json", "--sources", "all", *where)
    report = json.loads(raw)
    assert [(g["kind"], g["in_scope"], g["mirrored"]) for g in report["by_kind"]] == [
        ("instances", 1, 0), ("load-balancers", 2, 0), ("databases", 1, 0)
    ]  # fmt: skip
    kinds_of = {u["eni"]: (u["kind"], u["name"]) for u in report["unmirrored"]}
    assert kinds_of[rds] == ("databases", "rds")
    assert kinds_of[alb[0]][0] == "load-balancers" and kinds_of[alb[0]][1].startswith("alb app/shop/")


def load_balancer_tag_event(name: str, request: dict[str, Any], event_id: str) -> dict[str, Any]:
    """An elbv2 or classic elb AddTags/RemoveTags as CloudTrail records it, as EventBridge delivers it."""
    record = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"},
        "eventTime": "2026-11-27T12:00:00Z",
        "eventSource": "elasticloadbalancing.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.7",
        "requestParameters": request,
        "responseElements": None,
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }
    return {**wrap(record), "source": "aws.elasticloadbalancing"}


def test_a_load_balancers_tag_change_replans_its_nodes_at_once(world: World) -> None:
    sweep(ALL)
    elbv2, elb = boto3.client("elbv2", region_name=REGION), boto3.client("elb", region_name=REGION)
    off: Any = [{"Key": "Mirror", "Value": "false"}]
    elbv2.add_tags(ResourceArns=[world.alb_arn], Tags=off)
    added = {"resourceArns": [world.alb_arn], "tags": [{"key": "Mirror", "value": "false"}]}
    assert app.handle(load_balancer_tag_event("AddTags", added, "alb-off"), settings=ALL)["counts"]["Deleted"] == 2
    assert all(world.sessions(e) == [] for e in world.alb)
    elbv2.remove_tags(ResourceArns=[world.alb_arn], TagKeys=["Mirror"])
    removed = {"resourceArns": [world.alb_arn], "tagKeys": ["Mirror"]}
    assert app.handle(load_balancer_tag_event("RemoveTags", removed, "alb-on"), settings=ALL)["counts"]["Created"] == 2
    # A Classic Load Balancer's, by name; a tag that is not ours changes nothing.
    elb.add_tags(LoadBalancerNames=["legacy"], Tags=off)
    classic = {"loadBalancerNames": ["legacy"], "tags": [{"key": "Mirror", "value": "false"}]}
    assert app.handle(load_balancer_tag_event("AddTags", classic, "clb-off"), settings=ALL)["counts"]["Deleted"] == 2
    other = {"loadBalancerNames": ["legacy"], "tags": [{"key": "Team", "value": "a"}]}
    assert app.handle(load_balancer_tag_event("AddTags", other, "clb-team"), settings=ALL)["counts"]["Ignored"] == 1
    # Without load balancers in MIRROR_SOURCES, the rule does not even match the call.
    assert "AddTags" not in json.dumps(events.rules(Settings(sources="instances,databases")))
    tag_rule = events.rules(ALL)["tag-changes"]
    assert tag_rule["source"] == ["aws.ec2", "aws.elasticloadbalancing"]
    assert [b["eventName"] for b in tag_rule["detail"]["$or"]] == [["CreateTags", "DeleteTags"], ["AddTags"], ["RemoveTags"]]
    assert events.rules(Settings())["tag-changes"]["detail"] == {  # as before MIRROR_SOURCES existed
        "eventSource": ["ec2.amazonaws.com"],
        "eventName": ["CreateTags", "DeleteTags"],
        "errorCode": [{"exists": False}],
        "requestParameters": {"tagSet": {"items": {"key": ["Mirror"]}}},
    }
