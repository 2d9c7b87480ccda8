"""One read-only pass over a region, with what the reports show beside the decisions."""

from dataclasses import dataclass, field

from traffic_mirror.handler import inventory, reconcile
from traffic_mirror.handler.model import Decision, Target
from traffic_mirror.handler.settings import Settings

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

    def name(self, instance_id: str) -> str:
        """The Name tag, else the instance id (people know their instances by name)."""
        return self.names.get(instance_id) or instance_id


def read(run: Run, settings: Settings | None = None) -> Snapshot:
    """What the sweep would do for every ENI, without writing, under a spinner that shows retries."""
    ctx = run.context(settings)
    where = f"{run.region} of account {run.member}" if run.member else run.region
    with run.activity.show(f"Reading {where}..."):
        decisions, sources = reconcile.read_only_plan(ctx)
        # Just refreshed by the plan, so this is the container's cached copy: no extra call.
        found = inventory.inventory(ctx)
    names = {s.instance_id: s.name for s in sources if s.name and s.instance_id}
    return Snapshot(decisions, names, {t.target_id: t for t in found.targets}, dict(found.zone_ids))
