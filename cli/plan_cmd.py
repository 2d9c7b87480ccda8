"""`plan`: read-only; for every ENI, what the automation would do, why, and what it would cost;
first the sessions of others to untrusted targets, last the guardrails (what to change)."""

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from traffic_mirror.handler import kinds
from traffic_mirror.handler.guardrails import Finding
from traffic_mirror.handler.model import Decision
from traffic_mirror.handler.settings import Settings

from . import documents, evidence, reasons, render
from .context import Run, for_each_account
from .cost import HOURS_PER_MONTH, SESSION_HOUR_USD, estimate, will_be_mirrored
from .coverage import sensor_json
from .coverage_cmd import render_sensors
from .read import Snapshot, guardrail_findings, read

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


def tally_line(decisions: Sequence[Decision]) -> str:
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    parts = [f"{tally[k]} {label}" for k, label in SUMMARY if tally[k]]
    return f"{len(decisions)} ENI(s): {', '.join(parts) or 'nothing'}. Nothing was written."


def by_kind(decisions: Sequence[Decision]) -> str:
    """`In scope by kind: 12 instances, 4 load-balancers.`, once services' ENIs are among the sources
    ("" before: instances alone need no such line)."""
    counted: Counter[str] = Counter(d.kind for d in decisions if d.out_of_scope is None and d.eni_id)
    if set(counted) <= {kinds.INSTANCES}:
        return ""
    ordered = sorted(counted, key=lambda k: kinds.KINDS.index(k) if k in kinds.KINDS else len(kinds.KINDS))
    return "In scope by kind: " + ", ".join(f"{counted[k]} {k}" for k in ordered) + "."


def sources_added(snapshot: Snapshot, asked: Settings | None, deployed: Settings | None) -> tuple[list[str], list[Decision]]:
    """The kinds `--sources` asks for beyond the deployment's MIRROR_SOURCES, and the ENIs they add."""
    if asked is None or deployed is None:
        return [], []
    more = sorted(asked.kinds - deployed.kinds, key=kinds.KINDS.index)
    return more, [d for d in snapshot.decisions if d.kind in more and will_be_mirrored(d)]


def added_by_sources(snapshot: Snapshot, asked: Settings | None, deployed: Settings | None) -> str:
    """What `--sources` beyond the deployment's MIRROR_SOURCES would add, and its monthly cost ("" when
    it asks for nothing more)."""
    more, added = sources_added(snapshot, asked, deployed)
    if not more or deployed is None:
        return ""
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
    quiet: bool = False,
    asked: Settings | None = None,
    deployed: Settings | None = None,
    findings: Sequence[Finding] | None = None,
    account: str = "",
) -> None:
    """Untrusted sessions first, every ENI as a record, then the tally (by kind, once services' ENIs
    are sources), the cost, what `--sources` beyond the deployment's would add, the session budget,
    the sensors and the guardrails
    (`quiet`: the untrusted sessions' count, when there are any, and the summary lines only)."""
    decisions: Sequence[Decision] = snapshot.decisions
    cost = estimate(decisions, snapshot.targets, snapshot.zone_ids).sentence()
    summary = [tally_line(decisions), by_kind(decisions), cost, added_by_sources(snapshot, asked, deployed)]
    untrusted = evidence.untrusted(decisions)
    if quiet:
        evidence.untrusted_count(console, untrusted)
        for line in filter(None, summary):
            render.line(console, line)
        return
    evidence.render_untrusted(console, untrusted, account, snapshot.names)
    render.line(console, f"Plan for {region} (read-only)", style="bold")
    render.line(console, run_stamp, style="dim")
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
    for index, line in enumerate(summary):
        if line:
            render.line(console, line, style="bold" if index == len(summary) - 1 else "")
    found = snapshot.budget
    if found is not None and found.shown:
        render.blank(console)
        for text in found.lines():
            render.line(console, text)
    render_sensors(console, snapshot.sensors)
    if findings is not None:
        render.blank(console)
        evidence.render_guardrails(console, findings)


def decision_json(decision: Decision, names: Mapping[str, str]) -> dict[str, Any]:
    """One ENI of `plan --format json`: the planner's decision, with its stable identifiers."""
    d = decision
    return {
        "eni": d.eni_id,
        "instance": d.instance_id,
        "name": names.get(d.instance_id, "") or d.resource,
        "kind": d.kind,
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


def plan_json(one: Run, snapshot: Snapshot, findings: Sequence[Finding] = ()) -> dict[str, Any]:
    """`plan --format json` for one account (docs/cli-json.md, "plan")."""
    decisions = sorted(snapshot.decisions, key=lambda d: (d.eni_id, d.instance_id))
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    return {
        **documents.head(JSON_SCHEMA_VERSION, one.account, one.region, one.generated_at),
        "counts": {outcome: tally[outcome] for outcome, _ in SUMMARY},
        "enis": [decision_json(d, snapshot.names) for d in decisions],
        "cost": estimate(decisions, snapshot.targets, snapshot.zone_ids).to_json(),
        **_sources_added_json(snapshot, one),
        "untrusted_sessions": evidence.untrusted_json(evidence.untrusted(decisions), one.account),
        "guardrails": evidence.guardrails_json(findings),
        "sensors": [sensor_json(s) for s in snapshot.sensors],
        **({"budget": snapshot.budget.to_json()} if snapshot.budget is not None else {}),
    }


def _sources_added_json(snapshot: Snapshot, one: Run) -> dict[str, Any]:
    """`sources_added`: the kinds `--sources` asks for beyond the deployment's, what they would add and
    cost (no kinds, nothing added, without such a `--sources`)."""
    more, added = sources_added(snapshot, one.settings, one.deployed)
    cost = estimate(added, snapshot.targets, snapshot.zone_ids).to_json()
    return {"sources_added": {"kinds": more, **cost}}


def run(r: Run, output: str = "table") -> int:
    """One plan, or with --account/--accounts one section per account (a failed one: one line)."""

    def one_account(one: Run) -> tuple[int, dict[str, Any] | None]:
        snapshot = read(one)
        findings = guardrail_findings(one, snapshot)
        if output == "json":
            return 0, plan_json(one, snapshot, findings)
        render_plan(r.console, one.stamp, r.region, snapshot, r.quiet, one.settings, one.deployed, findings, one.account)
        return 0, None

    return for_each_account(r, output, one_account, JSON_SCHEMA_VERSION)
