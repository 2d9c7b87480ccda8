"""`sweep`: the scheduled sweep's reconciliation, now; a dry run unless `--apply`."""

import contextlib
import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn
from traffic_mirror.handler import reconcile
from traffic_mirror.handler.apply import Result

from . import evidence, exits, reasons, render
from .aws import AWS_ERRORS
from .context import Run
from .read import read

PROGRESS_THRESHOLD = 20
"""`sweep --apply` shows a progress bar when it has more writes than this to make."""
SUMMARY_THRESHOLD = 25
"""Above this many changed ENIs the sweep prints a summary (failures still in full); see --summary."""
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


def render_changes(console: Console, changes: Sequence[Result], names: Mapping[str, str]) -> None:
    for r in sorted(changes, key=lambda r: (r.decision.eni_id, r.decision.instance_id)):
        d = r.decision
        ends = (
            [f"target {d.target_id or '-'}, filter {d.filter_id or '-'}"]
            if d.target_id or d.filter_id
            else []
        )
        if r.session_ids:
            ends.append(f"session(s) {', '.join(r.session_ids)}")
        render.blank(console)
        render.record(
            console,
            render.head(
                status_label(r).ljust(9),
                STATUS_STYLE.get(r.status, ""),
                names.get(d.instance_id) or d.instance_id,
                d.eni_id,
            ),
            [
                ", ".join(
                    p for p in (f"instance {d.instance_id}" if d.instance_id else "", d.vpc_id, d.az) if p
                ),
                "; ".join(ends),
                note(r),
            ],
        )


def render_summary(console: Console, changes: Sequence[Result], names: Mapping[str, str]) -> None:
    """Changes grouped by what happened and why; every failure still in full (it needs action)."""
    groups: Counter[tuple[str, str]] = Counter(
        (status_label(r), reasons.group(r.decision)) for r in changes if r.status != "failed"
    )
    rows = [["ENIs", "What", "Why"]] + [[str(n), what, why] for (what, why), n in groups.most_common()]
    render.blank(console)
    render.columns(
        console, f"Changes, summarised ({len(changes)} ENIs; --no-summary lists each)", rows, right=(0,)
    )
    failed = [r for r in changes if r.status == "failed"]
    if failed:
        render.blank(console)
        render.line(console, f"Failed ({len(failed)})", style="bold red")
        render_changes(console, failed, names)


def render_sweep(
    console: Console,
    region: str,
    results: Sequence[Result],
    dry_run: bool,
    *,
    names: Mapping[str, str] | None = None,
    run_stamp: str = "",
    summary: bool | None = None,
    account: str = "",
) -> None:
    """Sessions of others to untrusted targets (left in place), then what the sweep did (or, in a
    dry run, would do), the skipped ENIs by reason, then a tally.

    `summary`: True groups the changes, False lists each, None decides by SUMMARY_THRESHOLD.
    """
    names = names or {}
    evidence.render_untrusted(console, evidence.untrusted(r.decision for r in results), account, names)
    title = f"Sweep of {region}" + (" (dry run: nothing written)" if dry_run else "")
    render.line(console, title, style="bold")
    if run_stamp:
        render.line(console, run_stamp, style="dim")
    changes = [r for r in results if r.decision.actions or r.status == "failed"]
    if changes:
        if summary or (summary is None and len(changes) > SUMMARY_THRESHOLD):
            render_summary(console, changes, names)
        else:
            render_changes(console, changes, names)
    skipped: Counter[str] = Counter(skip_reason(r) for r in results if r.status == "skipped")
    if skipped:
        render.blank(console)
        rows = [["ENIs", "Why"]] + [[str(n), why] for why, n in skipped.most_common()]
        render.columns(console, "Skipped", rows, right=(0,))
    tally: Counter[str] = Counter(r.status for r in results)
    parts = [f"{tally[s]} {s}" for s in ORDER if tally[s]]
    render.blank(console)
    render.line(console, f"{len(results)} ENI(s): {', '.join(parts) or 'nothing to do'}.")
    if dry_run:
        planned = tally["planned"]
        if planned:
            render.line(
                console, f"Dry run: nothing was written. Run again with --apply to make {planned} change(s)."
            )
        else:
            render.line(console, "Dry run: nothing to change.")


@contextlib.contextmanager
def progress(run: Run, total: int, label: str) -> Iterator[Callable[[Result], None]]:
    """An `on_done` callback; a progress bar over the writes when there are many of them."""
    if total <= PROGRESS_THRESHOLD:
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
    with Progress(*columns, console=run.console, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def done(result: Result) -> None:
            if result.decision.actions:
                bar.advance(task)

        yield done
        bar.update(task, completed=total)


def run(r: Run, apply: bool, summary: bool | None) -> int:
    """One sweep, or one per account: an account that cannot be read is one line, the others run."""
    unreadable = failed = 0
    for index, one in enumerate(r.each()):
        if r.several:
            r.section(index, one.account)
        try:
            failed += sweep_one(one, apply, summary)
        except AWS_ERRORS as error:
            if not r.several:
                raise
            r.unreadable(one.account, error)
            unreadable += 1
    if unreadable:
        return exits.CANNOT_RUN
    return exits.FAILED_WRITES if failed else exits.OK


def sweep_one(r: Run, apply: bool, summary: bool | None) -> int:
    """Sweep one account and report it; the number of failed writes."""
    settings = dataclasses.replace(r.settings, dry_run=not apply)
    # Read first: the Name tags for the report, and the number of writes for the progress bar.
    snapshot = read(r, settings)
    pending = sum(1 for d in snapshot.decisions if d.actions) if apply else 0
    where = f"{r.region} of account {r.member}" if r.member else r.region
    label = f"Sweeping {where}" + ("" if apply else " (dry run)")
    with progress(r, pending, label) as on_done:
        policy = reconcile.SweepPolicy(trigger=f"cli-{uuid.uuid4()}")
        outcome = reconcile.sweep(r.context(settings), policy, on_done=on_done)
    render_sweep(
        r.console,
        r.region,
        outcome.results,
        not apply,
        names=snapshot.names,
        run_stamp=r.stamp,
        summary=summary,
        account=r.account,
    )
    return sum(1 for res in outcome.results if res.status == "failed")
