"""`sweep`: the scheduled sweep's reconciliation, now; a dry run unless `--apply`.

Its report (records or a summary, failures grouped by error code, the tally) and its JSON are
shared with `release`, whose results are the same kind (`handler.apply.Result`).
"""

import contextlib
import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn
from traffic_mirror.handler import reconcile
from traffic_mirror.handler.apply import Result

from . import documents, evidence, reasons, render
from .context import Run, for_each_account
from .read import read

JSON_SCHEMA_VERSION = 1
"""`sweep --format json` (docs/cli-json.md)."""
PROGRESS_THRESHOLD = 20
"""`sweep --apply` shows a progress bar when it has more writes than this to make."""
SUMMARY_THRESHOLD = render.SUMMARY_THRESHOLD
"""Above this many changed ENIs the sweep prints a summary (see --summary)."""
FIRST_ENIS = 3
"""A summarised failure group names this many of its ENIs (`--no-summary` lists every one)."""
STATUS_STYLE = {
    "created": "green",
    "modified": "yellow",
    "deleted": "red",
    "planned": "magenta",
    "mirrored": "cyan",
    "skipped": "dim",
    "failed": "bold red",
    "deferred": "yellow",
}
ORDER = ("created", "modified", "deleted", "planned", "mirrored", "skipped", "failed", "deferred")


def status_label(result: Result) -> str:
    return f"would {result.decision.outcome}" if result.status == "planned" else result.status


def note(result: Result) -> str:
    """Why, without what the other lines already say (for a failure, AWS's answer)."""
    return result.reason if result.status == "failed" else reasons.gist(result.decision)


def skip_reason(result: Result) -> str:
    """The words for a skipped ENI: its out-of-scope category, or the planner's reason."""
    return reasons.group(result.decision)


def summary_group(result: Result) -> str:
    """What a summary groups a change under: its out-of-scope words, or its reason's first clause."""
    return reasons.group(result.decision)


def sessions_of(result: Result) -> list[str]:
    """The sessions a change wrote, or (planned, or failed before writing) those it names."""
    if result.session_ids:
        return list(result.session_ids)
    return [a.session_id for a in result.decision.actions if a.session_id]


def changed(results: Sequence[Result]) -> list[Result]:
    """The ENIs with writes to make (or made), and those whose writes failed."""
    return [r for r in results if r.decision.actions or r.status == "failed"]


@dataclass(frozen=True)
class FailureGroup:
    """The ENIs whose writes failed with one error code."""

    code: str
    results: tuple[Result, ...]
    """Sorted by ENI."""

    def to_json(self) -> dict[str, Any]:
        return {
            "error_code": self.code,
            "count": len(self.results),
            "enis": [r.decision.eni_id for r in self.results],
            "first_reason": self.results[0].reason,
        }


def failure_groups(results: Sequence[Result]) -> list[FailureGroup]:
    """Failed ENIs by error code, the largest group first (then by code)."""
    by_code: dict[str, list[Result]] = {}
    for r in results:
        if r.status == "failed":
            by_code.setdefault(r.error_code or "(no error code)", []).append(r)
    groups = [
        FailureGroup(code, tuple(sorted(rs, key=lambda r: (r.decision.eni_id, r.decision.instance_id))))
        for code, rs in by_code.items()
    ]
    return sorted(groups, key=lambda g: (-len(g.results), g.code))


def render_changes(console: Console, changes: Sequence[Result], names: Mapping[str, str]) -> None:
    for r in sorted(changes, key=lambda r: (r.decision.eni_id, r.decision.instance_id)):
        d = r.decision
        ends = (
            [f"target {d.target_id or '-'}, filter {d.filter_id or '-'}"]
            if d.target_id or d.filter_id
            else []
        )
        sessions = sessions_of(r)
        if sessions:
            ends.append(f"session(s) {', '.join(sessions)}")
        render.blank(console)
        render.record(
            console,
            render.head(
                status_label(r).ljust(9),
                STATUS_STYLE.get(r.status, ""),
                names.get(d.instance_id) or d.instance_id or d.resource,
                d.eni_id,
            ),
            [
                ", ".join(
                    p for p in (f"instance {d.instance_id}" if d.instance_id else render.service_kind(d.kind), d.vpc_id, d.az) if p
                ),
                "; ".join(ends),
                note(r),
            ],
        )


