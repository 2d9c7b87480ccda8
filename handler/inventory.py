"""Reads from EC2: targets, filters, sessions and ENIs. Paginated, batched, cached.

Calls grow with pages and with the ids an event names (200 per filter value list), never with
one call per instance. The targets-and-filters inventory is cached per region for
MIRROR_CACHE_TTL_SECONDS and dropped as soon as an API answer shows it is stale.
"""

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from . import accounts, errors, health, kinds, readahead
from .context import Context
from .errors import ReadFailure
from .model import FilterRule, Health, Inventory, MirrorFilter, Session, Source, Target, TargetKind
from .planner import is_designated, priority_of
from .settings import MANAGED_TAG_KEY, Settings

if TYPE_CHECKING:
    from . import guardrails

NLB_ARNS_PER_CALL = 20
TAGGED_LOAD_BALANCERS_PER_CALL = 20
"""elbv2 DescribeTags takes at most 20 ARNs, classic elb DescribeTags at most 20 names."""
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


def _pages(ctx: Context, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated describe call."""
    return readahead.pages(ctx.clients, ctx.place, operation, key, **kwargs)


def _by_filter(ctx: Context, operation: str, key: str, name: str, values: Sequence[str], **kw: Any) -> list[Any]:
    """A describe filtered on up to 200 values per call (filters never raise NotFound for gone ids)."""
    return readahead.by_filter(ctx.clients, ctx.place, operation, key, name, values, **kw)


# --- targets and filters -------------------------------------------------------------


def _load_inventory(ctx: Context, first: readahead.FirstReads | None = None) -> Inventory:
    """Targets with their health, filters, and the sessions on ENI targets: two rounds of reads
    (`readahead`: a cold start's `first` were sent during init), three more, concurrent per NLB,
    only when NLB targets exist."""
    submit = ctx.container.inventory_reads.submit
    if first is None:
        second_round = "reading the sensors' instances and the sessions on them"
        first = readahead.start(
            ctx.clients,
            ctx.place,
            ctx.container.inventory_reads,
            accounts.known_account(ctx),
            lambda: check_time(ctx, second_round),
        )
    # Zones are matched across accounts by id (names differ per account): read only when needed.
    zones_f = submit(_zone_ids, ctx) if ctx.settings.accounts or ctx.settings.sensor_owners else None
    listed = first.targets.result()
    # A shared target is listed by the accounts it is shared with, with its owner's OwnerId: only
    # the owner can describe what it points to (and read its health), so here it is only noted.
    me = accounts.known_account(ctx)
    shared = {str(t["TrafficMirrorTargetId"]): str(t["OwnerId"]) for t in listed if readahead.shared_with_us(t, me)}
    raw_targets = [t for t in listed if t.get("TrafficMirrorTargetId") not in shared]
    # What the listing shows of them (kind, resource, owner): enough to name them in a finding.
    seen_shared = tuple(
        Target(str(t["TrafficMirrorTargetId"]), kind, _resource_of(t), None, None, None, owner=shared[tid])
        for t in listed
        if (tid := t.get("TrafficMirrorTargetId")) in shared and (kind := _TARGET_KINDS.get(t.get("Type", "")))
    )
    eni_ids = [t["NetworkInterfaceId"] for t in raw_targets if t.get("NetworkInterfaceId")]
    eni_target_ids = [t["TrafficMirrorTargetId"] for t in raw_targets if t.get("NetworkInterfaceId")]
    nlb_arns = [t["NetworkLoadBalancerArn"] for t in raw_targets if t.get("NetworkLoadBalancerArn")]
    gwlbe_ids = [
        t["GatewayLoadBalancerEndpointId"] for t in raw_targets if t.get("GatewayLoadBalancerEndpointId")
    ]

    check_time(ctx, "reading the sensors' load balancers and endpoints")  # the second round
    nlbs_f = submit(_describe_nlbs, ctx, nlb_arns)
    vpces_f = submit(_describe_gwlb_endpoints, ctx, gwlbe_ids)
    # The sensors' ENIs as their instances list them (with each instance's state and type): one
    # read for both. Only an ENI no instance lists is read on its own, below.
    enis, instance_of = _sensor_enis(first.sensors.result(), eni_ids)
    unlisted = [e for e in eni_ids if e not in enis]
    if unlisted:  # detached, deleted, or lost on the way: the ENI read says which
        check_time(ctx, "reading the sensor ENIs no instance lists")
        for eni in describe_enis(ctx, "network-interface-id", unlisted):
            # An ENI attached to an instance the instance read lacks: the answers disagree (an
            # instance lives as long as the ENIs attached to it). Nothing is decided on such a read.
            if (eni.get("Attachment") or {}).get("InstanceId"):
                raise ReadFailure(
                    f"the instance read lacks the instance of sensor ENI {eni['NetworkInterfaceId']}"
                )
            enis[str(eni["NetworkInterfaceId"])] = eni
    nlbs, vpces = nlbs_f.result(), vpces_f.result()
    nlb_health = _nlb_health(ctx, nlbs) if nlbs else {}
    zone_ids = zones_f.result() if zones_f else {}
    # The sessions on ENI targets, as their owner lists them (other accounts' included): capacity.
    # (A cold start's read asked for every listed ENI target: a shared one's are read in its owner.)
    own_eni_targets = set(eni_target_ids)
    sessions_on: dict[str, list[Session]] = {}
    for raw in first.sessions_on.result():
        session = _session(raw)
        if session.target_id in own_eni_targets:
            sessions_on.setdefault(session.target_id, []).append(session)

    targets: list[Target] = []
    for raw in raw_targets:
        kind = _TARGET_KINDS.get(raw.get("Type", ""))
        target_id, tags = raw["TrafficMirrorTargetId"], _tags(raw.get("Tags"))
        if kind == "network-interface" and raw.get("NetworkInterfaceId"):
            eni_id = raw["NetworkInterfaceId"]
            eni = enis.get(eni_id) or {}
            status = health.eni_target(enis.get(eni_id), instance_of.get(eni_id))
            vpc, subnet, az = eni.get("VpcId"), eni.get("SubnetId"), eni.get("AvailabilityZone")
            groups = tuple(str(g["GroupId"]) for g in eni.get("Groups", []) if "GroupId" in g)
            targets.append(Target(target_id, kind, eni_id, vpc, subnet, az, tags, security_groups=groups, health=status))
        elif kind == "network-load-balancer" and raw.get("NetworkLoadBalancerArn"):
            arn = raw["NetworkLoadBalancerArn"]
            lb = nlbs.get(arn)
            status = nlb_health.get(arn) or health.nlb_target(None, (), (), {}, {})
            vpc = lb.get("VpcId") if lb else None
            targets.append(Target(target_id, kind, arn, vpc, None, None, tags, health=status))
        elif kind == "gateway-load-balancer-endpoint" and raw.get("GatewayLoadBalancerEndpointId"):
            vpce_id = raw["GatewayLoadBalancerEndpointId"]
            found = vpces.get(vpce_id)
            vpc, subnet, az = found[:3] if found else (None, None, None)
            status = health.gwlb_endpoint(found[3] if found else None)
            targets.append(Target(target_id, kind, vpce_id, vpc, subnet, az, tags, health=status))
        # A target whose resource is gone stays, unusable: the sessions on it are not delivered,
        # and it is reported as such (never a reason to delete them).
    filters = [
        MirrorFilter(
            f["TrafficMirrorFilterId"], _tags(f.get("Tags")), f.get("Description", "") or "", _filter_rules(f)
        )
        for f in first.filters.result()
    ]
    if zone_ids:
        targets = [
            dataclasses.replace(
                t,
                az_id=zone_ids.get(t.az or "", ""),
                health=health.with_zone_ids(t.health, zone_ids),
            )
            for t in targets
        ]
    on = {target: tuple(found) for target, found in sessions_on.items()}
    return Inventory(
        tuple(targets),
        tuple(filters),
        time.monotonic(),
        zone_ids,
        sessions_on=on,
        sensor_enis=frozenset(str(e) for e in eni_ids),
        shared=shared,
        listed=seen_shared,
    )


def _sensor_enis(
    reservations: Iterable[Mapping[str, Any]], eni_ids: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Mapping[str, Any]]]:
    """The sensor ENIs that instances list, shaped as DescribeNetworkInterfaces shows them (an
    attached ENI is in its instance's zone), and the instance of each."""
    wanted = set(eni_ids)
    enis: dict[str, dict[str, Any]] = {}
    instance_of: dict[str, Mapping[str, Any]] = {}
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            zone = (instance.get("Placement") or {}).get("AvailabilityZone")
            for eni in instance.get("NetworkInterfaces", []):
                eni_id = eni.get("NetworkInterfaceId")
                if eni_id not in wanted:
                    continue
                attachment = {**(eni.get("Attachment") or {}), "InstanceId": instance.get("InstanceId")}
                enis[eni_id] = {**eni, "AvailabilityZone": zone, "Attachment": attachment}
                instance_of[eni_id] = instance
    return enis, instance_of


def _resource_of(raw: Mapping[str, Any]) -> str:
    """The ENI, NLB or endpoint a listed target points to."""
    for key in ("NetworkInterfaceId", "NetworkLoadBalancerArn", "GatewayLoadBalancerEndpointId"):
        if raw.get(key):
            return str(raw[key])
    return ""


def _ports(raw: Mapping[str, Any] | None) -> tuple[int, int] | None:
    if not raw or "FromPort" not in raw:
        return None
    return int(raw["FromPort"]), int(raw.get("ToPort", raw["FromPort"]))


def _filter_rules(raw: Mapping[str, Any]) -> tuple[FilterRule, ...]:
    """A filter's rules, both directions (the plan's guardrails read them)."""
    rules = []
    for key, direction in (("IngressFilterRules", "ingress"), ("EgressFilterRules", "egress")):
        for rule in raw.get(key) or ():
            protocol = rule.get("Protocol")
            rules.append(
                FilterRule(
                    direction,  # type: ignore[arg-type]  # the two literals above
                    int(rule.get("RuleNumber", 0)),
                    "reject" if rule.get("RuleAction") == "reject" else "accept",
                    int(protocol) if protocol not in (None, "", 0, "0", -1, "-1") else None,
                    str(rule.get("SourceCidrBlock") or "0.0.0.0/0"),
                    str(rule.get("DestinationCidrBlock") or "0.0.0.0/0"),
                    _ports(rule.get("SourcePortRange")),
                    _ports(rule.get("DestinationPortRange")),
                )
            )
    return tuple(sorted(rules, key=lambda r: (r.direction, r.number)))


def _zone_ids(ctx: Context) -> dict[str, str]:
    """AZ name -> AZ id in this place's account."""
    zones = ctx.clients.ec2(ctx.place).describe_availability_zones(AllAvailabilityZones=False)
    return {z["ZoneName"]: z["ZoneId"] for z in zones.get("AvailabilityZones", []) if "ZoneId" in z}


def _describe_nlbs(ctx: Context, arns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """NLB ARN -> its description (elbv2 takes at most 20 ARNs per call).

    One deleted NLB makes the whole call fail (LoadBalancerNotFound): that chunk is then
    described one ARN at a time, so only the targets whose NLB is gone drop out.
    """
    found: dict[str, dict[str, Any]] = {}
    for chunk in readahead.chunks(arns, NLB_ARNS_PER_CALL):
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


def _nlb_chunk(ctx: Context, arns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The load balancers asked for. A deleted one fails the call (LoadBalancerNotFound): an answer
    that silently omits one is not AWS's, and nothing is decided on it."""
    pages = ctx.clients.elbv2(ctx.place).get_paginator("describe_load_balancers").paginate(LoadBalancerArns=arns)
    found = {lb["LoadBalancerArn"]: dict(lb) for page in pages for lb in page.get("LoadBalancers", [])}
    missing = sorted(set(arns) - set(found))
    if missing:
        raise ReadFailure(f"the load balancer read omits {len(missing)} of those asked for ({missing[0]}, ...)")
    return found


def _nlb_health(ctx: Context, nlbs: Mapping[str, Mapping[str, Any]]) -> dict[str, Health]:
    """NLB ARN -> health. elbv2 has no batch for listeners, attributes or target health: one call
    each per NLB (and per target group), all NLBs at once; then one batched read of where the
    healthy targets are."""
    check_time(ctx, "reading the NLB sensors' listeners and targets")
    elbv2 = ctx.clients.elbv2(ctx.place)
    submit = ctx.container.inventory_reads.submit

    def listeners(arn: str) -> list[Any]:
        pages = elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=arn)
        return [listener for page in pages for listener in page.get("Listeners", [])]

    def attributes(arn: str) -> list[Any]:
        return list(elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn).get("Attributes", []))

    def associated_groups(arn: str) -> list[Any]:
        try:
            pages = elbv2.get_paginator("describe_target_groups").paginate(LoadBalancerArn=arn)
            return [group for page in pages for group in page.get("TargetGroups", [])]
        except ClientError as error:  # none associated: an empty list, or this error (as moto answers)
            if errors.code(error) == "TargetGroupNotFound":
                return []
            raise

    def target_health(group: str) -> list[Any]:
        return list(elbv2.describe_target_health(TargetGroupArn=group).get("TargetHealthDescriptions", []))

    arns = sorted(nlbs)
    listeners_f = {arn: submit(listeners, arn) for arn in arns}
    attributes_f = {arn: submit(attributes, arn) for arn in arns}
    found = {arn: listeners_f[arn].result() for arn in arns}
    # No listener at all makes a sensor unusable, and may move sessions: only when the target groups
    # agree that none is associated with it (a listener is what associates one; one call per such NLB).
    bare = [arn for arn in arns if not found[arn]]
    associated_f = {arn: submit(associated_groups, arn) for arn in bare}
    contradicted = sorted(arn for arn in bare if associated_f[arn].result())
    if contradicted:
        raise ReadFailure(f"the listener read of {contradicted[0]} is empty while target groups are associated with it")
    groups = sorted(
        {g for arn in arns for listener in health.vxlan_listeners(found[arn]) for g in health.forwarded_groups(listener)}
    )
    health_f = {group: submit(target_health, group) for group in groups}
    described = {group: health_f[group].result() for group in groups}
    # Where the healthy targets are matters only for an NLB in several AZs without cross-zone load
    # balancing (a target in an AZ the NLB is not enabled in is never healthy: `Target.NotInUse`).
    zonal = {arn for arn in arns if not health.cross_zone(attributes_f[arn].result())}
    single = {arn: _only_zone(nlbs[arn]) for arn in zonal}
    ids = [
        str(d.get("Target", {}).get("Id", ""))
        for arn in zonal
        if not single[arn]
        for listener in health.vxlan_listeners(found[arn])
        for group in health.forwarded_groups(listener)
        for d in described.get(group, ())
    ]
    zone_of = _target_zones(ctx, sorted({i for i in ids if i.startswith("i-")}), sorted({i for i in ids if i and not i.startswith(("i-", "arn:"))}))
    for arn, zone in single.items():
        if zone:
            for listener in health.vxlan_listeners(found[arn]):
                for group in health.forwarded_groups(listener):
                    for d in described.get(group, ()):
                        zone_of.setdefault(str(d.get("Target", {}).get("Id", "")), zone)
    return {
        arn: health.nlb_target(nlbs[arn], found[arn], attributes_f[arn].result(), described, zone_of) for arn in arns
    }


def _only_zone(load_balancer: Mapping[str, Any]) -> str:
    """The AZ of a load balancer enabled in exactly one, else ""."""
    zones = {z.get("ZoneName", "") for z in load_balancer.get("AvailabilityZones") or ()}
    return zones.pop() if len(zones) == 1 else ""


def _target_zones(ctx: Context, instance_ids: Sequence[str], addresses: Sequence[str]) -> dict[str, str]:
    """Load balancer target id (instance id or IP address) -> its AZ name (a batched read each)."""
    zones: dict[str, str] = {}
    if instance_ids:
        for instance in describe_instances(ctx, instance_ids):
            zones[instance["InstanceId"]] = str((instance.get("Placement") or {}).get("AvailabilityZone", ""))
    if addresses:
        for eni in describe_enis(ctx, "addresses.private-ip-address", addresses):
            for address in eni.get("PrivateIpAddresses") or ():
                if address.get("PrivateIpAddress") in addresses:
                    zones[address["PrivateIpAddress"]] = str(eni.get("AvailabilityZone", ""))
    return zones


def _describe_gwlb_endpoints(
    ctx: Context, ids: Sequence[str]
) -> dict[str, tuple[str, str | None, str | None, Mapping[str, Any]]]:
    """GWLB endpoint id -> (VPC, subnet, AZ, the endpoint). The AZ comes from the endpoint's subnet."""
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
            v,
        )
        for v in vpces
    }


def prefetch(ctx: Context, first: readahead.FirstReads | None = None) -> None:
    """Start loading a place's inventory in the background (at cold start, during init), from its
    `first` reads when they were sent already.

    The first invocation then waits for this load instead of starting its own, so the imports
    and the first round trips overlap. A failed prefetch is forgotten: the invocation loads again.
    """
    container = ctx.container
    with container.lock:
        if ctx.place not in container.prefetching:
            container.prefetching[ctx.place] = container.reads.submit(_load_inventory, ctx, first)


def inventory(ctx: Context, *, refresh: bool = False) -> Inventory:
    """What sessions in this place may use, and its filters.

    The targets of the accounts MIRROR_SENSOR_OWNERS allows: this account's own, and another
    account's sensors designated by the tag key (read in that account, where their details, tags
    and health live, with the sessions its listing shows on them) that this account's own listing
    shows, i.e. that RAM shares with it right now. A designated sensor it does not show is
    `not_shared`, never used.
    """
    own = _own_inventory(ctx, refresh=refresh)
    if ctx.place.account is None and not ctx.settings.accounts and not ctx.settings.sensor_owners:
        return own  # one account, its own targets: no account id needed
    owners = accounts.sensor_owners(ctx)
    here = ctx.place.account or accounts.own_account(ctx)
    usable = list(own.targets) if here in owners else []
    # Not usable here, but shown: what a session of another tool may point to (planner.untrusted_sessions).
    listed = [] if here in owners else list(own.targets)
    not_shared: list[Target] = []
    read: set[str] = set()
    on = dict(own.sessions_on)
    for owner in sorted(owners - {here}):
        theirs = _own_inventory(owner_context(ctx, owner), refresh=refresh)
        for target in theirs.targets:
            seen = dataclasses.replace(target, owner=owner)
            shared_here = own.shared.get(target.target_id) == owner
            if shared_here:
                read.add(target.target_id)
                on[target.target_id] = theirs.sessions_on.get(target.target_id, ())
            if not is_designated(target.tags, ctx.settings.tag_key):
                if shared_here:
                    listed.append(seen)
                continue
            (usable if shared_here else not_shared).append(seen)
    listed.extend(t for t in own.listed if t.target_id not in read)
    return dataclasses.replace(
        own,
        targets=tuple(usable),
        not_shared=tuple(not_shared),
        listed=tuple(listed),
        allowed_owners=frozenset(owners),
        account=here,
        sessions_on=on,
    )


def owner_context(ctx: Context, owner: str) -> Context:
    """Where a target of `owner` is read: the hub with its own credentials, another account through its role."""
    if not owner:
        return ctx
    return ctx.hub if owner == accounts.own_account(ctx) else ctx.at(owner)


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


def add_sessions(ctx: Context, sessions: Sequence[Session], moved: AbstractSet[str] = frozenset()) -> None:
    """Count sessions this container just created on (or moved to) this place's targets in its
    cached inventory (`moved`: session ids that left the target they were counted on)."""
    with ctx.container.lock:
        cached = ctx.container.inventories.get(ctx.place)
        if cached is None:
            return
        ids = {s.session_id for s in sessions} | set(moved)
        on = {t: [s for s in found if s.session_id not in ids] for t, found in cached.sessions_on.items()}
        for session in sessions:
            on.setdefault(session.target_id, []).append(session)
        ctx.container.inventories[ctx.place] = dataclasses.replace(
            cached, sessions_on={t: tuple(found) for t, found in on.items()}
        )


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
        str(raw.get("OwnerId", "") or ""),
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


def sessions_on_targets(ctx: Context, target_ids: Sequence[str]) -> list[Session]:
    """Sessions on these targets, as this account lists them (a target owner sees other accounts'
    sessions on its targets too): one call per 200 targets."""
    raw = _by_filter(
        ctx, "describe_traffic_mirror_sessions", "TrafficMirrorSessions", "traffic-mirror-target-id", target_ids
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


def instances_with_enis(ctx: Context, eni_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The instances these ENIs are attached to (DescribeInstances by ENI: no need to know their ids)."""
    reservations = _by_filter(ctx, "describe_instances", "Reservations", "network-interface.network-interface-id", eni_ids)
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
                    private_ip=str(eni.get("PrivateIpAddress") or ""),
                    security_groups=tuple(str(g["GroupId"]) for g in eni.get("Groups", []) if "GroupId" in g),
                )
            )
    return sources


def _epoch(value: Any) -> float | None:
    """botocore's datetime -> epoch seconds (None when absent)."""
    return value.timestamp() if hasattr(value, "timestamp") else None


def eni_tag_map(enis: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    return {e["NetworkInterfaceId"]: _tags(e.get("TagSet")) for e in enis}


# --- services' ENIs (MIRROR_SOURCES beyond instances) --------------------------------------


def service_enis(ctx: Context) -> list[dict[str, Any]]:
    """Every requester-managed ENI of type `interface` in use: the candidates of every service kind,
    in one paginated read that EC2 filters (its pages grow with services' ENIs, never instances')."""
    filters = [
        {"Name": "requester-managed", "Values": ["true"]},
        {"Name": "interface-type", "Values": [kinds.INTERFACE_TYPE]},
        {"Name": "status", "Values": ["in-use"]},
    ]
    return _pages(ctx, "describe_network_interfaces", "NetworkInterfaces", Filters=filters)


def service_sources(ctx: Context, enis: Iterable[Mapping[str, Any]], trigger: str) -> list[Source]:
    """The services' ENIs among `enis` that MIRROR_SOURCES selects (and those of services the kinds
    table does not know: the planner leaves them out of scope), each with its load balancer's tags.

    ENIs attached to an instance, and ENIs nobody's service made, are not here: they are instances'.
    """
    wanted = ctx.settings.kinds
    found: list[tuple[Mapping[str, Any], kinds.ServiceEni, str]] = []
    partition = ""
    for eni in enis:
        seen = kinds.recognise(eni)
        if seen is None or not kinds.selected(seen.kind, wanted):
            continue
        service = seen.service
        resource = str(eni.get("Description") or "")[:64] if service is None else ""
        if service is not None and service.tags == "elbv2":
            partition = partition or ctx.clients.base_session().get_partition_for_region(ctx.region)
            owner = str(eni.get("OwnerId") or ctx.place.account or accounts.own_account(ctx))
            resource = kinds.alb_arn(partition, ctx.region, owner, seen.name, seen.resource_id)
        elif service is not None and service.tags == "elb":
            resource = seen.name
        found.append((eni, seen, resource))
    tags = load_balancer_tags(
        ctx,
        [r for _, seen, r in found if seen.service and seen.service.tags == "elbv2"],
        [r for _, seen, r in found if seen.service and seen.service.tags == "elb"],
    )
    return [
        Source(
            str(eni["NetworkInterfaceId"]),
            "",
            "",
            str(eni.get("SubnetId", "")),
            str(eni.get("VpcId", "")),
            str(eni.get("AvailabilityZone", "")),
            tags.get(resource, {}) if seen.service and seen.service.tags else {},
            _tags(eni.get("TagSet")),
            str(eni.get("InterfaceType") or "interface"),
            trigger,
            _epoch((eni.get("Attachment") or {}).get("AttachTime")),
            kind=seen.kind,
            service=seen.service.service if seen.service else "",
            resource=resource,
            private_ip=str(eni.get("PrivateIpAddress") or ""),
            security_groups=tuple(str(g["GroupId"]) for g in eni.get("Groups", []) if "GroupId" in g),
        )
        for eni, seen, resource in found
    ]


def service_sources_of_region(ctx: Context, trigger: str) -> list[Source]:
    """Every service ENI of the region that MIRROR_SOURCES selects (the sweep's and the CLI's)."""
    return service_sources(ctx, service_enis(ctx), trigger)


def load_balancer_tags(
    ctx: Context, arns: Sequence[str] = (), names: Sequence[str] = ()
) -> dict[str, dict[str, str]]:
    """Load balancer ARN (elbv2) or name (classic elb) -> its tags, 20 per call.

    A load balancer deleted meanwhile fails its whole call (LoadBalancerNotFound): that chunk is
    then read one at a time, and the gone one has no tags (its ENIs are going too).
    """
    found: dict[str, dict[str, str]] = {}
    if arns:
        elbv2 = ctx.clients.elbv2(ctx.place)
        found.update(_tag_chunks(lambda c: elbv2.describe_tags(ResourceArns=c), "ResourceArn", arns))
    if names:
        elb = ctx.clients.elb(ctx.place)
        found.update(_tag_chunks(lambda c: elb.describe_tags(LoadBalancerNames=c), "LoadBalancerName", names))
    return found


def _tag_chunks(
    describe: Callable[[list[str]], Mapping[str, Any]], key: str, ids: Sequence[str]
) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}

    def read(chunk: list[str]) -> None:
        for item in describe(chunk).get("TagDescriptions", []):
            found[str(item[key])] = _tags(item.get("Tags"))

    for chunk in readahead.chunks(ids, TAGGED_LOAD_BALANCERS_PER_CALL):
        try:
            read(chunk)
        except ClientError as error:
            if errors.code(error) != errors.LOAD_BALANCER_GONE:
                raise
            for one in chunk if len(chunk) > 1 else ():
                try:
                    read([one])
                except ClientError as single:
                    if errors.code(single) != errors.LOAD_BALANCER_GONE:
                        raise
    return found


# --- what the plan's guardrails read besides (guardrails.py decides) -----------------------------


def _permission(raw: Mapping[str, Any]) -> "guardrails.Permission":
    from . import guardrails

    return guardrails.Permission(
        str(raw.get("IpProtocol", "")),
        int(raw["FromPort"]) if raw.get("FromPort") is not None else None,
        int(raw["ToPort"]) if raw.get("ToPort") is not None else None,
        tuple(str(r["CidrIp"]) for r in raw.get("IpRanges", []) if r.get("CidrIp")),
        tuple(str(g["GroupId"]) for g in raw.get("UserIdGroupPairs", []) if g.get("GroupId")),
        bool(raw.get("PrefixListIds")),
    )


def security_groups(ctx: Context, group_ids: Sequence[str]) -> dict[str, "guardrails.SecurityGroup"]:
    """Security groups by id with their inbound rules (200 ids per call; a gone id is simply absent).
    Only `plan` reads them: the Lambda never imports the guardrails (imported here, not at the top)."""
    from . import guardrails

    if not group_ids:
        return {}
    raw = _by_filter(ctx, "describe_security_groups", "SecurityGroups", "group-id", group_ids)
    return {
        str(g["GroupId"]): guardrails.SecurityGroup(
            str(g["GroupId"]), tuple(_permission(p) for p in g.get("IpPermissions", []))
        )
        for g in raw
    }


