"""Arguments and dispatch: parse the line, build the run (session, account, time), call the command.

Global options (`--region`, `--profile`, `--endpoint-url`, `--timeout` and the settings flags)
are accepted before or after the command. Every mistake is one line on stderr and a documented
exit code (`exits`), never a traceback.
"""

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text
from traffic_mirror.common import regions
from traffic_mirror.common.declarations import flag, override

from . import aws, exits
from .render import make_console

PROG = "traffic-mirror"


def setting_flags() -> tuple[Any, ...]:
    """The settings a `--flag` overrides (`--tag-key`, `--scope`, `--filter-id`): their declarations."""
    from traffic_mirror.handler import settings

    return tuple(spec for spec in settings.SPECS if spec.cli)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(exits.USAGE, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def _setting_value(spec: Any) -> Callable[[str], Any]:
    """Check a flag exactly like the variable it replaces; a bad value is a usage error (exit 2).

    The text is kept (the settings are built from it in `settings_from`).
    """
    from traffic_mirror.handler.settings import SettingsError

    def check(raw: str) -> str:
        try:
            spec.parse(raw, flag(spec))
        except SettingsError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return raw

    check.__name__ = flag(spec).lstrip("-")
    return check


def _number(lo: float, hi: float, unit: str = "") -> Callable[[str], float]:
    """An argparse type: a number from `lo` to `hi` (a usage error otherwise)."""

    def check(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}{unit}, got {raw}")
        return value

    return check


_percentage = _number(0, 100)
_seconds = _number(0.5, 300, " seconds")
WINDOW_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
WINDOW_LIMITS = (300, 7 * 86400)
"""`--window`: from 5 minutes (EC2's basic monitoring period) to 7 days."""


def _window(raw: str) -> int:
    """`1h`, `30m`, `2d` or seconds -> whole minutes of seconds (CloudWatch periods are minutes)."""
    text = raw.strip().lower()
    number, unit = text, "s"
    for suffix in sorted(WINDOW_UNITS, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)].strip():
            number, unit = text[: -len(suffix)].strip(), suffix
            break
    try:
        seconds = float(number) * WINDOW_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a duration such as 1h, 30m or 3600, got {raw!r}") from None
    low, high = WINDOW_LIMITS
    if not low <= seconds <= high:
        raise argparse.ArgumentTypeError(f"must be between 5m and 7d, got {raw!r}")
    return int(seconds) // 60 * 60


