"""Every event shape -> "what changed". Pure: no AWS calls, no exceptions on bad input.

Real CloudTrail records vary (see ../shared/events): `tagSet` missing, `{}`, `{"items": []}`
or `""`; failed and dry-run calls carry `errorCode` and a null `responseElements`; ids come
in odd lengths. A record that cannot be used becomes a `Skip` with the reason, which the
caller logs and counts; retrying would not fix it, so it never raises.
"""

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import MEMBER_SESSION_NAME, Source
from .settings import Settings

ChangeKind = Literal["launch", "instances", "enis", "sweep", "release-instances", "release-region"]

_INSTANCE_ID = re.compile(r"^i-[0-9a-zA-Z]{6,32}$")
_ENI_ID = re.compile(r"^eni-[0-9a-zA-Z]{6,32}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-zA-Z]{6,32}$")
_VPC_ID = re.compile(r"^vpc-[0-9a-zA-Z]{6,32}$")
_AZ = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d[a-z0-9]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")

CLOUDTRAIL = "AWS API Call via CloudTrail"
STATE_CHANGE = "EC2 Instance State-change Notification"
SCHEDULED = "Scheduled Event"
TEARDOWN_SOURCE = "traffic-mirror.teardown"
RELEASE_REGION = "Release Managed Sessions"
"""The component's teardown hook (an `aws.lambda_.Invocation` with lifecycle scope CRUD), or an
operator's `aws lambda invoke`: delete every session of the region tagged with our ManagedBy."""
RELEASE_ON_DELETE = "release_on_delete"
"""In the hook's `detail`: false when the deployment keeps its sessions on `pulumi destroy`."""
LIFECYCLE_KEY = "tf"
"""Where pulumi-aws's CRUD invocation puts `{"action": "create" | "update" | "delete", ...}`."""

EC2_SOURCE = "aws.ec2"
"""EventBridge's `source` for CloudTrail records of EC2 calls and EC2's state changes."""
SCHEDULE_SOURCE = "aws.events"
"""EventBridge's `source` for a schedule rule's ticks."""


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


def _actor_is_self(record: Mapping[str, Any], settings: Settings) -> bool:
    """True when this tool's own role made the call, so it never fights itself."""
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
    issuer_arn = _str(issuer.get("arn")) if isinstance(issuer, Mapping) else ""
    if settings.role_arn and issuer_arn == settings.role_arn:
        return True
    arn = _str(identity.get("arn"))
    if settings.accounts and arn.endswith(f":assumed-role/{settings.member_role_name}/{MEMBER_SESSION_NAME}"):
        return True  # the hub handler acting in a member account through the member role
    return (
        bool(settings.function_name)
        and ":assumed-role/" in arn
        and arn.endswith(f"/{settings.function_name}")
    )


