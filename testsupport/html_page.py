"""The coverage HTML page read back as data (the standard library's html.parser): its sections,
tables, chart bars and every tag and attribute, so tests compare its figures with the JSON."""

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Table:
    section: str
    """The id of the section the table is in."""
    id: str
    depth: int
    """0: a table of the section; 1 and more: inside another table's cell."""
    keys: list[str] = field(default_factory=list)
    """The JSON key of each column (`th data-key`)."""
    rows: list[list[str]] = field(default_factory=list)
    pairs: dict[str, str] = field(default_factory=dict)
    """A key/value table: JSON key (`tr data-key`) -> the value's text."""

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]


@dataclass
class Page:
    titles: dict[str, str] = field(default_factory=dict)
    """Section id -> its heading."""
    tables: list[Table] = field(default_factory=list)
    bars: list[dict[str, str]] = field(default_factory=list)
    """The chart's bars: their attributes, and the widths of their `track` and `fill` rectangles."""
    tags: Counter[str] = field(default_factory=Counter)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)
    """(tag, attribute, value) of every attribute."""
    text: list[str] = field(default_factory=list)

    def table(self, section: str) -> Table:
        """The first table of a section (not one nested in a cell)."""
        return next(t for t in self.tables if t.section == section and t.depth == 0)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.sections: list[str] = []
        self.open: list[Table] = []
        self.cells: list[list[str]] = []
        """The text of each open cell (nested tables: several)."""
        self.row: list[list[str]] = []
        self.row_key: list[str | None] = []
        self.header_key: list[str | None] = []
        self.heading: list[str] | None = None
        self.bar: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.page.tags[tag] += 1
        self.page.attributes.extend((tag, k, v) for k, v in found.items())
        section = self.sections[-1] if self.sections else ""
        if tag == "section":
            self.sections.append(found.get("id", ""))
        elif tag == "h2":
            self.heading = []
        elif tag == "table":
            self.open.append(Table(section, found.get("id", ""), len(self.open)))
            self.row.append([])
            self.row_key.append(None)
            self.header_key.append(None)
        elif tag == "tr" and self.open:
            self.row[-1] = []
            self.row_key[-1] = found.get("data-key")
        elif tag in ("th", "td") and self.open:
            self.cells.append([])
            self.header_key[-1] = found.get("data-key") if tag == "th" else None
        elif tag == "g" and "bar" in found.get("class", "").split():
            self.bar = dict(found)
        elif tag == "rect" and self.bar is not None:
            self.bar[f"{found.get('class', '')}_width"] = found.get("width", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self.sections:
            self.sections.pop()
        elif tag == "h2" and self.heading is not None:
            self.page.titles[self.sections[-1] if self.sections else ""] = "".join(self.heading).strip()
            self.heading = None
        elif tag in ("th", "td") and self.cells:
            text = " ".join("".join(self.cells.pop()).split())
            table, key = self.open[-1], self.row_key[-1]
            if tag == "th" and key is None and self.header_key[-1]:
                table.keys.append(str(self.header_key[-1]))
            elif tag == "td" and key is not None:
                table.pairs[key] = text
            elif tag == "td":
                self.row[-1].append(text)
        elif tag == "tr" and self.open:
            if self.row[-1]:
                self.open[-1].rows.append(self.row[-1])
            self.row[-1] = []
        elif tag == "table" and self.open:
            self.page.tables.append(self.open.pop())
            self.row.pop()
            self.row_key.pop()
            self.header_key.pop()
        elif tag == "g" and self.bar is not None:
            self.page.bars.append(self.bar)
            self.bar = None

    def handle_data(self, data: str) -> None:
        self.page.text.append(data)
        if self.heading is not None:
            self.heading.append(data)
        for cell in self.cells:
            cell.append(data)


def read(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page
