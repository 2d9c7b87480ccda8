"""The pure core: which session each ENI needs, decided from data alone.

No boto3 here. Given the sources (ENIs with their current tags), the sessions that exist on
them, the region's targets and filters, and the settings, `plan` returns one `Decision` per
ENI. Events, the sweep and the CLI all go through this one function, so they agree.
"""

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from . import health, kinds, support
from .model import (
    Action,
    Decision,
    Inventory,
    Learned,
    MirrorFilter,
    Outcome,
    Session,
    Source,
    Target,
    Untrusted,
)
from .settings import MANAGED_TAG_KEY, Settings

NOTHING_LEARNED = Learned()
"""A container that has not been refused anything yet."""
FALSE_LIKE = frozenset({"false", "off", "no", "0", "disabled"})
TRUE_LIKE = frozenset({"true", "on", "yes", "1", "enabled", ""})
DEFAULT_ROUTE_VALUE = "default"
MAX_SESSIONS_PER_ENI = 3
MAX_SESSION_NUMBER = 32766
MIRRORABLE_INTERFACE_TYPES = frozenset({"interface", "efa"})
_DISABLED = "\0disabled"

# Why an ENI is out of scope by design (`Decision.out_of_scope`): stable identifiers, the keys
# of the coverage report, with the words shown to people.
SENSOR = "sensor"
INTERFACE_TYPE = "interface-type"
UNSUPPORTED = "unsupported-type"
OPTED_OUT = "opted-out"
NOT_TAGGED = "not-tagged"
RELEASED = "released"
UNKNOWN_SERVICE = "unknown-service"
GONE = "gone"
OUT_OF_SCOPE: Mapping[str, str] = {
    SENSOR: "sensor ENI (a traffic mirror target)",
    INTERFACE_TYPE: "interface type cannot be mirrored",
    UNKNOWN_SERVICE: "ENI of an AWS service this tool does not mirror",
    UNSUPPORTED: "instance type does not support traffic mirroring (or AWS refused the ENI)",
    OPTED_OUT: "opted out by tag",
    NOT_TAGGED: "not tagged (MIRROR_SCOPE=tagged)",
    RELEASED: "released (instance stopped or ENI detached)",
    GONE: "ENI deleted while being mirrored (AWS removes its sessions with it)",
}

# Why an in-scope ENI is not mirrored (`Decision.problem`), for counts, levels and alarms.
NO_FILTER = "no-filter"
"""No filter in the region at all."""
FILTER_MISSING = "filter-missing"
"""MIRROR_FILTER_ID names a filter that does not exist."""
FILTER_AMBIGUOUS = "filter-ambiguous"
"""Several candidate filters (several tagged default, or several untagged with none chosen)."""
NO_TARGET = "no-target"
"""No trusted target can serve the ENI (on its route)."""
ENI_FULL = "eni-full"
"""The ENI already has AWS's maximum of sessions, none of them ours."""
NO_NUMBER = "no-session-number"
TARGET_UNHEALTHY = "target-unhealthy"
"""Trusted targets exist on the ENI's route, but none can receive packets now (sensor stopped,
deleted, no UDP 4789 listener, no healthy target): the sweep mirrors it once one is usable."""
TARGET_FULL = "target-full"
"""Every usable trusted target already has as many sources as AWS allows (10, or 100)."""
NOT_SHARED = "not-shared"
"""The only sensors that could serve it are another account's, designated but not shared with
the ENI's account (RAM): it cannot use them."""
INTERCEPTED = "intercepted"
"""A session of another tool to an untrusted target is numbered below ours: AWS gives each packet
to the lowest-numbered session whose filter accepts it, so that session takes them first."""
OVER_BUDGET = "over-budget"
"""MIRROR_MAX_SESSIONS is reached by ENIs of equal or higher priority: it waits for room (handler/budget.py)."""
QUOTA = "quota"
"""AWS's session quota for the account is reached (TrafficMirrorSessionLimitExceeded): it waits for room,
by priority like the cap."""
PROBLEMS: Mapping[str, str] = {
    NO_FILTER: "no traffic mirror filter",
    FILTER_MISSING: "the configured filter does not exist",
    FILTER_AMBIGUOUS: "several candidate filters",
    NO_TARGET: "no target can serve it",
    ENI_FULL: "ENI has 3 sessions of other tools",
    NO_NUMBER: "no free session number",
    TARGET_UNHEALTHY: "no usable target (the sensors it may use cannot receive packets now)",
    TARGET_FULL: "every usable target has its maximum of sources",
    NOT_SHARED: "its sensor is not shared with its account",
    INTERCEPTED: "an untrusted session ahead of ours takes its packets",
    OVER_BUDGET: "waits for room under the session cap (MIRROR_MAX_SESSIONS)",
    QUOTA: "waits for room under AWS's session quota",
}
CONFIG_PROBLEMS = frozenset({NO_FILTER, FILTER_MISSING, FILTER_AMBIGUOUS})
"""Problems an operator fixes in configuration (logged at ERROR)."""

