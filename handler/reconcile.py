"""The thin shell around the planner: read what a batch of changes needs, plan, apply.

Two entry points share one path (`_plan_and_apply`):
- `changes`: events that name instances or ENIs. Reads are batched across the whole batch of
  events and run concurrently: warm, a launch costs one round of reads (current tags and the
  existing sessions of its ENIs) and one round of creates.
- `sweep`: the whole region, page by page, for the schedule, deleted sessions and route changes.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import accounts, budget, health, kinds
from . import coverage as counting
from . import inventory as inv
from .apply import Result, apply_all, conflicted, problem_counts
from .context import FLEET_WORKERS, Context
from .errors import SESSION_QUOTA, ReadFailure
from .events import Change, Skip
from .model import Action, Decision, Inventory, Session, Source
from .planner import RELEASED, is_managed, placements, plan, plan_orphans, priority
from .settings import Settings

if TYPE_CHECKING:
    from . import loss

GONE_STATES = frozenset({"shutting-down", "terminated"})
STOPPED_STATES = frozenset({"stopping", "stopped"})


@dataclass
class Outcome:
    """Results of one reconcile, and which change (by index) each ENI came from."""

    results: list[Result]
    owners: dict[str, set[int]] = field(default_factory=dict)
    losses: dict[str, "loss.Loss"] = field(default_factory=dict)
    """Mirror loss read by a scheduled sweep, by account ("" = the invocation's own)."""
    skips: list[Skip] = field(default_factory=list)
    """Events that need nothing once the cached inventory was consulted (a state change of an
    instance that is no sensor): reported as ignored."""
    sensors: tuple[counting.Sensor, ...] = ()
    """A sweep's targets with their health (its usable/unusable metrics)."""

    def problems(self) -> dict[str, int]:
        """In-scope ENIs left unmirrored, by problem kind (configuration problems first)."""
        return problem_counts(self.results)

    def failed_changes(self) -> set[int]:
        failed: set[int] = set()
        for result in self.results:
            if result.retryable:
                failed |= self.owners.get(result.decision.eni_id, set())
        return failed


def _skip(eni_id: str, instance_id: str, reason: str) -> Decision:
    return Decision(eni_id=eni_id, instance_id=instance_id, outcome="skipped", reason=reason)


def _stale(inventory: Inventory, sessions: Iterable[Session], settings: Settings) -> bool:
    """A session names a target (ours: or a filter) we do not know: the cache may be old.

    Another tool's session to a target made after the cache was read must not be reported as a
    session to a target nobody can see: read again first.
    """
    for s in sessions:
        if is_managed(s, settings):
            if inventory.target(s.target_id) is None or not inventory.has_filter(s.filter_id):
                return True
        elif inventory.seen(s.target_id) is None:
            return True
    return False


def _plan_and_apply(
    ctx: Context,
    inventory: Inventory,
    sources: Sequence[Source],
    release_sources: Sequence[Source],
    sessions: Sequence[Session],
    extra: Sequence[Decision],
    on_done: Callable[[Result], None] | None,
    orphans: bool = False,
    orphans_known: Sequence[Source] = (),
    listing: Sequence[Session] | None = None,
) -> list[Result]:
    """Plan every source against its sessions, keep to the budget, confirm what would destroy,
    apply, settle races.

    `orphans_known` are ENIs that exist but are left out of this plan (the sweep's grace): their
    managed sessions are not orphans. `listing`: every session of the place (its own), when read:
    the budget pass (handler/budget.py) needs it; None when no budget applies (an event, no cap).
    """
    settings = ctx.settings
    if _stale(inventory, sessions, settings):
        inventory = inv.inventory(ctx, refresh=True)
    sources, release_sources = _located(sources, ctx, inventory), _located(release_sources, ctx, inventory)
    inv.plausible(inventory, sessions, settings)
    by_eni = inv.group_by_eni(sessions)
    learned = ctx.learned()
    decisions = [
        *extra,
        *plan(sources, by_eni, inventory, settings, learned=learned),
        *plan(release_sources, by_eni, inventory, settings, release=True, learned=learned),
    ]
    if orphans:
        known = frozenset(s.eni_id for s in (*sources, *orphans_known))
        decisions.extend(plan_orphans(sessions, known, settings))
    room = None
    if listing is not None:
        young = {s.eni_id: priority(s, settings.priority_tag_key)[0] for s in orphans_known}
        room = budget.room(settings, listing, learned.session_quota, young, complete=orphans)
    triggers = {s.eni_id: s.trigger for s in (*sources, *release_sources)}
    planned = _Budgeted(decisions, room)
    if room is not None:
        planned = _within_budget(ctx, decisions, room)
    decisions, unconfirmed, room = _confirm(ctx, planned.decisions, triggers, by_eni, planned)
    results = _apply(ctx, decisions, room, on_done)
    if on_done:
        for result in unconfirmed:
            on_done(result)
    if any(r.error_code == SESSION_QUOTA for r in results):
        # What the account holds now is what its quota allows: plan within it for a while.
        ctx.container.quota_reached(ctx.place, len(inv.own_sessions(ctx, inv.all_sessions(ctx))))
    settled = _settle_conflicts(results, ctx, inventory, sources, on_done, by_eni)
    _remember_placements(ctx, inventory, settled)
    return [*settled, *unconfirmed]


def _remember_placements(ctx: Context, inventory: Inventory, results: Iterable[Result]) -> None:
    """Sessions this run created on, or moved to, ENI targets join the cached inventory's counts of
    their target's owner, so the next invocations of this container count them (until the next
    read; another container's are counted from that read, or refused by AWS and learned)."""
    by_owner: dict[bool, list[Session]] = {}
    moved: set[str] = set()
    maker = ""
    for result in results:
        decision = result.decision
        target = inventory.target(decision.target_id or "")
        if result.status not in counting.APPLIED or target is None or target.health.capacity is None:
            continue
        maker = maker or ctx.place.account or accounts.own_account(ctx)  # as the owner's listing shows it
        for action in decision.actions:
            session_id = action.session_id or (result.session_ids[0] if result.session_ids else "")
            if action.kind == "modify" and action.session_id and action.target_id:
                moved.add(action.session_id)
            elif action.kind != "create" or not session_id:
                continue
            session = Session(session_id, decision.eni_id, target.target_id, decision.filter_id or "", 0, owner=maker)
            by_owner.setdefault(bool(target.owner), []).append(session)
    for hub, sessions in by_owner.items():
        inv.add_sessions(ctx.hub if hub else ctx, sessions, moved)


@dataclass(frozen=True)
class _Budgeted:
    """The decisions after the budget pass, and what it was given (the planner's own, the room)."""

    decisions: list[Decision]
    room: budget.Room | None
    planned: Sequence[Decision] = ()


def _within_budget(ctx: Context, planned: list[Decision], room: budget.Room) -> _Budgeted:
    """The budget pass; an event that sees a newcomer wait reads the priorities of the place's
    other sessions of ours (one round) and passes again, so a higher priority can displace one."""
    decisions = budget.limit(planned, room)
    holders = [] if room.complete else budget.unknown_holders(decisions, room)
    if holders:
        inv.check_time(ctx, "the reads of the priorities a newcomer is ranked against")
        room = dataclasses.replace(room, priorities={**room.priorities, **inv.priorities(ctx, holders)})
        decisions = budget.limit(planned, room)
    return _Budgeted(decisions, room, planned)


def _apply(
    ctx: Context, decisions: list[Decision], room: budget.Room | None, on_done: Callable[[Result], None] | None
) -> list[Result]:
    """Apply; when the budget releases sessions to make room, those deletes first, and the creates
    they make room for only as far as they succeeded (AWS's quota would refuse the rest)."""
    releases = [d for d in decisions if budget.is_release(d)]
    if room is None or not releases or not any(budget.is_newcomer(d) for d in decisions):
        return apply_all(decisions, ctx, on_done)
    first = apply_all(releases, ctx, on_done)
    kept = frozenset(r.decision.eni_id for r in first if r.status not in ("deleted", "planned"))
    rest = [d for d in budget.fit(decisions, room, kept) if not budget.is_release(d)]
    return [*first, *apply_all(rest, ctx, on_done)]


def destroys(decision: Decision) -> bool:
    """The decision deletes or moves a session (what one read or one event must never decide)."""
    return any(a.kind in ("delete", "modify") for a in decision.actions)


def _confirm(
    ctx: Context,
    decisions: Sequence[Decision],
    triggers: Mapping[str, str],
    sessions_by_eni: Mapping[str, Sequence[Session]],
    budgeted: _Budgeted | None = None,
) -> tuple[list[Decision], list[Result], budget.Room | None]:
    """Deletes and moves stand only when a second read of EC2, made now, agrees.

    The first plan may rest on event data (a RunInstances record's AZ or instance type), on a
    cached inventory, or on one bad answer. The ENIs it would delete or move from are read again
    by id (ENI, instance, sessions) with a fresh inventory and planned again: the same writes are
    made; a plan that no longer destroys wins (EC2's own data says no harm); any other
    disagreement is deferred (retryable) instead of acted on.

    A release the budget decided is confirmed the same way, with the place's sessions counted
    again now (`budgeted`): the budget passes again over the fresh reads, and the creates that a
    release no longer makes room for are withheld (`budget.fit`). Returns the room as read last.
    """
    room = budgeted.room if budgeted is not None else None
    doubtful = {d.eni_id: d for d in decisions if destroys(d)}
    if not doubtful:
        return list(decisions), [], room
    settings = ctx.settings
    inv.check_time(ctx, "the reads confirming deletes and moves")
    eni_ids = sorted(doubtful)
    inventory_f = inv.submit(ctx, inv.inventory, refresh=True)
    sessions_f = inv.submit(ctx, inv.sessions_for, eni_ids)
    recount = room is not None and any(budget.is_release(d) for d in doubtful.values())
    listing_f = inv.submit(ctx, inv.all_sessions) if recount else None
    instances_f = inv.submit(ctx, inv.instances_with_enis, eni_ids)
    enis = inv.describe_enis(ctx, "network-interface-id", eni_ids)
    instances = instances_f.result()
    _check_enis_listed(instances, enis, frozenset(eni_ids))
    sessions = sessions_f.result()
    inventory = inventory_f.result()
    inv.plausible(inventory, sessions, settings)

    state = {i["InstanceId"]: (i.get("State") or {}).get("Name", "") for i in instances}
    services = inv.service_sources(ctx, enis, "confirm") if kinds.with_services(settings.kinds) else []
    found = _located(
        [
            dataclasses.replace(s, trigger=triggers.get(s.eni_id, s.trigger))
            for s in _selected([*inv.sources_of_instances(instances, inv.eni_tag_map(enis), "confirm"), *services], settings)
            if s.eni_id in doubtful
        ],
        ctx,
        inventory,
    )
    releasing = [s for s in found if settings.release_on_stop and state.get(s.instance_id) in STOPPED_STATES]
    live = [
        s
        for s in found
        if s not in releasing and (s.kind != kinds.INSTANCES or state.get(s.instance_id) in _states(settings))
    ]
    by_eni = inv.group_by_eni(sessions)
    learned = ctx.learned()
    # What the rest of the first plan puts on targets counts against their capacity here too.
    reserved = placements((d for d in decisions if d.eni_id not in doubtful), sessions_by_eni)
    again = {
        d.eni_id: d
        for d in (
            *plan(live, by_eni, inventory, settings, learned=learned, reserved=reserved),
            *plan(releasing, by_eni, inventory, settings, release=True, learned=learned),
            *plan_orphans(sessions, frozenset(s.eni_id for s in found), settings),
        )
    }
    if budgeted is not None and room is not None:
        if listing_f is not None:
            fresh = inv.own_sessions(ctx, listing_f.result())
            room = budget.room(settings, fresh, learned.session_quota, room.priorities, room.complete)
        planned = {d.eni_id for d in budgeted.planned}
        merged = [again.get(d.eni_id, d) for d in budgeted.planned]
        # ENIs the first pass knew only by their sessions (an event's view of the rest of the place) are
        # ranked as it ranked them (age unknown), with what the second read says of their priority.
        merged += [dataclasses.replace(d, attached_at=None) for eni_id, d in again.items() if eni_id not in planned]
        rebudgeted = {d.eni_id: d for d in budget.limit(merged, room)}
        again = {eni_id: rebudgeted.get(eni_id, d) for eni_id, d in again.items()}
    kept = [d for d in decisions if d.eni_id not in doubtful]
    unconfirmed: list[Result] = []
    for eni_id, first in doubtful.items():
        second = again.get(eni_id)
        if second is not None and (second.actions == first.actions or not destroys(second)):
            kept.append(second)
            continue
        if second is None:
            second = _skip(eni_id, first.instance_id, "not found by a second read")
        why = f"a second read disagrees ({first.outcome}: {first.reason} / {second.outcome}: {second.reason})"
        unconfirmed.append(Result(second, "deferred", f"{why}; nothing deleted or moved", retryable=True))
    if room is not None:
        kept = budget.fit(kept, room, frozenset(r.decision.eni_id for r in unconfirmed))
    return kept, unconfirmed, room


def _check_enis_listed(
    instances: Iterable[Mapping[str, Any]], enis: Iterable[Mapping[str, Any]], asked: frozenset[str] | None = None
) -> None:
    """Every ENI a described instance lists must be in the ENI answer (it carries the ENI's tags).

    An answer missing some would silently drop ENI-level tags (an opt-out, a route) and move
    sessions; it is a failed read instead. `asked`: only these ENIs were asked for.
    """
    seen = {e["NetworkInterfaceId"] for e in enis}
    for instance in instances:
        for eni in instance.get("NetworkInterfaces", []):
            eni_id = eni.get("NetworkInterfaceId")
            if eni_id and (asked is None or eni_id in asked) and eni_id not in seen:
                raise ReadFailure(f"{instance.get('InstanceId')} lists {eni_id}, which the ENI read lacks")


def _located(sources: Sequence[Source], ctx: Context, inventory: Inventory) -> list[Source]:
    """Sources with their account and, when zones are matched across accounts, their AZ id."""
    account = ctx.place.account or ""
    if not account and not inventory.zone_ids:
        return list(sources)
    return [
        dataclasses.replace(s, account=account, az_id=inventory.zone_ids.get(s.az, s.az_id)) for s in sources
    ]


def _settle_conflicts(
    results: list[Result],
    ctx: Context,
    inventory: Inventory,
    sources: Sequence[Source],
    on_done: Callable[[Result], None] | None,
    sessions_by_eni: Mapping[str, Sequence[Session]],
) -> list[Result]:
    """Creates that lost a race for a session number: read those ENIs again, plan once more.

    The winner is usually this tool itself (the launch event and a state-change event or the
    sweep at once); the fresh read then shows the ENI mirrored, instead of a failure that SQS
    would only redeliver after its visibility timeout. One batched read, one more attempt.
    """
    lost = {r.decision.eni_id for r in results if conflicted(r)}
    if not lost:
        return results
    fresh = inv.group_by_eni(inv.sessions_for(ctx, sorted(lost)))
    done = [r.decision for r in results if r.decision.eni_id not in lost and r.status not in ("failed", "deferred")]
    again = plan(
        [s for s in sources if s.eni_id in lost],
        fresh,
        inventory,
        ctx.settings,
        learned=ctx.learned(),
        reserved=placements(done, sessions_by_eni),
    )
    retried = apply_all(again, ctx, on_done)
    return [r for r in results if r.decision.eni_id not in lost] + retried


@dataclass
class Failover:
    """The ENIs whose sessions are on sensors a batch's events broke, by the account that owns them."""

    own: dict[str, set[int]] = field(default_factory=dict)
    """ENI id -> the changes (indexes) that named its sensor: reconciled with the batch's own ENIs."""
    members: dict[str, dict[str, set[int]]] = field(default_factory=dict)
    """Account -> its ENIs on this account's broken sensors (a hub's sensors serve members)."""
    trigger: dict[str, str] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)


