"""`plan`: read-only; for every ENI, what the automation would do, why, and what it would cost."""

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from traffic_mirror.handler.model import Decision

from . import exits, reasons, render
from .aws import AWS_ERRORS
from .context import Run
from .cost import estimate
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
    """`instance i-0123, vpc-1, us-east-1a`: the ids the head line leaves out."""
    parts = [f"instance {decision.instance_id}" if decision.instance_id else "", decision.vpc_id, decision.az]
    return ", ".join(p for p in parts if p)


def sends_to(decision: Decision) -> str:
    if not decision.target_id and not decision.filter_id:
        return ""
    text = f"target {decision.target_id or '-'}, filter {decision.filter_id or '-'}"
    kept = decision.kept_session
    return text + (f", session {kept}" if kept else "")


def render_plan(console: Console, run_stamp: str, region: str, snapshot: Snapshot) -> None:
    """Every ENI as a record, then the tally and the cost."""
    render.line(console, f"Plan for {region} (read-only)", style="bold")
    render.line(console, run_stamp, style="dim")
    decisions: Sequence[Decision] = snapshot.decisions
    order = sorted(decisions, key=lambda d: (d.vpc_id, d.az, snapshot.name(d.instance_id), d.eni_id))
    for d in order:
        render.blank(console)
        label = action_label(d)
        title = snapshot.names.get(d.instance_id) or d.instance_id
        render.record(
            console,
            render.head(label.ljust(9), ACTION_STYLE.get(d.outcome, ""), title, d.eni_id),
            [where(d), sends_to(d), reasons.gist(d)],
        )
    render.blank(console)
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    parts = [f"{tally[k]} {label}" for k, label in SUMMARY if tally[k]]
    render.line(console, f"{len(decisions)} ENI(s): {', '.join(parts) or 'nothing'}. Nothing was written.")
    render.line(console, estimate(decisions, snapshot.targets, snapshot.zone_ids).sentence())
    found = snapshot.budget
    if found is not None and found.shown:
        render.blank(console)
        for text in found.lines():
            render.line(console, text)


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
        render_plan(r.console, one.stamp, r.region, snapshot)
    return code
