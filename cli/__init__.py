"""The operator CLI: `python -m handler` (or the `traffic-mirror` console script).

Three commands, against a real account (default credential chain) or any endpoint
(`--endpoint-url`, e.g. the demo's embedded AWS):

- `plan --region R`: read-only; for every ENI, what the automation would do and why.
- `coverage --region R [--format table|json] [--min PCT]`: the share of in-scope ENIs that are
  mirrored, by VPC and AZ, and why the others are not. Exit 2 when below `--min`.
- `sweep --region R [--apply]`: the scheduled sweep's reconciliation; a dry run unless `--apply`.

Exit codes: 0 success; 1 cannot run (AWS credentials, endpoint or a setting is wrong: one line,
no traceback); 2 coverage below `--min` (and argparse's usage errors); 3 `sweep --apply` left
failed writes.

Settings come from the same MIRROR_* variables as the Lambda (`settings.load()`); `--tag-key`,
`--scope` and `--filter-id` override them, validated like the variables they replace.

This module imports `rich`, which the Lambda runtime does not have: nothing on the Lambda path
(`handler.app` and what it imports) imports this module.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn
from rich.table import Table
from traffic_mirror.handler import reconcile
from traffic_mirror.handler import settings as settings_module
from traffic_mirror.handler.apply import Result
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.model import Decision
from traffic_mirror.handler.planner import OUT_OF_SCOPE
from traffic_mirror.handler.settings import Settings, SettingsError

PROGRESS_THRESHOLD = 20
"""`sweep --apply` shows a progress bar when it has more writes than this to make."""
JSON_SCHEMA_VERSION = 1

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BELOW_MIN = 2
EXIT_FAILED_WRITES = 3

# --- the coverage model --------------------------------------------------------------------
#
# In scope: every ENI the automation is meant to mirror, i.e. every planner decision except
# those the planner marks out of scope (`Decision.out_of_scope`). Mirrored: in scope and it already has a session managed by
# this tool whose target and filter still qualify (outcome `mirrored`, or a duplicate cleanup
# that keeps such a session). Every other in-scope ENI is unmirrored, with the planner's reason.

OUT_OF_SCOPE_CATEGORIES = OUT_OF_SCOPE
"""The stable keys of the JSON report's `out_of_scope` counts."""


def out_of_scope_reason(decision: Decision) -> str | None:
    """The out-of-scope category the planner gave this decision, or None when it is in scope.

    Any in-scope ENI that is not mirrored ("no filter", "no eligible target", "3 sessions", ...)
    is one the automation cannot mirror: exactly what coverage must surface.
    """
    return decision.out_of_scope


def is_mirrored(decision: Decision) -> bool:
    """In scope and already mirrored by one of our sessions that still qualifies."""
    if decision.outcome == "mirrored":
        return True
    # Duplicate managed sessions are being cleaned up, but the one kept is fine.
    return decision.outcome == "delete" and decision.kept_session is not None


def unmirrored_action(decision: Decision) -> str:
    """What the sweep would do for an unmirrored in-scope ENI: create, modify, delete or none."""
    return decision.outcome if decision.outcome in ("create", "modify", "delete") else "none"


def unmirrored_reason(decision: Decision) -> str:
    """Why an in-scope ENI is not mirrored, and what the sweep would do about it."""
    if decision.outcome == "create":
        return f"no session yet; the sweep would create one ({decision.reason})"
    if decision.outcome == "modify":
        return f"session no longer qualifies; the sweep would modify it ({decision.reason})"
    if decision.outcome == "delete":
        count = len(decision.actions)
        return f"{decision.reason}; the sweep would delete {count} managed session(s) that no longer qualify"
    return decision.reason


@dataclasses.dataclass(frozen=True)
class Group:
    """Coverage of one VPC or AZ."""

    key: str
    in_scope: int
    mirrored: int

    @property
    def percent(self) -> float:
        return percent(self.mirrored, self.in_scope)