def failover(batch: Sequence[Change], ctx: Context) -> Failover:
    """Which ENIs to plan again because their sessions are on a sensor the batch's events name
    (state changes of its instance, deleted targets, load balancers, listeners, deregistered targets).

    The cached inventory says whether a named instance or resource is a sensor at all: an event
    about anything else costs no API call (a cold container pays the inventory load any event
    pays). For a sensor, the sessions on it are read now, as its owner lists them (other accounts'
    included), with those the cached inventory had listed (a deleted target's are no longer
    listed). Those ENIs are then planned on an inventory read again in the same round as their own
    reads (`_changes`), so the sensor's health is the one read now; each move is confirmed by one
    more read before it is made (`_confirm`).
    """
    found = Failover()
    hints = [(i, c) for i, c in enumerate(batch) if c.kind in ("sensors", "release-instances")]
    if not hints:
        return found
    cached = inv.inventory(ctx)
    named: dict[str, set[int]] = {}
    for index, change in hints:
        targets = health.named(cached.targets, change.instance_ids, change.resources)
        if not targets and change.kind == "sensors":
            what = ", ".join((*change.instance_ids, *change.resources))
            why = f"{change.event_name}: {what} is no sensor's: nothing to do"
            found.skips.append(Skip("ignored", why, change.event_name, change.event_id))
        for target in targets:
            named.setdefault(target, set()).add(index)
    if not named:
        return found
    inv.check_time(ctx, "the read of the sessions on the sensors an event names")
    here = ctx.place.account or accounts.own_account(ctx)
    listed = [*inv.sessions_on_targets(ctx, sorted(named)), *(s for t in sorted(named) for s in cached.sessions_on.get(t, ()))]
    for session in listed:
        owner = session.owner or here
        indexes = named[session.target_id]
        where = found.own if owner == here else found.members.setdefault(owner, {})
        where.setdefault(session.eni_id, set()).update(indexes)
        found.trigger.setdefault(session.eni_id, batch[min(indexes)].event_id)
    if not found.own and not found.members:
        for target, indexes in sorted(named.items()):
            event = batch[min(indexes)]
            found.skips.append(Skip("ignored", f"sensor {target} serves no session: nothing to move", event.event_name, event.event_id))
    return found


