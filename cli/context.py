"""What every command is given: where it runs, as whom, with which settings, and its consoles."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.settings import Settings

from . import documents, exits, render
from .aws import AWS_ERRORS, DEFAULT_TIMEOUT, Activity, describe
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
    quiet: bool = False
    """`--quiet`: summary lines only, no warnings (errors still shown)."""
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
        self.error(f"account {account}: {why}")
        return why

    def error(self, message: str) -> None:
        """One line on stderr, `--quiet` or not."""
        self.err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)

    def warn(self, message: str) -> None:
        """To stderr, so that `--format json` stays clean; not at all with `--quiet`."""
        if self.quiet:
            return
        self.err.print(Text.assemble(("warning: ", "bold yellow"), message), soft_wrap=True)


AccountWork = Callable[[Run], tuple[int, dict[str, Any] | None]]
"""One account's part of a command: (failed writes, its JSON document or None when rendered as text)."""


def for_each_account(r: Run, output: str, work: AccountWork, schema_version: int) -> int:
    """`work` in every account asked for (or this one): an account that cannot be read is one
    line and the others still run; with JSON, one document at the end."""
    unreadable: list[tuple[str, str]] = []
    docs: list[dict[str, Any]] = []
    failed = 0
    for index, one in enumerate(r.each()):
        if r.several and output == "table":
            r.section(index, one.account)
        try:
            count, doc = work(one)
        except AWS_ERRORS as error:
            if not r.several:
                raise
            unreadable.append((one.account, r.unreadable(one.account, error)))
            continue
        failed += count
        if doc is not None:
            docs.append(doc)
    if output == "json":
        if r.several:
            documents.emit(r.console, documents.several(schema_version, r.generated_at, r.region, docs, unreadable))
        else:
            documents.emit(r.console, docs[0])
    if unreadable:
        return exits.CANNOT_RUN
    return exits.FAILED_WRITES if failed else exits.OK
