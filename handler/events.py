"""The event vocabulary: every event type the handler understands, in one table, and its parser.

Each entry names the event, the EventBridge rule that subscribes to it (the component and the
member template build their rules from `rules(settings)`, so they match exactly what is parsed
here), when it is subscribed, and how its record becomes a `Change`. Adding an event type is one
entry and its parser below (and, if it needs new reads, the reconcile step that uses them): e.g.
CreateNetworkInterface, subscribed only when MIRROR_SOURCES selects a service's ENIs, and matched
only when a service made the call (`match`).

Parsing is pure: no AWS calls, no exceptions on bad input. Real CloudTrail records vary (see
tests/events): `tagSet` missing, `{}`, `{"items": []}` or `""`; failed and dry-run calls carry
`errorCode` and a null `responseElements`; ids come in odd lengths. A record that cannot be used
becomes a `Skip` with the reason, which the caller logs and counts; retrying would not fix it.
"""

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import kinds
from .model import MEMBER_SESSION_NAME, Source
from .settings import Settings

ChangeKind = Literal["launch", "instances", "enis", "sweep", "release-instances", "release-region", "sensors"]

_INSTANCE_ID = re.compile(r"^i-[0-9a-zA-Z]{6,32}$")
_ENI_ID = re.compile(r"^eni-[0-9a-zA-Z]{6,32}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-zA-Z]{6,32}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-zA-Z]{6,32}$")
_AZ = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d[a-z0-9]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_TARGET_ID = re.compile(r"^(tmt|traf-mir-tar)-[0-9a-zA-Z]{6,32}$")  # moto: traf-mir-tar-
_ELB_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:(loadbalancer|listener|targetgroup)/\S+$")

# --- the envelopes ---------------------------------------------------------------------------
CLOUDTRAIL = "AWS API Call via CloudTrail"
STATE_CHANGE = "EC2 Instance State-change Notification"
SCHEDULED = "Scheduled Event"
SERVICE_CALLER = ".amazonaws.com"
"""How CloudTrail names an AWS service that made a call on the account's behalf (`sourceIPAddress`,
`invokedBy`: `elasticloadbalancing.amazonaws.com`, `rds.amazonaws.com`, ...)."""
EC2_SOURCE = "aws.ec2"
"""EventBridge's `source` for CloudTrail records of EC2 calls and EC2's state changes."""
SCHEDULE_SOURCE = "aws.events"
"""EventBridge's `source` for a schedule rule's ticks."""
TEARDOWN_SOURCE = "traffic-mirror.teardown"
RELEASE_REGION = "Release Managed Sessions"
"""The component's teardown hook (an `aws.lambda_.Invocation` with lifecycle scope CRUD), or an
operator's `aws lambda invoke`: delete every session of the region tagged with our ManagedBy.
Only ever from a direct invocation: a queue message of this shape is rejected."""
RELEASE_ON_DELETE = "release_on_delete"
"""In the hook's `detail`: false when the deployment keeps its sessions on `pulumi destroy`."""
LIFECYCLE_KEY = "tf"
"""Where pulumi-aws's CRUD invocation puts `{"action": "create" | "update" | "delete", ...}`."""


@dataclass(frozen=True)
class Home:
    """Where this function may act: only events for these regions count (accounts: `accounts.allowed`).

    `regions` None: any region botocore knows is accepted (`known_regions`).
    """

    regions: frozenset[str] | None = None
    known_regions: frozenset[str] = frozenset()
    """Regions botocore has endpoints for; an unknown region never reaches botocore."""


ANYWHERE = Home()
"""No check of the region beyond its shape (tests and record replays)."""


def _region_refused(region: str, home: Home) -> str | None:
    """Why an event's region is not ours, or None."""
    if home.regions is not None and region not in home.regions:
        return f"region {region} is not this function's ({', '.join(sorted(home.regions))})"
    if home.known_regions and region not in home.known_regions:
        return f"unknown region {region!r}"
    return None