# Which trust tier a chosen target is in (`Decision.tier`): nearest first. A target in the
# source's own VPC is trusted for it; a target in another VPC only when the operator designated
# it as a sensor by tagging it with the tag key (`Mirror=true` or a route): whoever can create a
# traffic mirror target in some VPC must not receive copies of everyone's traffic.
SAME_SUBNET = "same-subnet"
SAME_VPC_AZ = "same-vpc-az"
SAME_VPC = "same-vpc"
DESIGNATED = "designated-cross-vpc"
TIERS: Mapping[str, str] = {
    SAME_SUBNET: "same subnet",
    SAME_VPC_AZ: "same VPC and AZ",
    SAME_VPC: "same VPC, another AZ",
    DESIGNATED: "cross-VPC: another VPC, same AZ, to a sensor designated by tag",
}
_TIER_ORDER = {tier: rank for rank, tier in enumerate(TIERS)}

# Why a session the automation did not create is a finding (`Untrusted.finding`): its target is not
# trusted for the ENI by the same rules that choose our sensors. Never touched, always reported.
OWNER_NOT_ALLOWED = "owner-not-allowed"
NOT_DESIGNATED = "not-designated"
NOT_LISTED = "not-listed"
UNTRUSTED: Mapping[str, str] = {
    OWNER_NOT_ALLOWED: "its target belongs to an account MIRROR_SENSOR_OWNERS does not allow",
    NOT_DESIGNATED: "its target is in another VPC and not designated as a sensor",
    NOT_LISTED: "its target is not one this account can see (another account's, not shared with it)",
}


@dataclass(frozen=True)
class Intent:
    """Whether an ENI is in scope, and on which route (None = unrouted)."""

    in_scope: bool
    route: str | None
    reason: str
    out_of_scope: str | None = None


def tag_intent(source: Source, tag_key: str, scope: str) -> Intent:
    """Apply the tagging rules: the ENI's own tag overrides its instance's (or its load
    balancer's); values ignore case."""
    raw, where = source.eni_tags.get(tag_key), "ENI"
    if raw is None:
        raw, where = source.instance_tags.get(tag_key), source.owner
    if raw is None:
        if scope == "all":
            return Intent(True, None, "in scope (MIRROR_SCOPE=all)")
        return Intent(False, None, f"not tagged {tag_key} (MIRROR_SCOPE=tagged)", NOT_TAGGED)
    value = raw.strip().lower()
    if value in FALSE_LIKE:
        return Intent(False, None, f"opted out by {where} tag {tag_key}={raw}", OPTED_OUT)
    if value in TRUE_LIKE or value == DEFAULT_ROUTE_VALUE:
        return Intent(True, None, f"opted in by {where} tag {tag_key}={raw}")
    return Intent(True, value, f"route {value!r} from {where} tag {tag_key}={raw}")


_INTEGER = re.compile(r"[+-]?[0-9]+")


def priority(source: Source, key: str) -> tuple[int, str | None]:
    """An ENI's priority under a budget: the ENI's own tag over its instance's (or load balancer's),
    untagged 0.

    A value that is not an integer is a configuration problem of that ENI (the error, priority 0).
    """
    return priority_of(source.eni_tags, source.instance_tags, key, source.owner)


def priority_of(
    eni_tags: Mapping[str, str], parent_tags: Mapping[str, str], key: str, parent: str = "instance"
) -> tuple[int, str | None]:
    """`priority` from the ENI's tags and its parent's (`parent`: what they belong to, in words)."""
    raw, where = eni_tags.get(key), "ENI"
    if raw is None:
        raw, where = parent_tags.get(key), parent
    if raw is None:
        return 0, None
    if _INTEGER.fullmatch(raw.strip()):
        return int(raw.strip()), None
    return 0, f"{where} tag {key}={raw!r} is not an integer: priority 0"


def resource_route(tags: Mapping[str, str], tag_key: str) -> str | None:
    """Route a target or filter serves: None = unrouted; a disabled marker never matches a route."""
    raw = tags.get(tag_key)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in TRUE_LIKE or value == DEFAULT_ROUTE_VALUE:
        return None
    if value in FALSE_LIKE:
        return _DISABLED
    return value


def is_designated(tags: Mapping[str, str], tag_key: str) -> bool:
    """The operator marked this target as a sensor: tagged with the key, not false-like."""
    raw = tags.get(tag_key)
    return raw is not None and raw.strip().lower() not in FALSE_LIKE


