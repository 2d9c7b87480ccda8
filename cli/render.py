"""Text that never loses a character: stacked records and aligned columns, not cropped tables.

A table squeezed into 80 columns crops or folds its widest column (the reasons, the one people
need). So each ENI is a record: a head line (what happens, to which instance and ENI) and
indented detail lines (where, target and filter, why). Small summaries are aligned columns whose
last column may run long. On a terminal, long lines wrap at word boundaries under their indent;
piped (cron mail, CI logs, `| grep`), each line is printed whole, with no colour, no padding and
no trailing spaces.
"""

import os
import sys
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.text import Text

INDENT = 4
SUMMARY_THRESHOLD = 25
"""Above this many changed ENIs, `sweep` and `release` summarise: changes by what and why,
failures by error code (`--summary`/`--no-summary` decide instead)."""


def make_console(stderr: bool = False) -> Console:
    """A terminal gets its width and colour; a pipe gets plain, unwrapped lines."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else 80
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width, color_system=None)


def line(console: Console, text: str | Text, indent: int = 0, style: str = "") -> None:
    """One logical line: wrapped under its indent on a terminal, whole when piped."""
    body = text if isinstance(text, Text) else Text(text, style=style)
    pad = " " * indent
    if not console.is_terminal or console.width - indent < 20:
        console.print(Text(pad) + body, soft_wrap=True)
        return
    for piece in body.wrap(console, console.width - indent, overflow="fold"):
        piece.rstrip()
        console.print(Text(pad) + piece, soft_wrap=True)


def blank(console: Console) -> None:
    console.print()


def record(console: Console, head: Text, details: Sequence[str | Text]) -> None:
    """One ENI: its head line, then each detail on its own indented line."""
    line(console, head)
    for detail in details:
        if detail:
            line(console, detail, INDENT)


def head(status: str, style: str, *names: str | None) -> Text:
    """`create  web-1  eni-0123...`: the status in its colour, then the names that are known."""
    text = Text(status, style=style)
    for name in names:
        if name:
            text.append("  " + name)
    return text


def aligned(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """Rows as columns two spaces apart; numbers (column indexes in `right`) right-aligned.

    The last column is never padded, so a long last cell runs on instead of being cut.
    """
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])
        ]
        out.append("  ".join([*cells, row[-1]]).rstrip())
    return out


def columns(console: Console, title: str, rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> None:
    """A titled block of aligned columns (the first row is the header)."""
    line(console, title, style="bold")
    for index, text in enumerate(aligned(rows, right)):
        line(console, text, 2, style="dim" if index == 0 else "")


def stamp(account: str, region: str, when: datetime, endpoint: str | None = None) -> str:
    """The line that says what a report read: account, region, time (UTC), and the endpoint if not AWS."""
    where = f" via {endpoint}" if endpoint else ""
    return f"account {account}, region {region}{where}, {when.strftime('%Y-%m-%d %H:%M:%S')} UTC"


def bar(pct: float, width: int = 20) -> Text:
    filled = round(pct / 100 * width)
    colour = "green" if pct >= 100 else "yellow" if pct >= 80 else "red"
    text = Text("█" * filled, style=colour)
    text.append("░" * (width - filled), style="dim")
    return text


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def service_kind(kind: str) -> str:
    """A service's kind of source as the record lines show it ("" for instances: their id says it)."""
    return "" if kind == "instances" else kind