def changes(batch: Sequence[Change], ctx: Context) -> Outcome:
    """Reconcile the ENIs a batch of events names, and those on the sensors its events broke
    (another account's, there, through its member role)."""
    moving = failover(batch, ctx)
    outcome = _changes(batch, ctx, moving)
    outcome.skips.extend(moving.skips)
    if not moving.members:
        return outcome

    def there(item: tuple[str, dict[str, set[int]]]) -> tuple[str, Outcome]:
        account, enis = item
        if ctx.place.account is not None or not accounts.allowed(ctx, account):
            why = f"sessions of account {account} are on a broken sensor, but the account is not covered"
            return account, Outcome([Result(_skip("", "", why), "skipped", why)])
        event = batch[min(min(i) for i in enis.values())]
        moved = Change(
            "enis", "sensor-failover", event.event_id, ctx.region, eni_ids=tuple(sorted(enis)), refresh_inventory=True
        )
        try:
            return account, changes([moved], ctx.at(account))
        except Exception as error:  # this account only: the event is retried for it
            return account, failed(f"cannot move sessions in account {account}: {type(error).__name__}: {error}", 1)

    for account, result in ctx.container.fleet.map(there, sorted(moving.members.items())):
        enis = moving.members[account]
        indexes = set().union(*enis.values())
        for one in result.results:
            one.account = account
            outcome.owners.setdefault(one.decision.eni_id, set()).update(enis.get(one.decision.eni_id, indexes))
        outcome.results.extend(result.results)
    return outcome