def is_managed(session: Session, settings: Settings) -> bool:
    return session.tags.get(MANAGED_TAG_KEY) == settings.managed_by


def owner_allowed(owner: str, inventory: Inventory) -> bool:
    """May a target of `owner` ("" = this place's account) serve this place's ENIs (MIRROR_SENSOR_OWNERS)?"""
    if inventory.allowed_owners is None:
        return not owner
    return (owner or inventory.account) in inventory.allowed_owners


def untrusted_sessions(
    source: Source, sessions: Iterable[Session], inventory: Inventory, tag_key: str
) -> tuple[Untrusted, ...]:
    """The sessions of other tools on `source` whose target is not trusted for it, lowest number first.

    Trusted: a target of an account MIRROR_SENSOR_OWNERS allows, in the source's own VPC or
    designated as a sensor by the tag key; the same rules that choose our sensors. Whatever the
    target's zone, route or health: those decide which sensor we use, not whose it is.
    """
    found = []
    for session in sorted(sessions, key=lambda s: (s.number, s.session_id)):
        target = inventory.seen(session.target_id)
        owner, kind = (target.owner, target.kind) if target is not None else ("", "")
        if target is None:
            finding = NOT_LISTED
            why = (
                f"target {session.target_id} is not one this account can see (another account's target"
                " not shared with it, or deleted)"
            )
        elif not owner_allowed(target.owner, inventory):
            finding = OWNER_NOT_ALLOWED
            whose = f"account {target.owner}" if target.owner else "this account"
            why = f"target {target.target_id} belongs to {whose}, which MIRROR_SENSOR_OWNERS does not allow"
        elif target.vpc_id == source.vpc_id or is_designated(target.tags, tag_key):
            continue
        else:
            finding = NOT_DESIGNATED
            where = target.vpc_id or "another VPC"
            why = (
                f"target {target.target_id} ({target.kind}) is in {where}, not {source.vpc_id}, and is not"
                f" designated as a sensor (tag {tag_key})"
            )
        found.append(
            Untrusted(
                session.session_id,
                source.eni_id,
                source.instance_id,
                session.number,
                session.target_id,
                owner,
                finding,
                why,
                kind,
            )
        )
    return tuple(found)


def with_untrusted(decision: Decision, found: Sequence[Untrusted]) -> Decision:
    """The decision with its untrusted sessions; `intercepted` when one is numbered below ours.

    AWS gives each packet to the lowest-numbered session whose filter accepts it: a session of
    ours behind an untrusted one does not receive those packets, so the ENI is not mirrored.
    """
    if not found:
        return decision
    ours = decision.session_number
    marked = tuple(dataclasses.replace(u, intercepts=ours is not None and u.number < ours) for u in found)
    first = next((u for u in marked if u.intercepts), None)
    if first is None or decision.problem is not None or decision.out_of_scope is not None:
        return dataclasses.replace(decision, untrusted=marked)
    why = (
        f"intercepted: session {first.session_id} (number {first.number}) to untrusted target"
        f" {first.target_id} is evaluated before ours (number {ours}) and takes the packets its filter accepts"
    )
    return dataclasses.replace(decision, untrusted=marked, problem=INTERCEPTED, reason=f"{why}; {decision.reason}")


def trust_tier(source: Source, target: Target, tag_key: str) -> str | None:
    """How near and how trusted `target` is for `source` (a `TIERS` id); None = may not serve it.

    ENI targets serve their AZ: their own VPC, or another VPC when designated. NLB targets serve
    their VPC; Gateway Load Balancer endpoints serve their VPC, preferring their own AZ.
    """
    if target.kind == "network-interface":
        if not same_zone(source, target):
            return None
        if target.vpc_id != source.vpc_id:
            return DESIGNATED if is_designated(target.tags, tag_key) else None
        return SAME_SUBNET if target.subnet_id == source.subnet_id else SAME_VPC_AZ
    if target.kind == "network-load-balancer":
        # An NLB receives VXLAN from any VPC that routes to it (peering, a transit gateway):
        # its own VPC, or another when the operator designated it (a central sensor fleet).
        if target.vpc_id == source.vpc_id:
            return SAME_VPC_AZ
        return DESIGNATED if is_designated(target.tags, tag_key) else None
    if target.vpc_id != source.vpc_id:
        return None
    if target.subnet_id == source.subnet_id:
        return SAME_SUBNET
    return SAME_VPC_AZ if same_zone(source, target) else SAME_VPC


def same_zone(source: Source, target: Target) -> bool:
    """The same AZ: by AZ id across accounts (names differ per account), by name within one."""
    if target.owner or (source.az_id and target.az_id):
        return bool(source.az_id) and source.az_id == target.az_id
    return target.az == source.az