@dataclass(frozen=True)
class Change:
    """What an event asks the handler to look at."""

    kind: ChangeKind
    event_name: str
    event_id: str
    region: str
    sources: tuple[Source, ...] = ()
    instance_ids: tuple[str, ...] = ()
    eni_ids: tuple[str, ...] = ()
    refresh_inventory: bool = False
    trigger_unique: bool = True
    """The event id is unique per event (CloudTrail's eventID, EventBridge's id), so its
    redeliveries share ClientTokens. False (sweeps from the schedule, after deploy or by hand):
    the id can repeat across runs, and the invocation's request id is mixed in."""
    scheduled: bool = False
    """A tick of the sweep's schedule rule (its sweep leaves just-attached ENIs to their events)."""
    fleet: bool = False
    """A sweep of every account the handler covers (the schedule, the post-deploy or a manual sweep)."""
    rejected: tuple[str, ...] = field(default=())
    """Parts of an otherwise usable event that were dropped (e.g. a malformed instance)."""
    account: str = ""
    """The account the event happened in (the envelope's `account`, else the record's)."""
    eni_descriptions: tuple[str, ...] = ()
    """ENIs named by their description: a load balancer's nodes (`ELB app/<name>/<id>`, `ELB <name>`)."""
    resources: tuple[str, ...] = ()
    """`sensors`: what may have broken a sensor besides `instance_ids` (a traffic mirror target id,
    a load balancer, listener or target group ARN). Checked against the cached inventory: a
    resource that is no sensor's costs no API call."""


@dataclass(frozen=True)
class Skip:
    """An event that needs nothing: `rejected` (unusable) or `ignored` (nothing to do)."""

    status: Literal["rejected", "ignored"]
    reason: str
    event_name: str = ""
    event_id: str = ""


def _items(value: Any) -> list[Mapping[str, Any]]:
    """`{"items": [...]}`, `{"item": [...]}`, a bare list, `{}`, `""` or None -> list of dicts."""
    if isinstance(value, Mapping):
        value = value.get("items", value.get("item"))
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def tags_of(value: Any) -> dict[str, str]:
    """CloudTrail tagSet -> {key: value}; tolerate every shape seen in real records."""
    tags: dict[str, str] = {}
    for item in _items(value):
        key = item.get("key", item.get("Key"))
        if isinstance(key, str):
            raw = item.get("value", item.get("Value", ""))
            tags[key] = raw if isinstance(raw, str) else ""
    return tags


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _event_id(value: Any) -> str:
    """An event id that can be encoded: it seeds ClientTokens (a lone surrogate cannot be hashed)."""
    return _str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _launch_sources(record: Mapping[str, Any], event_id: str) -> tuple[list[Source], list[str], list[str]]:
    """Sources from a RunInstances response; instances whose ENIs are incomplete go to be described."""
    sources: list[Source] = []
    to_describe: list[str] = []
    rejected: list[str] = []
    response = record.get("responseElements")
    for instance in _items(response.get("instancesSet") if isinstance(response, Mapping) else None):
        instance_id = _str(instance.get("instanceId"))
        if not _INSTANCE_ID.match(instance_id):
            rejected.append(f"malformed instance id {instance_id!r}")
            continue
        placement = instance.get("placement")
        az = _str(placement.get("availabilityZone")) if isinstance(placement, Mapping) else ""
        itype = _str(instance.get("instanceType"))
        instance_tags = tags_of(instance.get("tagSet"))
        enis = _items(instance.get("networkInterfaceSet"))
        complete = bool(enis) and bool(itype)
        found: list[Source] = []
        for eni in enis:
            eni_id = _str(eni.get("networkInterfaceId"))
            subnet = _str(eni.get("subnetId")) or _str(instance.get("subnetId"))
            vpc = _str(eni.get("vpcId")) or _str(instance.get("vpcId"))
            eni_az = az or _str(eni.get("availabilityZone"))
            if not (
                _ENI_ID.match(eni_id)
                and _SUBNET_ID.match(subnet)
                and _VPC_ID.match(vpc)
                and _AZ.match(eni_az)
            ):
                complete = False
                break
            found.append(
                Source(
                    eni_id=eni_id,
                    instance_id=instance_id,
                    instance_type=itype,
                    subnet_id=subnet,
                    vpc_id=vpc,
                    az=eni_az,
                    instance_tags=instance_tags,
                    eni_tags=tags_of(eni.get("tagSet")),
                    interface_type=_str(eni.get("interfaceType")) or "interface",
                    trigger=event_id,
                )
            )
        if complete:
            sources.extend(found)
        else:
            to_describe.append(instance_id)
    return sources, to_describe, rejected