def _cloudtrail(record: Mapping[str, Any], region: str, event_id: str, settings: Settings) -> Change | Skip:
    name = _str(record.get("eventName"))
    error = record.get("errorCode")
    if error:
        kind = "dry run" if "DryRunOperation" in str(error) else f"failed call ({error})"
        return Skip("rejected", f"{name}: {kind}: nothing was changed", name, event_id)
    if name == "TerminateInstances":
        # AWS deletes an ENI's sessions together with the ENI: nothing to do.
        return Skip("ignored", "TerminateInstances: AWS deletes the sessions with the ENIs", name, event_id)
    if _actor_is_self(record, settings):
        return Skip("ignored", f"{name} was made by this tool's own role", name, event_id)
    request = record.get("requestParameters")
    request = request if isinstance(request, Mapping) else {}

    if name == "RunInstances":
        if not isinstance(record.get("responseElements"), Mapping):
            return Skip("rejected", "RunInstances without responseElements", name, event_id)
        sources, to_describe, rejected = _launch_sources(record, event_id)
        if not sources and not to_describe:
            why = "; ".join(rejected) or "no instances in responseElements.instancesSet"
            return Skip("rejected", f"RunInstances: {why}", name, event_id)
        return Change(
            "launch", name, event_id, region, tuple(sources), tuple(to_describe), rejected=tuple(rejected)
        )

    if name in ("StartInstances", "StopInstances"):
        ids = _instance_ids(record)
        valid = tuple(i for i in ids if _INSTANCE_ID.match(i))
        bad = tuple(f"malformed instance id {i!r}" for i in ids if not _INSTANCE_ID.match(i))
        if not valid:
            return Skip(
                "rejected", f"{name}: no valid instance id ({'; '.join(bad) or 'none'})", name, event_id
            )
        if name == "StopInstances":
            if not settings.release_on_stop:
                return Skip(
                    "ignored",
                    "StopInstances: sessions are kept (MIRROR_RELEASE_ON_STOP is off)",
                    name,
                    event_id,
                )
            return Change("release-instances", name, event_id, region, instance_ids=valid, rejected=bad)
        return Change("instances", name, event_id, region, instance_ids=valid, rejected=bad)

    if name == "AttachNetworkInterface":
        eni = _str(request.get("networkInterfaceId"))
        if not _ENI_ID.match(eni):
            return Skip("rejected", f"AttachNetworkInterface: malformed ENI id {eni!r}", name, event_id)
        return Change("enis", name, event_id, region, eni_ids=(eni,))

    if name == "DetachNetworkInterface":
        # The record names only the attachment id; the sweep finds detached ENIs' sessions.
        if not settings.release_on_stop:
            return Skip(
                "ignored",
                "DetachNetworkInterface: sessions are kept (MIRROR_RELEASE_ON_STOP is off)",
                name,
                event_id,
            )
        return Change("sweep", name, event_id, region)

    if name == "DeleteTrafficMirrorSession":
        # A deleted session cannot be described: the sweep's diff finds the ENI that lost it.
        return Change("sweep", name, event_id, region)

    if name in ("CreateTags", "DeleteTags"):
        keys = {_str(t.get("key")) for t in _items(request.get("tagSet"))}
        if name == "CreateTags" and settings.tag_key not in keys:
            return Skip("ignored", f"{name} does not touch the {settings.tag_key} tag", name, event_id)
        if name == "DeleteTags" and keys and settings.tag_key not in keys:
            # DeleteTags without a tagSet deletes every tag, ours included.
            return Skip("ignored", f"{name} does not touch the {settings.tag_key} tag", name, event_id)
        resources = [_str(r.get("resourceId")) for r in _items(request.get("resourcesSet"))]
        instances = tuple(r for r in resources if _INSTANCE_ID.match(r))
        enis = tuple(r for r in resources if _ENI_ID.match(r))
        if any(r.startswith(("tmt-", "tmf-", "traf-mir-")) for r in resources):
            # A sensor or filter changed route: every ENI may be affected.
            return Change("sweep", name, event_id, region, refresh_inventory=True)
        if not instances and not enis:
            return Skip("ignored", f"{name} on resources that are not instances or ENIs", name, event_id)
        return Change(
            "instances" if instances else "enis", name, event_id, region, instance_ids=instances, eni_ids=enis
        )

    return Skip("rejected", f"unsupported event {name or '(no eventName)'}", name, event_id)


_ACCOUNT = re.compile(r"^\d{12}$")


def parse(event: Any, settings: Settings, home: Home = ANYWHERE) -> Change | Skip:
    """Turn one EventBridge event (or a bare CloudTrail record) into a Change or a Skip.

    Only AWS's events are acted on: the envelope's `source` must match its detail-type, and its
    region must be this function's (`home`); anything else is rejected, never looked at further
    (which accounts are covered is the caller's check: `accounts.allowed`).
    """
    parsed = _checked(event, settings, home)
    if isinstance(parsed, Change) and isinstance(event, Mapping):
        detail = event.get("detail")
        record = detail if isinstance(detail, Mapping) else event
        account = _str(event.get("account")) or _str(record.get("recipientAccountId"))
        if _ACCOUNT.match(account):
            return dataclasses.replace(parsed, account=account)
    return parsed


