"""The session budget as `plan` and `coverage` show it (docs/budget.md): the cap, the sessions used,
the cost at the cap, the ENIs waiting with their priorities, and what a cap keeps, drops and saves
against the same plan without it (`plan --max-sessions N`, read-only). Pure: a read-only plan in,
lines and the coverage JSON's `budget` key out.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traffic_mirror.handler import budget
from traffic_mirror.handler.model import Decision

from .cost import HOURS_PER_MONTH, SESSION_HOUR_USD


def monthly_usd(sessions: int) -> float:
    """What this many sessions cost a month (cli/cost.py's model: per session-hour)."""
    return sessions * HOURS_PER_MONTH * SESSION_HOUR_USD


@dataclass(frozen=True)
class Waiting:
    """An ENI the budget leaves without a session: it waits, or the sweep would release it."""

    eni: str
    instance: str
    name: str
    priority: int
    problem: str
    """`over-budget` (the cap) or `quota` (AWS's quota)."""
    action: str
    """What the sweep would do: `none` (it waits) or `delete` (its session is released)."""
    reason: str


@dataclass(frozen=True)
class BudgetView:
    max_sessions: int | None
    priority_tag_key: str
    sessions: int
    """Sessions of ours in the account and region now."""
    sessions_after: int
    """Sessions of ours once the sweep applies this plan."""
    uncapped_after: int
    """The same without our cap (what the cap saves)."""
    other_sessions: int
    """Sessions of other tools in the account and region (AWS's quota counts them, our cap does not)."""
    aws_quota: int
    waiting: tuple[Waiting, ...]
    """Highest priority first: who gets the next room."""
    priority_errors: tuple[tuple[str, str, str], ...]
    """(ENI, instance, why) for priority tags that are not integers (priority 0)."""

    @property
    def shown(self) -> bool:
        """Worth lines in a table report: a cap, ENIs waiting, or priority tags to fix."""
        return self.max_sessions is not None or bool(self.waiting) or bool(self.priority_errors)

    def lines(self) -> list[str]:
        cap = self.max_sessions
        quota = f"AWS allows {self.aws_quota:,} in the account; {self.other_sessions} are other tools'"
        if cap is None:
            head = f"Session budget: no cap (max_sessions unset); {quota}."
        else:
            head = f"Session budget: at most {cap:,} session(s) (max_sessions); {quota}."
        found = [
            head,
            f"Sessions of ours: {self.sessions} now, {self.sessions_after} once the sweep has run.",
        ]
        if cap is not None:
            found.append(
                f"Cost at the cap: {cap:,} session(s) x {HOURS_PER_MONTH} h x ${SESSION_HOUR_USD}/h = "
                f"${monthly_usd(cap):,.2f} per month."
            )
            saved = self.uncapped_after - self.sessions_after
            found.append(
                f"Without the cap: {self.uncapped_after} session(s), ${monthly_usd(self.uncapped_after):,.2f} per month;"
                f" the cap keeps {self.sessions_after} and drops {saved}, saving ${monthly_usd(saved):,.2f} per month."
            )
        if self.waiting:
            found.append(f"Waiting for room, highest priority first ({len(self.waiting)}):")
            for w in self.waiting:
                who = w.name or w.instance or "-"
                verb = "released by the sweep" if w.action == "delete" else "waits"
                found.append(f"  priority {w.priority}: {who} {w.eni} ({w.problem}, {verb})")
        for eni, instance, why in self.priority_errors:
            found.append(f"Priority tag to fix: {eni}{f' ({instance})' if instance else ''}: {why}")
        return found

    def to_json(self) -> dict[str, Any]:
        cap = self.max_sessions
        return {
            "max_sessions": cap,
            "priority_tag_key": self.priority_tag_key,
            "sessions": self.sessions,
            "sessions_after": self.sessions_after,
            "other_sessions": self.other_sessions,
            "aws_quota": self.aws_quota,
            "monthly_usd_at_cap": None if cap is None else round(monthly_usd(cap), 2),
            "uncapped_sessions_after": self.uncapped_after,
            "monthly_usd_saved": round(monthly_usd(self.uncapped_after - self.sessions_after), 2),
            "waiting": [dataclasses.asdict(w) for w in self.waiting],
            "priority_errors": [{"eni": e, "instance": i, "reason": r} for e, i, r in self.priority_errors],
        }


def view(
    decisions: Sequence[Decision],
    planned: Sequence[Decision],
    room: budget.Room,
    priority_tag_key: str,
    names: Mapping[str, str] | None = None,
) -> BudgetView:
    """The budget of one place's read-only plan: `decisions` within the budget, `planned` before it."""
    names = names or {}
    uncapped = budget.limit(planned, dataclasses.replace(room, cap=None))
    waiting = sorted(
        (
            Waiting(
                d.eni_id,
                d.instance_id,
                names.get(d.instance_id, ""),
                d.priority,
                d.problem or "",
                "delete" if d.outcome == "delete" else "none",
                d.reason,
            )
            for d in decisions
            if d.problem in budget.BUDGET_PROBLEMS
        ),
        key=lambda w: (-w.priority, w.eni),
    )
    errors = tuple(sorted((d.eni_id, d.instance_id, d.priority_error) for d in decisions if d.priority_error))
    return BudgetView(
        room.cap,
        priority_tag_key,
        len(room.sessions),
        budget.sessions_after(decisions, room),
        budget.sessions_after(uncapped, room),
        room.others,
        room.quota,
        tuple(waiting),
        errors,
    )
