"""What "mirrored" means, in one place: the sweep's metrics, the CLI's reports and the demo all count here.

In scope: every ENI the automation is meant to mirror, i.e. every planner decision except those
the planner marks out of scope (`Decision.out_of_scope`). Mirrored: in scope, with no problem
(`Decision.problem`: anything that stops packets reaching a usable, trusted sensor, a target
that cannot receive them included), and one of our sessions delivers: it already existed and
qualifies on a usable target (outcome `mirrored`, or a duplicate cleanup that keeps such a
session), or this run created or moved it (`created`/`modified`). A plan that was not applied
(the CLI, a dry run) counts only what exists: a session the sweep would move off an unusable
target has that problem (`Decision.repairs`) until it is moved. Pure: decisions in, counts out.

The sensors (`sensors`): every target with its health and the sources it serves, for the
reports' sensor section and the sweep's target metrics.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import health
from .kinds import KINDS
from .model import Decision, Inventory, Session
from .planner import TARGET_FULL, TARGET_UNHEALTHY

APPLIED = frozenset({"created", "modified"})
"""Statuses of a write that made the ENI mirrored in this run."""


def in_scope(decision: Decision) -> bool:
    """An ENI the automation means to mirror (not a sensor, opted out, unsupported, ...)."""
    return decision.out_of_scope is None and bool(decision.eni_id)


def is_mirrored(decision: Decision, status: str | None = None) -> bool:
    """In scope, no problem, and a session of ours delivers (see the module's docstring).

    `status`: what applying the decision did (`apply.Result.status`); None for a plan not applied.
    """
    if not in_scope(decision) or decision.problem is not None:
        return False
    if decision.outcome == "mirrored":
        return True
    # Duplicate managed sessions are being cleaned up, but the one kept delivers.
    if decision.outcome == "delete" and decision.kept_session is not None:
        return True
    return status in APPLIED


def problem(decision: Decision, status: str | None = None) -> str | None:
    """Why an in-scope ENI is not mirrored: the planner's problem, or the one its actions would
    repair while they are not applied (a move off an unusable target in a dry run)."""
    if decision.problem is not None or is_mirrored(decision, status):
        return decision.problem
    return decision.repairs


def stranded(decision: Decision, status: str | None = None) -> bool:
    """A session of ours stays on a target that cannot receive its packets after this run (what
    the alarm on SessionsOnUnusableTargets watches)."""
    if not in_scope(decision):
        return False
    if decision.repairs is not None:
        return status not in APPLIED
    has_session = decision.kept_session is not None or decision.outcome == "modify"
    return has_session and decision.problem in (TARGET_UNHEALTHY, TARGET_FULL)


def percent(mirrored: int, in_scope: int) -> float:
    """Nothing in scope counts as fully covered (there is nothing left to mirror); reports warn."""
    return 100.0 if in_scope == 0 else mirrored * 100.0 / in_scope


def below(mirrored: int, in_scope: int, minimum: float | None) -> bool:
    """True when a minimum is given and the exact (unrounded) share is under it."""
    if minimum is None or in_scope == 0:
        return False
    return mirrored * 100.0 < minimum * in_scope


@dataclass(frozen=True)
class Group:
    """Coverage of one VPC or AZ."""

    key: str
    in_scope: int
    mirrored: int
    az_id: str = ""
    """For an AZ: its id (`use1-az1`), when known; names differ between accounts, ids do not."""

    @property
    def percent(self) -> float:
        return percent(self.mirrored, self.in_scope)

    @property
    def label(self) -> str:
        return self.az_id or self.key


@dataclass(frozen=True)
class Counts:
    """One region's coverage: totals, by VPC, AZ and kind of source, the unmirrored ENIs, what is
    out of scope."""

    region: str
    in_scope: int
    mirrored: int
    by_vpc: tuple[Group, ...]
    by_az: tuple[Group, ...]
    unmirrored: tuple[Decision, ...]
    """In-scope ENIs not mirrored, sorted by ENI id (their `problem` and `reason` say why)."""
    out_of_scope: dict[str, int]
    """Stable identifier (`planner.OUT_OF_SCOPE`) -> ENIs."""
    by_kind: tuple[Group, ...] = ()
    """By kind of source (`instances`, `load-balancers`, `databases`), in the kinds table's order."""
    stranded: int = 0
    """In-scope ENIs whose session of ours points at an unusable target (`stranded`)."""

    @property
    def percent(self) -> float:
        return percent(self.mirrored, self.in_scope)


def count(
    region: str,
    decisions: Iterable[Decision],
    statuses: Mapping[str, str] | None = None,
    zone_ids: Mapping[str, str] | None = None,
) -> Counts:
    """The coverage of one region's decisions. `statuses`: ENI id -> what applying did (a sweep);
    `zone_ids`: AZ name -> AZ id (known when accounts are compared)."""
    statuses = statuses or {}
    zone_ids = zone_ids or {}
    out: Counter[str] = Counter()
    totals: dict[str, Counter[str]] = {"vpc": Counter(), "az": Counter(), "kind": Counter()}
    mirrored_in: dict[str, Counter[str]] = {"vpc": Counter(), "az": Counter(), "kind": Counter()}
    unmirrored: list[Decision] = []
    scoped = mirrored = stuck = 0
    for decision in decisions:
        if not decision.eni_id:
            continue  # work that could not start (a failed account): not an ENI
        if decision.out_of_scope is not None:
            out[decision.out_of_scope] += 1
            continue
        scoped += 1
        status = statuses.get(decision.eni_id)
        ok = is_mirrored(decision, status)
        mirrored += ok
        stuck += stranded(decision, status)
        keys = (("vpc", decision.vpc_id or "(unknown)"), ("az", decision.az or "(unknown)"), ("kind", decision.kind))
        for axis, key in keys:
            totals[axis][key] += 1
            mirrored_in[axis][key] += ok
        if not ok:
            unmirrored.append(decision)

    def groups(axis: str) -> tuple[Group, ...]:
        order = sorted(totals[axis].items())
        if axis == "kind":
            order.sort(key=lambda item: KINDS.index(item[0]) if item[0] in KINDS else len(KINDS))
        return tuple(
            Group(k, n, mirrored_in[axis][k], zone_ids.get(k, "") if axis == "az" else "") for k, n in order
        )

    return Counts(
        region,
        scoped,
        mirrored,
        groups("vpc"),
        groups("az"),
        tuple(sorted(unmirrored, key=lambda d: (d.eni_id, d.instance_id))),
        dict(sorted(out.items())),
        groups("kind"),
        stuck,
    )


@dataclass(frozen=True)
class Sensor:
    """One traffic mirror target as the reports show it."""

    target_id: str
    kind: str
    resource_id: str
    vpc_id: str
    az: str
    az_id: str
    usable: bool
    why: str | None
    """Why not usable (one of `health.WHY`), None when usable."""
    detail: str
    sessions: int
    """Source ENIs it serves: the sessions on it that were read (its owner's view with the inventory,
    and the sessions read for the plan)."""
    sources_limit: int | None
    """ENI targets: sources AWS allows (10, or 100); None: no limit (NLB, GWLB endpoint)."""
    owner: str = ""
    """The account that owns it ("" = the account the report is about)."""
    zones: tuple[str, ...] | None = None
    """NLB targets without cross-zone load balancing: the AZs (ids where known) it serves."""


def sensors(inventory: Inventory, sessions: Iterable[Session] = ()) -> tuple[Sensor, ...]:
    """Every target of the inventory with its health and the sources it serves, sorted by AZ and id."""
    serving: dict[str, set[str]] = {t: set(inventory.sources_on(t)) for t in inventory.sessions_on}
    for session in sessions:
        serving.setdefault(session.target_id, set()).add(session.eni_id)
    rows = []
    for target in inventory.targets:
        status = target.health
        zones = status.zone_ids if status.zone_ids is not None else status.zones
        rows.append(
            Sensor(
                target.target_id,
                target.kind,
                target.resource_id,
                target.vpc_id or "",
                target.az or "",
                target.az_id,
                status.usable,
                status.why,
                health.words(status),
                len(serving.get(target.target_id, ())),
                status.capacity if target.kind == "network-interface" else None,
                target.owner,
                tuple(sorted(zones)) if zones is not None else None,
            )
        )
    return tuple(sorted(rows, key=lambda r: (r.az_id or r.az, r.target_id)))


def usable_counts(rows: Sequence[Sensor]) -> tuple[int, int]:
    """(usable, unusable) targets, each counted once (a hub sensor appears in every member's view)."""
    seen = {r.target_id: r.usable for r in rows}
    usable = sum(seen.values())
    return usable, len(seen) - usable