def render_failures(console: Console, results: Sequence[Result], names: Mapping[str, str]) -> None:
    """Failures by error code: how many, the first few ENIs, and AWS's answer for the first."""
    groups = failure_groups(results)
    if not groups:
        return
    total = sum(len(g.results) for g in groups)
    render.blank(console)
    render.line(console, f"Failed ({total}) by error code (--no-summary lists each ENI)", style="bold red")
    for group in groups:
        shown = [
            f"{r.decision.eni_id} ({names[r.decision.instance_id]})" if names.get(r.decision.instance_id)
            else r.decision.eni_id
            for r in group.results[:FIRST_ENIS]
        ]
        more = len(group.results) - len(shown)
        render.blank(console)
        render.record(
            console,
            render.head(str(len(group.results)), "bold red", group.code),
            [", ".join(shown) + (f" and {more} more" if more else ""), f"first: {group.results[0].reason}"],
        )


def render_summary(
    console: Console,
    changes: Sequence[Result],
    names: Mapping[str, str],
    group: Callable[[Result], str] = summary_group,
) -> None:
    """Changes grouped by what happened and why; failures grouped by error code."""
    groups: Counter[tuple[str, str]] = Counter((status_label(r), group(r)) for r in changes if r.status != "failed")
    rows = [["ENIs", "What", "Why"]] + [[str(n), what, why] for (what, why), n in groups.most_common()]
    render.blank(console)
    render.columns(
        console, f"Changes, summarised ({len(changes)} ENIs; --no-summary lists each)", rows, right=(0,)
    )
    render_failures(console, changes, names)


def tally_lines(results: Sequence[Result], dry_run: bool) -> list[str]:
    tally: Counter[str] = Counter(r.status for r in results)
    parts = [f"{tally[s]} {s}" for s in ORDER if tally[s]]
    lines = [f"{len(results)} ENI(s): {', '.join(parts) or 'nothing to do'}."]
    if dry_run:
        planned = tally["planned"]
        if planned:
            lines.append(f"Dry run: nothing was written. Run again with --apply to make {planned} change(s).")
        else:
            lines.append("Dry run: nothing to change.")
    return lines


def render_sweep(
    console: Console,
    region: str,
    results: Sequence[Result],
    dry_run: bool,
    *,
    names: Mapping[str, str] | None = None,
    run_stamp: str = "",
    summary: bool | None = None,
    quiet: bool = False,
    title: str = "",
    group: Callable[[Result], str] = summary_group,
    account: str = "",
) -> None:
    """Sessions of others to untrusted targets (left in place), then what the sweep did (or, in a
    dry run, would do), the skipped ENIs by reason, then a tally.

    `summary`: True groups the changes (and the failures, by error code), False lists each, None
    decides by SUMMARY_THRESHOLD. `quiet`: the failures and the tally only. `title`, `group`: for
    `release`, which reports its deletes the same way.
    """
    names = names or {}
    untrusted = evidence.untrusted(r.decision for r in results)
    changes = changed(results)
    summarised = summary or (summary is None and len(changes) > SUMMARY_THRESHOLD)
    if quiet:
        evidence.untrusted_count(console, untrusted)
        if summary is False:
            render_changes(console, [r for r in changes if r.status == "failed"], names)
        else:
            render_failures(console, results, names)
    else:
        evidence.render_untrusted(console, untrusted, account, names)
        heading = (title or f"Sweep of {region}") + (" (dry run: nothing written)" if dry_run else "")
        render.line(console, heading, style="bold")
        if run_stamp:
            render.line(console, run_stamp, style="dim")
        if changes:
            if summarised:
                render_summary(console, changes, names, group)
            else:
                render_changes(console, changes, names)
        skipped: Counter[str] = Counter(skip_reason(r) for r in results if r.status == "skipped")
        if skipped:
            render.blank(console)
            rows = [["ENIs", "Why"]] + [[str(n), why] for why, n in skipped.most_common()]
            render.columns(console, "Skipped", rows, right=(0,))
        render.blank(console)
    for text in tally_lines(results, dry_run):
        render.line(console, text)


