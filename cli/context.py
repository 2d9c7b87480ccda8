"""What every command is given: where it runs, as whom, with which settings, and its consoles."""

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from rich.text import Text
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.settings import Settings

from .aws import Activity
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

    def context(self, settings: Settings | None = None) -> Context:
        """The handler's view of this run: one place (region, endpoint), its settings, our container."""
        return Context(Place(self.region, None, self.endpoint), settings or self.settings, self.container)

    def with_settings(self, settings: Settings) -> "Run":
        return dataclasses.replace(self, settings=settings)

    @property
    def stamp(self) -> str:
        return stamp(self.account, self.region, self.started, self.endpoint)

    @property
    def generated_at(self) -> str:
        return self.started.strftime("%Y-%m-%dT%H:%M:%SZ")

    def warn(self, message: str) -> None:
        """To stderr, so that `--format json` stays clean."""
        self.err.print(Text.assemble(("warning: ", "bold yellow"), message), soft_wrap=True)