def _instance_ids(record: Mapping[str, Any]) -> list[str]:
    """Instance ids from a Start/Stop response, falling back to the request."""
    for part in ("responseElements", "requestParameters"):
        section = record.get(part)
        if isinstance(section, Mapping):
            ids = [_str(i.get("instanceId")) for i in _items(section.get("instancesSet"))]
            if ids:
                return ids
    return []


def _actor_is_self(record: Mapping[str, Any], account: str, settings: Settings) -> bool:
    """True when this tool itself made the call, so it never fights itself.

    Recognised by exact ARNs only, never by a name pattern anyone could copy: the role that
    issued the call's credentials is the function's own execution role (MIRROR_ROLE_ARN), or, in
    a covered account, the member role of that very account assumed under our session name.
    """
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    issuer_arn = _str(issuer.get("arn")) if isinstance(issuer, Mapping) else ""
    if not issuer_arn:
        return False
    if settings.role_arn and issuer_arn == settings.role_arn:
        return True
    if not settings.accounts or not _ACCOUNT.match(account):
        return False
    partition = settings.role_arn.split(":")[1] if settings.role_arn else "aws"
    member_role = f"arn:{partition}:iam::{account}:role/{settings.member_role_name}"
    session = f":assumed-role/{settings.member_role_name}/{MEMBER_SESSION_NAME}"
    return issuer_arn == member_role and _str(identity.get("arn")).endswith(session)


# --- the API calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One CloudTrail record of a successful call, as a parser needs it."""

    name: str
    record: Mapping[str, Any]
    request: Mapping[str, Any]
    region: str
    event_id: str
    settings: Settings


def _run_instances(call: Call) -> Change | Skip:
    name, event_id = call.name, call.event_id
    if not isinstance(call.record.get("responseElements"), Mapping):
        return Skip("rejected", "RunInstances without responseElements", name, event_id)
    sources, to_describe, rejected = _launch_sources(call.record, event_id)
    if not sources and not to_describe:
        why = "; ".join(rejected) or "no instances in responseElements.instancesSet"
        return Skip("rejected", f"RunInstances: {why}", name, event_id)
    return Change(
        "launch", name, event_id, call.region, tuple(sources), tuple(to_describe), rejected=tuple(rejected)
    )


def _instances_named(call: Call) -> tuple[tuple[str, ...], tuple[str, ...]] | Skip:
    """(valid instance ids, why the others were dropped), or a Skip when none is usable."""
    ids = _instance_ids(call.record)
    valid = tuple(i for i in ids if _INSTANCE_ID.match(i))
    bad = tuple(f"malformed instance id {i!r}" for i in ids if not _INSTANCE_ID.match(i))
    if not valid:
        why = f"{call.name}: no valid instance id ({'; '.join(bad) or 'none'})"
        return Skip("rejected", why, call.name, call.event_id)
    return valid, bad


def _start_instances(call: Call) -> Change | Skip:
    named = _instances_named(call)
    if isinstance(named, Skip):
        return named
    valid, bad = named
    return Change("instances", call.name, call.event_id, call.region, instance_ids=valid, rejected=bad)


def _stop_instances(call: Call) -> Change | Skip:
    named = _instances_named(call)
    if isinstance(named, Skip):
        return named
    if not call.settings.release_on_stop:
        why = "StopInstances: sessions are kept (MIRROR_RELEASE_ON_STOP is off)"
        return Skip("ignored", why, call.name, call.event_id)
    valid, bad = named
    return Change("release-instances", call.name, call.event_id, call.region, instance_ids=valid, rejected=bad)


def _attach(call: Call) -> Change | Skip:
    eni = _str(call.request.get("networkInterfaceId"))
    if not _ENI_ID.match(eni):
        return Skip("rejected", f"AttachNetworkInterface: malformed ENI id {eni!r}", call.name, call.event_id)
    return Change("enis", call.name, call.event_id, call.region, eni_ids=(eni,))