def result_json(result: Result, names: Mapping[str, str]) -> dict[str, Any]:
    """One changed ENI of `sweep`/`release --format json`."""
    d = result.decision
    return {
        "eni": d.eni_id,
        "instance": d.instance_id,
        "name": names.get(d.instance_id, ""),
        "vpc": d.vpc_id,
        "az": d.az,
        "status": result.status,
        "action": d.outcome,
        "target": d.target_id,
        "filter": d.filter_id,
        "sessions": sessions_of(result),
        "error_code": result.error_code or None,
        "reason": result.reason,
    }


def results_json(results: Sequence[Result], names: Mapping[str, str], dry_run: bool) -> dict[str, Any]:
    """What `sweep` and `release` documents share: counts by status, the changes, the failures."""
    tally: Counter[str] = Counter(r.status for r in results)
    changes = sorted(changed(results), key=lambda r: (r.decision.eni_id, r.decision.instance_id))
    return {
        "dry_run": dry_run,
        "counts": {status: tally[status] for status in ORDER},
        "changes": [result_json(r, names) for r in changes],
        "failures": [g.to_json() for g in failure_groups(results)],
    }


def sweep_json(one: Run, results: Sequence[Result], names: Mapping[str, str], dry_run: bool) -> dict[str, Any]:
    """`sweep --format json` for one account (docs/cli-json.md, "sweep")."""
    skipped: Counter[tuple[str, str | None, str | None]] = Counter(
        (skip_reason(r), r.decision.out_of_scope, r.decision.problem) for r in results if r.status == "skipped"
    )
    return {
        **documents.head(JSON_SCHEMA_VERSION, one.account, one.region, one.generated_at),
        **results_json(results, names, dry_run),
        "skipped": [
            {"why": why, "out_of_scope": category, "problem": problem, "enis": n}
            for (why, category, problem), n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0][0]))
        ],
        "untrusted_sessions": evidence.untrusted_json(evidence.untrusted(r.decision for r in results), one.account),
    }


@contextlib.contextmanager
def progress(run: Run, total: int, label: str) -> Iterator[Callable[[Result], None]]:
    """An `on_done` callback; a progress bar (on stderr) over the writes when there are many of them."""
    if total <= PROGRESS_THRESHOLD or run.quiet:
        with run.activity.show(label):
            yield lambda _result: None
        return
    columns = (
        SpinnerColumn(),
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=run.err, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def done(result: Result) -> None:
            if result.decision.actions:
                bar.advance(task)

        yield done
        bar.update(task, completed=total)


def run(r: Run, apply: bool, summary: bool | None, output: str = "table") -> int:
    """One sweep, or one per account."""
    return for_each_account(r, output, lambda one: sweep_one(one, apply, summary, output), JSON_SCHEMA_VERSION)


def sweep_one(r: Run, apply: bool, summary: bool | None, output: str = "table") -> tuple[int, dict[str, Any] | None]:
    """Sweep one account and report it: the number of failed writes, and its document for JSON."""
    settings = dataclasses.replace(r.settings, dry_run=not apply)
    # Read first: the Name tags for the report, and the number of writes for the progress bar.
    snapshot = read(r, settings)
    pending = sum(1 for d in snapshot.decisions if d.actions) if apply else 0
    where = f"{r.region} of account {r.member}" if r.member else r.region
    label = f"Sweeping {where}" + ("" if apply else " (dry run)")
    with progress(r, pending, label) as on_done:
        policy = reconcile.SweepPolicy(trigger=f"cli-{uuid.uuid4()}")
        outcome = reconcile.sweep(r.context(settings), policy, on_done=on_done)
    failed = sum(1 for res in outcome.results if res.status == "failed")
    if output == "json":
        return failed, sweep_json(r, outcome.results, snapshot.names, not apply)
    render_sweep(
        r.console,
        r.region,
        outcome.results,
        not apply,
        names=snapshot.names,
        run_stamp=r.stamp,
        summary=summary,
        quiet=r.quiet,
        account=r.account,
    )
    return failed, None
