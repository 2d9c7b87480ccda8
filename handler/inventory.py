"""Reads from EC2: targets, filters, sessions and ENIs. Paginated, batched, cached.

Calls grow with pages and with the ids an event names (200 per filter value list), never with
one call per instance. The targets-and-filters inventory is cached per region for
MIRROR_CACHE_TTL_SECONDS and dropped as soon as an API answer shows it is stale.
"""

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from . import accounts, errors
from .context import Context
from .errors import ReadFailure
from .model import Inventory, MirrorFilter, Session, Source, Target, TargetKind
from .planner import is_designated, priority_of
from .settings import MANAGED_TAG_KEY, Settings

FILTER_VALUES_PER_CALL = 200
NLB_ARNS_PER_CALL = 20
T = TypeVar("T")

_TARGET_KINDS: Mapping[str, TargetKind] = {
    "network-interface": "network-interface",
    "network-load-balancer": "network-load-balancer",
    "gateway-load-balancer-endpoint": "gateway-load-balancer-endpoint",
}


def check_time(ctx: Context, what: str) -> None:
    """Start a round of reads only outside the deadline margin: one that cannot finish helps nobody."""
    if ctx.too_late():
        raise ReadFailure(f"deadline near: {what} not started")


def plausible(inventory: Inventory, sessions: Iterable[Session], settings: Settings) -> None:
    """Raise ReadFailure when the inventory has lost every target or filter our sessions use.

    A sensor fleet does not vanish between two reads; an empty answer (eventual consistency, a
    permission hiccup, a paging bug) must not be read as an order to move or delete everything.
    """
    ours = [s for s in sessions if s.tags.get(MANAGED_TAG_KEY) == settings.managed_by]
    if ours and not inventory.targets:
        raise ReadFailure(f"no traffic mirror target found while {len(ours)} managed session(s) use targets")
    if ours and not inventory.filters:
        raise ReadFailure(f"no traffic mirror filter found while {len(ours)} managed session(s) use filters")


def submit(ctx: Context, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Future[T]":
    """Run a read of this invocation concurrently with the others (fn gets `ctx` first)."""
    return ctx.container.reads.submit(fn, ctx, *args, **kwargs)


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or () if "Key" in t}


