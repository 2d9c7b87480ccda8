"""`coverage`: the share of in-scope ENIs mirrored, by VPC and AZ, why the rest are not, the cost;
first the sessions of others to untrusted targets, and the mirrored instances' loss.

Three forms of one report: the table (for people), the JSON document (`Coverage.to_json`, the
stable schema) and the HTML page, which is built from that JSON document (`html_report`), so the
page and the JSON cannot disagree.
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from traffic_mirror.handler import loss as mirror_loss
from traffic_mirror.handler.coverage import Sensor

from . import documents, evidence, exits, html_report, reasons, render
from .aws import AWS_ERRORS
from .budget_view import BudgetView
from .context import Run
from .cost import Estimate, estimate
from .coverage import Coverage, Share, Total, coverage
from .read import Snapshot, loss, read

DEFAULT_WINDOW = mirror_loss.DEFAULT_WINDOW_SECONDS


def headline(report: Coverage) -> str:
    if report.empty:
        return f"Coverage in {report.region}: nothing in scope (0 ENIs to mirror)"
    return (
        f"Coverage in {report.region}: {report.percent:.1f}% "
        f"({report.mirrored} of {report.in_scope} in-scope ENIs mirrored)"
    )


def render_coverage(
    console: Console,
    report: Coverage,
    minimum: float | None = None,
    run_stamp: str = "",
    cost: Estimate | None = None,
    budget: BudgetView | None = None,
    *,
    err: Console | None = None,
    quiet: bool = False,
    account: str = "",
    names: dict[str, str] | None = None,
    loss_threshold: float | None = None,
) -> None:
    """Untrusted sessions first, then the headline, by VPC, by AZ, the unmirrored ENIs with their
    reasons, out of scope, the mirror loss, cost, the session budget; the verdict on `--min` on `err` (stderr).
    `quiet`: the untrusted sessions' count, the headline and a missed minimum only."""
    if quiet:
        evidence.untrusted_count(console, report.untrusted)
    else:
        evidence.render_untrusted(console, report.untrusted, account, names)
    colour = "green" if report.percent >= 100 else "red" if report.below(minimum) else "yellow"
    render.line(console, headline(report), style=f"bold {colour}" if not report.empty else "bold yellow")
    if quiet:
        verdict(err or console, report, minimum, quiet)
        return
    if run_stamp:
        render.line(console, run_stamp, style="dim")
    zones = "AZ ID" if any(g.az_id for g in report.by_az) else "AZ"
    # By kind only once services' ENIs are among the sources (MIRROR_SOURCES): instances alone need no table.
    kinds = report.by_kind if any(g.key != "instances" for g in report.by_kind) else ()
    for title, groups in (("VPC", report.by_vpc), (zones, report.by_az), ("Kind", kinds)):
        if not groups:
            continue
        render.blank(console)
        rows = [[title, "In scope", "Mirrored", "Coverage", ""]]
        rows += [
            [g.label, str(g.in_scope), str(g.mirrored), f"{g.percent:.1f}%", render.bar(g.percent).plain]
            for g in groups
        ]
        render.columns(console, f"By {title}", rows, right=(1, 2, 3))
    if report.unmirrored:
        render.blank(console)
        render.line(console, f"In scope but not mirrored ({len(report.unmirrored)})", style="bold")
        for u in report.unmirrored:
            title = u.name or u.instance or "-"
            sweep = "sweep would " + ("do nothing" if u.action == "none" else u.action)
            render.blank(console)
            render.record(
                console,
                render.head(title, "bold", u.eni, f"({sweep})"),
                [
                    ", ".join(
                        p for p in (f"instance {u.instance}" if u.instance else render.service_kind(u.kind), u.vpc, u.az) if p
                    ),
                    u.reason,
                ],
            )
    elif not report.empty:
        render.blank(console)
        render.line(console, "Every in-scope ENI is mirrored.", style="green")
    render_sensors(console, report.sensors)
    if report.out_of_scope:
        render.blank(console)
        rows = [["ENIs", "Why"]]
        rows += [[str(n), reasons.OUT_OF_SCOPE_LABELS.get(k, k)] for k, n in report.out_of_scope.items()]
        render.columns(console, "Out of scope (not counted)", rows, right=(0,))
    if report.loss is not None:
        render.blank(console)
        evidence.render_loss(console, report.loss, loss_threshold, names)
    if cost is not None:
        render.blank(console)
        render.line(console, cost.sentence())
    if budget is not None and budget.shown:
        render.blank(console)
        for text in budget.lines():
            render.line(console, text)
    verdict(err or console, report, minimum)


