"""The coverage report: the handler's coverage (`handler/coverage.py`, the one definition of
"mirrored", which the sweep's metrics use too) with what people read beside it: Name tags, what
the sweep would do, reasons in words, and the stable JSON document. Pure: decisions in, report out
(the demo and the tests use it directly).
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from traffic_mirror.handler import coverage as counting
from traffic_mirror.handler import loss as mirror_loss
from traffic_mirror.handler import planner
from traffic_mirror.handler.coverage import Group, Sensor
from traffic_mirror.handler.model import Decision, Untrusted

from . import evidence, reasons
from .budget_view import BudgetView
from .cost import Estimate

JSON_SCHEMA_VERSION = 4
"""3: with --account/--accounts, a total and one report per account; `by_az` entries there gain `az_id`.
4: `by_kind` (coverage by kind of source: instances, load-balancers, databases) and `kind` on each
`unmirrored` entry; `untrusted_sessions` and `mirror_loss` (and in the total, their count and the
loss over every account); `sensors` (every traffic mirror target: usable or why not, sessions,
sources limit); an ENI whose session's target cannot receive packets is unmirrored with problem
`target-unhealthy`, one no usable target has room for with `target-full`; `budget` (the session
cap, the sessions used, the cost at the cap, the ENIs waiting: problem `over-budget` or `quota`;
docs/budget.md)."""
OUT_OF_SCOPE_CATEGORIES = tuple(planner.OUT_OF_SCOPE)
"""The stable keys of the JSON report's `out_of_scope` counts."""


def unmirrored_action(decision: Decision) -> str:
    """What the sweep would do for an unmirrored in-scope ENI: create, modify, delete or none."""
    return decision.outcome if decision.outcome in ("create", "modify", "delete") else "none"


def unmirrored_reason(decision: Decision) -> str:
    """Why an in-scope ENI is not mirrored, and what the sweep would do about it."""
    why = reasons.gist(decision)
    if decision.outcome == "create":
        return f"no session yet; the sweep would create one ({why})"
    if decision.outcome == "modify":
        return f"session no longer qualifies; the sweep would modify it ({why})"
    if decision.outcome == "delete":
        count = len(decision.actions)
        return f"{why}; the sweep would delete {count} managed session(s) that no longer qualify"
    return why


@dataclasses.dataclass(frozen=True)
class Unmirrored:
    eni: str
    instance: str
    name: str
    vpc: str
    az: str
    action: str
    problem: str | None
    """What to fix, as an identifier (one of `planner.PROBLEMS`: `no-filter`, `no-target`, ...), or None."""
    reason: str
    kind: str = "instances"
    """Its kind of source (`instances`, `load-balancers`, `databases`)."""


class Share:
    """What a report says from its two counts (`in_scope`, `mirrored`): one account's or a total."""

    in_scope: int
    mirrored: int

    @property
    def percent(self) -> float:
        return counting.percent(self.mirrored, self.in_scope)

    @property
    def empty(self) -> bool:
        """Nothing in scope: a wrong region or account, or everything excluded. Worth a warning."""
        return self.in_scope == 0

    def below(self, minimum: float | None) -> bool:
        """True when a `--min` is given and the exact (unrounded) coverage is under it."""
        return counting.below(self.mirrored, self.in_scope, minimum)


@dataclasses.dataclass(frozen=True)
class Coverage(Share):
    region: str
    in_scope: int
    mirrored: int
    by_vpc: tuple[Group, ...]
    by_az: tuple[Group, ...]
    unmirrored: tuple[Unmirrored, ...]
    out_of_scope: dict[str, int]
    """Stable identifier (`planner.OUT_OF_SCOPE`) -> ENIs."""
    by_kind: tuple[Group, ...] = ()
    untrusted: tuple[Untrusted, ...] = ()
    """Sessions of other tools to targets not trusted for their ENI, by ENI and number."""
    loss: mirror_loss.Loss | None = None
    """The mirrored instances' loss, when it was read (`coverage` reads it; the demo and tests may not)."""
    sensors: tuple[Sensor, ...] = ()
    """Every traffic mirror target the ENIs may use, with its health (`handler/coverage.sensors`)."""

    def to_json(
        self, account: str, generated_at: str, cost: Estimate | None = None, budget: BudgetView | None = None
    ) -> dict[str, Any]:
        """The stable JSON schema of `coverage --format json` (docs/cli-json.md, "coverage").

        Lists are sorted (by VPC, AZ, ENI id); percentages are rounded to two decimals, but
        `--min` compares the exact value. New keys may be added; existing ones keep their meaning.
        """
        report: dict[str, Any] = {
            "schema_version": JSON_SCHEMA_VERSION,
            "account_id": account,
            "region": self.region,
            "generated_at": generated_at,
            "in_scope": self.in_scope,
            "mirrored": self.mirrored,
            "coverage_percent": round(self.percent, 2),
            "by_vpc": [_group_json("vpc", g) for g in self.by_vpc],
            "by_az": [_group_json("az", g) for g in self.by_az],
            "by_kind": [_group_json("kind", g) for g in self.by_kind],
            "unmirrored": [dataclasses.asdict(u) for u in self.unmirrored],
            "out_of_scope": dict(self.out_of_scope),
            "untrusted_sessions": evidence.untrusted_json(self.untrusted, account),
            "mirror_loss": self.loss.to_json() if self.loss is not None else None,
            "sensors": [sensor_json(s) for s in self.sensors],
        }
        if cost is not None:
            report["cost"] = cost.to_json()
        if budget is not None:
            report["budget"] = budget.to_json()
        return report