def _changes(batch: Sequence[Change], ctx: Context, moving: Failover) -> Outcome:
    """Reconcile the ENIs a batch of events names, with as few rounds of reads as possible."""
    owners: dict[str, set[int]] = {}
    launch: list[Source] = []
    by_instance: dict[str, set[int]] = {}
    by_eni: dict[str, set[int]] = {eni: set(indexes) for eni, indexes in moving.own.items()}
    by_description: dict[str, set[int]] = {}
    release_idx = {i for i, c in enumerate(batch) if c.kind == "release-instances"}
    trigger: dict[str, str] = dict(moving.trigger)
    for index, change in enumerate(batch):
        if change.kind == "sensors":
            continue  # their ENIs are in `moving`
        for source in change.sources:
            launch.append(source)
            owners.setdefault(source.eni_id, set()).add(index)
        for instance_id in change.instance_ids:
            by_instance.setdefault(instance_id, set()).add(index)
            trigger.setdefault(instance_id, change.event_id)
        for eni_id in change.eni_ids:
            by_eni.setdefault(eni_id, set()).add(index)
            trigger.setdefault(eni_id, change.event_id)
        for description in change.eni_descriptions:
            by_description.setdefault(description, set()).add(index)
            trigger.setdefault(description, change.event_id)

    keys = [ctx.settings.tag_key, ctx.settings.priority_tag_key, "Name"]
    known_enis = sorted({s.eni_id for s in launch} | set(by_eni))
    # Round 1: everything that needs only what the events say, concurrently. The ENIs on a sensor an
    # event names are planned on the sensors' health read now.
    refresh = bool(moving.own) or any(c.refresh_inventory and c.kind == "enis" for c in batch)
    inv.check_time(ctx, "the event's reads")
    inventory_f = inv.submit(ctx, inv.inventory, refresh=refresh)
    # Under a budget (a cap, or AWS's quota refused lately), the place's sessions are counted too.
    counted = budget.active(ctx.settings, ctx.learned().session_quota)
    listing_f = inv.submit(ctx, inv.all_sessions) if counted else None
    launch_ids = sorted({s.instance_id for s in launch} | {s.eni_id for s in launch})
    tags_f = inv.submit(ctx, inv.current_tags, launch_ids, keys) if launch else None
    sessions_f = inv.submit(ctx, inv.sessions_for, known_enis) if known_enis else None
    instances_f = inv.submit(ctx, inv.describe_instances, sorted(by_instance)) if by_instance else None
    their_enis_f = (
        inv.submit(ctx, inv.describe_enis, "attachment.instance-id", sorted(by_instance)) if by_instance else None
    )
    named_enis_f = inv.submit(ctx, inv.describe_enis, "network-interface-id", sorted(by_eni)) if by_eni else None
    # The named ENIs' instances in the same round, found by their ENIs (no round for their ids).
    attached_f = inv.submit(ctx, inv.instances_with_enis, sorted(by_eni)) if by_eni else None
    # A load balancer's nodes (its tags changed), by their description.
    described_f = inv.submit(ctx, inv.describe_enis, "description", sorted(by_description)) if by_description else None

    named_enis: list[dict[str, Any]] = named_enis_f.result() if named_enis_f else []
    for eni in described_f.result() if described_f else []:
        eni_id, description = eni["NetworkInterfaceId"], eni.get("Description", "")
        if eni_id in by_eni or description not in by_description:
            continue
        by_eni[eni_id] = set(by_description[description])
        trigger.setdefault(eni_id, trigger[description])
        named_enis.append(eni)
    their_enis: list[dict[str, Any]] = their_enis_f.result() if their_enis_f else []
    instances = {i["InstanceId"]: i for i in (instances_f.result() if instances_f else [])}
    for instance in attached_f.result() if attached_f else []:
        instances.setdefault(instance["InstanceId"], instance)
    extra: list[Decision] = []
    attached_to: dict[str, str] = {}
    services_named: list[dict[str, Any]] = []
    for eni in named_enis:
        owner_instance = (eni.get("Attachment") or {}).get("InstanceId")
        if owner_instance:
            attached_to[eni["NetworkInterfaceId"]] = str(owner_instance)
        elif kinds.recognise(eni) is not None:
            services_named.append(eni)  # a load balancer's or a database's (CreateNetworkInterface, tags)
        else:
            extra.append(_skip(eni["NetworkInterfaceId"], "", "ENI is not attached to an instance"))
    for eni_id in sorted(set(by_eni) - {e["NetworkInterfaceId"] for e in named_enis}):
        extra.append(_skip(eni_id, "", "ENI not found (deleted?)"))

    _check_enis_listed([instances[i] for i in by_instance if i in instances], their_enis)
    # Round 2 (only when events named instances, or an ENI moved between the two reads): the
    # instances' other ENIs' sessions, and any instance not found yet.
    more_instances = sorted(set(attached_to.values()) - set(instances))
    more_f = inv.submit(ctx, inv.describe_instances, more_instances) if more_instances else None
    instance_enis = sorted(({e["NetworkInterfaceId"] for e in their_enis} | set(by_eni)) - set(known_enis))
    more_sessions_f = inv.submit(ctx, inv.sessions_for, instance_enis) if instance_enis else None
    services_f = inv.submit(ctx, inv.service_sources, services_named, "") if services_named else None
    for instance in more_f.result() if more_f else []:
        instances[instance["InstanceId"]] = instance
    eni_tags = inv.eni_tag_map([*their_enis, *named_enis])

    sources: list[Source] = []
    release_sources: list[Source] = []
    if launch:
        assert tags_f is not None
        sources.extend(inv.with_current_tags(launch, tags_f.result(), keys))
    for instance_id, idx in sorted(by_instance.items()):
        described = instances.get(instance_id)
        if described is None or described.get("State", {}).get("Name") in GONE_STATES:
            extra.append(_skip("", instance_id, "instance not found or terminated"))
            continue
        found = inv.sources_of_instances([described], eni_tags, trigger[instance_id])
        for source in found:
            owners.setdefault(source.eni_id, set()).update(idx)
        (release_sources if idx <= release_idx else sources).extend(found)
    for eni_id, instance_id in sorted(attached_to.items()):
        parent = instances.get(instance_id)
        found = [
            s
            for s in inv.sources_of_instances([parent] if parent else [], eni_tags, trigger[eni_id])
            if s.eni_id == eni_id
        ]
        if not found:
            extra.append(_skip(eni_id, instance_id, "ENI's instance not found or ENI not yet attached"))
        for source in found:
            owners.setdefault(eni_id, set()).update(by_eni[eni_id])
            sources.append(source)
    selected = {s.eni_id: s for s in (services_f.result() if services_f else [])}
    for eni in services_named:
        eni_id = eni["NetworkInterfaceId"]
        chosen = selected.get(eni_id)
        if chosen is None:
            extra.append(_skip(eni_id, "", f"not a source (MIRROR_SOURCES={ctx.settings.sources})"))
            continue
        owners.setdefault(eni_id, set()).update(by_eni[eni_id])
        sources.append(dataclasses.replace(chosen, trigger=trigger[eni_id]))

    sessions = [
        *(sessions_f.result() if sessions_f else []),
        *(more_sessions_f.result() if more_sessions_f else []),
    ]
    unselected = [s for s in sources if not kinds.selected(s.kind, ctx.settings.kinds)]
    for source in unselected:
        extra.append(_skip(source.eni_id, source.instance_id, f"not a source (MIRROR_SOURCES={ctx.settings.sources})"))
    sources = [s for s in sources if s not in unselected]
    listing = inv.own_sessions(ctx, listing_f.result()) if listing_f else None
    results = _plan_and_apply(ctx, inventory_f.result(), sources, release_sources, sessions, extra, None, listing=listing)
    return Outcome(results, owners)