def _chunks(values: Sequence[str], size: int = FILTER_VALUES_PER_CALL) -> Iterator[list[str]]:
    unique = sorted(set(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


def _pages(ctx: Context, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated describe call."""
    items: list[Any] = []
    for page in ctx.clients.paginator(ctx.place, operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _by_filter(ctx: Context, operation: str, key: str, name: str, values: Sequence[str], **kw: Any) -> list[Any]:
    """A describe filtered on up to 200 values per call (filters never raise NotFound for gone ids)."""
    items: list[Any] = []
    extra = kw.pop("Filters", [])
    for chunk in _chunks(values):
        filters = [{"Name": name, "Values": chunk}, *extra]
        items.extend(_pages(ctx, operation, key, Filters=filters, **kw))
    return items


# --- targets and filters -------------------------------------------------------------


def _load_inventory(ctx: Context) -> Inventory:
    submit = ctx.container.inventory_reads.submit
    targets_f = submit(_pages, ctx, "describe_traffic_mirror_targets", "TrafficMirrorTargets")
    filters_f = submit(_pages, ctx, "describe_traffic_mirror_filters", "TrafficMirrorFilters")
    # Zones are matched across accounts by id (names differ per account): read only when needed.
    zones_f = submit(_zone_ids, ctx) if ctx.settings.accounts or ctx.settings.sensor_owners else None
    listed = targets_f.result()
    # A shared target is listed by the accounts it is shared with, with its owner's OwnerId: only
    # the owner can describe what it points to, so here it is only noted (read in its owner).
    me = accounts.known_account(ctx)
    shared = {
        str(t["TrafficMirrorTargetId"]): str(t["OwnerId"])
        for t in listed
        if me is not None and t.get("OwnerId") and t["OwnerId"] != me
    }
    raw_targets = [t for t in listed if t.get("TrafficMirrorTargetId") not in shared]
    eni_ids = [t["NetworkInterfaceId"] for t in raw_targets if t.get("NetworkInterfaceId")]
    nlb_arns = [t["NetworkLoadBalancerArn"] for t in raw_targets if t.get("NetworkLoadBalancerArn")]
    gwlbe_ids = [
        t["GatewayLoadBalancerEndpointId"] for t in raw_targets if t.get("GatewayLoadBalancerEndpointId")
    ]

    check_time(ctx, "reading the sensors' ENIs, load balancers and endpoints")  # the second round
    enis_f = submit(
        _by_filter, ctx, "describe_network_interfaces", "NetworkInterfaces", "network-interface-id", eni_ids
    )
    nlbs_f = submit(_describe_nlbs, ctx, nlb_arns)
    vpces_f = submit(_describe_gwlb_endpoints, ctx, gwlbe_ids)
    enis = {e["NetworkInterfaceId"]: e for e in enis_f.result()}
    nlbs, vpces = nlbs_f.result(), vpces_f.result()
    zone_ids = zones_f.result() if zones_f else {}
    if eni_ids and not enis:
        raise ReadFailure(f"none of the {len(set(eni_ids))} ENIs of ENI targets was found")

    targets: list[Target] = []
    for raw in raw_targets:
        kind = _TARGET_KINDS.get(raw.get("Type", ""))
        tags = _tags(raw.get("Tags"))
        if kind == "network-interface" and raw.get("NetworkInterfaceId") in enis:
            eni = enis[raw["NetworkInterfaceId"]]
            targets.append(
                Target(
                    raw["TrafficMirrorTargetId"],
                    kind,
                    eni["NetworkInterfaceId"],
                    eni.get("VpcId"),
                    eni.get("SubnetId"),
                    eni.get("AvailabilityZone"),
                    tags,
                )
            )
        elif kind == "network-load-balancer" and raw.get("NetworkLoadBalancerArn") in nlbs:
            arn = raw["NetworkLoadBalancerArn"]
            targets.append(Target(raw["TrafficMirrorTargetId"], kind, arn, nlbs[arn], None, None, tags))
        elif kind == "gateway-load-balancer-endpoint" and raw.get("GatewayLoadBalancerEndpointId") in vpces:
            vpce_id = raw["GatewayLoadBalancerEndpointId"]
            vpc, subnet, az = vpces[vpce_id]
            targets.append(Target(raw["TrafficMirrorTargetId"], kind, vpce_id, vpc, subnet, az, tags))
        # A target whose resource is gone cannot receive traffic: leave it out.
    filters = [
        MirrorFilter(f["TrafficMirrorFilterId"], _tags(f.get("Tags")), f.get("Description", "") or "")
        for f in filters_f.result()
    ]
    if zone_ids:
        targets = [dataclasses.replace(t, az_id=zone_ids.get(t.az or "", "")) for t in targets]
    sensor_enis = frozenset(str(e) for e in eni_ids)
    return Inventory(tuple(targets), tuple(filters), time.monotonic(), zone_ids, sensor_enis, shared)


def _zone_ids(ctx: Context) -> dict[str, str]:
    """AZ name -> AZ id in this place's account."""
    zones = ctx.clients.ec2(ctx.place).describe_availability_zones(AllAvailabilityZones=False)
    return {z["ZoneName"]: z["ZoneId"] for z in zones.get("AvailabilityZones", []) if "ZoneId" in z}


def _describe_nlbs(ctx: Context, arns: Sequence[str]) -> dict[str, str]:
    """NLB ARN -> VPC id (elbv2 takes at most 20 ARNs per call).

    One deleted NLB makes the whole call fail (LoadBalancerNotFound): that chunk is then
    described one ARN at a time, so only the targets whose NLB is gone drop out.
    """
    found: dict[str, str] = {}
    for chunk in _chunks(arns, NLB_ARNS_PER_CALL):
        try:
            found.update(_nlb_chunk(ctx, chunk))
        except ClientError as error:
            if errors.code(error) != errors.NLB_GONE:
                raise
            for arn in chunk if len(chunk) > 1 else ():
                try:
                    found.update(_nlb_chunk(ctx, [arn]))
                except ClientError as single:
                    if errors.code(single) != errors.NLB_GONE:
                        raise
    return found


def _nlb_chunk(ctx: Context, arns: Sequence[str]) -> dict[str, str]:
    pages = ctx.clients.elbv2(ctx.place).get_paginator("describe_load_balancers").paginate(LoadBalancerArns=arns)
    return {lb["LoadBalancerArn"]: lb["VpcId"] for page in pages for lb in page.get("LoadBalancers", [])}


def _describe_gwlb_endpoints(ctx: Context, ids: Sequence[str]) -> dict[str, tuple[str, str | None, str | None]]:
    """GWLB endpoint id -> (VPC, subnet, AZ). The AZ comes from the endpoint's subnet."""
    if not ids:
        return {}
    vpces = _by_filter(ctx, "describe_vpc_endpoints", "VpcEndpoints", "vpc-endpoint-id", ids)
    subnet_of = {v["VpcEndpointId"]: (v.get("SubnetIds") or [None])[0] for v in vpces}
    subnet_ids = [s for s in subnet_of.values() if s]
    subnets = _by_filter(ctx, "describe_subnets", "Subnets", "subnet-id", subnet_ids)
    az_of = {s["SubnetId"]: s.get("AvailabilityZone") for s in subnets}
    return {
        v["VpcEndpointId"]: (
            v["VpcId"],
            subnet_of[v["VpcEndpointId"]],
            az_of.get(subnet_of[v["VpcEndpointId"]] or ""),
        )
        for v in vpces
    }


def prefetch(ctx: Context) -> None:
    """Start loading a place's inventory in the background (at cold start, during init).

    The first invocation then waits for this load instead of starting its own, so the imports
    and the first round trips overlap. A failed prefetch is forgotten: the invocation loads again.
    """
    container = ctx.container
    with container.lock:
        if ctx.place not in container.prefetching:
            container.prefetching[ctx.place] = container.reads.submit(_load_inventory, ctx)


def inventory(ctx: Context, *, refresh: bool = False) -> Inventory:
    """What sessions in this place may use, and its filters.

    The targets of the accounts MIRROR_SENSOR_OWNERS allows: this account's own, and another
    account's sensors designated by the tag key (read in that account, where their details and
    tags live) that this account's own listing shows, i.e. that RAM shares with it right now.
    A designated sensor it does not show is `not_shared`, never used.
    """
    own = _own_inventory(ctx, refresh=refresh)
    if ctx.place.account is None and not ctx.settings.accounts and not ctx.settings.sensor_owners:
        return own  # one account, its own targets: no account id needed
    owners = accounts.sensor_owners(ctx)
    here = ctx.place.account or accounts.own_account(ctx)
    hub = accounts.own_account(ctx)
    usable = list(own.targets) if here in owners else []
    not_shared: list[Target] = []
    for owner in sorted(owners - {here}):
        theirs = _own_inventory(ctx.hub if owner == hub else ctx.at(owner), refresh=refresh)
        for target in theirs.targets:
            if not is_designated(target.tags, ctx.settings.tag_key):
                continue
            seen = dataclasses.replace(target, owner=owner)
            (usable if own.shared.get(target.target_id) == owner else not_shared).append(seen)
    return dataclasses.replace(own, targets=tuple(usable), not_shared=tuple(not_shared))


def _own_inventory(ctx: Context, *, refresh: bool = False) -> Inventory:
    """This place's own targets and filters, from the warm cache when younger than MIRROR_CACHE_TTL_SECONDS."""
    container, place = ctx.container, ctx.place
    with container.lock:
        cached = container.inventories.get(place)
        pending = container.prefetching.pop(place, None)
    if pending is not None and not refresh:
        try:
            cached = pending.result()
        except Exception:  # a failed prefetch: the normal load below tries again
            cached = None
        else:
            with container.lock:
                container.inventories[place] = cached
    fresh_enough = cached is not None and time.monotonic() - cached.fetched_at < ctx.settings.cache_ttl_seconds
    if cached is not None and not refresh and fresh_enough:
        return cached
    loaded = _load_inventory(ctx)
    with container.lock:
        container.inventories[place] = loaded
    return loaded


def invalidate(ctx: Context) -> None:
    """Drop the cached inventory of this place (an API answer showed it is stale)."""
    with ctx.container.lock:
        ctx.container.inventories.pop(ctx.place, None)
        ctx.container.prefetching.pop(ctx.place, None)


# --- sessions --------------------------------------------------------------------------


def _session(raw: Mapping[str, Any]) -> Session:
    return Session(
        raw["TrafficMirrorSessionId"],
        raw["NetworkInterfaceId"],
        raw["TrafficMirrorTargetId"],
        raw["TrafficMirrorFilterId"],
        int(raw.get("SessionNumber", 0)),
        _tags(raw.get("Tags")),
        str(raw.get("OwnerId") or ""),
    )


def sessions_for(ctx: Context, eni_ids: Sequence[str]) -> list[Session]:
    """Existing sessions of these ENIs: one call per 200 ENIs."""
    raw = _by_filter(
        ctx,
        "describe_traffic_mirror_sessions",
        "TrafficMirrorSessions",
        "network-interface-id",
        eni_ids,
    )
    return [_session(s) for s in raw]


def all_sessions(ctx: Context) -> list[Session]:
    """Every session this account's listing shows: its own, and (AWS documents it) the sessions
    other accounts made on its shared targets."""
    raw = _pages(ctx, "describe_traffic_mirror_sessions", "TrafficMirrorSessions")
    return [_session(s) for s in raw]


def own_sessions(ctx: Context, sessions: Sequence[Session]) -> list[Session]:
    """The sessions this account made: the only ones it plans, counts as coverage or touches.

    Another account's session on one of our shared targets has a source ENI we cannot describe
    and can only be changed by its owner (through its own member role, in its own sweep).
    """
    owners = {s.owner for s in sessions if s.owner}
    if not owners:
        return list(sessions)
    here = ctx.place.account or accounts.own_account(ctx)
    return [s for s in sessions if not s.owner or s.owner == here]


def priorities(ctx: Context, eni_ids: Sequence[str]) -> dict[str, int]:
    """The budget priorities of these ENIs (`planner.priority`: the ENI's tag over its instance's).

    Read from what carries the tag: one paginated DescribeTags of the key over the place, then, only
    if some instance carries it, the ENIs of those instances. Calls grow with the tagged resources,
    not with the ENIs asked about (an event asks about every ENI holding a session of ours).
    """
    key = ctx.settings.priority_tag_key
    filters = [
        {"Name": "key", "Values": [key]},
        {"Name": "resource-type", "Values": ["instance", "network-interface"]},
    ]
    tagged = _pages(ctx, "describe_tags", "Tags", Filters=filters)
    on_enis = {t["ResourceId"]: t.get("Value", "") for t in tagged if t.get("ResourceType") == "network-interface"}
    on_instances = {t["ResourceId"]: t.get("Value", "") for t in tagged if t.get("ResourceType") == "instance"}
    wanted = set(eni_ids)
    parent: dict[str, str] = {}
    if on_instances and wanted - set(on_enis):
        for eni in describe_enis(ctx, "attachment.instance-id", sorted(on_instances)):
            instance = (eni.get("Attachment") or {}).get("InstanceId")
            if eni["NetworkInterfaceId"] in wanted and instance:
                parent[eni["NetworkInterfaceId"]] = str(instance)
    found = {}
    for eni_id in eni_ids:
        own = {key: on_enis[eni_id]} if eni_id in on_enis else {}
        inherited = {key: on_instances[parent[eni_id]]} if eni_id in parent else {}
        found[eni_id] = priority_of(own, inherited, key)[0]
    return found


def group_by_eni(sessions: Iterable[Session]) -> dict[str, list[Session]]:
    grouped: dict[str, list[Session]] = {}
    for session in sessions:
        grouped.setdefault(session.eni_id, []).append(session)
    return grouped


# --- sources ----------------------------------------------------------------------------


def current_tags(ctx: Context, resource_ids: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, str]]:
    """Fresh tags (only `keys`) of instances and ENIs in one call: event tags may be stale."""
    found: dict[str, dict[str, str]] = {rid: {} for rid in resource_ids}
    raw = _by_filter(
        ctx,
        "describe_tags",
        "Tags",
        "resource-id",
        resource_ids,
        Filters=[{"Name": "key", "Values": sorted(set(keys))}],
    )
    for tag in raw:
        found.setdefault(tag["ResourceId"], {})[tag["Key"]] = tag.get("Value", "")
    return found


def with_current_tags(
    sources: Sequence[Source], tags: Mapping[str, Mapping[str, str]], keys: Sequence[str]
) -> list[Source]:
    """Replace the event's copies of `keys` with their current values (deleted keys disappear)."""

    def merge(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in old.items() if k not in keys}
        return {**kept, **new}

    return [
        dataclasses.replace(
            s,
            instance_tags=merge(s.instance_tags, tags.get(s.instance_id, {})),
            eni_tags=merge(s.eni_tags, tags.get(s.eni_id, {})),
        )
        for s in sources
    ]


def describe_instances(
    ctx: Context, instance_ids: Sequence[str] = (), states: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Instances by id (filtered, so a gone id is simply absent) or, with no ids, all in `states`."""
    state_filter = [{"Name": "instance-state-name", "Values": list(states)}] if states else []
    if instance_ids:
        reservations = _by_filter(
            ctx,
            "describe_instances",
            "Reservations",
            "instance-id",
            instance_ids,
            Filters=state_filter,
        )
    else:
        reservations = _pages(ctx, "describe_instances", "Reservations", Filters=state_filter)
    return [i for r in reservations for i in r.get("Instances", [])]


def describe_enis(ctx: Context, name: str, values: Sequence[str]) -> list[dict[str, Any]]:
    """ENIs by a filter (`network-interface-id`, `attachment.instance-id`, `tag-key`)."""
    return _by_filter(ctx, "describe_network_interfaces", "NetworkInterfaces", name, values)


def sources_of_instances(
    instances: Iterable[Mapping[str, Any]], eni_tags: Mapping[str, Mapping[str, str]], trigger: str
) -> list[Source]:
    """Every ENI of each described instance, with the ENI's own tags when known."""
    sources = []
    for inst in instances:
        placement = inst.get("Placement") or {}
        tags = _tags(inst.get("Tags"))
        for eni in inst.get("NetworkInterfaces", []):
            eni_id = eni.get("NetworkInterfaceId")
            if not eni_id:
                continue
            sources.append(
                Source(
                    eni_id,
                    inst["InstanceId"],
                    inst.get("InstanceType", ""),
                    eni.get("SubnetId", ""),
                    eni.get("VpcId", ""),
                    placement.get("AvailabilityZone", ""),
                    tags,
                    dict(eni_tags.get(eni_id, {})),
                    eni.get("InterfaceType") or "interface",
                    trigger,
                    _epoch((eni.get("Attachment") or {}).get("AttachTime")),
                )
            )
    return sources


def _epoch(value: Any) -> float | None:
    """botocore's datetime -> epoch seconds (None when absent)."""
    return value.timestamp() if hasattr(value, "timestamp") else None


def eni_tag_map(enis: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {e["NetworkInterfaceId"]: _tags(e.get("TagSet")) for e in enis}
