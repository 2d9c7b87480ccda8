"""The session budget: which ENIs hold a session when MIRROR_MAX_SESSIONS, or AWS's quota, leaves
too little room for every in-scope ENI. Pure: the planner's decisions, the place's sessions and
each ENI's priority in; decisions out (docs/budget.md).

The planner decides each ENI alone; a budget is a choice between ENIs, so it is a pass of its own
over the planner's decisions, run wherever they are made (events, the sweep, the CLI's plan):
- the highest priorities hold the room; ties keep what is already mirrored (no churn), then the
  older ENI;
- a newcomer of strictly higher priority displaces the lowest-priority session of ours; an equal
  or lower one waits (`over-budget`, or `quota` when AWS's quota is what binds) until room appears;
- a pass that sees the whole place (`Room.complete`: the sweep, the plan) also releases the lowest
  priorities above the cap (what containers running side by side overshot); a pass over some ENIs
  (an event) never shrinks the count: it fills room, or swaps one session for one;
- sessions of other tools never count against the cap; they do count against AWS's quota.
Every release is a delete, so reconcile confirms it by a second read (`_confirm`) before it is made,
and `fit` withholds the creates whose room a release that did not happen was to make.
"""

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .model import Action, Decision, Session
from .planner import INTERCEPTED, OVER_BUDGET, QUOTA
from .settings import MANAGED_TAG_KEY, Settings

AWS_SESSION_QUOTA = 10_000
"""Traffic mirror sessions per account (AWS's quota, not adjustable)."""
BUDGET_PROBLEMS = frozenset({OVER_BUDGET, QUOTA})
_RANKED = frozenset({None, INTERCEPTED})
"""Problems of ENIs that still hold (or get) a session of ours, so the budget ranks them: none, or
`intercepted` (another tool's session ahead of ours: ours is made and kept all the same, and costs
a place under the cap like any other)."""


@dataclass(frozen=True)
class Room:
    """What a budget pass knows of its place (one account and region): the sessions there, now."""

    cap: int | None
    """MIRROR_MAX_SESSIONS (None: no cap of ours)."""
    sessions: tuple[Session, ...]
    """Every session of ours in the place (ManagedBy tag, made by this account)."""
    others: int = 0
    """Sessions of other tools in the account and region: not counted against the cap, but AWS's quota counts them."""
    quota: int = AWS_SESSION_QUOTA
    """Sessions the account may hold in all: AWS's quota, or what it held when AWS last refused one."""
    priorities: Mapping[str, int] = field(default_factory=dict)
    """Priorities of ENIs that hold sessions of ours but that no decision covers (an event reads them
    when a newcomer would otherwise wait); an ENI missing here is never displaced."""
    complete: bool = False
    """The decisions cover every ENI of the place (the sweep, the plan): sessions above the cap are released."""

    @property
    def quota_room(self) -> int:
        """How many sessions of ours AWS's quota leaves room for."""
        return max(0, self.quota - self.others)

    @property
    def bound(self) -> int:
        return self.quota_room if self.cap is None else min(self.cap, self.quota_room)

    @property
    def binding(self) -> str:
        """What holds ENIs back: our cap (`over-budget`), or AWS's quota when it is the smaller (`quota`)."""
        return QUOTA if self.cap is None or self.quota_room < self.cap else OVER_BUDGET

    def limit_words(self) -> str:
        if self.binding == OVER_BUDGET:
            return f"the cap of {self.cap} session(s) (MIRROR_MAX_SESSIONS)"
        return f"AWS's session quota ({self.quota} in the account, {self.others} of them other tools')"


def room(
    settings: Settings,
    listing: Iterable[Session],
    quota: int | None = None,
    priorities: Mapping[str, int] | None = None,
    complete: bool = False,
) -> Room:
    """The room of a place from its session listing (the account's own sessions, ours and other tools')."""
    ours: list[Session] = []
    others = 0
    for session in listing:
        if session.tags.get(MANAGED_TAG_KEY) == settings.managed_by:
            ours.append(session)
        else:
            others += 1
    return Room(
        settings.max_sessions,
        tuple(ours),
        others,
        AWS_SESSION_QUOTA if quota is None else min(quota, AWS_SESSION_QUOTA),
        dict(priorities or {}),
        complete,
    )


def active(settings: Settings, quota: int | None) -> bool:
    """Whether an event must count the sessions of its place: a cap is set, or AWS refused one recently."""
    return settings.max_sessions is not None or quota is not None


def keeps(decision: Decision) -> bool:
    """An in-scope ENI whose session of ours stays (kept, moved, or duplicates cleaned up): rankable."""
    if decision.out_of_scope is not None or decision.problem not in _RANKED:
        return False
    return decision.outcome in ("mirrored", "modify") or (
        decision.outcome == "delete" and decision.kept_session is not None
    )


def is_newcomer(decision: Decision) -> bool:
    """An in-scope ENI that gets a session of ours now (`intercepted` ones too: the session is made)."""
    return decision.outcome == "create" and decision.problem in _RANKED and decision.out_of_scope is None


def is_release(decision: Decision) -> bool:
    """The budget takes this ENI's sessions away (for a higher priority, or above the cap)."""
    return decision.problem in BUDGET_PROBLEMS and any(a.kind == "delete" for a in decision.actions)


@dataclass(frozen=True)
class _Item:
    eni_id: str
    priority: int
    attached_at: float | None
    decision: Decision | None
    """None: an ENI no decision covers (an event's view of the rest of the place)."""

    @property
    def rank(self) -> tuple[int, float, str]:
        """Best first: priority, then the older ENI, then the id. (What is mirrored keeps its place
        against a newcomer of the same priority because only a strictly higher one displaces it.)"""
        age = self.attached_at if self.attached_at is not None else math.inf
        return (-self.priority, age, self.eni_id)