def render_sensors(console: Console, sensors: Sequence[Sensor]) -> None:
    """The sensors: where each is, usable or why not, the sources it serves (of how many)."""
    if not sensors:
        return
    render.blank(console)
    zones = "AZ ID" if any(s.az_id for s in sensors) else "AZ"
    rows = [["Target", "Kind", zones, "Sources", "State"]]
    for s in sensors:
        kind = KINDS.get(s.kind, s.kind)
        where = s.az_id or s.az or (", ".join(s.zones) if s.zones else "-")
        served = f"{s.sessions}/{s.sources_limit}" if s.sources_limit is not None else str(s.sessions)
        state = "usable" if s.usable else f"UNUSABLE: {s.detail}"
        if s.owner:
            state += " (another account's, shared)"
        rows.append([s.target_id, kind, where, served, state])
    unusable = sum(not s.usable for s in sensors)
    title = f"Sensors ({len(sensors)}, {unusable} unusable)" if unusable else f"Sensors ({len(sensors)})"
    render.columns(console, title, rows, right=(3,))


KINDS = {"network-interface": "ENI", "network-load-balancer": "NLB", "gateway-load-balancer-endpoint": "GWLB endpoint"}


def verdict(err: Console, report: Coverage | Total, minimum: float | None, quiet: bool = False) -> None:
    """The verdict on `--min`, on stderr (stdout holds the report): a miss always, a pass unless quiet."""
    if minimum is not None:
        if report.below(minimum):
            render.line(err, f"Below the required minimum of {minimum:g}%.", style="bold red")
        elif not quiet:
            render.line(err, f"At or above the required minimum of {minimum:g}%.", style="green")


def render_total(
    console: Console, total: Total, minimum: float | None, *, err: Console | None = None, quiet: bool = False
) -> None:
    """The accounts side by side (those not read included), the total, and the verdict on it (on `err`)."""
    if quiet:
        render.line(console, total_line(total))
        if total.untrusted:
            render.line(console, untrusted_line(total), style="bold red")
        verdict(err or console, total, minimum, quiet)
        return
    render.blank(console)
    rows = [["Account", "In scope", "Mirrored", "Coverage", ""]]
    rows += [
        [a, str(c.in_scope), str(c.mirrored), f"{c.percent:.1f}%", render.bar(c.percent).plain]
        for a, c in total.reports
    ]
    rows += [[a, "-", "-", "-", "not read (see the error above)"] for a, _ in total.unreadable]
    render.columns(console, "By account", rows, right=(1, 2, 3))
    render.blank(console)
    colour = "green" if total.percent >= 100 else "red" if total.below(minimum) else "yellow"
    render.line(console, total_line(total), style=f"bold {colour}")
    if total.untrusted:
        render.line(console, untrusted_line(total), style="bold red")
    total_loss = total.loss
    if total_loss is not None:
        evidence.render_loss(console, total_loss, None)
    verdict(err or console, total, minimum)


def untrusted_line(total: Total) -> str:
    holders = ", ".join(a for a, c in total.reports if c.untrusted)
    return f"Untrusted sessions over {render.plural(len(total.reports), 'account')}: {total.untrusted} (in {holders})"


def total_line(total: Total) -> str:
    accounts = render.plural(len(total.reports), "account")
    if total.unreadable:
        accounts += f" ({len(total.unreadable)} not read)"
    if total.empty:
        return f"Total in {total.region} over {accounts}: nothing in scope (0 ENIs to mirror)"
    return (
        f"Total in {total.region} over {accounts}: {total.percent:.1f}% "
        f"({total.mirrored} of {total.in_scope} in-scope ENIs mirrored)"
    )


def publish(r: Run, output: str, document: dict[str, Any], destination: str | None) -> None:
    """The JSON document, or the HTML page built from it, on stdout or into `destination`.

    An unwritable file raises OSError (the caller's one-line error, exit 1).
    """
    text = html_report.page(document) if output == "html" else documents.dumps(document)
    if destination is None:
        r.console.out(text, highlight=False)
        return
    Path(destination).write_text(text + "\n", encoding="utf-8")
    if not r.quiet:
        render.line(r.err, f"Wrote the {output} report to {destination}.")


