"""Exit codes: one meaning each, the same for every command (README, "Exit codes")."""

OK = 0
CANNOT_RUN = 1
"""AWS said no or could not be reached: credentials, profile, endpoint, permissions, a MIRROR_* variable."""
USAGE = 2
"""A mistake on the command line: unknown option, bad value (region, endpoint URL, filter id, ...)."""
FAILED_WRITES = 3
"""`sweep --apply` or `release --apply` left writes that failed."""
BELOW_MIN = 4
"""`coverage --min PCT`: coverage is below PCT."""
EMPTY = 5
"""`coverage --fail-if-empty`: nothing in scope (wrong region or account, or everything excluded)."""
INTERRUPTED = 130
"""Ctrl-C."""

TABLE = (
    (OK, "success"),
    (CANNOT_RUN, "cannot run: AWS credentials, profile, endpoint, permissions or a MIRROR_* variable"),
    (USAGE, "usage error: unknown option or bad value"),
    (FAILED_WRITES, "sweep or release --apply left failed writes"),
    (BELOW_MIN, "coverage below --min"),
    (EMPTY, "coverage found nothing in scope, with --fail-if-empty"),
    (INTERRUPTED, "interrupted"),
)


def epilog() -> str:
    """The exit codes, for `--help`."""
    return "exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in TABLE)