@dataclasses.dataclass(frozen=True)
class Unmirrored:
    eni: str
    instance: str
    vpc: str
    az: str
    action: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Coverage:
    region: str
    in_scope: int
    mirrored: int
    by_vpc: tuple[Group, ...]
    by_az: tuple[Group, ...]
    unmirrored: tuple[Unmirrored, ...]
    out_of_scope: dict[str, int]

    @property
    def percent(self) -> float:
        return percent(self.mirrored, self.in_scope)

    def below(self, minimum: float | None) -> bool:
        """True when a `--min` is given and the exact (unrounded) coverage is under it."""
        if minimum is None or self.in_scope == 0:
            return False
        return self.mirrored * 100.0 < minimum * self.in_scope

    def to_json(self) -> dict[str, Any]:
        """The stable JSON schema of `coverage --format json` (schema_version 1).

        {
          "schema_version": 1,
          "region": "us-east-1",
          "in_scope": 4,                # ENIs the automation should mirror
          "mirrored": 3,                # of those, mirrored by a qualifying managed session
          "coverage_percent": 75.0,     # 100 * mirrored / in_scope (100.0 when in_scope is 0)
          "by_vpc": [{"vpc": "vpc-...", "in_scope": 4, "mirrored": 3, "coverage_percent": 75.0}],
          "by_az": [{"az": "us-east-1a", "in_scope": 2, "mirrored": 2, "coverage_percent": 100.0}],
          "unmirrored": [{"eni": "eni-...", "instance": "i-...", "vpc": "vpc-...", "az": "us-east-1b",
                          "action": "create" | "modify" | "delete" | "none", "reason": "..."}],
          "out_of_scope": {"<one of OUT_OF_SCOPE_CATEGORIES>": 3}
        }

        Lists are sorted (by VPC, AZ, ENI id); percentages are rounded to two decimals, but
        `--min` compares the exact value. New keys may be added; existing ones keep their meaning.
        """
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "region": self.region,
            "in_scope": self.in_scope,
            "mirrored": self.mirrored,
            "coverage_percent": round(self.percent, 2),
            "by_vpc": [_group_json("vpc", g) for g in self.by_vpc],
            "by_az": [_group_json("az", g) for g in self.by_az],
            "unmirrored": [dataclasses.asdict(u) for u in self.unmirrored],
            "out_of_scope": dict(self.out_of_scope),
        }


def percent(mirrored: int, in_scope: int) -> float:
    """Nothing in scope counts as fully covered (there is nothing left to mirror)."""
    return 100.0 if in_scope == 0 else mirrored * 100.0 / in_scope


def _group_json(name: str, group: Group) -> dict[str, Any]:
    return {
        name: group.key,
        "in_scope": group.in_scope,
        "mirrored": group.mirrored,
        "coverage_percent": round(group.percent, 2),
    }


def coverage(region: str, decisions: Sequence[Decision]) -> Coverage:
    """The coverage model over one region's planner decisions (see `out_of_scope_reason`)."""
    out: Counter[str] = Counter()
    totals: dict[str, Counter[str]] = {"vpc": Counter(), "az": Counter()}
    mirrored_in: dict[str, Counter[str]] = {"vpc": Counter(), "az": Counter()}
    unmirrored: list[Unmirrored] = []
    in_scope = mirrored = 0
    for decision in decisions:
        category = out_of_scope_reason(decision)
        if category is not None:
            out[category] += 1
            continue
        in_scope += 1
        keys = {"vpc": decision.vpc_id or "(unknown)", "az": decision.az or "(unknown)"}
        ok = is_mirrored(decision)
        mirrored += ok
        for kind, key in keys.items():
            totals[kind][key] += 1
            mirrored_in[kind][key] += ok
        if not ok:
            unmirrored.append(
                Unmirrored(
                    decision.eni_id,
                    decision.instance_id,
                    decision.vpc_id,
                    decision.az,
                    unmirrored_action(decision),
                    unmirrored_reason(decision),
                )
            )

    def groups(kind: str) -> tuple[Group, ...]:
        return tuple(Group(k, n, mirrored_in[kind][k]) for k, n in sorted(totals[kind].items()))

    return Coverage(
        region,
        in_scope,
        mirrored,
        groups("vpc"),
        groups("az"),
        tuple(sorted(unmirrored, key=lambda u: (u.eni, u.instance))),
        dict(sorted(out.items())),
    )


# --- rendering (shared with scripts/demo.py) --------------------------------------------------

_ACTION_STYLE = {
    "create": "green",
    "modify": "yellow",
    "delete": "red",
    "mirrored": "cyan",
    "skipped": "dim",
}
_STATUS_STYLE = {
    "created": "green",
    "modified": "yellow",
    "deleted": "red",
    "planned": "magenta",
    "mirrored": "cyan",
    "skipped": "dim",
    "failed": "bold red",
    "deferred": "yellow",
}