def _detach(call: Call) -> Change | Skip:
    # The record names only the attachment id; the sweep finds detached ENIs' sessions.
    if not call.settings.release_on_stop:
        why = "DetachNetworkInterface: sessions are kept (MIRROR_RELEASE_ON_STOP is off)"
        return Skip("ignored", why, call.name, call.event_id)
    return Change("sweep", call.name, call.event_id, call.region)


def _session_deleted(call: Call) -> Change | Skip:
    # A deleted session cannot be described: the sweep's diff finds the ENI that lost it.
    return Change("sweep", call.name, call.event_id, call.region)


def _by_service(record: Mapping[str, Any]) -> bool:
    """The call was made by an AWS service (its service-linked role), not by a person or a program."""
    identity = record.get("userIdentity")
    invoked = _str(identity.get("invokedBy")) if isinstance(identity, Mapping) else ""
    return _str(record.get("sourceIPAddress")).endswith(SERVICE_CALLER) or invoked.endswith(SERVICE_CALLER)


def _service_eni_created(call: Call) -> Change | Skip:
    # A load balancer's new node or a database's ENI: EC2's own description of it (read by id)
    # says whose it is; MIRROR_SOURCES says whether that kind is mirrored.
    name, event_id = call.name, call.event_id
    if not kinds.with_services(call.settings.kinds):
        return Skip("ignored", f"{name}: MIRROR_SOURCES={call.settings.sources} mirrors no service's ENIs", name, event_id)
    response = call.record.get("responseElements")
    eni = response.get("networkInterface") if isinstance(response, Mapping) else None
    eni_id = _str(eni.get("networkInterfaceId")) if isinstance(eni, Mapping) else ""
    if not _ENI_ID.match(eni_id):
        return Skip("rejected", f"{name}: no valid ENI id in responseElements ({eni_id!r})", name, event_id)
    if not _by_service(call.record) or (isinstance(eni, Mapping) and eni.get("requesterManaged") is False):
        why = f"{name} not made by an AWS service: the ENI is mirrored once attached to an instance"
        return Skip("ignored", why, name, event_id)
    return Change("enis", name, event_id, call.region, eni_ids=(eni_id,))


def _load_balancer_tags_changed(call: Call) -> Change | Skip:
    # elbv2 (`resourceArns`) and classic elb (`loadBalancerNames`) AddTags/RemoveTags: the nodes'
    # ENIs take their load balancer's tags, so they are planned again (found by their description).
    name, event_id = call.name, call.event_id
    watched = watched_tag_keys(call.settings)
    key = " or ".join(watched)
    if "load-balancers" not in call.settings.kinds:
        return Skip("ignored", f"{name}: MIRROR_SOURCES={call.settings.sources} mirrors no load balancer", name, event_id)
    request = call.request
    keys = {_str(t.get("key")) for t in request.get("tags") or [] if isinstance(t, Mapping)}
    keys |= {_str(k) for k in request.get("tagKeys") or []}
    if not keys & set(watched):
        return Skip("ignored", f"{name} does not touch the {key} tag", name, event_id)
    arns = [_str(a) for a in request.get("resourceArns") or []]
    names = [_str(n) for n in request.get("loadBalancerNames") or []]
    found = [*filter(None, map(kinds.alb_description, arns)), *filter(None, map(kinds.clb_description, names))]
    if not found:
        return Skip("ignored", f"{name} on no Application or Classic Load Balancer", name, event_id)
    return Change("enis", name, event_id, call.region, eni_descriptions=tuple(sorted(set(found))))


def _terminated(call: Call) -> Change | Skip:
    # AWS deletes an ENI's sessions together with the ENI: nothing to do.
    return Skip("ignored", "TerminateInstances: AWS deletes the sessions with the ENIs", call.name, call.event_id)


def watched_tag_keys(settings: Settings) -> list[str]:
    """The tag keys whose changes are events: the mirror tag, and under a cap the priority tag."""
    keys = [settings.tag_key]
    if settings.max_sessions is not None and settings.priority_tag_key not in keys:
        keys.append(settings.priority_tag_key)
    return keys


