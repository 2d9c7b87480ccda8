"""The JSON documents of `--format json`: one per command, each with its own `schema_version`.

docs/cli-json.md describes each schema. A version changes only when an existing key changes its
meaning or goes; new keys may appear in any version. Lists are sorted, so two runs over the same
account compare line by line.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2)


def emit(console: Console, document: Mapping[str, Any]) -> None:
    """The document alone on stdout (warnings and errors go to stderr)."""
    console.out(dumps(document), highlight=False)


def head(schema_version: int, account: str, region: str, generated_at: str) -> dict[str, Any]:
    """The keys every single-account document starts with: what was read, where, and when."""
    return {
        "schema_version": schema_version,
        "account_id": account,
        "region": region,
        "generated_at": generated_at,
    }


def several(
    schema_version: int,
    generated_at: str,
    region: str,
    accounts: Iterable[Mapping[str, Any]],
    unreadable: Iterable[tuple[str, str]],
) -> dict[str, Any]:
    """With `--account`/`--accounts`: each account's single-account document, in the order read
    (the credentials' own first), and those that could not be read (`failed_accounts`)."""
    return {
        "schema_version": schema_version,
        "generated_at": generated_at,
        "region": region,
        "accounts": list(accounts),
        "failed_accounts": [{"account_id": a, "error": why} for a, why in unreadable],
    }
