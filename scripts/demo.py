"""`make demo`: the whole automation on an embedded AWS, in a few seconds, with no account.

What runs is the real thing, end to end:

1. an embedded AWS (moto in server mode on 127.0.0.1, started and stopped here), with
   `sandbox.aws_rules()` so traffic-mirroring API calls obey EC2's rules;
2. a small sample account: a VPC over two AZs, sensors as mirror targets, filters;
3. the EventBridge rules the component deploys (`handler.events.rules()`), with an SQS
   queue as their target, as deployed;
4. real-shaped CloudTrail events put on the bus; what the rules let through is read from the
   queue and handed, as an SQS batch, to `handler.app.handle`: the Lambda's own code path;
5. a session deleted by hand, and restored; 6. a tag change; 7. the scheduled sweep;
8. someone else's session ahead of ours, and the copies AWS skipped (CloudWatch's mirror metrics);
9. the coverage report, rendered by the operator CLI's own code (`traffic_mirror.cli`).

Nothing leaves the loopback interface: fake credentials, instance metadata disabled.
"""

import contextlib
import dataclasses
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from rich.console import Console
from rich.rule import Rule
from traffic_mirror.cli import coverage_cmd, exits, render, sweep_cmd
from traffic_mirror.cli.cost import estimate
from traffic_mirror.cli.coverage import coverage
from traffic_mirror.handler import cloudwatch, events, inventory, loss, reconcile
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from testsupport import environment, logs, moto_server, sandbox
from testsupport.event_builders import EVENTS_DIR, run_instances_record, state_change, wrap

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
SETTINGS = Settings()
TAG_CALLS = frozenset(c.name for c in events.API_CALLS if c.rule == events.TAG_RULE)
"""The defaults (tag key `Mirror`, MIRROR_SCOPE=all): what a fresh deployment does."""
USER = {
    "type": "IAMUser",
    "principalId": "AIDAEXAMPLEDEMOUSER1",
    "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/alice",
    "accountId": ACCOUNT_ID,
    "accessKeyId": "AKIAEXAMPLEDEMO00001",
    "userName": "alice",
}
MOTO_ARRAY_LIMITATION = (
    "moto's EventBridge (moto {version}) cannot match a pattern inside an array of objects "
    "(requestParameters.tagSet.items[].key), so it drops this event; real EventBridge matches it "
    "and the handler would act within seconds. Here the scheduled sweep (next step) catches it instead."
)


# --- the embedded AWS ------------------------------------------------------------------------


@contextlib.contextmanager
def embedded_aws(port: int = 0) -> Iterator[str]:
    """moto in server mode on a loopback port (0: any free one), under AWS's traffic-mirroring rules."""
    with sandbox.aws_rules(), moto_server.Server(port=port) as server:
        server.reset()  # moto's backends live in this process: start from an empty account
        yield server.url


@contextlib.contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """The handler's JSON log lines, kept for the tables instead of printed; HTTP logs muted."""
    web = logging.getLogger("werkzeug")
    saved = web.level
    web.setLevel(logging.ERROR)
    try:
        with logs.captured(exclusive=True, level=logging.INFO) as records:
            yield records
    finally:
        web.setLevel(saved)


# --- events ----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trail_record(
    name: str,
    request: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
    error: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A CloudTrail management-event record, shaped like EC2's."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": dict(USER),
        "eventTime": _now(),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": f"aws-cli/2.15.30 Python/3.11.8 Linux/6.5 exe/x86_64 command/ec2.{name}",
    }
    if error:
        record["errorCode"], record["errorMessage"] = error
    record.update(
        {
            "requestParameters": dict(request) if request is not None else None,
            "responseElements": dict(response) if response is not None else None,
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT_ID,
            "eventCategory": "Management",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"ec2.{REGION}.amazonaws.com",
            },
        }
    )
    return record


def create_tags_record(resource_ids: Sequence[str], tags: Mapping[str, str]) -> dict[str, Any]:
    return trail_record(
        "CreateTags",
        {
            "resourcesSet": {"items": [{"resourceId": r} for r in resource_ids]},
            "tagSet": {"items": [{"key": k, "value": v} for k, v in tags.items()]},
        },
        {"requestId": str(uuid.uuid4()), "_return": True},
    )