def _tags_changed(call: Call) -> Change | Skip:
    name, event_id, region = call.name, call.event_id, call.region
    watched = watched_tag_keys(call.settings)
    key = " or ".join(watched)
    keys = {_str(t.get("key")) for t in _items(call.request.get("tagSet"))}
    if name == "CreateTags" and not keys & set(watched):
        return Skip("ignored", f"{name} does not touch the {key} tag", name, event_id)
    if name == "DeleteTags" and keys and not keys & set(watched):
        # DeleteTags without a tagSet deletes every tag, ours included.
        return Skip("ignored", f"{name} does not touch the {key} tag", name, event_id)
    resources = [_str(r.get("resourceId")) for r in _items(call.request.get("resourcesSet"))]
    instances = tuple(r for r in resources if _INSTANCE_ID.match(r))
    enis = tuple(r for r in resources if _ENI_ID.match(r))
    if any(r.startswith(("tmt-", "tmf-", "traf-mir-")) for r in resources):
        # A sensor or filter changed route: every ENI may be affected.
        return Change("sweep", name, event_id, region, refresh_inventory=True)
    if not instances and not enis:
        return Skip("ignored", f"{name} on resources that are not instances or ENIs", name, event_id)
    return Change("instances" if instances else "enis", name, event_id, region, instance_ids=instances, eni_ids=enis)


def _param(request: Mapping[str, Any], name: str) -> str:
    """A request parameter as CloudTrail records it: lowerCamel (`loadBalancerArn`), the API's own
    name, or inside EC2's `<Action>Request` wrapper (traffic mirroring's newer calls)."""
    for key in (name[0].lower() + name[1:], name):
        if isinstance(request.get(key), str):
            return _str(request[key])
    for value in request.values():
        if isinstance(value, Mapping):
            found = _param(value, name)
            if found:
                return found
    return ""


def _target_deleted(call: Call) -> Change | Skip:
    # Sessions of other accounts on it go inactive (AWS): the target's owner moves them.
    target = _param(call.request, "TrafficMirrorTargetId")
    if not _TARGET_ID.match(target):
        return Skip("rejected", f"{call.name}: malformed target id {target!r}", call.name, call.event_id)
    return Change("sensors", call.name, call.event_id, call.region, resources=(target,))


def _load_balancer_changed(call: Call) -> Change | Skip:
    """DeleteLoadBalancer, DeleteListener, DeregisterTargets: an NLB sensor may have stopped
    receiving (a classic load balancer, named without an ARN, is never a sensor)."""
    name = {"DeleteLoadBalancer": "LoadBalancerArn", "DeleteListener": "ListenerArn"}.get(call.name, "TargetGroupArn")
    arn = _param(call.request, name)
    if not _ELB_ARN.match(arn):
        why = f"{call.name}: no load balancer ARN ({name}); not a Network Load Balancer sensor"
        return Skip("ignored", why, call.name, call.event_id)
    return Change("sensors", call.name, call.event_id, call.region, resources=(arn,))


API_RULE = "api-calls"
TAG_RULE = "tag-changes"
STATE_RULE = "state-changes"
RULES: Mapping[str, str] = {
    API_RULE: "successful API calls that can need a traffic mirror session or break a sensor",
    TAG_RULE: "changes to the mirror tag",
    STATE_RULE: "EC2 instance state changes (a source starting, a sensor stopping)",
}
"""The EventBridge rules the component deploys (name suffix -> description)."""


def _always(_: Settings) -> bool:
    return True


def _releasing(settings: Settings) -> bool:
    return settings.release_on_stop


def _services(settings: Settings) -> bool:
    return kinds.with_services(settings.kinds)


def _made_by_a_service(_: Settings) -> Mapping[str, Any]:
    return {"sourceIPAddress": [{"suffix": SERVICE_CALLER}]}


def _load_balancers(settings: Settings) -> bool:
    return "load-balancers" in settings.kinds


def _tag_set_names(settings: Settings) -> Mapping[str, Any]:
    """EC2's CreateTags/DeleteTags naming a watched key (inside the tagSet array)."""
    return {"requestParameters": {"tagSet": {"items": {"key": watched_tag_keys(settings)}}}}


