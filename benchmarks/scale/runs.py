"""What happened in one scenario: the numbers every other part fills in or reports."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.scale.containers import Reply
from testsupport import throttle


@dataclass
class Run:
    name: str
    design: str
    handler: str
    enis: int = 0
    containers: int = 0
    replies: list[Reply] = field(default_factory=list)
    retries: int = 0
    lost: int = 0
    failed_messages: int = 0
    end: float = 0.0
    skipped: float = 0.0
    stats: throttle.Stats = field(default_factory=throttle.Stats)
    rates: throttle.Rates = field(default_factory=throttle.Rates)
    duplicates: int = 0
    unmirrored: int = 0
    strays: int = 0
    notes: list[str] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    margin: float = 15.0
    accounts: int = 1
    """Accounts the ENIs are spread over evenly (each with its own token buckets)."""
    left_on_failed: int = 0
    """`failover`: sessions still on the failed sensor at the end (must be 0)."""
    cap: int | None = None
    """MIRROR_MAX_SESSIONS (None: no cap): `unmirrored` then counts the sessions short of the cap."""
    over_cap: int = 0
    """Sessions above the cap at the end (must be 0 once a sweep has run)."""
    budget: dict[str, int] = field(default_factory=dict)
    """The `budget` scenario: the cap, the bound on overshoot and the sessions counted after the burst and the sweep."""

    @property
    def errors(self) -> int:
        return sum(1 for r in self.replies if r.error)

    @property
    def overruns(self) -> int:
        return sum(1 for r in self.replies if r.overran)

    def bound(self) -> float:
        """Token-bucket bound: each action's successful calls beyond its burst, at its refill rate."""
        rates = self.rates
        per = self.accounts  # every account has its own buckets: the bound is one account's
        # A failover creates nothing: its bound is its moves' (ModifyTrafficMirrorSession, below).
        creating = 0 if self.design == "failover" else self.enis
        creates = max(0.0, creating / per - rates.mutate_burst) / rates.mutate_rate
        others = [
            max(0.0, n / per - rates.for_action(a)[0]) / rates.for_action(a)[1]
            for a, n in self.stats.passed.items()
            if a != "CreateTrafficMirrorSession"
        ]
        return max([creates, *others])

    def reasons(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for reply in self.replies:
            total.update(reply.reasons)
            if reply.error:
                total[f"function error: {reply.error[:160]}"] += 1
        return total
