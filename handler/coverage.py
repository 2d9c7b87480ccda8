"""What "mirrored" means, in one place: the sweep's metrics, the CLI's reports and the demo all count here.

In scope: every ENI the automation is meant to mirror, i.e. every planner decision except those
the planner marks out of scope (`Decision.out_of_scope`). Mirrored: in scope, with no problem
(`Decision.problem`: anything that stops packets reaching a usable, trusted sensor), and one of
our sessions delivers: it already existed and qualifies (outcome `mirrored`, or a duplicate
cleanup that keeps such a session), or this run created or moved it (`created`/`modified`).
A plan that was not applied (the CLI, a dry run) counts only what exists. Pure: decisions in,
counts out.
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .kinds import KINDS
from .model import Decision

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
    scoped = mirrored = 0
    for decision in decisions:
        if not decision.eni_id:
            continue  # work that could not start (a failed account): not an ENI
        if decision.out_of_scope is not None:
            out[decision.out_of_scope] += 1
            continue
        scoped += 1
        ok = is_mirrored(decision, statuses.get(decision.eni_id))
        mirrored += ok
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
    )