def _tags_named(settings: Settings) -> Mapping[str, Any]:
    """elbv2's and classic elb's AddTags naming a watched key."""
    return {"requestParameters": {"tags": {"key": watched_tag_keys(settings)}}}


def _keys_named(settings: Settings) -> Mapping[str, Any]:
    """elbv2's RemoveTags (`tagKeys`) or classic elb's (`tags`) naming a watched key."""
    key = watched_tag_keys(settings)
    return {"$or": [{"requestParameters": {"tagKeys": key}}, {"requestParameters": {"tags": {"key": key}}}]}


@dataclass(frozen=True)
class ApiCall:
    """One CloudTrail event the handler understands."""

    name: str
    parse: Callable[[Call], Change | Skip]
    rule: str | None = API_RULE
    """The rule that subscribes to it (None: understood when it arrives, never subscribed)."""
    subscribed: Callable[[Settings], bool] = _always
    service: str = "ec2"
    """The calling service: the record's eventSource is `<service>.amazonaws.com`, EventBridge's
    source `aws.<service>`."""
    match: Callable[[Settings], Mapping[str, Any]] | None = None
    """What else the record must show for the rule to deliver it (pattern fields under `detail`)."""

    @property
    def source(self) -> str:
        return f"aws.{self.service}"


API_CALLS: tuple[ApiCall, ...] = (
    ApiCall("RunInstances", _run_instances),
    ApiCall("StartInstances", _start_instances),
    ApiCall("AttachNetworkInterface", _attach),
    ApiCall("DeleteTrafficMirrorSession", _session_deleted),
    ApiCall("DeleteTrafficMirrorTarget", _target_deleted),
    ApiCall("DeleteLoadBalancer", _load_balancer_changed, service="elasticloadbalancing"),
    ApiCall("DeleteListener", _load_balancer_changed, service="elasticloadbalancing"),
    ApiCall("DeregisterTargets", _load_balancer_changed, service="elasticloadbalancing"),
    ApiCall("StopInstances", _stop_instances, subscribed=_releasing),
    ApiCall("DetachNetworkInterface", _detach, subscribed=_releasing),
    ApiCall("CreateNetworkInterface", _service_eni_created, subscribed=_services, match=_made_by_a_service),
    ApiCall("CreateTags", _tags_changed, rule=TAG_RULE, match=_tag_set_names),
    ApiCall("DeleteTags", _tags_changed, rule=TAG_RULE, match=_tag_set_names),
    ApiCall(
        "AddTags", _load_balancer_tags_changed, TAG_RULE, _load_balancers, "elasticloadbalancing", _tags_named
    ),
    ApiCall(
        "RemoveTags", _load_balancer_tags_changed, TAG_RULE, _load_balancers, "elasticloadbalancing", _keys_named
    ),
    ApiCall("TerminateInstances", _terminated, rule=None),
)
"""Every CloudTrail event the handler parses: the one table (the rules are built from it)."""
_API_CALL: Mapping[str, ApiCall] = {c.name: c for c in API_CALLS}


SENSOR_DOWN_STATES = ("stopping", "stopped", "shutting-down", "terminated")
"""States in which an instance receives no packets: if it is a sensor, its sessions move."""


def _states(settings: Settings) -> list[str]:
    """The instance states the state-change rule subscribes to: `running` (a source to mirror) and
    every state in which a sensor stops receiving."""
    return ["running", *SENSOR_DOWN_STATES]


def _cloudtrail_pattern(calls: list[ApiCall], settings: Settings) -> dict[str, Any]:
    """The calls' pattern: calls with the same `match` share one set of fields; several sets are the
    branches of an `$or` (one set, as every rule has unless MIRROR_SOURCES adds a service's calls,
    is inlined)."""
    groups: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
    for call in calls:
        match = call.match(settings) if call.match else {}
        groups.setdefault(json.dumps(match, sort_keys=True), (match, []))[1].append(call.name)
    branches = [{"eventName": names, **match} for match, names in groups.values()]
    detail: dict[str, Any] = {"eventSource": sorted({f"{c.service}.amazonaws.com" for c in calls})}
    if len(branches) == 1:
        (only,) = branches
        detail.update(eventName=only.pop("eventName"), errorCode=[{"exists": False}], **only)
    else:
        detail.update({"errorCode": [{"exists": False}], "$or": branches})
    return {"source": sorted({c.source for c in calls}), "detail-type": [CLOUDTRAIL], "detail": detail}


