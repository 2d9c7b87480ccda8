"""What every command is given: where it runs, as whom, with which settings, and its consoles."""

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.text import Text
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.settings import Settings

from . import render
from .aws import DEFAULT_TIMEOUT, Activity, describe
from .render import stamp


@dataclass(frozen=True)
class Run:
    console: Console
    err: Console
    region: str
    endpoint: str | None
    settings: Settings
    account: str
    started: datetime
    """When the reads began (UTC): the time every report names."""
    activity: Activity
    container: Container
    """This run's clients (the CLI's session and fail-fast retries) and caches."""
    accounts: tuple[str, ...] = ()
    """`--account`/`--accounts`: the accounts to report on, one section each; () = today's one account."""
    member: str | None = None
    """The account this run reads through the member role (None: the credentials' own)."""
    timeout: float = DEFAULT_TIMEOUT
    deployed: Settings | None = None
    """The function's own settings (its MIRROR_* variables, before the flags): what `plan` compares
    a `--sources` beyond the deployment's with (None: the same as `settings`)."""

    def context(self, settings: Settings | None = None) -> Context:
        """The handler's view of this run: one place (region, endpoint), its settings, our container."""
        ctx = Context(Place(self.region, None, self.endpoint), settings or self.settings, self.container)
        return ctx.at(self.member) if self.member else ctx

    @property
    def several(self) -> bool:
        """Asked for accounts by `--account`/`--accounts`: reports name each account and a total."""
        return bool(self.accounts)

    def each(self) -> list["Run"]:
        """One run per account asked for (this one alone without `--account`/`--accounts`)."""
        if not self.accounts:
            return [self]
        own = self.account if self.member is None else ""
        return [
            dataclasses.replace(self, account=a, member=None if a == own else a, accounts=())
            for a in self.accounts
        ]

    def with_settings(self, settings: Settings) -> "Run":
        return dataclasses.replace(self, settings=settings)

    @property
    def stamp(self) -> str:
        return stamp(self.account, self.region, self.started, self.endpoint)

    @property
    def generated_at(self) -> str:
        return self.started.strftime("%Y-%m-%dT%H:%M:%SZ")

    def section(self, index: int, account: str) -> None:
        """The head of one account's section (only when several accounts were asked for)."""
        if index:
            render.blank(self.console)
        title = f"=== Account {account} ({index + 1} of {len(self.accounts)}) ==="
        render.line(self.console, title, style="bold")

    def unreadable(self, account: str, error: Exception) -> str:
        """One line on stderr for an account that could not be read; the other accounts still run."""
        why = describe(error, self.region, self.endpoint, self.timeout)
        self.err.print(Text.assemble(("error: ", "bold red"), f"account {account}: {why}"), soft_wrap=True)
        return why

    def warn(self, message: str) -> None:
        """To stderr, so that `--format json` stays clean."""
        self.err.print(Text.assemble(("warning: ", "bold yellow"), message), soft_wrap=True)