def usable_for(source: Source, target: Target) -> bool:
    """The target can receive this source's packets now (`Target.health`; an NLB without cross-zone
    load balancing only in the AZs where it has a healthy target)."""
    status = target.health
    if not status.usable:
        return False
    if status.zones is None:
        return True
    if target.owner or (source.az_id and status.zone_ids is not None):
        return bool(source.az_id) and source.az_id in (status.zone_ids or frozenset())
    return source.az in status.zones


Load = Mapping[str, AbstractSet[str]]
"""Target id -> the source ENIs of the sessions on it (what AWS counts against its capacity)."""


def initial_load(inventory: Inventory, sessions_by_eni: Mapping[str, Sequence[Session]]) -> dict[str, set[str]]:
    """Sources per target: as the targets' owners listed them with the inventory, and every session
    read for this plan (a member's own sessions on a hub target included)."""
    load: dict[str, set[str]] = {t: set(found) for t, found in ((t, inventory.sources_on(t)) for t in inventory.sessions_on)}
    for eni_id, sessions in sessions_by_eni.items():
        for session in sessions:
            load.setdefault(session.target_id, set()).add(eni_id)
    return load


def has_room(target: Target, eni_id: str, load: Load) -> bool:
    """One more source fits (a source already on it does not count twice)."""
    capacity = target.health.capacity
    return capacity is None or len(set(load.get(target.target_id, ())) - {eni_id}) < capacity


def placements(decisions: Iterable[Decision], sessions_by_eni: Mapping[str, Sequence[Session]]) -> dict[str, set[str]]:
    """Target id -> ENIs these decisions put on it (creates and moves): reserved when another plan
    is made beside them (the confirmation of moves, the retry of a lost race)."""
    placed: dict[str, set[str]] = {}
    for decision in decisions:
        for target in _targets_after(decision, sessions_by_eni.get(decision.eni_id, ())):
            placed.setdefault(target, set()).add(decision.eni_id)
    return placed


def _targets_after(decision: Decision, sessions: Sequence[Session]) -> set[str]:
    """The targets this ENI's sessions point at once the decision's actions are applied."""
    now = {s.session_id: s.target_id for s in sessions}
    for index, action in enumerate(decision.actions):
        if action.kind == "delete" and action.session_id:
            now.pop(action.session_id, None)
        elif action.kind == "modify" and action.session_id and action.target_id:
            now[action.session_id] = action.target_id
        elif action.kind == "create" and action.target_id:
            now[f"new-{index}"] = action.target_id
    return set(now.values())


MAX_VNI = 16777215


def vni_for(source: Source) -> int:
    """A deterministic VXLAN id per (account, VPC): sensors tell overlapping CIDRs apart."""
    digest = hashlib.sha256(f"{source.account}|{source.vpc_id}".encode()).hexdigest()
    return 1 + int(digest, 16) % MAX_VNI


def _spread_rank(eni_id: str, target_id: str) -> int:
    """Rendezvous hashing: a stable, even spread of ENIs over equally near targets.

    Adding or removing a target only moves the ENIs that hashed to it.
    """
    return -int(hashlib.sha256(f"{eni_id}|{target_id}".encode()).hexdigest(), 16)


def eligible_targets(
    source: Source,
    route: str | None,
    targets: Iterable[Target],
    tag_key: str,
    full: frozenset[str] = frozenset(),
) -> list[Target]:
    """Targets that may serve this ENI on this route: nearest tier first, spread within a tier.

    Targets in `full` (they refused more sources) come last: still eligible, so the sessions they
    already serve stay, but a new session goes elsewhere when anything else qualifies.
    """
    ranked = []
    for target in targets:
        if resource_route(target.tags, tag_key) != route:
            continue
        tier = trust_tier(source, target, tag_key)
        if tier is not None:
            rank = (target.target_id in full, _TIER_ORDER[tier], _spread_rank(source.eni_id, target.target_id))
            ranked.append((rank, target))
    ranked.sort(key=lambda item: item[0])
    return [target for _, target in ranked]


def choose_target(
    source: Source, route: str | None, targets: Sequence[Target], tag_key: str
) -> tuple[Target | None, str]:
    """The nearest eligible target, or None and the reason (logged)."""
    candidates = eligible_targets(source, route, targets, tag_key)
    if candidates:
        return candidates[0], f"target {candidates[0].target_id} ({candidates[0].kind})"
    where = f"{source.az} / {source.vpc_id}"
    if route is not None:
        return None, f"no target tagged {tag_key}={route} can serve {where}; not mirrored elsewhere"
    return None, (
        f"no traffic mirror target without a route can serve {where} (one in its VPC, or one in"
        f" another VPC of its AZ tagged {tag_key}=true)"
    )