def _states(settings: Settings) -> list[str]:
    """Stopped instances keep their sessions unless MIRROR_RELEASE_ON_STOP releases them."""
    running = ["pending", "running"]
    return running if settings.release_on_stop else [*running, "stopping", "stopped"]


def read_region(
    ctx: Context, *, refresh: bool = False, trigger: str = "sweep"
) -> tuple[Inventory, list[Source], list[Session]]:
    """The whole region in four concurrent paginated reads: calls grow with pages, not ENIs.

    With service kinds in MIRROR_SOURCES, a fifth: the services' ENIs (and their load balancers' tags).
    """
    inv.check_time(ctx, "the sweep's reads")
    inventory_f = inv.submit(ctx, inv.inventory, refresh=refresh)
    chosen = ctx.settings.kinds
    instances_f = inv.submit(ctx, inv.describe_instances, (), _states(ctx.settings)) if kinds.INSTANCES in chosen else None
    tag_keys = [ctx.settings.tag_key, ctx.settings.priority_tag_key]
    tagged_f = inv.submit(ctx, inv.describe_enis, "tag-key", tag_keys) if instances_f else None
    sessions_f = inv.submit(ctx, inv.all_sessions)
    services_f = inv.submit(ctx, inv.service_sources_of_region, trigger) if kinds.with_services(chosen) else None
    sources: list[Source] = []
    if instances_f and tagged_f:
        sources = inv.sources_of_instances(instances_f.result(), inv.eni_tag_map(tagged_f.result()), trigger)
    sources += services_f.result() if services_f else []
    return inventory_f.result(), sources, inv.own_sessions(ctx, sessions_f.result())


