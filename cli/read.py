"""One read-only pass over a region, with what the reports show beside the decisions."""

from dataclasses import dataclass, field

from traffic_mirror.handler import cloudwatch, guardrails, inventory, reconcile
from traffic_mirror.handler import loss as mirror_loss
from traffic_mirror.handler.budget import Room
from traffic_mirror.handler.context import Context
from traffic_mirror.handler.coverage import Sensor
from traffic_mirror.handler.model import Decision, Inventory, Source, Target
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
    sources: dict[str, Source] = field(default_factory=dict)
    """ENI id -> the source as read (its address and security groups, for the guardrails)."""
    inventory: Inventory | None = None
    """The place's targets and filters, as the plan used them."""
    sensors: tuple[Sensor, ...] = ()
    """Every target with its health and the sessions it serves."""
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
    names = {s.instance_id: s.name for s in planned.sources if s.name and s.instance_id}
    return Snapshot(
        planned.decisions,
        names,
        {t.target_id: t for t in found.targets},
        dict(found.zone_ids),
        {s.eni_id: s for s in planned.sources},
        found,
        planned.sensors,
        planned.planned,
        planned.room,
        ctx.settings.priority_tag_key,
    )


def loss(run: Run, snapshot: Snapshot, window_seconds: int) -> mirror_loss.Loss:
    """The mirrored instances' loss over the window (unknown, with why, when CloudWatch fails)."""
    instances = mirror_loss.mirrored_instances(snapshot.decisions, zone_ids=snapshot.zone_ids)
    with run.activity.show(f"Reading the mirror-loss metrics of {len(instances)} instance(s)..."):
        return cloudwatch.mirror_loss(run.context(), instances, window_seconds)


def guardrail_findings(run: Run, snapshot: Snapshot) -> list[guardrails.Finding]:
    """The plan's guardrails: the sensors' security groups read where each sensor lives."""
    ctx = run.context()
    served = guardrails.serving(snapshot.decisions)
    used = [snapshot.targets[t] for t in served if t in snapshot.targets]
    groups_by_owner: dict[str, set[str]] = {}
    for target in used:
        if target.kind == "network-interface":
            groups_by_owner.setdefault(target.owner, set()).update(target.security_groups)
    with run.activity.show("Reading the sensors' security groups..."):
        group_reads = {
            owner: inventory.submit(_owner(ctx, owner), inventory.security_groups, sorted(ids))
            for owner, ids in groups_by_owner.items()
        }
        groups = {g: sg for future in group_reads.values() for g, sg in future.result().items()}
    found = snapshot.inventory
    filters = {f.filter_id: f for f in found.filters} if found is not None else {}
    return guardrails.check(
        snapshot.decisions,
        snapshot.sources,
        snapshot.targets,
        filters,
        groups,
        run.settings.packet_length,
    )


def _owner(ctx: Context, owner: str) -> Context:
    return inventory.owner_context(ctx, owner)