def _checked(event: Any, settings: Settings, home: Home) -> Change | Skip:
    if not isinstance(event, Mapping):
        return Skip("rejected", f"event is a {type(event).__name__}, not an object")
    detail_type = _str(event.get("detail-type"))
    detail = event.get("detail")
    event_id = _event_id(event.get("id"))
    source = _str(event.get("source"))
    if "eventName" in event and detail is None:
        # A bare CloudTrail record (replayed by the CLI or a test, invoking the function directly).
        detail, detail_type, source = event, CLOUDTRAIL, EC2_SOURCE
    record = detail if isinstance(detail, Mapping) else {}
    name = _str(record.get("eventName"))
    # Only AWS services can put events with an `aws.` source on a bus (PutEvents refuses them).
    expected = SCHEDULE_SOURCE if detail_type == SCHEDULED else EC2_SOURCE
    if detail_type in (SCHEDULED, STATE_CHANGE, CLOUDTRAIL) and source != expected:
        return Skip("rejected", f"{detail_type} from source {source!r}, not {expected}", name, event_id)
    region = _str(event.get("region")) or _str(record.get("awsRegion"))
    if not _REGION.match(region):
        return Skip("rejected", f"no usable region ({region!r})", name, event_id)
    refused = _region_refused(region, home)
    if refused:
        return Skip("rejected", refused, name, event_id)
    if detail_type == RELEASE_REGION and source == TEARDOWN_SOURCE:
        return _release_region(event, region, event_id)
    return _parse(event, settings, detail_type, record, region, event_id)


def _parse(
    event: Mapping[str, Any], settings: Settings, detail_type: str, record: Mapping[str, Any], region: str, event_id: str
) -> Change | Skip:
    if detail_type == SCHEDULED:
        # The backstop for deleted targets and filters: never plan it from a cached inventory.
        # A tick of the schedule rule names the rule in `resources`; an invocation by hand or the
        # one right after deploy does not, and is a full sweep without the grace period.
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
    if detail_type == STATE_CHANGE:
        # AWS's own samples carry a stray space before the id (" i-1234567890abcdef0").
        instance_id, state = _str(record.get("instance-id")).strip(), _str(record.get("state"))
        if not _INSTANCE_ID.match(instance_id):
            return Skip(
                "rejected", f"state-change with malformed instance id {instance_id!r}", STATE_CHANGE, event_id
            )
        if state == "running":
            return Change("instances", f"state-change:{state}", event_id, region, instance_ids=(instance_id,))
        if state == "stopped" and settings.release_on_stop:
            return Change(
                "release-instances", f"state-change:{state}", event_id, region, instance_ids=(instance_id,)
            )
        return Skip("ignored", f"instance state {state!r} needs nothing", STATE_CHANGE, event_id)
    if detail_type == CLOUDTRAIL:
        if not record:
            return Skip("rejected", "CloudTrail event without a detail object", "", event_id)
        # CloudTrail's own id is the identity of the API call, stable across redeliveries.
        event_id = _event_id(record.get("eventID")) or event_id or _event_id(record.get("requestID"))
        return _cloudtrail(record, region, event_id, settings)
    return Skip("rejected", f"unsupported event type {detail_type or '(none)'}", "", event_id)


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
            return Skip("ignored", "teardown hook delete: release_on_destroy is off, sessions are kept", RELEASE_REGION, event_id)
        if action != "delete":
            return Skip("ignored", f"teardown hook {action or '(no action)'}: nothing to release", RELEASE_REGION, event_id)
    return Change("release-region", RELEASE_REGION, event_id or "release", region)