@dataclass(frozen=True)
class FilterChoice:
    filter_id: str | None
    reason: str
    problem: str | None = None


def choose_filter(route: str | None, filters: Sequence[MirrorFilter], settings: Settings) -> FilterChoice:
    """Never 'first one wins': route filter, else MIRROR_FILTER_ID, else key=default, else the only one."""
    key = settings.tag_key
    if route is not None:
        routed = sorted(f.filter_id for f in filters if resource_route(f.tags, key) == route)
        if len(routed) == 1:
            return FilterChoice(routed[0], f"filter {routed[0]} of route {route!r}")
        if len(routed) > 1:
            why = f"{len(routed)} filters are tagged {key}={route} ({', '.join(routed)}); tag exactly one"
            return FilterChoice(None, why, FILTER_AMBIGUOUS)
    if settings.filter_id:
        if any(f.filter_id == settings.filter_id for f in filters):
            return FilterChoice(settings.filter_id, f"MIRROR_FILTER_ID {settings.filter_id}")
        why = f"MIRROR_FILTER_ID {settings.filter_id} does not exist in this region"
        return FilterChoice(None, why, FILTER_MISSING)
    tagged = sorted(
        f.filter_id for f in filters if f.tags.get(key, "").strip().lower() == DEFAULT_ROUTE_VALUE
    )
    if len(tagged) == 1:
        return FilterChoice(tagged[0], f"filter {tagged[0]} tagged {key}=default")
    if len(tagged) > 1:
        why = f"{len(tagged)} filters are tagged {key}=default ({', '.join(tagged)}); tag exactly one"
        return FilterChoice(None, why, FILTER_AMBIGUOUS)
    untagged = sorted(f.filter_id for f in filters if resource_route(f.tags, key) is None)
    if len(untagged) == 1:
        return FilterChoice(untagged[0], f"filter {untagged[0]} (the only filter without a route)")
    if not untagged:
        why = "no traffic mirror filter in this region: create one or set MIRROR_FILTER_ID"
        return FilterChoice(None, why, NO_FILTER)
    why = f"cannot choose between filters {', '.join(untagged)}: set MIRROR_FILTER_ID or tag one {key}=default"
    return FilterChoice(None, why, FILTER_AMBIGUOUS)


def free_session_number(taken: Iterable[int], preferred: int) -> int | None:
    """Lowest free number >= preferred (lower = evaluated first), wrapping to 1; None if all taken."""
    used = set(taken)
    for number in itertools.chain(range(preferred, MAX_SESSION_NUMBER + 1), range(1, preferred)):
        if number not in used:
            return number
    return None


def client_token(source: Source, target_id: str, filter_id: str, number: int) -> str:
    """Same event, same ENI, same choice -> same token: a redelivered event cannot duplicate."""
    seed = f"{source.trigger}|{source.eni_id}|{target_id}|{filter_id}|{number}"
    return hashlib.sha256(seed.encode()).hexdigest()[:64]


def _decide(
    source: Source,
    outcome: Outcome,
    reason: str,
    actions: tuple[Action, ...] = (),
    target_id: str | None = None,
    filter_id: str | None = None,
    out_of_scope: str | None = None,
    problem: str | None = None,
    kept_session: str | None = None,
    session_number: int | None = None,
    tier: str | None = None,
    repairs: str | None = None,
) -> Decision:
    return Decision(
        eni_id=source.eni_id,
        instance_id=source.instance_id,
        outcome=outcome,
        reason=reason,
        actions=actions,
        target_id=target_id,
        filter_id=filter_id,
        vpc_id=source.vpc_id,
        az=source.az,
        instance_type=source.instance_type,
        out_of_scope=out_of_scope,
        problem=problem,
        kept_session=kept_session,
        session_number=session_number,
        tier=tier,
        repairs=repairs,
        kind=source.kind,
        resource="" if source.kind == kinds.INSTANCES else source.label,
        attached_at=source.attached_at,
    )


def _tier_words(source: Source, target: Target, tag_key: str) -> tuple[str | None, str]:
    tier = trust_tier(source, target, tag_key)
    words = TIERS.get(tier or "", "")
    if tier == DESIGNATED:
        words = f"cross-VPC: {target.vpc_id} serves {source.vpc_id} in {source.az} (designated by tag {tag_key})"
    return tier, words


def _deletes(eni_id: str, sessions: Iterable[Session]) -> tuple[Action, ...]:
    return tuple(Action("delete", eni_id, session_id=s.session_id) for s in sessions)


