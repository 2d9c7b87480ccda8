"""Evidence, as the reports show it: untrusted sessions, mirror loss, the plan's guardrails.

Pure: what the planner (`Decision.untrusted`), `handler/loss.py` and `handler/guardrails.py`
decided, in words and in the coverage JSON's shapes. The same decisions feed the sweep's metric.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from traffic_mirror.handler import loss as mirror_loss
from traffic_mirror.handler import planner
from traffic_mirror.handler.guardrails import Finding
from traffic_mirror.handler.model import Decision, Untrusted

from . import render


def untrusted(decisions: Iterable[Decision]) -> tuple[Untrusted, ...]:
    """Every untrusted session of these decisions, by ENI, then session number."""
    found = (u for d in decisions for u in d.untrusted)
    return tuple(sorted(found, key=lambda u: (u.eni_id, u.number, u.session_id)))


def target_owner(found: Untrusted, account: str) -> str | None:
    """The target's account: the ENI's own when "" (None: a target this account cannot see)."""
    if found.finding == planner.NOT_LISTED:
        return None
    return found.target_owner or account or None


def untrusted_json(found: Sequence[Untrusted], account: str) -> list[dict[str, Any]]:
    """Coverage JSON's `untrusted_sessions` (README, "Coverage JSON")."""
    return [
        {
            "session": u.session_id,
            "eni": u.eni_id,
            "instance": u.instance_id,
            "session_number": u.number,
            "target": u.target_id,
            "target_owner": target_owner(u, account),
            "target_kind": u.target_kind or None,
            "finding": u.finding,
            "intercepts": u.intercepts,
            "reason": u.reason,
        }
        for u in found
    ]


def render_untrusted(
    console: Console, found: Sequence[Untrusted], account: str, names: Mapping[str, str] | None = None
) -> None:
    """The untrusted sessions, first in every report: someone else may be copying this traffic."""
    if not found:
        return
    names = names or {}
    render.line(
        console,
        f"Untrusted sessions ({len(found)}): sessions of other tools to targets not trusted for their ENI"
        " (left in place)",
        style="bold red",
    )
    for u in found:
        owner = target_owner(u, account)
        where = f"account {owner}" if owner else "an account this one cannot see"
        first = " (takes the packets before ours: the ENI is not mirrored)" if u.intercepts else ""
        render.blank(console)
        render.record(
            console,
            render.head("untrusted", "bold red", u.session_id, u.eni_id, names.get(u.instance_id) or u.instance_id),
            [
                f"session number {u.number}{first}",
                f"target {u.target_id}, of {where}",
                u.reason,
            ],
        )
    render.blank(console)


def untrusted_count(console: Console, found: Sequence[Untrusted]) -> None:
    """`--quiet`: one line, when there are any (a security finding is never left out)."""
    if found:
        render.line(console, f"Untrusted sessions: {len(found)} (run without --quiet for each)", style="bold red")


def render_loss(
    console: Console,
    loss: mirror_loss.Loss,
    threshold: float | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    """The loss over the window: the total, then the worst instances, and what to do about it."""
    names = names or {}
    hours = loss.window_seconds / 3600
    window = f"{hours:g} h" if loss.window_seconds % 3600 == 0 else f"{loss.window_seconds // 60} min"
    if loss.instances == 0:
        render.line(console, f"Mirror loss (last {window}): no mirrored instance to measure.", style="dim")
        return
    if loss.error:
        render.line(
            console,
            f"Mirror loss (last {window}): unknown, CloudWatch could not be read ({loss.error}).",
            style="yellow",
        )
        return
    if loss.percent is None:
        render.line(
            console,
            f"Mirror loss (last {window}): unknown: no mirror metrics for any of the {loss.instances} mirrored"
            " instance(s) (no traffic yet, or CloudWatch has not published them).",
            style="yellow",
        )
        return
    unknown = f"; {len(loss.unknown)} without metrics (unknown)" if loss.unknown else ""
    over = threshold is not None and loss.percent > threshold
    render.line(
        console,
        f"Mirror loss (last {window}): {loss.percent:.2f}% of mirrored bytes skipped"
        f" ({_bytes(loss.skipped_bytes)} of {_bytes(loss.mirrored_bytes + loss.skipped_bytes)}) over"
        f" {len(loss.measured)} instance(s){unknown}",
        style="bold red" if over else "bold",
    )
    worst = loss.worst(mirror_loss.WORST_SHOWN)
    if not worst:
        return
    rows = [["Instance", "Loss", "Skipped", "ENIs"]]
    rows += [
        [" ".join(p for p in (names.get(i.instance_id), i.instance_id) if p), f"{i.percent:.2f}%",
         _bytes(i.skipped_bytes), ", ".join(i.enis)]
        for i in worst
    ]  # fmt: skip
    render.columns(console, f"Worst {len(worst)} of {len(loss.worst())} instance(s) that lost copies", rows, right=(1, 2))
    render.line(console, mirror_loss.HINT, 2, style="dim")


def _bytes(value: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{int(value)} B"


def guardrails_json(findings: Sequence[Finding]) -> list[dict[str, str]]:
    """`plan --format json`'s `guardrails`: each finding, in the plan's order."""
    return [{"check": f.check, "subject": f.subject, "text": f.text} for f in findings]


def render_guardrails(console: Console, findings: Sequence[Finding]) -> None:
    """One line each, with what to change."""
    if not findings:
        render.line(console, "Guardrails: nothing found (security groups, MTU, VXLAN filters).", style="green")
        return
    render.line(console, f"Guardrails ({len(findings)}): nothing was changed", style="bold yellow")
    for finding in findings:
        render.line(console, f"{finding.check}: {finding.text}", 2)