def limit(
    decisions: Sequence[Decision], room: Room, pinned: frozenset[str] = frozenset(), release: bool = True
) -> list[Decision]:
    """The decisions within the room: newcomers wait, or displace lower priorities; above the cap a
    complete pass releases the lowest. Nothing changes while everything fits.

    `pinned`: ENIs whose sessions stay whatever the budget says (a release a second read did not
    confirm); `release` False: only withhold creates (`fit`).
    """
    mine: dict[str, list[Session]] = {}
    for session in room.sessions:
        mine.setdefault(session.eni_id, []).append(session)
    decided = {d.eni_id for d in decisions if d.eni_id}
    fixed = 0
    held: list[_Item] = []
    newcomers: list[_Item] = []
    for d in decisions:
        if not d.eni_id:
            continue
        now = mine.get(d.eni_id, [])
        if d.eni_id in pinned:
            fixed += len(now)
        elif is_newcomer(d):
            newcomers.append(_Item(d.eni_id, d.priority, d.attached_at, d))
        elif keeps(d) and now:
            held.append(_Item(d.eni_id, d.priority, d.attached_at, d))
        else:
            ids = {s.session_id for s in now}
            fixed += len(now) - sum(1 for a in d.actions if a.kind == "delete" and a.session_id in ids)
    for eni_id, sessions in mine.items():
        if eni_id in decided:
            continue
        if eni_id in room.priorities and release and eni_id not in pinned:
            held.append(_Item(eni_id, room.priorities[eni_id], None, None))
        else:
            fixed += len(sessions)
    bound = room.bound
    if fixed + len(held) + len(newcomers) <= bound:
        return list(decisions)

    held.sort(key=lambda i: i.rank)
    newcomers.sort(key=lambda i: i.rank)
    released: dict[str, str] = {}
    if release and room.complete and room.cap is not None:
        over = fixed + len(held) - room.cap
        above = [held.pop() for _ in range(min(max(over, 0), len(held)))]
        floor = f"the sessions kept have priority {held[-1].priority} or higher" if held else "no session is kept"
        for item in above:
            released[item.eni_id] = (
                f"released above {room.limit_words()}: priority {item.priority}; {floor} (a tie keeps the older ENI)"
            )
    free = bound - fixed - len(held)
    waiting: dict[str, str] = {}
    for item in newcomers:
        if free > 0:
            free -= 1
            continue
        last = held[-1] if held and release else None
        if last is not None and item.priority > last.priority:
            held.pop()
            released[last.eni_id] = (
                f"released for {item.eni_id} of priority {item.priority}: priority {last.priority} is the lowest"
                f" under {room.limit_words()}"
            )
            continue
        floor = f"; the room is held by priority {held[-1].priority} or higher" if held else ""
        waiting[item.eni_id] = f"waits for room: priority {item.priority}, {room.limit_words()} is full{floor}"

    problem = room.binding
    out: list[Decision] = []
    for d in decisions:
        if d.eni_id in waiting:
            out.append(wait(d, problem, waiting[d.eni_id]))
        elif d.eni_id in released:
            out.append(_release(d.eni_id, d, mine[d.eni_id], problem, released[d.eni_id]))
        else:
            out.append(d)
    for eni_id in sorted(set(released) - decided):
        out.append(_release(eni_id, None, mine[eni_id], problem, released[eni_id], room.priorities[eni_id]))
    return out


def fit(decisions: Sequence[Decision], room: Room, pinned: frozenset[str] = frozenset()) -> list[Decision]:
    """Withhold the creates that no longer fit (a release was not confirmed or not made): never a delete."""
    return limit(decisions, dataclasses.replace(room, complete=False), pinned, release=False)


def wait(decision: Decision, problem: str, why: str) -> Decision:
    """An ENI that waits for room: no write, the problem that says which limit, the reason."""
    return dataclasses.replace(
        decision,
        outcome="skipped",
        reason=why,
        actions=(),
        problem=problem,
        repairs=None,
        kept_session=None,
        session_number=None,
        tier=None,
    )


def _release(
    eni_id: str,
    decision: Decision | None,
    sessions: Sequence[Session],
    problem: str,
    why: str,
    priority: int = 0,
) -> Decision:
    actions = tuple(Action("delete", eni_id, session_id=s.session_id) for s in sessions)
    if decision is None:
        return Decision(eni_id, "", "delete", why, actions, problem=problem, priority=priority)
    return dataclasses.replace(
        decision,
        outcome="delete",
        reason=why,
        actions=actions,
        target_id=None,
        filter_id=None,
        problem=problem,
        repairs=None,
        kept_session=None,
        session_number=None,
        tier=None,
    )


def unknown_holders(decisions: Sequence[Decision], room: Room) -> list[str]:
    """ENIs with sessions of ours whose priority this pass did not know, when a newcomer waits: an
    event reads them (one round) and passes again, so a higher priority can displace a lower one."""
    if not any(d.problem in BUDGET_PROBLEMS and d.outcome == "skipped" for d in decisions):
        return []
    decided = {d.eni_id for d in decisions}
    return sorted({s.eni_id for s in room.sessions} - decided - set(room.priorities))


def sessions_after(decisions: Iterable[Decision], room: Room) -> int:
    """Sessions of ours once these decisions are applied (what the budget is measured in)."""
    mine: dict[str, set[str]] = {}
    for session in room.sessions:
        mine.setdefault(session.eni_id, set()).add(session.session_id)
    total = len(room.sessions)
    for d in decisions:
        ids = mine.get(d.eni_id, set())
        total -= sum(1 for a in d.actions if a.kind == "delete" and a.session_id in ids)
        total += sum(1 for a in d.actions if a.kind == "create")
    return total
