"""Which accounts the handler acts in: its own, and those MIRROR_ACCOUNTS names.

An event of the handler's own account is handled with its own credentials. Another account's
event is handled there, through the member role, only if MIRROR_ACCOUNTS covers that account:
a list of ids, or `organization` (every ACTIVE account, from Organizations' ListAccounts, read
with the hub's credentials and cached for ORGANIZATION_TTL_SECONDS).
"""

import time
from collections.abc import Sequence
from typing import Any

from .context import Context
from .settings import Settings

ORGANIZATION = "organization"
ORGANIZATION_TTL_SECONDS = 300.0
"""How long a container trusts its list of the organization's accounts (joiners appear within it)."""


def own_account(ctx: Context, lambda_context: Any = None) -> str:
    """This function's account: from its own ARN in Lambda, else asked once of STS."""
    container = ctx.container
    arn = getattr(lambda_context, "invoked_function_arn", None)
    if isinstance(arn, str) and arn.count(":") >= 5:
        partition, account = arn.split(":")[1], arn.split(":")[4]
        with container.lock:
            container.own_account = account
        container.clients.partition = partition
        return account
    with container.lock:
        known = container.own_account
    if known:
        return known
    identity = container.clients.client("sts", ctx.hub.place).get_caller_identity()
    partition, account = str(identity["Arn"]).split(":")[1], str(identity["Account"])
    container.clients.partition = partition
    with container.lock:
        container.own_account = account
    return account


def configured(settings: Settings) -> tuple[str, ...]:
    """MIRROR_ACCOUNTS as a tuple: account ids, or (ORGANIZATION,); () = this account only."""
    if not settings.accounts:
        return ()
    return tuple(part.strip() for part in settings.accounts.split(",") if part.strip())


def organization_accounts(ctx: Context) -> tuple[str, ...]:
    """Every ACTIVE account of the organization (paginated ListAccounts), cached per container."""
    container = ctx.container
    now = time.monotonic()
    with container.lock:
        cached = container.organization
    if cached is not None and now - cached[0] < ORGANIZATION_TTL_SECONDS:
        return cached[1]
    client = container.clients.client("organizations", ctx.hub.place)
    found: list[str] = []
    for page in client.get_paginator("list_accounts").paginate():
        found.extend(str(a["Id"]) for a in page.get("Accounts", []) if a.get("Status") == "ACTIVE")
    accounts = tuple(sorted(found))
    with container.lock:
        container.organization = (now, accounts)
    return accounts


def covered(ctx: Context) -> tuple[str, ...]:
    """Every account the sweep goes to, the handler's own first."""
    own = own_account(ctx)
    listed = configured(ctx.settings)
    others: Sequence[str] = organization_accounts(ctx) if listed == (ORGANIZATION,) else listed
    return (own, *sorted(set(others) - {own}))


def allowed(ctx: Context, account: str) -> bool:
    """May the handler act in `account`? Its own always; another only if MIRROR_ACCOUNTS covers it."""
    if not account or account == own_account(ctx):
        return True
    listed = configured(ctx.settings)
    if listed == (ORGANIZATION,):
        return account in organization_accounts(ctx)
    return account in listed