def _dash(value: str | None) -> str:
    return value or "-"


def action_label(decision: Decision) -> str:
    if decision.outcome == "mirrored":
        return "none (mirrored)"
    if decision.outcome == "skipped":
        return "skip"
    if decision.outcome == "delete":
        return f"delete {len(decision.actions)}"
    return decision.outcome


def _stack(top: str | None, bottom: str | None) -> str:
    """Two ids in one cell (ENI over instance, VPC over AZ, target over filter): fits 100 columns."""
    return f"{_dash(top)}\n[dim]{_dash(bottom)}[/]"


def render_plan(console: Console, region: str, decisions: Sequence[Decision]) -> None:
    """The `plan` table: one row per ENI, what the automation would do and why."""
    table = Table(title=f"Plan for {region} (read-only)", box=box.SIMPLE_HEAD, show_lines=True)
    for column in ("ENI\n[dim]instance[/]", "VPC\n[dim]AZ[/]", "Action", "Target\n[dim]filter[/]"):
        table.add_column(column, overflow="fold")
    table.add_column("Reason", overflow="fold", ratio=1, min_width=24)
    for d in sorted(decisions, key=lambda d: (d.vpc_id, d.az, d.instance_id, d.eni_id)):
        style = _ACTION_STYLE.get(d.outcome, "")
        table.add_row(
            _stack(d.eni_id, d.instance_id),
            _stack(d.vpc_id, d.az),
            f"[{style}]{action_label(d)}[/]" if style else action_label(d),
            _stack(d.target_id, d.filter_id),
            d.reason,
        )
    console.print(table)
    tally: Counter[str] = Counter(d.outcome for d in decisions)
    parts = [f"{tally[k]} {label}" for k, label in _PLAN_SUMMARY if tally[k]]
    console.print(f"{len(decisions)} ENI(s): {', '.join(parts) or 'nothing'}. Nothing was written.")


_PLAN_SUMMARY = (
    ("create", "to create"),
    ("modify", "to modify"),
    ("delete", "to clean up"),
    ("mirrored", "already mirrored"),
    ("skipped", "skipped"),
)


def _bar(pct: float, width: int = 20) -> str:
    filled = round(pct / 100 * width)
    colour = "green" if pct >= 100 else "yellow" if pct >= 80 else "red"
    return f"[{colour}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/]"


def render_coverage(console: Console, report: Coverage, minimum: float | None = None) -> None:
    """The `coverage` report as tables: headline, by VPC, by AZ, unmirrored, out of scope."""
    pct = report.percent
    colour = "green" if pct >= 100 else "yellow" if not report.below(minimum) else "red"
    console.print(
        f"[bold]Coverage in {report.region}:[/] [{colour}]{pct:.1f}%[/] "
        f"({report.mirrored} of {report.in_scope} in-scope ENIs mirrored)"
    )
    for title, groups in (("VPC", report.by_vpc), ("AZ", report.by_az)):
        if not groups:
            continue
        table = Table(title=f"By {title}", box=box.SIMPLE, title_justify="left")
        table.add_column(title, no_wrap=True)
        table.add_column("In scope", justify="right")
        table.add_column("Mirrored", justify="right")
        table.add_column("Coverage", justify="right")
        table.add_column("")
        for g in groups:
            table.add_row(g.key, str(g.in_scope), str(g.mirrored), f"{g.percent:.1f}%", _bar(g.percent))
        console.print(table)
    if report.unmirrored:
        table = Table(
            title="In scope but not mirrored", box=box.SIMPLE_HEAD, show_lines=True, title_justify="left"
        )
        for column in ("ENI\n[dim]instance[/]", "VPC\n[dim]AZ[/]", "Sweep\nwould"):
            table.add_column(column, overflow="fold")
        table.add_column("Why", overflow="fold", ratio=1, min_width=24)
        for u in report.unmirrored:
            table.add_row(_stack(u.eni, u.instance), _stack(u.vpc, u.az), u.action, u.reason)
        console.print(table)
    else:
        console.print("[green]Every in-scope ENI is mirrored.[/]")
    if report.out_of_scope:
        table = Table(title="Out of scope (not counted)", box=box.SIMPLE, title_justify="left")
        table.add_column("Reason")
        table.add_column("ENIs", justify="right")
        for reason, count in report.out_of_scope.items():
            table.add_row(reason, str(count))
        console.print(table)
    if minimum is not None:
        if report.below(minimum):
            console.print(f"[bold red]Below the required minimum of {minimum:g}%.[/]")
        else:
            console.print(f"[green]At or above the required minimum of {minimum:g}%.[/]")