def rules(settings: Settings) -> dict[str, dict[str, Any]]:
    """Rule name suffix -> EventBridge pattern, as the component deploys them for these settings.

    The tag rule matches only CreateTags/DeleteTags naming our key (inside the tagSet array); a
    DeleteTags that lists no keys (it removes every tag) is not matched: the sweep catches it.
    """
    found: dict[str, dict[str, Any]] = {}
    for rule in (API_RULE, TAG_RULE):
        calls = [c for c in API_CALLS if c.rule == rule and c.subscribed(settings)]
        if calls:
            found[rule] = _cloudtrail_pattern(calls, settings)
    found[STATE_RULE] = {"source": [EC2_SOURCE], "detail-type": [STATE_CHANGE], "detail": {"state": _states(settings)}}
    return found


def _cloudtrail(record: Mapping[str, Any], region: str, event_id: str, settings: Settings, account: str) -> Change | Skip:
    name = _str(record.get("eventName"))
    error = record.get("errorCode")
    if error:
        kind = "dry run" if "DryRunOperation" in str(error) else f"failed call ({error})"
        return Skip("rejected", f"{name}: {kind}: nothing was changed", name, event_id)
    entry = _API_CALL.get(name)
    if entry is None:
        return Skip("rejected", f"unsupported event {name or '(no eventName)'}", name, event_id)
    if entry.rule is not None and _actor_is_self(record, account, settings):
        return Skip("ignored", f"{name} was made by this tool's own role", name, event_id)
    request = record.get("requestParameters")
    return entry.parse(Call(name, record, request if isinstance(request, Mapping) else {}, region, event_id, settings))


# --- the envelope ----------------------------------------------------------------------------


def parse(event: Any, settings: Settings, home: Home = ANYWHERE, *, queued: bool = False) -> Change | Skip:
    """Turn one EventBridge event (or a bare CloudTrail record) into a Change or a Skip.

    Only AWS's events are acted on: the envelope's `source` must match its detail-type, and its
    region must be this function's (`home`); anything else is rejected, never looked at further
    (which accounts are covered is the caller's check: `accounts.allowed`). `queued`: the event
    came through the event queue, where the teardown's shape is refused (only the component's
    hook, invoking the function directly, releases sessions).
    """
    if not isinstance(event, Mapping):
        return Skip("rejected", f"event is a {type(event).__name__}, not an object")
    detail = event.get("detail")
    record = detail if isinstance(detail, Mapping) else event
    account = _str(event.get("account")) or _str(record.get("recipientAccountId"))
    parsed = _checked(event, settings, home, account, queued)
    if isinstance(parsed, Change) and _ACCOUNT.match(account):
        return dataclasses.replace(parsed, account=account)
    return parsed


def _expected_source(detail_type: str, name: str) -> str | None:
    """The only `source` AWS gives this kind of event (None: not one of AWS's we know)."""
    if detail_type == SCHEDULED:
        return SCHEDULE_SOURCE
    if detail_type == STATE_CHANGE:
        return EC2_SOURCE
    if detail_type == CLOUDTRAIL:
        entry = _API_CALL.get(name)
        return entry.source if entry else EC2_SOURCE
    return None