@dataclasses.dataclass(frozen=True)
class Total(Share):
    """Coverage over several accounts (`--account`/`--accounts`): what `--min` is checked against."""

    region: str
    reports: tuple[tuple[str, Coverage], ...]
    """(account id, its coverage), in the order they were read."""
    unreadable: tuple[tuple[str, str], ...] = ()
    """(account id, why) for the accounts that could not be read (not counted)."""

    in_scope: int = dataclasses.field(init=False)
    mirrored: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "in_scope", sum(r.in_scope for _, r in self.reports))
        object.__setattr__(self, "mirrored", sum(r.mirrored for _, r in self.reports))

    @property
    def untrusted(self) -> int:
        return sum(len(r.untrusted) for _, r in self.reports)

    @property
    def loss(self) -> mirror_loss.Loss | None:
        """Every account's loss as one (None: not read)."""
        found = [r.loss for _, r in self.reports if r.loss is not None]
        return mirror_loss.combine(found, found[0].window_seconds) if found else None

    def to_json(self, generated_at: str, accounts: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The multi-account document: the total, then each account's single-account report."""
        loss = self.loss
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "generated_at": generated_at,
            "region": self.region,
            "total": {
                "accounts": len(self.reports),
                "in_scope": self.in_scope,
                "mirrored": self.mirrored,
                "coverage_percent": round(self.percent, 2),
                "untrusted_sessions": self.untrusted,
                "mirror_loss": loss.summary_json() if loss is not None else None,
            },
            "accounts": list(accounts),
            "failed_accounts": [{"account_id": a, "error": why} for a, why in self.unreadable],
        }


def sensor_json(sensor: Sensor) -> dict[str, Any]:
    """One target of the `sensors` section: what it is, where, usable or why not, what it serves."""
    return {
        "target": sensor.target_id,
        "kind": sensor.kind,
        "resource": sensor.resource_id,
        "owner_id": sensor.owner or None,
        "vpc": sensor.vpc_id or None,
        "az": sensor.az or None,
        "az_id": sensor.az_id or None,
        "usable": sensor.usable,
        "why": sensor.why,
        "detail": None if sensor.usable else sensor.detail,
        "sessions": sensor.sessions,
        "sources_limit": sensor.sources_limit,
        "zones": list(sensor.zones) if sensor.zones is not None else None,
    }


def _group_json(name: str, group: Group) -> dict[str, Any]:
    ids = {"az_id": group.az_id} if group.az_id else {}  # known when accounts are compared
    return {
        name: group.key,
        **ids,
        "in_scope": group.in_scope,
        "mirrored": group.mirrored,
        "coverage_percent": round(group.percent, 2),
    }


def coverage(
    region: str,
    decisions: Sequence[Decision],
    names: Mapping[str, str] | None = None,
    zone_ids: Mapping[str, str] | None = None,
    sensors: Sequence[Sensor] = (),
) -> Coverage:
    """The coverage report over one region's planner decisions (counted by `handler/coverage.py`).

    `names`: instance id -> Name tag; `zone_ids`: AZ name -> AZ id (known when accounts are compared);
    `sensors`: the targets with their health (`handler/coverage.sensors`). A service's ENI is named by
    what it belongs to (`Decision.resource`).
    """
    names = names or {}
    counted = counting.count(region, decisions, zone_ids=zone_ids)
    unmirrored = tuple(
        Unmirrored(
            d.eni_id,
            d.instance_id,
            names.get(d.instance_id, "") or d.resource,
            d.vpc_id,
            d.az,
            unmirrored_action(d),
            counting.problem(d),
            unmirrored_reason(d),
            d.kind,
        )
        for d in counted.unmirrored
    )
    return Coverage(
        region,
        counted.in_scope,
        counted.mirrored,
        counted.by_vpc,
        counted.by_az,
        unmirrored,
        counted.out_of_scope,
        counted.by_kind,
        evidence.untrusted(decisions),
        sensors=tuple(sensors),
    )
