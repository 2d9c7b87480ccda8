"""Arguments and dispatch: parse the line, build the run (session, account, time), call the command.

Global options (`--region`, `--profile`, `--endpoint-url`, `--timeout`, `--quiet` and the
settings flags) are accepted before or after the command. Every mistake is one line on stderr
and a documented exit code (`exits`), never a traceback; a mistyped command, choice or flag
names the closest one. Shell completion is argcomplete's (`eval "$(register-python-argcomplete
traffic-mirror)"`): it runs only when the shell asks (`_ARGCOMPLETE` set).
"""

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, NoReturn

from rich.console import Console
from rich.text import Text
from traffic_mirror.common import regions
from traffic_mirror.common.declarations import flag, override

from . import aws, exits, render
from .render import make_console

PROG = "traffic-mirror"
DISTRIBUTION = "traffic-mirror-automation"
"""The package whose metadata `--version` reports."""
FORMATS = ("table", "json")
"""`--format` of every command (coverage adds `html`)."""
COMPLETION = f'eval "$(register-python-argcomplete {PROG})"'
"""The activation line of shell completion (argcomplete's; in ~/.bashrc or ~/.zshrc)."""
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
"""The default of `--endpoint-url` (botocore's own variable for every service)."""


def version() -> str:
    """This package's version, from its installed metadata (one source: pyproject.toml)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a checkout that was never installed
        return "unknown (not installed: pip install -e .)"


def setting_flags() -> tuple[Any, ...]:
    """The settings a `--flag` overrides (`--tag-key`, `--scope`, `--filter-id`): their declarations."""
    from traffic_mirror.handler import settings

    return tuple(spec for spec in settings.SPECS if spec.cli)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with where to look), not the usage block, and a
    mistyped choice (a command, a `--format`) names the closest one."""

    commands: dict[str, "Parser"]
    """Each command's parser (on the main parser), for the flags a mistyped one is compared with."""

    def error(self, message: str) -> NoReturn:
        self.exit(exits.USAGE, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check (it has no suggestions before Python 3.14), with the closest choice.
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError:
            hint = regions.suggest(str(value), (str(c) for c in action.choices or ()))
            if not hint:
                raise
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}") from None

    def flags(self) -> list[str]:
        """Every option string this parser accepts."""
        return [flag for action in self._actions for flag in action.option_strings]


def unrecognized(extras: Sequence[str], known: Sequence[str], elsewhere: Mapping[str, Sequence[str]]) -> str:
    """argparse's 'unrecognized arguments', with a hint for the first flag that has one: the
    commands it belongs to (`elsewhere`: flag -> commands), or the closest of the `known` flags."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    longs = sorted({k for k in known if k.startswith("--")})
    for word in extras:
        flag = word.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        if flag in elsewhere:
            return f"{message} ({flag} is an option of {' and '.join(elsewhere[flag])})"
        # Swapped letters first (difflib alone may prefer another flag), then a close spelling.
        close = [k for k in longs if sorted(k) == sorted(flag)] or difflib.get_close_matches(
            flag, longs, n=1, cutoff=0.75
        )
        if close:
            return f"{message} (did you mean {close[0]}?)"
    return message


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
    "quiet",
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
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    group = parser.add_argument_group("where and as whom (before or after the command)")
    s = argparse.SUPPRESS
    region = group.add_argument(
        "--region", default=s, help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)"
    )
    region.completer = lambda **_: sorted(regions.KNOWN_REGIONS)  # type: ignore[attr-defined]  # argcomplete's
    group.add_argument("--profile", default=s, help="AWS profile from ~/.aws/config (default: AWS_PROFILE)")
    group.add_argument(
        "--endpoint-url",
        default=s,
        type=_endpoint,
        metavar="URL",
        help=f"talk to this endpoint instead of AWS, for every service (STS and Organizations "
        f"included), e.g. the playground's http://127.0.0.1:PORT (default: {ENDPOINT_VARIABLE})",
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
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=s,
        help="no spinner, progress bar or warning; reports in their summary lines only (JSON and "
        "HTML unchanged); errors and a missed --min still on stderr",
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


def _format(command: argparse.ArgumentParser, *extra: str, about: str = "") -> None:
    command.add_argument(
        "--format",
        choices=(*FORMATS, *extra),
        default="table",
        help=f"table: for people (default); json: for scripts and CI, a versioned schema "
        f"(docs/cli-json.md){about}",
    )


def _apply_or_dry_run(command: argparse.ArgumentParser, what: str) -> None:
    """`--apply` writes; `--dry-run` (the default) says so explicitly; not both."""
    choice = command.add_mutually_exclusive_group()
    choice.add_argument("--apply", action="store_true", help=f"really {what}")
    choice.add_argument(
        "--dry-run", action="store_true", help="write nothing, show what --apply would do (the default)"
    )
    command.add_argument(
        "--summary",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="group the changes by what and why, and the failures by error code with the first "
        f"ENIs of each, instead of one record each (default: automatic above "
        f"{render.SUMMARY_THRESHOLD} changed ENIs)",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Plan, check and reconcile automated VPC Traffic Mirroring.",
        epilog=f"{exits.epilog()}. Shell completion (bash, zsh): {COMPLETION}",
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
    _format(plan)
    cov = commands.add_parser(
        "coverage",
        help="share of in-scope ENIs mirrored, by VPC and AZ, and why the rest are not",
        description="Share of in-scope ENIs that are mirrored, by VPC and AZ, the unmirrored ones "
        f"with the reason, and the cost. Exit {exits.BELOW_MIN} when below --min, "
        f"{exits.EMPTY} with --fail-if-empty when nothing is in scope.",
        epilog=exits.epilog(),
    )
    _format(
        cov,
        "html",
        about="; html: one self-contained page to hand over (totals, a chart by account and AZ, "
        "the unmirrored ENIs), built from the JSON document",
    )
    cov.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the json or html report to FILE instead of stdout",
    )
    cov.add_argument(
        "--min",
        type=_percentage,
        metavar="PCT",
        help=f"exit {exits.BELOW_MIN} when coverage is below PCT percent (0-100); the verdict is on stderr",
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
    _apply_or_dry_run(sweep, "create, modify and delete sessions")
    _format(sweep)
    release = commands.add_parser(
        "release",
        help="remove the automation's own sessions (its ManagedBy tag), and no other (dry run unless --apply)",
        description="Delete every traffic mirror session of the region tagged ManagedBy=<--managed-by, "
        "MIRROR_MANAGED_BY> (with --account/--accounts, in each account), the same way the "
        "deployment's tear-down does; a session without that tag is never touched. A dry run unless "
        "--apply. For tear-downs and upgrades: while a deployment still runs, its next sweep "
        "mirrors the ENIs again.",
        epilog=exits.epilog(),
    )
    _apply_or_dry_run(release, "delete the sessions")
    _format(release)
    parser.commands = {"plan": plan, "coverage": cov, "sweep": sweep, "release": release}
    for sub in parser.commands.values():
        add_global_options(sub)
    return parser


def complete(parser: argparse.ArgumentParser) -> None:
    """Shell completion: argcomplete answers the shell and exits; a no-op unless the shell asks."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    complete(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    # A flag no command knows, wherever it is: argparse would take the value after a mistyped
    # flag before the command for the command ("invalid choice: 'http://...'").
    every = sorted({f for p in (parser, *parser.commands.values()) for f in p.flags()})
    for word in words[: words.index("--")] if "--" in words else words:
        flag = word.split("=", 1)[0]
        if flag.startswith("--") and not any(f.startswith(flag) for f in every):  # prefixes: abbreviations
            parser.error(unrecognized([word], every, {}))
    args, extras = parser.parse_known_args(words)
    if extras:
        known = parser.flags() + parser.commands[args.command].flags()
        elsewhere: dict[str, list[str]] = {}
        for name, command in parser.commands.items():
            for flag in sorted(set(command.flags()) - set(known)):
                elsewhere.setdefault(flag, []).append(name)
        parser.error(unrecognized(extras, known, elsewhere))
    for dest in GLOBAL_DESTS:
        if not hasattr(args, dest):
            setattr(args, dest, None)
    if getattr(args, "output", None) and args.format == "table":
        parser.error("--output needs --format json or html")
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


