"""`plan`: read-only; for every ENI, what the automation would do, why, and what it would cost."""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from traffic_mirror.handler.model import Decision

from . import documents, reasons, render
from .context import Run, for_each_account
from .cost import estimate
from .read import Snapshot, read

JSON_SCHEMA_VERSION = 1
"""`plan --format json` (docs/cli-json.md)."""
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


def tally_line(decisions: Sequence[Decision]) -> str:
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    parts = [f"{tally[k]} {label}" for k, label in SUMMARY if tally[k]]
    return f"{len(decisions)} ENI(s): {', '.join(parts) or 'nothing'}. Nothing was written."


def render_plan(console: Console, run_stamp: str, region: str, snapshot: Snapshot, quiet: bool = False) -> None:
    """Every ENI as a record, then the tally and the cost (`quiet`: the tally and the cost only)."""
    decisions: Sequence[Decision] = snapshot.decisions
    cost = estimate(decisions, snapshot.targets, snapshot.zone_ids).sentence()
    if quiet:
        render.line(console, tally_line(decisions))
        render.line(console, cost)
        return
    render.line(console, f"Plan for {region} (read-only)", style="bold")
    render.line(console, run_stamp, style="dim")
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
    render.line(console, tally_line(decisions))
    render.line(console, cost)
    found = snapshot.budget
    if found is not None and found.shown:
        render.blank(console)
        for text in found.lines():
            render.line(console, text)


def decision_json(decision: Decision, names: Mapping[str, str]) -> dict[str, Any]:
    """One ENI of `plan --format json`: the planner's decision, with its stable identifiers."""
    d = decision
    return {
        "eni": d.eni_id,
        "instance": d.instance_id,
        "name": names.get(d.instance_id, ""),
        "vpc": d.vpc_id,
        "az": d.az,
        "instance_type": d.instance_type,
        "action": d.outcome,
        "target": d.target_id,
        "filter": d.filter_id,
        "session": d.kept_session,
        "session_number": d.session_number,
        "tier": d.tier,
        "out_of_scope": d.out_of_scope,
        "problem": d.problem,
        "reason": d.reason,
        "writes": [
            {"kind": a.kind, "session": a.session_id, "target": a.target_id, "filter": a.filter_id}
            for a in d.actions
        ],
    }


def plan_json(one: Run, snapshot: Snapshot) -> dict[str, Any]:
    """`plan --format json` for one account (docs/cli-json.md, "plan")."""
    decisions = sorted(snapshot.decisions, key=lambda d: (d.eni_id, d.instance_id))
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    return {
        **documents.head(JSON_SCHEMA_VERSION, one.account, one.region, one.generated_at),
        "counts": {outcome: tally[outcome] for outcome, _ in SUMMARY},
        "enis": [decision_json(d, snapshot.names) for d in decisions],
        "cost": estimate(decisions, snapshot.targets, snapshot.zone_ids).to_json(),
        **({"budget": snapshot.budget.to_json()} if snapshot.budget is not None else {}),
    }


def run(r: Run, output: str = "table") -> int:
    """One plan, or with --account/--accounts one section per account (a failed one: one line)."""

    def one_account(one: Run) -> tuple[int, dict[str, Any] | None]:
        snapshot = read(one)
        if output == "json":
            return 0, plan_json(one, snapshot)
        render_plan(r.console, one.stamp, r.region, snapshot, r.quiet)
        return 0, None

    return for_each_account(r, output, one_account, JSON_SCHEMA_VERSION)