def _selected(sources: Iterable[Source], settings: Settings) -> list[Source]:
    """The sources of the kinds MIRROR_SOURCES selects (the others are not planned at all: as if
    never read, their sessions are left alone, or released as orphans with MIRROR_RELEASE_ON_STOP)."""
    return [s for s in sources if kinds.selected(s.kind, settings.kinds)]


@dataclass(frozen=True)
class SweepPolicy:
    """How one sweep runs: all in one place, decided from the batch that asked for it."""

    trigger: str
    """Seeds the ClientTokens of the sweep's creates."""
    refresh: bool = False
    """Re-read targets and filters instead of trusting the container's cache."""
    grace: float = 0.0
    """Leave ENIs attached less than this many seconds ago to their own events."""
    fleet: bool = False
    """Sweep every account the handler covers (MIRROR_ACCOUNTS), not only the event's."""
    measure_loss: bool = False
    """Read the mirrored instances' loss metrics after the writes (the schedule's sweep only)."""


@dataclass(frozen=True)
class Job:
    """What one account's and region's share of a batch asks for, decided once (`job_for`).

    - `release`: the teardown: delete every managed session (nothing else in the batch matters).
    - `sweep`: every ENI of the region (answers the whole batch); its decisions are the region's
      coverage, and stopping at the deadline is progress, not failure (the next sweep goes on).
    - `changes`: only the ENIs the events name.
    """

    kind: Literal["changes", "sweep", "release"]
    sweep: SweepPolicy | None = None

    @property
    def covers_region(self) -> bool:
        """Its decisions are every ENI of the region: the region's coverage."""
        return self.kind == "sweep"

    def failed_for_good(self, outcome: "Outcome") -> bool:
        """Whether what is left must be retried (a sweep stopped at its deadline is not a failure)."""
        if self.kind != "sweep":
            return True
        return not all(r.status == "deferred" for r in outcome.results if r.retryable)