def measured(r: Run, snapshot: Snapshot, window: int) -> Coverage:
    """The report of one account, with its mirror loss (a CloudWatch failure: unknown, and a warning)."""
    report = coverage(r.region, snapshot.decisions, snapshot.names, snapshot.zone_ids, snapshot.sensors)
    found = loss(r, snapshot, window)
    if found.error:
        r.warn(f"mirror loss unknown in account {r.account}: CloudWatch could not be read ({found.error})")
    return dataclasses.replace(report, loss=found)


def run(
    r: Run,
    output: str,
    minimum: float | None,
    fail_if_empty: bool,
    destination: str | None = None,
    window: int = DEFAULT_WINDOW,
) -> int:
    try:
        if r.several:
            return run_accounts(r, output, minimum, fail_if_empty, destination, window)
        return run_one(r, output, minimum, fail_if_empty, destination, window)
    except OSError as error:  # --output: the file cannot be written (AWS errors are not OSErrors)
        r.error(f"cannot write {destination}: {error.strerror or error}")
        return exits.CANNOT_RUN


def exit_code(r: Run, report: Share, minimum: float | None, fail_if_empty: bool, where: str) -> int:
    """Nothing in scope is usually the wrong region or account: a warning, or an error (exit code
    EMPTY) with --fail-if-empty (even quiet); otherwise BELOW_MIN under `--min`."""
    if report.empty:
        message = (
            f"no in-scope ENIs in {r.region} of {where}: is this the right region and account, or is"
            " everything opted out or untagged?"
        )
        if fail_if_empty:
            r.error(message)
            return exits.EMPTY
        r.warn(message + " (--fail-if-empty makes this an error)")
    return exits.BELOW_MIN if report.below(minimum) else exits.OK


def run_one(
    r: Run, output: str, minimum: float | None, fail_if_empty: bool, destination: str | None, window: int
) -> int:
    snapshot = read(r)
    report = measured(r, snapshot, window)
    cost = estimate(snapshot.decisions, snapshot.targets, snapshot.zone_ids)
    if output == "table":
        render_coverage(
            r.console, report, minimum, r.stamp, cost, snapshot.budget, err=r.err, quiet=r.quiet, account=r.account,
            names=snapshot.names, loss_threshold=r.settings.loss_alarm_percent,
        )  # fmt: skip
    else:
        publish(r, output, report.to_json(r.account, r.generated_at, cost, snapshot.budget), destination)
        verdict(r.err, report, minimum, r.quiet)
    return exit_code(r, report, minimum, fail_if_empty, f"account {r.account}")


def run_accounts(
    r: Run, output: str, minimum: float | None, fail_if_empty: bool, destination: str | None, window: int
) -> int:
    """Each account's report, then the total; `--min` and `--fail-if-empty` judge the total."""
    reports: list[tuple[str, Coverage]] = []
    docs: list[dict[str, Any]] = []
    unreadable: list[tuple[str, str]] = []
    for index, one in enumerate(r.each()):
        if output == "table":
            r.section(index, one.account)
        try:
            snapshot = read(one)
        except AWS_ERRORS as error:
            unreadable.append((one.account, r.unreadable(one.account, error)))
            continue
        report = measured(one, snapshot, window)
        cost = estimate(snapshot.decisions, snapshot.targets, snapshot.zone_ids)
        reports.append((one.account, report))
        if output == "table":
            render_coverage(
                r.console, report, None, one.stamp, cost, snapshot.budget, quiet=r.quiet, account=one.account, names=snapshot.names,
                loss_threshold=r.settings.loss_alarm_percent,
            )  # fmt: skip
        else:
            docs.append(report.to_json(one.account, r.generated_at, cost, snapshot.budget))
    total = Total(r.region, tuple(reports), tuple(unreadable))
    if output == "table":
        render_total(r.console, total, minimum, err=r.err, quiet=r.quiet)
    else:
        publish(r, output, total.to_json(r.generated_at, docs), destination)
        verdict(r.err, total, minimum, r.quiet)
    if unreadable:
        return exits.CANNOT_RUN
    return exit_code(r, total, minimum, fail_if_empty, render.plural(len(reports), "account"))
