"""What mirroring would cost per month, in plain numbers (README, "Cost").

AWS bills Traffic Mirroring per ENI that has a session, per hour the session exists (traffic or
not), and bills mirrored packets that cross an Availability Zone like any cross-AZ data. The
prices are us-east-1's list prices; other regions differ by a few percent. The traffic volume is
not something the CLI can read, so the cross-AZ part is a count and a per-GB price, not dollars.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traffic_mirror.handler.model import Decision, Target

SESSION_HOUR_USD = 0.015
"""Per ENI with a mirror session, per hour (us-east-1 list price)."""
HOURS_PER_MONTH = 730
CROSS_AZ_GB_USD = 0.01
"""Per GB in each direction, for mirrored packets sent to a target in another AZ."""


@dataclass(frozen=True)
class Estimate:
    mirrored_enis: int
    """ENIs that would have one of our sessions once this plan is applied."""
    cross_az: int
    """Of those, how many send to a target in another AZ."""

    @property
    def monthly_usd(self) -> float:
        return self.mirrored_enis * HOURS_PER_MONTH * SESSION_HOUR_USD

    def sentence(self) -> str:
        text = (
            f"Estimated cost: {self.mirrored_enis} session(s) x {HOURS_PER_MONTH} h x "
            f"${SESSION_HOUR_USD}/h = ${self.monthly_usd:,.2f} per month "
            "(one session per mirrored ENI, once the sweep has run)"
        )
        if self.cross_az:
            text += (
                f", plus cross-AZ data for {self.cross_az} ENI(s) whose target is in another AZ "
                f"(${CROSS_AZ_GB_USD}/GB each way)"
            )
        return text + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "mirrored_enis": self.mirrored_enis,
            "monthly_usd": round(self.monthly_usd, 2),
            "session_hour_usd": SESSION_HOUR_USD,
            "hours_per_month": HOURS_PER_MONTH,
            "cross_az_enis": self.cross_az,
            "cross_az_gb_usd": CROSS_AZ_GB_USD,
        }


def will_be_mirrored(decision: Decision) -> bool:
    """Has one of our sessions after this plan: kept, created or moved (a cleanup keeps one)."""
    if decision.out_of_scope is not None:
        return False
    if decision.outcome in ("mirrored", "create", "modify"):
        return True
    return decision.outcome == "delete" and decision.target_id is not None


def estimate(
    decisions: Sequence[Decision], targets: Mapping[str, Target], zone_ids: Mapping[str, str] | None = None
) -> Estimate:
    """The monthly cost of the sessions this plan leaves in place; cross-AZ where the target's AZ is known.

    `zone_ids` (AZ name -> id, known when accounts are compared): a hub sensor's AZ name is the hub's,
    so the zones are compared by id.
    """
    zone_ids = zone_ids or {}
    mirrored = [d for d in decisions if will_be_mirrored(d)]
    cross = 0
    for d in mirrored:
        target = targets.get(d.target_id or "")
        if target is None or not d.az:
            continue
        zone = zone_ids.get(d.az)
        if zone and target.az_id:
            cross += target.az_id != zone
        elif target.az and target.az != d.az:
            cross += 1
    return Estimate(len(mirrored), cross)