def job_for(batch: Sequence[Change], settings: Settings) -> Job:
    """The one place that decides what a batch is.

    A teardown wins over everything (the hook is invoked on its own). A sweep covers every ENI of
    the region, so it answers the whole batch; only a purely scheduled sweep (a tick of the
    schedule rule) leaves just-attached ENIs to their own events: a sweep for a deleted session or
    a route change, or one batched with launches, covers them.
    """
    if any(c.kind == "release-region" for c in batch):
        return Job("release")
    sweeps = [c for c in batch if c.kind == "sweep"]
    if not sweeps:
        return Job("changes")
    scheduled = all(c.scheduled for c in batch)
    # A sensor an event names must be read again, and it may serve every covered account.
    sensors = any(c.kind == "sensors" for c in batch)
    policy = SweepPolicy(
        trigger=sweeps[0].event_id,
        refresh=sensors or any(c.refresh_inventory for c in sweeps),
        grace=settings.sweep_grace_seconds if scheduled else 0.0,
        fleet=bool(settings.accounts) and (sensors or any(c.fleet for c in sweeps)),
        measure_loss=scheduled,
    )
    return Job("sweep", policy)


def run(
    job: Job, batch: Sequence[Change], ctx: Context, covered: Callable[[], Sequence[str]], own: str
) -> Outcome:
    """Carry out one account's and region's job. Every ENI of a sweep or a release answers to
    every change of the batch.

    `covered`: the accounts a fleet-wide job goes to (asked only when needed: it may read
    Organizations); `own`: the handler's account. When the list cannot be read (Organizations
    throttled or refused), the job still runs in the handler's own account, and the failure is
    one failed result: the hub is never stopped by its members.
    """
    if job.kind == "changes":
        return changes(batch, ctx)
    fleet = (job.kind == "release" and bool(ctx.settings.accounts)) or (job.sweep is not None and job.sweep.fleet)
    listed: Outcome | None = None
    accounts: Sequence[str] = (own,)
    if fleet:
        try:
            accounts = covered()
        except Exception as error:
            listed = failed(f"cannot list the accounts to cover: {type(error).__name__}: {error}", 1, "accounts")
    if job.kind == "release":
        # Teardown covers every account the handler covers, before their member roles go.
        outcome = across_accounts(ctx, accounts, release_region) if fleet else release_region(ctx)
    else:
        policy = job.sweep
        assert policy is not None
        outcome = across_accounts(ctx, accounts, lambda here: sweep(here, policy)) if fleet else sweep(ctx, policy)
    if listed is not None:
        outcome.results.extend(listed.results)
    if job.kind == "release" or outcome.failed_changes() or listed is not None:
        outcome.owners = {r.decision.eni_id: set(range(len(batch))) for r in outcome.results}
    return outcome


def sweep(ctx: Context, policy: SweepPolicy, on_done: Callable[[Result], None] | None = None) -> Outcome:
    """Reconcile every ENI of the region: read it all, then make only the writes that are missing.

    ENIs attached less than `policy.grace` seconds ago are left to their own events (the scheduled
    sweep would otherwise race a launch burst for the same sessions and the same create tokens).
    """
    if policy.refresh:
        inv.invalidate(ctx)
    inventory, sources, sessions = read_region(ctx, refresh=policy.refresh, trigger=policy.trigger)
    grace = policy.grace
    cutoff = time.time() - grace
    young = [s for s in sources if grace > 0 and s.attached_at is not None and s.attached_at > cutoff]
    settled = [s for s in sources if s not in young] if young else sources
    results = _plan_and_apply(
        ctx, inventory, settled, (), sessions, (), on_done, orphans=True, orphans_known=young, listing=sessions
    )
    outcome = Outcome(results, {s.eni_id: {0} for s in settled}, sensors=counting.sensors(inventory, sessions))
    if policy.measure_loss:
        measured = measure_loss(ctx, results, inventory.zone_ids)
        if measured is not None:
            outcome.losses[""] = measured
    return outcome


def measure_loss(ctx: Context, results: Sequence[Result], zone_ids: Mapping[str, str]) -> "loss.Loss | None":
    """The mirrored instances' loss over the last hour, read at most once per sweep period
    (`Container.loss_due`) and only when something is mirrored; None when not read. Only the
    schedule's sweeps read it: the modules are imported here, not at an event's cold start."""
    from . import cloudwatch, loss

    statuses = {r.decision.eni_id: r.status for r in results}
    instances = loss.mirrored_instances((r.decision for r in results), statuses, zone_ids)
    if not instances or ctx.too_late() or not ctx.container.loss_due(ctx.place):
        return None
    return cloudwatch.mirror_loss(ctx, instances, loss.DEFAULT_WINDOW_SECONDS)