def _delete_all(
    source: Source,
    managed: Sequence[Session],
    reason: str,
    out_of_scope: str | None = None,
    problem: str | None = None,
) -> Decision:
    """Not to be mirrored (here): remove our sessions (never anyone else's), or just say why not."""
    actions = _deletes(source.eni_id, managed)
    outcome: Outcome = "delete" if actions else "skipped"
    return _decide(source, outcome, reason, actions, out_of_scope=out_of_scope, problem=problem)


def plan_source(
    source: Source,
    sessions: Sequence[Session],
    inventory: Inventory,
    settings: Settings,
    *,
    release: bool = False,
    learned: Learned = NOTHING_LEARNED,
    load: Load | None = None,
) -> Decision:
    """Decide one ENI. Only sessions this tool manages are ever modified or deleted; the others are
    checked against the trust model and reported when their target is not trusted.

    `load`: sources per target so far (`plan` keeps it across ENIs); None: from the inventory and
    this ENI's sessions alone. A new session goes only to a usable target with room; ours stays
    on a usable target, and moves off an unusable one when a usable one with room exists.
    """
    if load is None:
        load = initial_load(inventory, {source.eni_id: sessions})
    decision = _plan_source(source, sessions, inventory, settings, release=release, learned=learned, load=load)
    foreign = (s for s in sessions if not is_managed(s, settings))
    decision = with_untrusted(decision, untrusted_sessions(source, foreign, inventory, settings.tag_key))
    rank, error = priority(source, settings.priority_tag_key)
    if rank == 0 and error is None:
        return decision
    # The budget pass (handler/budget.py) ranks by it.
    return dataclasses.replace(decision, priority=rank, priority_error=error)


def _plan_source(
    source: Source,
    sessions: Sequence[Session],
    inventory: Inventory,
    settings: Settings,
    *,
    release: bool,
    learned: Learned,
    load: Load,
) -> Decision:
    managed = sorted((s for s in sessions if is_managed(s, settings)), key=lambda s: s.number)
    foreign = [s for s in sessions if not is_managed(s, settings)]
    if release:
        reason = "released: instance stopped or ENI detached (MIRROR_RELEASE_ON_STOP)"
        return _delete_all(source, managed, reason, RELEASED)
    if source.eni_id in inventory.target_eni_ids:
        return _delete_all(
            source, managed, "ENI is a traffic mirror target (a sensor): never a source", SENSOR
        )
    instance = source.kind == kinds.INSTANCES
    if source.interface_type not in (MIRRORABLE_INTERFACE_TYPES if instance else {kinds.INTERFACE_TYPE}):
        reason = f"interface type {source.interface_type!r} cannot be mirrored"
        return _delete_all(source, managed, reason, INTERFACE_TYPE)
    if source.kind == kinds.OTHER:
        reason = f"requester-managed ENI of a service not in the source kinds table ({source.service or 'unknown'})"
        return _delete_all(source, managed, reason, UNKNOWN_SERVICE)
    if instance:
        unsupported = support.unsupported_reason(source.instance_type, learned.refused_types)
    elif source.eni_id in learned.refused_enis:
        unsupported = f"{source.label}: refused earlier by the API (NetworkInterfaceNotSupported)"
    else:
        unsupported = None
    if unsupported:
        return _delete_all(source, managed, unsupported, UNSUPPORTED)
    intent = tag_intent(source, settings.tag_key, settings.scope)
    if not intent.in_scope:
        return _delete_all(source, managed, intent.reason, intent.out_of_scope)

    chosen = choose_filter(intent.route, inventory.filters, settings)
    if chosen.filter_id is None:
        # A configuration error: say so, and leave what is mirrored alone.
        return _decide(source, "skipped", f"no filter: {chosen.reason}", problem=chosen.problem)
    filter_id, filter_reason = chosen.filter_id, chosen.reason
    candidates = eligible_targets(
        source, intent.route, inventory.targets, settings.tag_key, learned.full_targets
    )
    stranded = [s for s in managed if _gone(inventory, s.target_id)]
    if not candidates and stranded:
        # A sensor whose resource is gone, and nothing else trusted: never deleted for health.
        why = f"{_unusable_words(inventory, stranded[0].target_id)}; no other target can serve it; session kept"
        return _decide(
            source,
            "skipped",
            why,
            target_id=stranded[0].target_id,
            problem=TARGET_UNHEALTHY,
            kept_session=stranded[0].session_id,
            session_number=stranded[0].number,
        )
    if not candidates:
        unshared = eligible_targets(source, intent.route, inventory.not_shared, settings.tag_key)
        if unshared:
            why = (
                f"sensor {unshared[0].target_id} of account {unshared[0].owner} would serve it but is not shared"
                f" with this account (RAM); not mirrored elsewhere"
            )
            # Like a sensor that is down: the session waits for the share to come back, untouched.
            kept = managed[0].session_id if managed else None
            return _decide(source, "skipped", why, problem=NOT_SHARED, kept_session=kept)
        _, why = choose_target(source, intent.route, inventory.targets, settings.tag_key)
        return _delete_all(source, managed, why, problem=NO_TARGET)
    usable = [t for t in candidates if usable_for(source, t)]
    open_ = [t for t in usable if has_room(t, source.eni_id, load)]

    if managed:
        return _keep_or_move(source, managed, candidates, usable, open_, filter_id, intent, settings.tag_key, inventory, load)
    if len(foreign) >= MAX_SESSIONS_PER_ENI:
        reason = (
            f"ENI already has {len(foreign)} sessions (AWS allows {MAX_SESSIONS_PER_ENI}), none of them ours"
        )
        return _decide(source, "skipped", reason, problem=ENI_FULL)
    number = free_session_number((s.number for s in foreign), settings.session_number)
    if number is None:
        return _decide(source, "skipped", "no free session number on this ENI", problem=NO_NUMBER)
    if not open_:
        problem, why = _no_room(usable, candidates)
        return _decide(source, "skipped", f"{intent.reason}; {why}", problem=problem)
    target = open_[0]
    description = f"Mirror of {source.eni_id} ({source.label}), managed by {settings.managed_by}"
    create = Action(
        "create",
        source.eni_id,
        target_id=target.target_id,
        filter_id=filter_id,
        session_number=number,
        client_token=client_token(source, target.target_id, filter_id, number),
        name=source.name,
        description=description[:255],
        vni=vni_for(source) if settings.vni_per_vpc else None,
    )
    tier, tier_words = _tier_words(source, target, settings.tag_key)
    reason = (
        f"{intent.reason}; {target.kind} {target.target_id} ({tier_words}); {filter_reason};"
        f" session number {number}"
    )
    return _decide(
        source, "create", reason, (create,), target.target_id, filter_id, session_number=number, tier=tier
    )


