"""`plan`: read-only; for every ENI, what the automation would do, why, and what it would cost."""

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from traffic_mirror.handler import kinds
from traffic_mirror.handler.model import Decision
from traffic_mirror.handler.settings import Settings

from . import exits, reasons, render
from .aws import AWS_ERRORS
from .context import Run
from .cost import HOURS_PER_MONTH, SESSION_HOUR_USD, estimate, will_be_mirrored
from .read import Snapshot, read

ACTION_STYLE = {"create": "green", "modify": "yellow", "delete": "red", "mirrored": "cyan", "skipped": "dim"}
SUMMARY = (
    ("create", "to create"),
    ("modify", "to modify"),
    ("delete", "to clean up"),
    ("mirrored", "already mirrored"),
    ("skipped", "skipped"),
)


def action_label(decision: Decision) -> str:
    if decision.outcome == "mirrored":
        return "mirrored"
    if decision.outcome == "skipped":
        return "skip"
    if decision.outcome == "delete":
        return f"delete {len(decision.actions)}"
    return decision.outcome


def where(decision: Decision) -> str:
    """`instance i-0123, vpc-1, us-east-1a` (a service's ENI: its kind): the ids the head line leaves out."""
    owner = f"instance {decision.instance_id}" if decision.instance_id else ""
    if decision.kind != kinds.INSTANCES:
        owner = decision.kind
    return ", ".join(p for p in (owner, decision.vpc_id, decision.az) if p)


def sends_to(decision: Decision) -> str:
    if not decision.target_id and not decision.filter_id:
        return ""
    text = f"target {decision.target_id or '-'}, filter {decision.filter_id or '-'}"
    kept = decision.kept_session
    return text + (f", session {kept}" if kept else "")


def by_kind(decisions: Sequence[Decision]) -> str:
    """`By kind: 12 instances, 4 load-balancers`, once services' ENIs are among the sources ("" before)."""
    counted: Counter[str] = Counter(d.kind for d in decisions if d.out_of_scope is None and d.eni_id)
    if set(counted) <= {kinds.INSTANCES}:
        return ""
    ordered = sorted(counted, key=lambda k: kinds.KINDS.index(k) if k in kinds.KINDS else len(kinds.KINDS))
    return "In scope by kind: " + ", ".join(f"{counted[k]} {k}" for k in ordered) + "."


def added_by_sources(snapshot: Snapshot, asked: Settings, deployed: Settings | None) -> str:
    """What `--sources` beyond the deployment's MIRROR_SOURCES would add, and its monthly cost ("" when
    it asks for nothing more)."""
    if deployed is None:
        return ""
    more = sorted(asked.kinds - deployed.kinds, key=kinds.KINDS.index)
    if not more:
        return ""
    added = [d for d in snapshot.decisions if d.kind in more and will_be_mirrored(d)]
    cost = estimate(added, snapshot.targets, snapshot.zone_ids)
    cross = f", plus cross-AZ data for {cost.cross_az} of them" if cost.cross_az else ""
    return (
        f"Enabling {', '.join(more)} (this deployment's MIRROR_SOURCES={deployed.sources}) would add "
        f"{render.plural(len(added), 'mirrored ENI')}: ${cost.monthly_usd:,.2f} per month "
        f"({len(added)} session(s) x {HOURS_PER_MONTH} h x ${SESSION_HOUR_USD}/h{cross})."
    )


def render_plan(
    console: Console,
    run_stamp: str,
    region: str,
    snapshot: Snapshot,
    asked: Settings | None = None,
    deployed: Settings | None = None,
) -> None:
    """Every ENI as a record, then the tally (by kind, once services' ENIs are sources), the cost,
    and what `--sources` beyond the deployment's would add."""
    render.line(console, f"Plan for {region} (read-only)", style="bold")
    render.line(console, run_stamp, style="dim")
    decisions: Sequence[Decision] = snapshot.decisions
    order = sorted(decisions, key=lambda d: (d.vpc_id, d.az, snapshot.name(d.instance_id), d.eni_id))
    for d in order:
        render.blank(console)
        label = action_label(d)
        title = snapshot.names.get(d.instance_id) or d.instance_id or d.resource
        render.record(
            console,
            render.head(label.ljust(9), ACTION_STYLE.get(d.outcome, ""), title, d.eni_id),
            [where(d), sends_to(d), reasons.gist(d)],
        )
    render.blank(console)
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    parts = [f"{tally[k]} {label}" for k, label in SUMMARY if tally[k]]
    render.line(console, f"{len(decisions)} ENI(s): {', '.join(parts) or 'nothing'}. Nothing was written.")
    kinds_line = by_kind(decisions)
    if kinds_line:
        render.line(console, kinds_line)
    render.line(console, estimate(decisions, snapshot.targets, snapshot.zone_ids).sentence())
    added = added_by_sources(snapshot, asked, deployed) if asked is not None else ""
    if added:
        render.line(console, added, style="bold")


def run(r: Run) -> int:
    """One plan, or with --account/--accounts one section per account (a failed one: one line)."""
    code = exits.OK
    for index, one in enumerate(r.each()):
        if r.several:
            r.section(index, one.account)
        try:
            snapshot = read(one)
        except AWS_ERRORS as error:
            if not r.several:
                raise
            r.unreadable(one.account, error)
            code = exits.CANNOT_RUN
            continue
        render_plan(r.console, one.stamp, r.region, snapshot, one.settings, one.deployed)
    return code