def render_coverage_json(console: Console, report: Coverage) -> None:
    console.out(json.dumps(report.to_json(), indent=2), highlight=False)


def sweep_note(result: Result) -> str:
    """The reason column of the sweep table, without what the other columns already say."""
    d = result.decision
    if result.status == "failed":
        return result.reason
    if d.outcome == "create":
        # The reason repeats the target and filter, which have columns of their own.
        return f"session number {d.session_number}"
    return d.reason


def render_sweep(console: Console, region: str, results: Sequence[Result], dry_run: bool) -> None:
    """What the sweep did (or, in a dry run, would do), then a one-line tally."""
    changes = [r for r in results if r.decision.actions or r.status == "failed"]
    if changes:
        title = f"Sweep of {region}" + (" (dry run: nothing written)" if dry_run else "")
        table = Table(title=title, box=box.SIMPLE_HEAD, show_lines=True)
        for column in ("Status", "ENI\n[dim]instance[/]", "Target\n[dim]filter[/]", "Sessions"):
            table.add_column(column, overflow="fold")
        table.add_column("Reason", overflow="fold", ratio=1, min_width=24)
        for r in sorted(changes, key=lambda r: (r.decision.eni_id, r.decision.instance_id)):
            d = r.decision
            status = f"would {d.outcome}" if r.status == "planned" else r.status
            style = _STATUS_STYLE.get(r.status, "")
            table.add_row(
                f"[{style}]{status}[/]" if style else status,
                _stack(d.eni_id, d.instance_id),
                _stack(d.target_id, d.filter_id),
                "\n".join(r.session_ids) or "-",
                sweep_note(r),
            )
        console.print(table)
    tally: Counter[str] = Counter(r.status for r in results)
    order = ("created", "modified", "deleted", "planned", "mirrored", "skipped", "failed", "deferred")
    parts = [f"{tally[s]} {s}" for s in order if tally[s]]
    console.print(f"{len(results)} ENI(s): {', '.join(parts) or 'nothing to do'}.")
    if dry_run:
        planned = tally["planned"]
        if planned:
            console.print(
                f"Dry run: nothing was written. Run again with --apply to make {planned} change(s)."
            )
        else:
            console.print("Dry run: nothing to change.")


