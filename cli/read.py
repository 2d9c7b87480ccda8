"""One read-only pass over a region, with what the reports show beside the decisions."""

from dataclasses import dataclass, field

from traffic_mirror.handler import inventory, reconcile
from traffic_mirror.handler.budget import Room
from traffic_mirror.handler.model import Decision, Target
from traffic_mirror.handler.settings import Settings

from .budget_view import BudgetView, view
from .context import Run


@dataclass(frozen=True)
class Snapshot:
    decisions: list[Decision]
    names: dict[str, str]
    """Instance id -> its Name tag, for instances that have one."""
    targets: dict[str, Target]
    """Target id -> target (its AZ, for the cost estimate)."""
    zone_ids: dict[str, str] = field(default_factory=dict)
    """AZ name -> AZ id, read when accounts are compared (settings.accounts set)."""
    planned: list[Decision] = field(default_factory=list)
    """The planner's decisions before the budget pass (what the cap is compared against)."""
    room: Room | None = None
    """The place's sessions as the budget pass saw them."""
    priority_tag_key: str = "MirrorPriority"

    @property
    def budget(self) -> BudgetView | None:
        """The session budget of this plan (docs/budget.md)."""
        if self.room is None:
            return None
        return view(self.decisions, self.planned, self.room, self.priority_tag_key, self.names)

    def name(self, instance_id: str) -> str:
        """The Name tag, else the instance id (people know their instances by name)."""
        return self.names.get(instance_id) or instance_id


def read(run: Run, settings: Settings | None = None) -> Snapshot:
    """What the sweep would do for every ENI, without writing, under a spinner that shows retries."""
    ctx = run.context(settings)
    where = f"{run.region} of account {run.member}" if run.member else run.region
    with run.activity.show(f"Reading {where}..."):
        planned = reconcile.read_only(ctx)
        # Just refreshed by the plan, so this is the container's cached copy: no extra call.
        found = inventory.inventory(ctx)
    names = {s.instance_id: s.name for s in planned.sources if s.name}
    targets = {t.target_id: t for t in found.targets}
    return Snapshot(
        planned.decisions,
        names,
        targets,
        dict(found.zone_ids),
        planned.planned,
        planned.room,
        ctx.settings.priority_tag_key,
    )