def default_endpoint(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """`--endpoint-url`, else AWS_ENDPOINT_URL (checked the same way), else None (AWS itself).

    Given explicitly to every client, STS's AssumeRole included, and named in every report and error.
    """
    if args.endpoint_url:
        return str(args.endpoint_url)
    raw = env.get(ENDPOINT_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        return aws.endpoint_url(raw)
    except ValueError as error:
        raise SettingsProblem(f"{ENDPOINT_VARIABLE} {error}") from None


class SettingsProblem(Exception):
    """A variable of the environment the CLI cannot use (exit 1, one line)."""


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
    quiet = bool(args.quiet)
    # Imported here, not at module level: `--help` and usage errors need no boto3 at all.
    from traffic_mirror.handler import accounts
    from traffic_mirror.handler.clients import Clients
    from traffic_mirror.handler.context import Container
    from traffic_mirror.handler.settings import SettingsError

    from . import coverage_cmd, plan_cmd, release_cmd, sweep_cmd
    from .context import Run

    region = args.region or ""
    endpoint = args.endpoint_url
    try:
        try:
            endpoint = default_endpoint(args, os.environ)
        except SettingsProblem as error:
            return _fail(err, str(error), exits.CANNOT_RUN)
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
        activity = aws.Activity(err, quiet=quiet)
        activity.watch(session)
        cfg = aws.config(timeout)
        container = Container(Clients(cfg, session=session))
        with activity.show(f"Checking credentials for {region}..."):
            account = aws.account_id(session, region, endpoint, cfg)
        now = datetime.now(UTC)
        run = Run(console, err, region, endpoint, settings, account, now, activity, container)
        deployed = settings_from(argparse.Namespace())  # the variables alone: what the function runs
        run = dataclasses.replace(run, timeout=timeout, quiet=quiet, deployed=deployed)
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
            return plan_cmd.run(run, args.format)
        if args.command == "coverage":
            return coverage_cmd.run(run, args.format, args.min, args.fail_if_empty, args.output, args.window)
        if args.command == "release":
            return release_cmd.run(run, args.apply, args.summary, args.format)
        return sweep_cmd.run(run, args.apply, args.summary, args.format)
    except aws.AWS_ERRORS as error:
        return _fail(err, aws.describe(error, region or "(no region)", endpoint, timeout), exits.CANNOT_RUN)
    except KeyboardInterrupt:
        err.print("interrupted")
        return exits.INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