def _gone(inventory: Inventory, target_id: str) -> bool:
    """The target, or the resource behind it, no longer exists (where it was is unknown)."""
    target = inventory.target(target_id)
    return target is None or target.health.why in (health.ENI_DELETED, health.NLB_DELETED, health.ENDPOINT_DELETED)


def _unusable_words(inventory: Inventory, target_id: str) -> str:
    target = inventory.target(target_id)
    why = health.WHY[health.TARGET_DELETED] if target is None else health.words(target.health)
    return f"target {target_id} is unusable: {why}"


def _no_room(usable: Sequence[Target], candidates: Sequence[Target]) -> tuple[str, str]:
    """Why no target can take a new source: all usable ones are full, or none is usable."""
    if usable:
        limits = ", ".join(f"{t.target_id} ({t.health.capacity} sources)" for t in usable)
        return TARGET_FULL, f"every usable target has its maximum of sources: {limits}"
    listed = "; ".join(f"{t.target_id}: {health.words(t.health)}" for t in candidates[:5])
    return TARGET_UNHEALTHY, f"no usable target ({listed})"


def _keep_or_move(
    source: Source,
    managed: Sequence[Session],
    candidates: Sequence[Target],
    usable: Sequence[Target],
    open_: Sequence[Target],
    filter_id: str,
    intent: Intent,
    tag_key: str,
    inventory: Inventory,
    load: Load,
) -> Decision:
    """Our session stays while its target still qualifies and is usable (no churn for a closer
    sensor, none when a failed sensor comes back: rendezvous spread decides only new sessions).

    Otherwise it is modified in place, which keeps the packet stream and the session number: off
    an unusable target to the nearest usable one with room (failover); off a target it may no
    longer use to the nearest trusted one. With no usable alternative a session on an unusable
    target stays (never deleted for health) and the ENI is reported. Extra managed sessions (a
    race on real AWS) are removed, keeping the lowest number.
    """
    keep, extras = managed[0], managed[1:]
    deletes = _deletes(source.eni_id, extras)
    by_id = {t.target_id: t for t in candidates}
    trusted = keep.target_id in by_id
    target_ok = trusted and usable_for(source, by_id[keep.target_id])
    filter_ok = keep.filter_id == filter_id
    if target_ok and filter_ok:
        tier, tier_words = _tier_words(source, by_id[keep.target_id], tag_key)
        reason = f"already mirrored by {keep.session_id} ({tier_words})"
        if deletes:
            reason += f"; {len(deletes)} duplicate managed session(s) removed"
        return _decide(
            source,
            "delete" if deletes else "mirrored",
            reason,
            deletes,
            keep.target_id,
            keep.filter_id,
            kept_session=keep.session_id,
            session_number=keep.number,
            tier=tier,
        )
    failover = trusted or _gone(inventory, keep.target_id)
    problem: str | None = None
    repairs: str | None = None
    why: list[str] = []
    if target_ok:
        new_target: Target | None = by_id[keep.target_id]
    else:
        others = [t for t in open_ if t.target_id != keep.target_id]
        if not failover and not others:  # a target it may not use: the nearest trusted one instead
            others = [t for t in candidates if has_room(t, source.eni_id, load)]
        new_target = others[0] if others else None
        if new_target is None:
            problem, words = _no_room([t for t in usable if t.target_id != keep.target_id], candidates)
            why.append(f"{_unusable_words(inventory, keep.target_id)}; {words}; session kept")
        elif failover:
            repairs = TARGET_UNHEALTHY
        elif not usable_for(source, new_target):
            problem = TARGET_UNHEALTHY
    if new_target is None and filter_ok:
        return _decide(
            source,
            "delete" if deletes else "skipped",
            "; ".join(why),
            deletes,
            keep.target_id,
            keep.filter_id,
            problem=problem,
            kept_session=keep.session_id,
            session_number=keep.number,
        )
    moved = new_target is not None and new_target.target_id != keep.target_id
    destination = new_target.target_id if new_target is not None else keep.target_id
    tier, tier_words = _tier_words(source, new_target, tag_key) if new_target is not None else (None, "")
    if moved:
        cause = _unusable_words(inventory, keep.target_id) if failover else intent.reason
        why.append(f"target {keep.target_id} -> {destination} ({cause}; {tier_words})")
    if not filter_ok:
        why.append(f"filter {keep.filter_id} -> {filter_id}")
    modify = Action(
        "modify",
        source.eni_id,
        session_id=keep.session_id,
        target_id=destination if moved else None,
        filter_id=None if filter_ok else filter_id,
    )
    return _decide(
        source,
        "modify",
        "; ".join(why),
        (modify, *deletes),
        destination,
        filter_id,
        problem=problem,
        session_number=keep.number,
        tier=tier,
        repairs=repairs,
    )