@contextlib.contextmanager
def progress_callback(console: Console, total: int, label: str) -> Iterator[Callable[[Result], None]]:
    """An `on_done` callback; a progress bar over the writes when there are many of them."""
    if total <= PROGRESS_THRESHOLD:
        with console.status(label):
            yield lambda _result: None
        return
    columns = (
        SpinnerColumn(),
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def done(result: Result) -> None:
            if result.decision.actions:
                bar.advance(task)

        yield done
        bar.update(task, completed=total)


# --- commands --------------------------------------------------------------------------------


FLAG_SPECS = tuple(spec for spec in settings_module.SPECS if spec.cli)
"""The settings a command-line flag overrides (`--tag-key`, ...), from their declarations."""


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The function's variables, with the settings' flags overriding them.

    Each flag is validated exactly like the variable it replaces (a bad one raises SettingsError).
    """
    base = settings_module.load(os.environ if env is None else env)
    given = {spec.name: getattr(args, spec.name) for spec in FLAG_SPECS if getattr(args, spec.name, None) is not None}
    return settings_module.override(base, given, lambda spec: spec.flag)


def context_for(args: argparse.Namespace, settings: Settings) -> Context:
    """The CLI's one place (region, endpoint) and its own container of clients."""
    container = Container()
    return Context(Place(args.region, None, args.endpoint_url), settings, container)


def cmd_plan(console: Console, args: argparse.Namespace, settings: Settings) -> int:
    with console.status(f"Reading {args.region}..."):
        decisions, _ = reconcile.read_only_plan(context_for(args, settings))
    render_plan(console, args.region, decisions)
    return EXIT_OK


def cmd_coverage(console: Console, args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "json":
        decisions, _ = reconcile.read_only_plan(context_for(args, settings))
    else:
        with console.status(f"Reading {args.region}..."):
            decisions, _ = reconcile.read_only_plan(context_for(args, settings))
    report = coverage(args.region, decisions)
    if args.format == "json":
        render_coverage_json(console, report)
    else:
        render_coverage(console, report, args.min)
    return EXIT_BELOW_MIN if report.below(args.min) else EXIT_OK


def cmd_sweep(console: Console, args: argparse.Namespace, settings: Settings) -> int:
    settings = dataclasses.replace(settings, dry_run=not args.apply)
    ctx = context_for(args, settings)
    pending = 0
    if args.apply:
        # Count the writes first, so that a long run gets a progress bar with a total.
        with console.status(f"Reading {args.region}..."):
            decisions, _ = reconcile.read_only_plan(ctx)
        pending = sum(1 for d in decisions if d.actions)
    label = f"Sweeping {args.region}" + ("" if args.apply else " (dry run)")
    with progress_callback(console, pending, label) as on_done:
        outcome = reconcile.sweep(ctx, reconcile.SweepPolicy(trigger=f"cli-{uuid.uuid4()}"), on_done=on_done)
    render_sweep(console, args.region, outcome.results, dry_run=not args.apply)
    failed = sum(1 for r in outcome.results if r.status == "failed")
    return EXIT_FAILED_WRITES if failed else EXIT_OK


def _percentage(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 100, got {raw!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100, got {raw}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--region",
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / the profile's region)",
    )
    common.add_argument(
        "--endpoint-url",
        help="talk to this endpoint instead of AWS (e.g. a local emulation such as moto)",
    )
    for spec in FLAG_SPECS:
        default = "" if spec.default is None else f"; default {spec.default}"
        common.add_argument(
            spec.flag, dest=spec.name, choices=spec.choices or None, help=f"overrides {spec.env}{default}"
        )

    parser = argparse.ArgumentParser(
        prog="traffic-mirror",
        description="Plan, check and reconcile automated VPC Traffic Mirroring.",
        epilog="Exit codes: 0 ok; 1 AWS or configuration error; 2 coverage below --min; "
        "3 sweep --apply left failed writes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "plan",
        parents=[common],
        help="read-only: what the automation would do for every ENI, and why",
        description="Read-only: for every ENI of the region, what the automation would do and why.",
    )
    cov = commands.add_parser(
        "coverage",
        parents=[common],
        help="share of in-scope ENIs mirrored, by VPC and AZ, and why the rest are not",
        description="Share of in-scope ENIs that are mirrored, by VPC and AZ, and the unmirrored "
        "ones with the reason. Exit 2 when below --min.",
    )
    cov.add_argument("--format", choices=("table", "json"), default="table")
    cov.add_argument(
        "--min", type=_percentage, metavar="PCT", help="exit 2 when coverage is below PCT percent (0-100)"
    )
    sweep = commands.add_parser(
        "sweep",
        parents=[common],
        help="the scheduled sweep's reconciliation (dry run unless --apply)",
        description="Reconcile every ENI of the region like the scheduled sweep. A dry run unless --apply.",
    )
    sweep.add_argument("--apply", action="store_true", help="really create, modify and delete sessions")
    return parser


_COMMANDS = {"plan": cmd_plan, "coverage": cmd_coverage, "sweep": cmd_sweep}


def _aws_error(error: Exception, region: str, endpoint: str | None) -> str:
    where = f"{endpoint} ({region})" if endpoint else region
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"no usable AWS credentials for {where}: configure the default credential chain "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance role)"
        )
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        code, message = err.get("Code", "ClientError"), err.get("Message", "")
        return f"AWS refused a request in {where}: {code}: {message}"
    return f"cannot talk to AWS in {where}: {error}"


def make_console(stderr: bool = False) -> Console:
    """The terminal's width on a terminal; 160 columns when piped (cron mail, CI logs), unless COLUMNS."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or os.environ.get("COLUMNS"):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=160)


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = console or make_console()
    err_console = err_console or make_console(stderr=True)
    if not args.region:
        args.region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name
        if not args.region:
            parser.error("--region is required (or set AWS_REGION)")
    try:
        settings = settings_from(args)
    except SettingsError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False)
        return EXIT_ERROR
    try:
        return _COMMANDS[args.command](console, args, settings)
    except (BotoCoreError, ClientError) as error:
        err_console.print(
            f"[bold red]error:[/] {_aws_error(error, args.region, args.endpoint_url)}", highlight=False
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