def _checked(event: Mapping[str, Any], settings: Settings, home: Home, account: str, queued: bool) -> Change | Skip:
    detail_type = _str(event.get("detail-type"))
    detail = event.get("detail")
    event_id = _event_id(event.get("id"))
    source = _str(event.get("source"))
    if "eventName" in event and detail is None:
        # A bare CloudTrail record (replayed by the CLI or a test, invoking the function directly).
        detail, detail_type = event, CLOUDTRAIL
        source = _expected_source(CLOUDTRAIL, _str(event.get("eventName"))) or EC2_SOURCE
    record = detail if isinstance(detail, Mapping) else {}
    name = _str(record.get("eventName"))
    # Only AWS services can put events with an `aws.` source on a bus (PutEvents refuses them).
    expected = _expected_source(detail_type, name)
    if expected is not None and source != expected:
        return Skip("rejected", f"{detail_type} from source {source!r}, not {expected}", name, event_id)
    region = _str(event.get("region")) or _str(record.get("awsRegion"))
    if not _REGION.match(region):
        return Skip("rejected", f"no usable region ({region!r})", name, event_id)
    refused = _region_refused(region, home)
    if refused:
        return Skip("rejected", refused, name, event_id)
    if detail_type == RELEASE_REGION and source == TEARDOWN_SOURCE:
        if queued:
            why = "a teardown from the event queue: sessions are released only by a direct invocation"
            return Skip("rejected", why, RELEASE_REGION, event_id)
        return _release_region(event, region, event_id)
    if detail_type == SCHEDULED:
        return _scheduled(event, region, event_id)
    if detail_type == STATE_CHANGE:
        return _state_change(record, region, event_id, settings)
    if detail_type == CLOUDTRAIL:
        if not record:
            return Skip("rejected", "CloudTrail event without a detail object", "", event_id)
        # CloudTrail's own id is the identity of the API call, stable across redeliveries.
        event_id = _event_id(record.get("eventID")) or event_id or _event_id(record.get("requestID"))
        return _cloudtrail(record, region, event_id, settings, account)
    return Skip("rejected", f"unsupported event type {detail_type or '(none)'}", "", event_id)


def _scheduled(event: Mapping[str, Any], region: str, event_id: str) -> Change:
    """The backstop for deleted targets and filters: never planned from a cached inventory.

    A tick of the schedule rule names the rule in `resources`; an invocation by hand or the one
    right after deploy does not, and is a full sweep without the grace period.
    """
    scheduled = bool(event.get("resources"))
    name = SCHEDULED if scheduled else "Sweep"
    return Change(
        "sweep",
        name,
        event_id or "scheduled",
        region,
        refresh_inventory=True,
        trigger_unique=False,
        scheduled=scheduled,
        fleet=True,
    )


def _state_change(record: Mapping[str, Any], region: str, event_id: str, settings: Settings) -> Change | Skip:
    # AWS's own samples carry a stray space before the id (" i-1234567890abcdef0").
    instance_id, state = _str(record.get("instance-id")).strip(), _str(record.get("state"))
    if not _INSTANCE_ID.match(instance_id):
        return Skip("rejected", f"state-change with malformed instance id {instance_id!r}", STATE_CHANGE, event_id)
    if state == "running":
        return Change("instances", f"state-change:{state}", event_id, region, instance_ids=(instance_id,))
    if state == "stopped" and settings.release_on_stop:
        return Change("release-instances", f"state-change:{state}", event_id, region, instance_ids=(instance_id,))
    if state in SENSOR_DOWN_STATES:
        # Only a sensor's matters (checked against the cached inventory, no API call otherwise).
        return Change("sensors", f"state-change:{state}", event_id, region, instance_ids=(instance_id,))
    return Skip("ignored", f"instance state {state!r} needs nothing", STATE_CHANGE, event_id)


def _release_region(event: Mapping[str, Any], region: str, event_id: str) -> Change | Skip:
    """Release on the teardown hook's `delete` (or a direct invocation without the hook's key).

    The hook is also invoked when its resource is created or updated: nothing to do then.
    The IAM policy lets the function delete only sessions tagged with its own ManagedBy value.
    """
    lifecycle = event.get(LIFECYCLE_KEY)
    if lifecycle is not None:
        action = _str(lifecycle.get("action")) if isinstance(lifecycle, Mapping) else ""
        detail = event.get("detail")
        keep = isinstance(detail, Mapping) and detail.get(RELEASE_ON_DELETE) is False
        if action == "delete" and keep:
            why = "teardown hook delete: release_on_destroy is off, sessions are kept"
            return Skip("ignored", why, RELEASE_REGION, event_id)
        if action != "delete":
            return Skip("ignored", f"teardown hook {action or '(no action)'}: nothing to release", RELEASE_REGION, event_id)
    return Change("release-region", RELEASE_REGION, event_id or "release", region)