def plan(
    sources: Iterable[Source],
    sessions_by_eni: Mapping[str, Sequence[Session]],
    inventory: Inventory,
    settings: Settings,
    *,
    release: bool = False,
    learned: Learned = NOTHING_LEARNED,
    reserved: Load | None = None,
) -> list[Decision]:
    """One decision per distinct ENI, in a stable order (the sweep relies on it to make progress).

    Sources per target are counted across the whole plan: the sessions that exist (`initial_load`),
    `reserved` (ENIs other plans of this run put on targets), and what this plan puts there, so no
    target is given more sources than it accepts (the dry run, the sweep and coverage agree).
    A target's room goes to the highest priority first (MIRROR_PRIORITY_TAG_KEY, as the budget
    ranks; untagged ENIs in id order), so a sensor's capacity and a session budget agree on who
    waits.
    """
    unique = {s.eni_id: s for s in sources}
    load = initial_load(inventory, sessions_by_eni)
    for target, enis in (reserved or {}).items():
        load.setdefault(target, set()).update(enis)
    decided: dict[str, Decision] = {}
    for eni in sorted(unique, key=lambda e: (-priority(unique[e], settings.priority_tag_key)[0], e)):
        sessions = sessions_by_eni.get(eni, ())
        decision = plan_source(
            unique[eni], sessions, inventory, settings, release=release, learned=learned, load=load
        )
        if decision.actions:
            for target in {s.target_id for s in sessions}:
                load.get(target, set()).discard(eni)
            for target in _targets_after(decision, sessions):
                load.setdefault(target, set()).add(eni)
        decided[eni] = decision
    return [decided[eni] for eni in sorted(decided)]


def plan_orphans(
    sessions: Iterable[Session], source_eni_ids: frozenset[str], settings: Settings
) -> list[Decision]:
    """Managed sessions on ENIs that are no longer sources (detached, instance stopped).

    Only acted on with MIRROR_RELEASE_ON_STOP: otherwise they stay, and resume when the ENI
    is attached or the instance started again.
    """
    if not settings.release_on_stop:
        return []
    by_eni: dict[str, list[Session]] = {}
    for session in sessions:
        if session.eni_id not in source_eni_ids and is_managed(session, settings):
            by_eni.setdefault(session.eni_id, []).append(session)
    return [
        Decision(
            eni_id=eni,
            instance_id="",
            outcome="delete",
            reason="released: ENI is detached or its instance stopped (MIRROR_RELEASE_ON_STOP)",
            actions=_deletes(eni, found),
            out_of_scope=RELEASED,
        )
        for eni, found in sorted(by_eni.items())
    ]
