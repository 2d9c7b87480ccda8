"""Which accounts the handler acts in: its own, and those MIRROR_ACCOUNTS names.

An event of the handler's own account is handled with its own credentials. Another account's
event is handled there, through the member role, only if MIRROR_ACCOUNTS covers that account:
a list of ids, `organization` (every ACTIVE account, from Organizations' ListAccounts), or
`organization:<OU or root ids>` (the ACTIVE accounts under those units, found with ListChildren
and ListAccountsForParent), read with the hub's credentials and cached for
ORGANIZATION_TTL_SECONDS. The management account, where StackSets never deploy the member role,
is left out of the organization's accounts unless it is the hub itself.
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
    """This function's account: from its own ARN in Lambda or its role's (MIRROR_ROLE_ARN), else
    asked once of STS."""
    container = ctx.container
    arn = getattr(lambda_context, "invoked_function_arn", None)
    if not (isinstance(arn, str) and arn.count(":") >= 5):
        arn = ctx.settings.role_arn
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


def known_account(ctx: Context) -> str | None:
    """The place's account when it is known without a call (None: not yet)."""
    if ctx.place.account:
        return ctx.place.account
    with ctx.container.lock:
        known = ctx.container.own_account
    if known:
        return known
    role = ctx.settings.role_arn
    return role.split(":")[4] if role and role.count(":") >= 5 else None


def sensor_owners(ctx: Context) -> frozenset[str]:
    """The accounts whose targets may serve the ENIs of this place (MIRROR_SENSOR_OWNERS)."""
    hub = own_account(ctx)
    here = ctx.place.account or hub
    raw = ctx.settings.sensor_owners or ("hub" if ctx.settings.accounts else "member")
    names = {"hub": hub, "member": here}
    return frozenset(names.get(part, part) for part in raw.split(",") if part)


def configured(settings: Settings) -> tuple[str, ...]:
    """MIRROR_ACCOUNTS' account ids; () for this account only or for the organization."""
    if not settings.accounts or settings.accounts.startswith(ORGANIZATION):
        return ()
    return tuple(part.strip() for part in settings.accounts.split(",") if part.strip())


def organization_units(settings: Settings) -> tuple[str, ...] | None:
    """None: not the organization; (): all of it; else the OU/root ids MIRROR_ACCOUNTS names."""
    if not settings.accounts or not settings.accounts.startswith(ORGANIZATION):
        return None
    _, _, units = settings.accounts.partition(":")
    return tuple(u for u in units.split(",") if u)


def organization_accounts(ctx: Context, units: tuple[str, ...]) -> tuple[str, ...]:
    """The organization's ACTIVE accounts (under `units`, if any), cached per container."""
    container = ctx.container
    now = time.monotonic()
    with container.lock:
        cached = container.organization
    if cached is not None and now - cached[0] < ORGANIZATION_TTL_SECONDS:
        return cached[1]
    client = container.clients.client("organizations", ctx.hub.place)
    found: list[dict[str, Any]] = []
    if not units:
        for page in client.get_paginator("list_accounts").paginate():
            found.extend(page.get("Accounts", []))
    else:
        pending = list(units)
        while pending:
            parent = pending.pop()
            for page in client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
                found.extend(page.get("Accounts", []))
            children = client.get_paginator("list_children").paginate(
                ParentId=parent, ChildType="ORGANIZATIONAL_UNIT"
            )
            pending.extend(str(c["Id"]) for page in children for c in page.get("Children", []))
    management = str(client.describe_organization()["Organization"].get("MasterAccountId", ""))
    own = own_account(ctx)
    active = {str(a["Id"]) for a in found if a.get("Status") == "ACTIVE"}
    accounts = tuple(sorted(a for a in active if a != management or a == own))
    with container.lock:
        container.organization = (now, accounts)
    return accounts


def covered(ctx: Context) -> tuple[str, ...]:
    """Every account the sweep goes to, the handler's own first."""
    own = own_account(ctx)
    units = organization_units(ctx.settings)
    others: Sequence[str] = organization_accounts(ctx, units) if units is not None else configured(ctx.settings)
    return (own, *sorted(set(others) - {own}))


def allowed(ctx: Context, account: str) -> bool:
    """May the handler act in `account`? Its own always; another only if MIRROR_ACCOUNTS covers it."""
    if not account or account == own_account(ctx):
        return True
    units = organization_units(ctx.settings)
    if units is not None:
        return account in organization_accounts(ctx, units)
    return account in configured(ctx.settings)