def delete_session_record(session_id: str) -> dict[str, Any]:
    return trail_record(
        "DeleteTrafficMirrorSession",
        {"DeleteTrafficMirrorSessionRequest": {"TrafficMirrorSessionId": session_id}},
        {
            "DeleteTrafficMirrorSessionResponse": {
                "xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                "requestId": str(uuid.uuid4()),
                "trafficMirrorSessionId": session_id,
            }
        },
    )


def failed_run_instances_record() -> dict[str, Any]:
    return trail_record(
        "RunInstances",
        {"instanceType": "m5.large", "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]}},
        None,
        ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    )


@dataclass
class Played:
    """One event put on the bus, what it is, and whether AWS's EventBridge would match it."""

    label: str
    event: dict[str, Any]
    expected: bool
    why: str
    delivered: bool = False

    @property
    def key(self) -> str:
        return json.dumps(self.event["detail"], sort_keys=True)


@dataclass
class Bus:
    """The deployed rules on the embedded EventBridge, with the component's SQS queue as target."""

    url: str
    events: Any = field(init=False)
    sqs: Any = field(init=False)
    queue_url: str = field(init=False)
    queue_arn: str = field(init=False)

    def __post_init__(self) -> None:
        self.events = boto3.client("events", region_name=REGION, endpoint_url=self.url)
        self.sqs = boto3.client("sqs", region_name=REGION, endpoint_url=self.url)
        self.queue_url = self.sqs.create_queue(QueueName="traffic-mirror-events")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def deploy(self) -> list[str]:
        names = []
        for suffix, pattern in events.rules(SETTINGS).items():
            name = f"traffic-mirror-{suffix}"
            self.events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
            self.events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": self.queue_arn}])
            names.append(name)
        return names

    def play(self, played: Sequence[Played]) -> list[dict[str, Any]]:
        """Put the events on the bus, then receive what the rules routed to the queue."""
        for start in range(0, len(played), 10):
            entries = [
                {
                    "Source": p.event["source"],
                    "DetailType": p.event["detail-type"],
                    "Detail": json.dumps(p.event["detail"]),
                    "Resources": p.event.get("resources", []),
                }
                for p in played[start : start + 10]
            ]
            answer = self.events.put_events(Entries=entries)
            if answer.get("FailedEntryCount"):
                raise RuntimeError(f"put_events refused entries: {answer['Entries']}")
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                break
            messages.extend(got)
        by_key = {p.key: p for p in played}
        for message in messages:
            found = by_key.get(json.dumps(json.loads(message["Body"])["detail"], sort_keys=True))
            if found is not None:
                found.delivered = True
        return messages

    def to_lambda(self, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Messages as the SQS event source mapping hands them to the function."""
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def done(self, messages: Sequence[dict[str, Any]], failed: set[str]) -> None:
        """Delete what the function handled (a partial batch failure stays on the queue)."""
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _words(metric: str) -> str:
    """`AlreadyMirrored` -> `already mirrored`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", metric).lower()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- the demo --------------------------------------------------------------------------------


class Demo:
    def __init__(self, console: Console, url: str, logs: list[logging.LogRecord]) -> None:
        self.console = console
        self.url = url
        self.logs = logs
        self.ec2: Any = boto3.client("ec2", region_name=REGION, endpoint_url=url)
        self.account: sandbox.Account | None = None
        self.names: dict[str, str] = {}  # instance, target and filter id -> friendly name
        self.step = 0
        self.invocations = 0
        self.container = Container()
        """The CLI-side reads and sweeps (the Lambda's own code path keeps its own container)."""

    def context(self) -> Context:
        return Context(Place(REGION, None, self.url), SETTINGS, self.container)

    # output helpers

    def section(self, title: str, explanation: str) -> None:
        self.step += 1
        self.console.print()
        self.console.print(Rule(f"[bold]{self.step}. {title}", align="left"))
        self.console.print(explanation, highlight=False)

    def name(self, resource_id: str | None) -> str:
        if not resource_id:
            return "-"
        return self.names.get(resource_id, resource_id)

    # steps

    def build_account(self) -> None:
        self.section(
            "A sample account",
            "One VPC over two Availability Zones. In each AZ a sensor instance receives mirrored "
            "traffic (a traffic mirror target). A third sensor is tagged Mirror=pci: only ENIs "
            "tagged Mirror=pci go to it, with their own filter.",
        )
        account = sandbox.build_account(self.ec2, REGION)
        subnet_a = account.subnets[f"{REGION}a"]
        sandbox.add_eni_target(self.ec2, account, subnet_a, f"sensor-pci-{REGION}a", tags={"Mirror": "pci"})
        account.filters["pci"] = self.ec2.create_traffic_mirror_filter(
            Description="PCI: card-data traffic",
            TagSpecifications=[
                {"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "Mirror", "Value": "pci"}]}
            ],
        )["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
        self.account = account
        self.names.update({tid: name for name, tid in account.targets.items()})
        for reservation in self.ec2.describe_instances()["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                self.names[instance["InstanceId"]] = tags.get("Name", instance["InstanceId"])
        self.names.update({fid: f"{name} filter" for name, fid in account.filters.items()})

        rows = [["Resource", "Where", "Route (tag Mirror)", "Id"], ["VPC", "10.0.0.0/16", "-", account.vpc]]
        for az, subnet in account.subnets.items():
            rows.append(["subnet", az, "-", subnet])
        enis = self.ec2.describe_network_interfaces(NetworkInterfaceIds=list(account.target_enis.values()))
        az_of = {e["NetworkInterfaceId"]: e["AvailabilityZone"] for e in enis["NetworkInterfaces"]}
        for name, tid in account.targets.items():
            route = "pci" if "pci" in name else "none: everything else"
            rows.append([f"target {name}", az_of[account.target_enis[tid]], route, tid])
        rows.append(["filter default", "region", "none: everything else", account.filters["default"]])
        rows.append(["filter pci", "region", "pci", account.filters["pci"]])
        self.console.print()
        render.columns(self.console, "The sample account", rows)

    def deploy_rules(self, bus: Bus) -> None:
        self.section(
            "The event rules, as deployed",
            "The component deploys three EventBridge rules (successful EC2 API calls from "
            "CloudTrail, changes of the Mirror tag, instances entering 'running') that feed an SQS "
            "queue, which feeds the function. The same patterns are created here.",
        )
        names = bus.deploy()
        self.console.print(f"Rules: {', '.join(names)} -> queue traffic-mirror-events", highlight=False)

    def launch_workloads(self, bus: Bus) -> None:
        self.section(
            "Instances are launched; their events reach the function",
            "Six instances, each showing one rule. Each launch produces a CloudTrail RunInstances "
            "event; a few unrelated events are put on the bus too, which the patterns must filter out.",
        )
        assert self.account is not None
        a, b = self.account.subnets[f"{REGION}a"], self.account.subnets[f"{REGION}b"]
        workloads = [
            ("web-1", a, "m5.large", {}, 0, "untagged: mirrored to the nearest sensor"),
            ("app-1", b, "m5.large", {}, 1, "two ENIs: each is mirrored"),
            ("db-1", b, "m5.large", {"Mirror": "off"}, 0, "Mirror=off: opted out"),
            ("payments-1", a, "m5.large", {"Mirror": "pci"}, 0, "Mirror=pci: to the PCI sensor"),
            ("payments-2", b, "m5.large", {"Mirror": "pci"}, 0, "Mirror=pci, but no PCI sensor in its AZ"),
            ("build-1", a, "t2.micro", {}, 0, "t2 cannot be mirrored (AWS limitation)"),
        ]
        rows = [["Instance", "Type", "AZ", "Tags", "ENIs", "Shows"]]
        played: list[Played] = []
        self.instances: dict[str, dict[str, Any]] = {}
        for name, subnet, itype, tags, extra, shows in workloads:
            (instance,) = sandbox.launch(
                self.ec2, self.account, subnet, itype, {"Name": name, **tags}, 1, extra
            )
            self.instances[name] = instance
            self.names[instance["InstanceId"]] = name
            record = run_instances_record([instance], event_id=str(uuid.uuid4()))
            played.append(
                Played(f"RunInstances {name}", wrap(record, REGION), True, "a successful launch")
            )
            rows.append(
                [
                    name,
                    itype,
                    instance["Placement"]["AvailabilityZone"],
                    ", ".join(f"{k}={v}" for k, v in tags.items()) or "-",
                    str(len(instance["NetworkInterfaces"])),
                    shows,
                ]
            )
        self.console.print()
        render.columns(self.console, "Launched", rows)
        web = self.instances["web-1"]["InstanceId"]
        played += [
            Played(
                "state-change web-1 running", state_change(web, "running", time=_now()), True, "EC2's own notification"
            ),
            Played(
                "RunInstances (denied)",
                wrap(failed_run_instances_record(), REGION),
                False,
                "a failed call (errorCode): nothing was launched",
            ),
            Played(
                "CreateTags Owner=alice on web-1",
                wrap(create_tags_record([web], {"Owner": "alice"}), REGION),
                False,
                "a tag change that does not touch Mirror",
            ),
            Played("state-change web-1 pending", state_change(web, "pending", time=_now()), False, "not 'running' yet"),
        ]
        self.deliver(bus, played)
        self.show_state()

    def deliver(self, bus: Bus, played: Sequence[Played]) -> dict[str, Any] | None:
        """Play events through the rules; hand what matched to the Lambda's code path."""
        from traffic_mirror.handler import (
            app,  # after the environment is isolated: it reads settings on import
        )

        messages = bus.play(played)
        rows = [["AWS would", "Embedded EventBridge", "Event: what it is"]]
        surprises = []
        for p in played:
            if p.delivered == p.expected:
                got = "delivered" if p.delivered else "filtered out"
            else:
                got = "filtered out (moto limitation)" if p.expected else "delivered (unexpected)"
                surprises.append(p)
            rows.append(["deliver" if p.expected else "filter out", got, f"{p.label}: {p.why}"])
        self.console.print()
        render.columns(self.console, "Events put on the bus", rows)
        matched = sum(p.delivered for p in played)
        dropped = len(played) - matched
        self.console.print(
            f"[bold]{_plural(matched, 'event')} matched the deployed patterns, "
            f"{dropped} {'was' if dropped == 1 else 'were'} filtered out.[/]"
        )
        for p in surprises:
            if p.expected and p.event["detail"].get("eventName") in TAG_CALLS:
                version = sys.modules["moto"].__version__
                self.console.print(f"[yellow]Note:[/] {MOTO_ARRAY_LIMITATION.format(version=version)}")
            else:
                self.console.print(
                    f"[yellow]Note:[/] the embedded EventBridge disagrees with AWS on '{p.label}'."
                )
        if not messages:
            return None
        self.logs.clear()
        started = time.monotonic()
        answer = app.handle(bus.to_lambda(messages), endpoint=self.url, settings=SETTINGS)
        elapsed = (time.monotonic() - started) * 1000
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        bus.done(messages, failed)
        self.show_handler_summary(len(messages), elapsed, failed)
        return answer

    def show_handler_summary(self, count: int, elapsed_ms: float, failed: set[str]) -> None:
        summary = next((r for r in reversed(self.logs) if r.getMessage() == "summary"), None)
        tally = {k: v for k, v in getattr(summary, "counts", {}).items() if v}
        calls = sum(getattr(summary, "api_calls", {}).values())
        said = ", ".join(f"{v} {_words(k)}" for k, v in tally.items()) or "nothing to do"
        self.invocations += 1
        cold = "cold start: the first call creates the clients, " if self.invocations == 1 else ""
        self.console.print(
            f"handler.app.handle got an SQS batch of {count} message(s): {said} "
            f"({cold}{elapsed_ms:.0f} ms, {calls} EC2 API calls"
            + (f", {len(failed)} message(s) left for a retry" if failed else "")
            + ").",
            highlight=False,
        )

    def decisions(self) -> list[Any]:
        decisions, _ = reconcile.read_only_plan(self.context())
        return decisions

    def sessions(self) -> dict[str, dict[str, Any]]:
        found = self.ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        return {s["NetworkInterfaceId"]: s for s in found}

    def show_state(self) -> None:
        """What is mirrored (ENI -> session -> target -> filter), and what is not, and why."""
        sessions = self.sessions()
        decisions = self.decisions()
        mirrored = [["Instance", "ENI", "Session", "Target, filter"]]
        skipped: list[Any] = []
        for d in sorted(decisions, key=lambda d: (self.name(d.instance_id), d.eni_id)):
            session = sessions.get(d.eni_id)
            if session is not None:
                tags = {t["Key"]: t["Value"] for t in session.get("Tags", [])}
                mirrored.append(
                    [
                        self.name(d.instance_id),
                        d.eni_id,
                        session["TrafficMirrorSessionId"]
                        + ("" if tags.get(MANAGED_TAG_KEY) else " (not ours)"),
                        f"{self.name(session['TrafficMirrorTargetId'])}, "
                        f"{self.name(session['TrafficMirrorFilterId'])}",
                    ]
                )
            else:
                skipped.append(d)
        self.console.print()
        render.columns(self.console, "Mirrored", mirrored)
        self.console.print()
        render.line(
            self.console,
            "Not mirrored (in scope: the automation should mirror it, and says why it cannot; "
            "out of scope: excluded by design, not counted in coverage)",
            style="bold",
        )
        for d in skipped:
            category = d.out_of_scope
            scope = "out of scope" if category else "in scope"
            style = "dim" if category else "yellow"
            render.record(
                self.console, render.head(self.name(d.instance_id), style, d.eni_id, scope), [d.reason]
            )

    def delete_and_restore(self, bus: Bus) -> None:
        self.section(
            "Someone deletes a session; it comes back",
            "A user deletes web-1's session with the EC2 API. CloudTrail records "
            "DeleteTrafficMirrorSession; the rule matches it and the function re-checks the "
            "region, so the missing session is recreated.",
        )
        eni = self.instances["web-1"]["NetworkInterfaces"][0]["NetworkInterfaceId"]
        before = self.sessions()[eni]
        old = before["TrafficMirrorSessionId"]
        self.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=old)
        self.console.print(f"Deleted {old} (web-1, {eni}); web-1 is no longer mirrored.", highlight=False)
        played = [
            Played(
                f"DeleteTrafficMirrorSession {old}",
                wrap(delete_session_record(old), REGION),
                True,
                "a session deleted by a user",
            )
        ]
        self.deliver(bus, played)
        after = self.sessions().get(eni)
        if after is None:
            self.console.print(f"[bold red]Not restored:[/] {eni} has no session.")
            return
        self.console.print(
            f"[bold green]Restored:[/] web-1 ({eni}) is mirrored again by {after['TrafficMirrorSessionId']} "
            f"(was {old}) to {self.name(after['TrafficMirrorTargetId'])} with the "
            f"{self.name(after['TrafficMirrorFilterId'])}.",
            highlight=False,
        )

    def tag_change(self, bus: Bus) -> None:
        self.section(
            "An owner opts an instance out",
            "app-1's owner tags it Mirror=off. CloudTrail records CreateTags with the Mirror key, "
            "which the tag-changes rule matches; the function then removes the sessions it "
            "created (never anyone else's).",
        )
        app_1 = self.instances["app-1"]["InstanceId"]
        self.ec2.create_tags(Resources=[app_1], Tags=[{"Key": "Mirror", "Value": "off"}])
        played = [
            Played(
                "CreateTags Mirror=off on app-1",
                wrap(create_tags_record([app_1], {"Mirror": "off"}), REGION),
                True,
                "the Mirror tag changed",
            )
        ]
        self.deliver(bus, played)
        left = [
            e
            for e in self.instances["app-1"]["NetworkInterfaces"]
            if e["NetworkInterfaceId"] in self.sessions()
        ]
        if left:
            self.console.print(f"app-1 still has {len(left)} session(s) for now.")
        else:
            self.console.print("[green]app-1's sessions were removed.[/]")

    def sweep(self) -> None:
        self.section(
            "The scheduled sweep: the safety net",
            "An instance, batch-1, is launched while no event reaches the function (a lost event, a "
            "trail outage). The sweep (every few minutes, and `traffic-mirror sweep --apply`) "
            "compares the whole region with what should be, and makes only the missing changes.",
        )
        assert self.account is not None
        (instance,) = sandbox.launch(
            self.ec2, self.account, self.account.subnets[f"{REGION}b"], "m5.large", {"Name": "batch-1"}
        )
        self.instances["batch-1"] = instance
        self.names[instance["InstanceId"]] = "batch-1"
        outcome = reconcile.sweep(self.context(), reconcile.SweepPolicy(trigger=f"demo-{uuid.uuid4()}"))
        self.console.print()
        sweep_cmd.render_sweep(self.console, REGION, outcome.results, dry_run=False, names=self.names)
        self.show_state()

    def someone_else(self, bus: Bus) -> None:
        self.section(
            "Someone else copies web-1's traffic; and the copies AWS skipped",
            "Someone with EC2 rights deletes web-1's session (number 1) and creates one of their own as "
            "number 1, to a target in a VPC of theirs; the DeleteTrafficMirrorSession event restores ours, as "
            "number 2. AWS gives each packet to the lowest-numbered session whose filter accepts it, so web-1's "
            "packets now go to them. The automation never touches a session it did not create: it reports it "
            "(a warning per session, and the sweep's UntrustedSessions metric, alarmed above 0), and counts "
            "web-1 as not mirrored. Meanwhile CloudWatch counts the copies AWS skipped for lack of bandwidth "
            "(NetworkSkipMirrorIn/Out, beside NetworkMirrorIn/Out).",
        )
        assert self.account is not None
        vpc = self.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.0.0/20", AvailabilityZone=f"{REGION}a")[
            "Subnet"
        ]["SubnetId"]
        theirs = sandbox.add_eni_target(self.ec2, self.account, subnet, "capture-box")
        self.names[theirs] = "capture-box (their target)"
        eni = self.instances["web-1"]["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ours = self.sessions()[eni]["TrafficMirrorSessionId"]
        self.ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=ours)
        rogue = self.ec2.create_traffic_mirror_session(
            NetworkInterfaceId=eni,
            TrafficMirrorTargetId=theirs,
            TrafficMirrorFilterId=self.account.filters["default"],
            SessionNumber=1,
        )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
        self.console.print(
            f"Deleted {ours}; created {rogue} (number 1) from web-1 ({eni}) to {theirs} in {vpc}.", highlight=False
        )
        self.logs.clear()
        played = [
            Played(f"DeleteTrafficMirrorSession {ours}", wrap(delete_session_record(ours), REGION), True, "ours deleted")
        ]
        self.deliver(bus, played)
        for record in (r for r in self.logs if r.getMessage() == "untrusted session"):
            found = vars(record)
            render.line(
                self.console,
                f"The function's warning: untrusted session {found['session']} on {found['eni']} (number "
                f"{found['session_number']}, {'ahead of ours' if found['intercepts'] else 'behind ours'}) to "
                f"{found['target']} of account {found['target_owner']}: {found['reason']}.",
                style="bold red",
            )
        cw = boto3.client("cloudwatch", region_name=REGION, endpoint_url=self.url)
        sandbox.publish_mirror_metrics(cw, self.instances["payments-1"]["InstanceId"], 8_000_000, 2_000_000)
        sandbox.publish_mirror_metrics(cw, self.instances["batch-1"]["InstanceId"], 5_000_000)
        self.console.print(
            "CloudWatch, last hour: payments-1 mirrored 8.0 MB and skipped 2.0 MB; batch-1 mirrored 5.0 MB.",
            highlight=False,
        )

    def coverage(self) -> None:
        self.section(
            "Is everything mirrored? The coverage report",
            "What an operator sees with `traffic-mirror coverage --region us-east-1` (or "
            "`--format json`, or `--min 100` to fail a CI job or a cron alert when something is "
            "not mirrored). Sessions of others to untrusted targets come first; out-of-scope ENIs "
            "(sensors, opt-outs, unsupported types) are not counted; the mirror loss is CloudWatch's.",
        )
        decisions, _ = reconcile.read_only_plan(self.context())
        report_ = coverage(REGION, decisions, self.names)
        measured = cloudwatch.mirror_loss(self.context(), loss.mirrored_instances(decisions), loss.DEFAULT_WINDOW_SECONDS)
        report_ = dataclasses.replace(report_, loss=measured)
        targets = {t.target_id: t for t in inventory.inventory(self.context()).targets}
        self.console.print()
        coverage_cmd.render_coverage(
            self.console, report_, cost=estimate(decisions, targets), account=ACCOUNT_ID, names=self.names,
            loss_threshold=SETTINGS.loss_alarm_percent,
        )  # fmt: skip
        if report_.below(100):
            render.line(
                self.console,
                f"Here `coverage --min 100` would exit with code {exits.BELOW_MIN}: web-1's packets go to "
                f"someone else's session first, and payments-2 asks for the PCI sensor, of which there is none "
                f"in {REGION}b.",
            )


PLAYGROUND_PORT = 5000
"""`make playground` serves the embedded AWS here (another free port when this one is taken)."""
CLI = ".venv/bin/traffic-mirror"


def playground_commands(url: str) -> list[str]:
    """What to try against the kept embedded AWS (the README lists the same; a test runs them)."""
    at = f"--endpoint-url {url}"
    return [
        f"{CLI} plan {at}",
        f"{CLI} coverage {at}",
        f"{CLI} coverage {at} --format json",
        f"{CLI} coverage {at} --min 100  # exits {exits.BELOW_MIN}: web-1 is intercepted, payments-2 has no PCI sensor",
        f"{CLI} sweep {at}",
        f"{CLI} sweep {at} --apply --summary",
    ]


def free_port(preferred: int) -> int:
    """`preferred` if nothing listens there, else 0 (any free port): a busy port must not hang the start."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return 0
    return preferred


def wait_for_ctrl_c() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def print_next(console: Console, url: str | None) -> None:
    """The exact commands to try next: against the playground when it is kept, else the basics."""
    console.print()
    render.line(console, "Next", style="bold")
    if url is None:
        render.line(
            console, "make playground    this demo, with its embedded AWS kept running to try the CLI on", 2
        )
        render.line(console, "make test          the whole test suite (what CI runs)", 2)
        render.line(console, f"{CLI} --help    the operator CLI, for a real account (--profile, --region)", 2)
        return
    render.line(console, f"The embedded AWS keeps running on {url} until Ctrl-C. In another terminal:", 2)
    render.line(console, f"export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION={REGION}", 2)
    for command in playground_commands(url):
        render.line(console, command, 2)


def main(
    console: Console | None = None,
    *,
    keep: bool = False,
    wait: Callable[[str], None] | None = None,
) -> int:
    """Play the story; with `keep`, leave the embedded AWS up and call `wait(url)` (default: until Ctrl-C)."""
    console = console or render.make_console()
    started = time.monotonic()
    template = EVENTS_DIR / "RunInstances__elastic-integrations__1.json"
    if not template.exists():
        console.print(f"[red]error:[/] the recorded CloudTrail events are missing ({template}).")
        return 1
    render.line(console, "Automated VPC Traffic Mirroring: a demo on an embedded AWS", style="bold")
    render.line(console, "Real handler code, real event patterns, real-shaped CloudTrail events.")
    render.line(console, "No AWS account is used: everything runs on 127.0.0.1 and stops at the end.")
    with environment.isolated():
        # Imported once the environment is isolated (it reads settings and may create clients).
        from traffic_mirror.handler import app  # noqa: F401
    with environment.isolated(), captured_logs() as records:
        console.print()
        console.print(Rule("[bold]0. An embedded AWS", align="left"))
        with embedded_aws(free_port(PLAYGROUND_PORT) if keep else 0) as url:
            render.line(
                console,
                f"moto in server mode on {url}, with EC2's traffic-mirroring rules (3 sessions per "
                "ENI, supported instance types, same-AZ ENI targets, idempotent ClientToken).",
            )
            demo = Demo(console, url, records)
            bus = Bus(url)
            demo.build_account()
            demo.deploy_rules(bus)
            demo.launch_workloads(bus)
            demo.delete_and_restore(bus)
            demo.tag_change(bus)
            demo.sweep()
            demo.someone_else(bus)
            demo.coverage()
            if keep:
                console.print()
                render.line(console, f"Demo finished in {time.monotonic() - started:.1f} s.", style="dim")
                print_next(console, url)
                (wait or (lambda _url: wait_for_ctrl_c()))(url)
        console.print()
        render.line(
            console,
            f"Embedded AWS stopped. Demo finished in {time.monotonic() - started:.1f} s.",
            style="dim",
        )
        if not keep:
            print_next(console, None)
    return 0


if __name__ == "__main__":
    sys.exit(main(keep="--keep" in sys.argv[1:]))