def across_accounts(ctx: Context, covered: Sequence[str], work: Callable[[Context], Outcome]) -> Outcome:
    """Do `work` in every covered account of this region, a few at a time, each with a fair share of time.

    `covered[0]` is the handler's own account. With N accounts and W at once, each account gets
    1/ceil(N/W) of the invocation's time for its writes (the rest is deferred, as in any sweep),
    and the next run starts with the first account this one did not finish, so large backlogs
    in some accounts never starve the others. A failure in one account (its role, its reads)
    fails only that account's part.
    """
    container = ctx.container
    own, count = covered[0], len(covered)
    with container.lock:
        start = container.sweep_cursor % count
    order = [*covered[start:], *covered[:start]]
    waves = math.ceil(count / FLEET_WORKERS)
    budget = ctx.remaining() if ctx.remaining else None

    def one(account: str) -> tuple[str, Outcome]:
        remaining = ctx.remaining
        if budget is not None and ctx.remaining is not None:
            end = time.monotonic() + budget / waves
            overall = ctx.remaining
            remaining = lambda: min(overall(), end - time.monotonic())  # noqa: E731
        here = ctx.at(None if account == own else account, remaining)
        try:
            return account, work(here)
        except Exception as error:  # this account only
            return account, failed(f"cannot work in account {account}: {type(error).__name__}: {error}", 1, account)

    results: list[Result] = []
    owners: dict[str, set[int]] = {}
    measured: dict[str, loss.Loss] = {}
    sensors: list[counting.Sensor] = []
    unfinished: list[int] = []
    for index, (account, outcome) in enumerate(container.fleet.map(one, order)):
        for result in outcome.results:
            result.account = "" if account == own else account
        results.extend(outcome.results)
        owners.update(outcome.owners)
        measured.update({("" if account == own else account): found for found in outcome.losses.values()})
        sensors.extend(outcome.sensors)
        if any(r.retryable for r in outcome.results):
            unfinished.append(index)
    with container.lock:
        container.sweep_cursor = (start + unfinished[0]) % count if unfinished else 0
    return Outcome(results, owners, measured, sensors=tuple(sensors))


def failed(reason: str, changes: int, account: str = "") -> Outcome:
    """An outcome for work that could not even start (e.g. a role that cannot be assumed): retryable.

    `account`: the account it was for ("accounts": the list of accounts itself could not be read).
    """
    decision = Decision(eni_id="", instance_id="", outcome="skipped", reason=reason)
    result = Result(decision, "failed", reason, retryable=True, account=account)
    return Outcome([result], {"": set(range(changes))})


def read_only_plan(ctx: Context) -> tuple[list[Decision], list[Source]]:
    """What the sweep would do, without writing (the CLI's `plan` and `coverage`)."""
    found = read_only(ctx)
    return found.decisions, found.sources


@dataclass(frozen=True)
class ReadOnly:
    """One read-only pass over a region: the sweep's decisions (within the budget), its sources,
    its sensors, and what the budget pass was given."""

    decisions: list[Decision]
    sources: list[Source]
    sensors: tuple[counting.Sensor, ...]
    planned: list[Decision]
    """The planner's decisions before the budget pass (what `plan --max-sessions` compares against)."""
    room: budget.Room


def read_only(ctx: Context) -> ReadOnly:
    """What the sweep would do, without writing, and the sensors as it sees them."""
    inventory, sources, sessions = read_region(ctx, refresh=True, trigger="plan")
    sources = _located(sources, ctx, inventory)  # as the sweep does: a member's zones by AZ id
    by_eni = inv.group_by_eni(sessions)
    learned = ctx.learned()
    planned = [
        *plan(sources, by_eni, inventory, ctx.settings, learned=learned),
        *plan_orphans(sessions, frozenset(s.eni_id for s in sources), ctx.settings),
    ]
    room = budget.room(ctx.settings, sessions, learned.session_quota, complete=True)
    return ReadOnly(budget.limit(planned, room), sources, counting.sensors(inventory, sessions), planned, room)


def release_region(ctx: Context) -> Outcome:
    """Delete every session of the region that carries our ManagedBy tag, and nothing else.

    The teardown path (`pulumi destroy`, or an operator's explicit order): one paginated read of
    the sessions, then the deletes. A session without our tag is never named, whatever its ENI.
    """
    by_eni: dict[str, list[Session]] = {}
    for session in inv.own_sessions(ctx, inv.all_sessions(ctx)):
        if is_managed(session, ctx.settings):
            by_eni.setdefault(session.eni_id, []).append(session)
    decisions = [
        Decision(
            eni_id=eni_id,
            instance_id="",
            outcome="delete",
            reason=f"released: every session managed by {ctx.settings.managed_by} in {ctx.region} is removed "
            "(teardown)",
            actions=tuple(Action("delete", eni_id, session_id=s.session_id) for s in sessions),
            out_of_scope=RELEASED,
        )
        for eni_id, sessions in sorted(by_eni.items())
    ]
    return Outcome(apply_all(decisions, ctx), {eni_id: {0} for eni_id in by_eni})