def _endpoint(raw: str) -> str:
    try:
        return aws.endpoint_url(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _account_id(raw: str) -> str:
    if not raw.isdigit() or len(raw) != 12:
        raise argparse.ArgumentTypeError(f"must be a 12-digit account id, got {raw!r}")
    return raw


def _accounts(raw: str) -> str:
    """Checked like MIRROR_ACCOUNTS (ids, `organization`, `organization:<units>`)."""
    from traffic_mirror.handler import settings

    (spec,) = (s for s in settings.SPECS if s.name == "accounts")
    try:
        spec.parse(raw, "--accounts")
    except settings.SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return raw


GLOBAL_DESTS = (
    "region",
    "profile",
    "endpoint_url",
    "timeout",
    "account",
    "accounts",
    *(spec.name for spec in setting_flags()),
)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """On the main parser and on every command, so they may come before or after the command.

    SUPPRESS keeps a command's parser from resetting a value given before the command.
    """
    group = parser.add_argument_group("where and as whom (before or after the command)")
    s = argparse.SUPPRESS
    group.add_argument(
        "--region", default=s, help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)"
    )
    group.add_argument("--profile", default=s, help="AWS profile from ~/.aws/config (default: AWS_PROFILE)")
    group.add_argument(
        "--endpoint-url",
        default=s,
        type=_endpoint,
        metavar="URL",
        help="talk to this endpoint instead of AWS, e.g. the playground's http://127.0.0.1:PORT",
    )
    group.add_argument(
        "--timeout",
        default=s,
        type=_seconds,
        metavar="SECONDS",
        help=f"wait this long for each answer (default {aws.DEFAULT_TIMEOUT:g}; "
        f"{aws.MAX_ATTEMPTS} attempts at most)",
    )
    group.add_argument(
        "--account",
        default=s,
        type=_account_id,
        metavar="ID",
        help="read (and with sweep --apply, write) this account, through the member role "
        "(--member-role-name); default: the credentials' own account",
    )
    group.add_argument(
        "--accounts",
        default=s,
        type=_accounts,
        metavar="LIST|organization",
        help="the credentials' account, then these (comma-separated ids, 'organization' or "
        "'organization:<OU ids>', as MIRROR_ACCOUNTS): one section each, and a total for coverage",
    )
    settings = parser.add_argument_group("settings (override the MIRROR_* variables)")
    for spec in setting_flags():
        default = "" if spec.default is None else f"; default {spec.default}"
        settings.add_argument(
            flag(spec),
            dest=spec.name,
            default=s,
            type=_setting_value(spec),
            metavar="|".join(spec.choices) if spec.choices else spec.name.split("_")[-1].upper(),
            help=f"overrides {spec.env}{default}",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Plan, check and reconcile automated VPC Traffic Mirroring.",
        epilog=exits.epilog(),
    )
    add_global_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan = commands.add_parser(
        "plan",
        help="read-only: what the automation would do for every ENI, why, and the cost",
        description="Read-only: for every ENI of the region, what the automation would do and why, "
        "and the estimated monthly cost.",
        epilog=exits.epilog(),
    )
    cov = commands.add_parser(
        "coverage",
        help="share of in-scope ENIs mirrored, by VPC and AZ, and why the rest are not",
        description="Share of in-scope ENIs that are mirrored, by VPC and AZ, the unmirrored ones "
        f"with the reason, and the cost. Exit {exits.BELOW_MIN} when below --min, "
        f"{exits.EMPTY} with --fail-if-empty when nothing is in scope.",
        epilog=exits.epilog(),
    )
    cov.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table: for people (default); json: for scripts and CI, the stable schema in the "
        "README's 'Coverage JSON' (account, region and time included)",
    )
    cov.add_argument(
        "--min",
        type=_percentage,
        metavar="PCT",
        help=f"exit {exits.BELOW_MIN} when coverage is below PCT percent (0-100)",
    )
    cov.add_argument(
        "--window",
        type=_window,
        default=3600,
        metavar="DURATION",
        help="how far back the mirror loss is measured, e.g. 1h (default), 30m, 1d",
    )
    cov.add_argument(
        "--fail-if-empty",
        action="store_true",
        help=f"exit {exits.EMPTY} when no ENI is in scope (a wrong region or account looks like 100%%)",
    )
    sweep = commands.add_parser(
        "sweep",
        help="the scheduled sweep's reconciliation (dry run unless --apply)",
        description="Reconcile every ENI of the region like the scheduled sweep. A dry run unless --apply.",
        epilog=exits.epilog(),
    )
    sweep.add_argument("--apply", action="store_true", help="really create, modify and delete sessions")
    sweep.add_argument(
        "--summary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="group the changes by what and why instead of one record each (default: automatic "
        "above 25 changed ENIs; failures are always listed)",
    )
    for sub in (plan, cov, sweep):
        add_global_options(sub)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    for dest in GLOBAL_DESTS:
        if not hasattr(args, dest):
            setattr(args, dest, None)
    return args


def settings_from(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Any:
    """The function's variables, with the settings' flags overriding them (checked like the variables).

    A bad flag value raises SettingsError naming the flag (the parser has usually refused it first).
    """
    from traffic_mirror.handler import settings

    base = settings.load(os.environ if env is None else env)
    given = {
        spec.name: getattr(args, spec.name)
        for spec in setting_flags()
        if getattr(args, spec.name, None) is not None
    }
    return override(base, given)


def _fail(err: Console, message: str, code: int) -> int:
    err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    return code


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    """Run one command; return its exit code (the console script exits with it)."""
    args = parse(argv)
    console = console or make_console()
    err = err_console or make_console(stderr=True)
    timeout = args.timeout or aws.DEFAULT_TIMEOUT
    # Imported here, not at module level: `--help` and usage errors need no boto3 at all.
    from traffic_mirror.handler import accounts
    from traffic_mirror.handler.clients import Clients
    from traffic_mirror.handler.context import Container
    from traffic_mirror.handler.settings import SettingsError

    from . import coverage_cmd, plan_cmd, sweep_cmd
    from .context import Run

    region = args.region or ""
    try:
        session = aws.session(args.profile)
        region = region or os.environ.get("AWS_REGION") or session.region_name or ""
        if not region:
            return _fail(
                err, "no region: give --region (or set AWS_REGION, or a region in the profile)", exits.USAGE
            )
        problem = regions.region_error(region, session.get_available_regions("ec2"))
        if problem:
            return _fail(err, f"--region: {problem}", exits.USAGE)
        try:
            settings = settings_from(args)
        except SettingsError as error:
            return _fail(err, str(error), exits.CANNOT_RUN)
        activity = aws.Activity(err)
        activity.watch(session)
        cfg = aws.config(timeout)
        container = Container(Clients(cfg, session=session))
        with activity.show(f"Checking credentials for {region}..."):
            account = aws.account_id(session, region, args.endpoint_url, cfg)
        now = datetime.now(UTC)
        run = Run(console, err, region, args.endpoint_url, settings, account, now, activity, container)
        run = dataclasses.replace(run, timeout=timeout)
        if args.account and args.accounts:
            return _fail(err, "give --account or --accounts, not both", exits.USAGE)
        asked = args.account or args.accounts
        if asked:
            # As MIRROR_ACCOUNTS: AZs are matched by id and the hub's sensors are seen in members.
            run = run.with_settings(dataclasses.replace(settings, accounts=asked))
            if args.account:
                chosen: tuple[str, ...] = (args.account,)
            else:
                with activity.show("Listing the accounts..."):
                    chosen = accounts.covered(run.context())
            run = dataclasses.replace(run, accounts=chosen)
        if args.command == "plan":
            return plan_cmd.run(run)
        if args.command == "coverage":
            return coverage_cmd.run(run, args.format, args.min, args.fail_if_empty, args.window)
        return sweep_cmd.run(run, args.apply, args.summary)
    except aws.AWS_ERRORS as error:
        return _fail(
            err, aws.describe(error, region or "(no region)", args.endpoint_url, timeout), exits.CANNOT_RUN
        )
    except KeyboardInterrupt:
        err.print("interrupted")
        return exits.INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
