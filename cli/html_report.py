"""The coverage report as one self-contained HTML page, to hand to an auditor.

Built from the coverage JSON document alone (`Coverage.to_json`, or `Total.to_json` over several
accounts), never from the model: the page cannot say anything the JSON does not. No external
asset (inline CSS, an inline SVG chart, no script), so it opens offline and prints as it shows.
Every value is escaped. Keys the page has no section for (those later schemas add: sensors,
untrusted sessions, mirror loss, a budget) are rendered generically, lists of objects as tables,
so they appear without a change here.
"""

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SINGLE_KEYS = frozenset(
    {
        "schema_version",
        "account_id",
        "region",
        "generated_at",
        "in_scope",
        "mirrored",
        "coverage_percent",
        "by_vpc",
        "by_az",
        "unmirrored",
        "out_of_scope",
        "cost",
    }
)
"""The single-account keys with a section of their own; every other key is an extra section."""
MULTI_KEYS = frozenset({"schema_version", "generated_at", "region", "total", "accounts", "failed_accounts"})
"""The same for the multi-account document (`--account`/`--accounts`)."""
LABELS = {
    "account_id": "Account",
    "in_scope": "In scope",
    "coverage_percent": "Coverage (%)",
    "az": "AZ",
    "az_id": "AZ id",
    "vpc": "VPC",
    "eni": "ENI",
    "enis": "ENIs",
    "mirrored_enis": "Mirrored ENIs",
    "monthly_usd": "Monthly (USD)",
    "session_hour_usd": "Per session-hour (USD)",
    "cross_az_enis": "Cross-AZ ENIs",
    "cross_az_gb_usd": "Cross-AZ per GB (USD)",
}
# The chart: one bar per (account, AZ), the mirrored share of its in-scope ENIs.
LABEL_WIDTH, BAR_WIDTH, FIGURE_WIDTH, ROW_HEIGHT = 300, 340, 150, 26
COLOURS = {"ok": "#2e7d32", "warn": "#f9a825", "bad": "#c62828", "track": "#e6e6e6"}
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
  margin: 2rem auto; max-width: 1100px; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
  border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.stamp { color: #555; margin-top: 0; } .headline { font-size: 1.3rem; }
.headline strong { font-size: 2.2rem; } .ok { color: #2e7d32; } .warn { color: #b26a00; }
.bad { color: #c62828; } .none { color: #999; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { border: 1px solid #ddd;
  padding: .25rem .5rem; text-align: left; vertical-align: top; } th { background: #f5f5f5; }
td.number { text-align: right; font-variant-numeric: tabular-nums; } td.id { white-space: nowrap; }
table table { margin: 0; }
svg text { font: 12px system-ui, sans-serif; fill: #1d1d1f; }
footer { margin-top: 2rem; color: #777; font-size: .85rem; }
@media print { body { margin: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def esc(value: Any) -> str:
    """Text or attribute value, escaped (quotes included)."""
    return html.escape(str(value), quote=True)


def label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def slug(key: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", key.lower()).strip("-") or "section"


def grade(percent: float) -> str:
    """As the CLI's bars: full coverage, at least 80%, or less."""
    return "ok" if percent >= 100 else "warn" if percent >= 80 else "bad"


def value_html(value: Any) -> str:
    """Any JSON value: scalars as text (null as a dash), objects and lists of objects as tables."""
    if value is None:
        return '<span class="none">&#8212;</span>'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return pairs_table(value)
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            return table(value)
        return ", ".join(value_html(v) for v in value)
    return esc(value)


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every key of the rows, in the order first seen."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def cell(value: Any) -> str:
    """A table cell: numbers aligned right; ids (no space) kept on one line."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="number">{value_html(value)}</td>'
    if isinstance(value, str) and " " not in value:
        return f'<td class="id">{value_html(value)}</td>'
    return f"<td>{value_html(value)}</td>"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, id_: str = "") -> str:
    """Rows of objects as a table; each header carries its JSON key (`data-key`)."""
    keys = list(columns) if columns is not None else columns_of(rows)
    head = "".join(f'<th data-key="{esc(k)}">{esc(label(k))}</th>' for k in keys)
    body = "".join("<tr>" + "".join(cell(row.get(k)) for k in keys) + "</tr>" for row in rows)
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pairs_table(pairs: Mapping[str, Any], id_: str = "") -> str:
    """An object as a two-column table (key, value); each row carries its JSON key (`data-key`)."""
    rows = "".join(
        f'<tr data-key="{esc(k)}"><th>{esc(label(k))}</th><td>{value_html(v)}</td></tr>' for k, v in pairs.items()
    )
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f"<table{ident}><tbody>{rows}</tbody></table>"


def section(id_: str, title: str, body: str) -> str:
    return f'<section id="{esc(id_)}"><h2>{esc(title)}</h2>{body}</section>'


def with_account(accounts: Sequence[Mapping[str, Any]], key: str, several: bool) -> list[dict[str, Any]]:
    """The rows of list `key` of every account, each led by its account when there are several."""
    rows: list[dict[str, Any]] = []
    for doc in accounts:
        for row in doc.get(key) or []:
            item = dict(row) if isinstance(row, Mapping) else {"value": row}
            rows.append({"account_id": doc.get("account_id"), **item} if several else item)
    return rows


def chart(accounts: Sequence[Mapping[str, Any]], several: bool) -> str:
    """An inline SVG: one bar per AZ (and account), filled by the share of its in-scope ENIs mirrored."""
    bars = [(doc, az) for doc in accounts for az in doc.get("by_az") or []]
    if not bars:
        return '<p class="none">Nothing in scope: no AZ to chart.</p>'
    width = LABEL_WIDTH + BAR_WIDTH + FIGURE_WIDTH
    height = ROW_HEIGHT * len(bars) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="chart-svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="Coverage by account and AZ">'
    ]
    for index, (doc, az) in enumerate(bars):
        in_scope, mirrored = int(az.get("in_scope", 0)), int(az.get("mirrored", 0))
        percent = float(az.get("coverage_percent", 0.0))
        zone = az.get("az", "") + (f" ({az['az_id']})" if az.get("az_id") else "")
        name = f"{doc.get('account_id', '')} · {zone}" if several else zone
        filled = BAR_WIDTH * mirrored / in_scope if in_scope else 0.0
        y = 4 + index * ROW_HEIGHT
        parts.append(
            f'<g class="bar" data-account="{esc(doc.get("account_id", ""))}" data-az="{esc(az.get("az", ""))}" '
            f'data-az-id="{esc(az.get("az_id", ""))}" data-in-scope="{in_scope}" data-mirrored="{mirrored}" '
            f'data-coverage-percent="{esc(percent)}" transform="translate(0,{y})">'
            f"<title>{esc(name)}: {mirrored} of {in_scope} mirrored ({esc(percent)}%)</title>"
            f'<text x="0" y="15">{esc(name)}</text>'
            f'<rect class="track" x="{LABEL_WIDTH}" y="3" width="{BAR_WIDTH}" height="16" fill="{COLOURS["track"]}"/>'
            f'<rect class="fill" x="{LABEL_WIDTH}" y="3" width="{filled:.1f}" height="16" '
            f'fill="{COLOURS[grade(percent)]}"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="15">{mirrored} / {in_scope} ({esc(percent)}%)</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def headline(in_scope: int, mirrored: int, percent: float) -> str:
    if not in_scope:
        return '<p class="headline warn">Nothing in scope (0 ENIs to mirror).</p>'
    return (
        f'<p class="headline {grade(percent)}"><strong id="headline-percent">{esc(percent)}</strong>% of '
        f"in-scope ENIs mirrored ({mirrored} of {in_scope})</p>"
    )


def extras(accounts: Sequence[Mapping[str, Any]], several: bool) -> list[str]:
    """A section for every key of the account documents that has no section of its own."""
    keys = [k for k in columns_of(accounts) if k not in SINGLE_KEYS]
    out = []
    for key in keys:
        values = [doc.get(key) for doc in accounts if key in doc]
        if all(isinstance(v, list) for v in values):
            rows = with_account(accounts, key, several)
            body = table(rows) if rows else '<p class="none">None.</p>'
            out.append(section(f"extra-{slug(key)}", f"{label(key)} ({len(rows)})", body))
        elif several:
            rows = [
                {"account_id": doc.get("account_id"), **(v if isinstance(v, Mapping) else {key: v})}
                for doc in accounts
                if key in doc
                for v in [doc[key]]
            ]
            out.append(section(f"extra-{slug(key)}", label(key), table(rows)))
        else:
            value = values[0]
            body = pairs_table(value) if isinstance(value, Mapping) else f"<p>{value_html(value)}</p>"
            out.append(section(f"extra-{slug(key)}", label(key), body))
    return out


def page(document: Mapping[str, Any]) -> str:
    """The page for one coverage JSON document (single- or multi-account)."""
    several = "accounts" in document and "total" in document
    accounts: list[Mapping[str, Any]] = list(document["accounts"]) if several else [document]
    region, when = document.get("region", ""), document.get("generated_at", "")
    schema = document.get("schema_version", "")
    if several:
        total = document.get("total") or {}
        in_scope, mirrored = int(total.get("in_scope", 0)), int(total.get("mirrored", 0))
        percent = float(total.get("coverage_percent", 100.0))
        failed_count = len(document.get("failed_accounts") or [])
        who = f"{len(accounts)} account(s)" + (f" ({failed_count} more not read: see below)" if failed_count else "")
        totals = pairs_table(total, "totals-table")
    else:
        in_scope, mirrored = int(document.get("in_scope", 0)), int(document.get("mirrored", 0))
        percent = float(document.get("coverage_percent", 100.0))
        who = f"account {document.get('account_id', '')}"
        totals = pairs_table(
            {k: document[k] for k in ("in_scope", "mirrored", "coverage_percent") if k in document}, "totals-table"
        )
    sections = [
        section("totals", "Totals", headline(in_scope, mirrored, percent) + totals),
        section("chart", "Coverage by account and AZ" if several else "Coverage by AZ", chart(accounts, several)),
    ]
    if several:
        rows = [
            {k: doc.get(k) for k in ("account_id", "in_scope", "mirrored", "coverage_percent")} for doc in accounts
        ]
        sections.append(section("by-account", "By account", table(rows)))
        failed = list(document.get("failed_accounts") or [])
        if failed:
            sections.append(section("failed-accounts", f"Accounts not read ({len(failed)})", table(failed)))
    sections += extras(accounts, several)
    for key, title in (("by_az", "By AZ"), ("by_vpc", "By VPC")):
        rows = with_account(accounts, key, several)
        if rows:
            sections.append(section(slug(key), title, table(rows)))
    unmirrored = with_account(accounts, "unmirrored", several)
    if unmirrored:
        body = table(unmirrored)
    else:
        body = f'<p class="ok">{"Every in-scope ENI is mirrored." if in_scope else "Nothing in scope."}</p>'
    sections.append(section("unmirrored", f"In scope but not mirrored ({len(unmirrored)})", body))
    for key, title in (("out_of_scope", "Out of scope (not counted)"), ("cost", "Estimated cost")):
        present = [doc for doc in accounts if doc.get(key)]
        if not present:
            continue
        if several:
            body = table([{"account_id": doc.get("account_id"), **doc[key]} for doc in present])
        else:
            body = pairs_table(present[0][key])
        sections.append(section(slug(key), title, body))
    for key in (k for k in document if several and k not in MULTI_KEYS):
        sections.append(section(f"extra-{slug(key)}", label(key), value_html(document[key])))
    title = f"Traffic mirroring coverage: {who}, {region}, {when}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Traffic mirroring coverage</h1>"
        f'<p class="stamp" id="stamp">{esc(who)}, region {esc(region)}, generated {esc(when)} (UTC)</p></header>'
        + "".join(sections)
        + f"<footer>Built from the coverage JSON document (schema_version {esc(schema)}) of "
        "<code>traffic-mirror coverage</code>; the same figures as <code>--format json</code>.</footer>"
        "</body></html>"
    )
