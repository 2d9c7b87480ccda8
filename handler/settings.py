"""Settings from environment variables, validated once at start-up.

Every variable is documented in the README ("Configuration"). A bad value raises
`SettingsError` naming the variable, so a misconfigured function fails loudly at
cold start instead of mirroring to the wrong place.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

MANAGED_TAG_KEY = "ManagedBy"
"""Tag key that marks a session as created (and owned) by this tool; the IAM policy keys on it."""

_FILTER_ID = re.compile(r"^(tmf|traf-mir-fil)-[0-9a-zA-Z]+$")  # the second prefix is moto's
_TRUE = {"1", "true", "yes", "on", "enabled"}
_FALSE = {"0", "false", "no", "off", "disabled", ""}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    tag_key: str = "Mirror"
    filter_id: str | None = None
    scope: str = "all"
    session_number: int = 1
    vni: int | None = None
    packet_length: int | None = None
    managed_by: str = "traffic-mirror-automation"
    release_on_stop: bool = False
    dry_run: bool = False
    cache_ttl_seconds: float = 60.0
    max_workers: int = 8
    deadline_margin_seconds: float = 15.0
    sweep_grace_seconds: float = 0.0
    role_arn: str | None = None
    function_name: str | None = None


def _int(env: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer between {lo} and {hi}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every MIRROR_* variable; raise SettingsError on the first bad one."""
    env = os.environ if env is None else env
    tag_key = env.get("MIRROR_TAG_KEY", "Mirror").strip() or "Mirror"
    if len(tag_key) > 128 or tag_key.lower().startswith("aws:"):
        raise SettingsError(
            f"MIRROR_TAG_KEY must be a valid tag key (1-128 chars, not aws:*), got {tag_key!r}"
        )
    filter_id = env.get("MIRROR_FILTER_ID", "").strip() or None
    if filter_id is not None and not _FILTER_ID.match(filter_id):
        raise SettingsError(f"MIRROR_FILTER_ID must look like tmf-0123456789abcdef0, got {filter_id!r}")
    scope = env.get("MIRROR_SCOPE", "all").strip().lower() or "all"
    if scope not in ("all", "tagged"):
        raise SettingsError(f"MIRROR_SCOPE must be 'all' or 'tagged', got {scope!r}")
    managed_by = env.get("MIRROR_MANAGED_BY", "traffic-mirror-automation").strip()
    if not managed_by or len(managed_by) > 256:
        raise SettingsError("MIRROR_MANAGED_BY must be a non-empty tag value of at most 256 characters")
    role_arn = env.get("MIRROR_ROLE_ARN", "").strip() or None
    if role_arn is not None and not role_arn.startswith("arn:"):
        raise SettingsError(f"MIRROR_ROLE_ARN must be an IAM role ARN, got {role_arn!r}")
    session_number = _int(env, "MIRROR_SESSION_NUMBER", 1, 1, 32766)
    max_workers = _int(env, "MIRROR_MAX_WORKERS", 8, 1, 64)
    assert session_number is not None and max_workers is not None
    return Settings(
        tag_key=tag_key,
        filter_id=filter_id,
        scope=scope,
        session_number=session_number,
        vni=_int(env, "MIRROR_VNI", None, 1, 16777215),
        packet_length=_int(env, "MIRROR_PACKET_LENGTH", None, 1, 8500),
        managed_by=managed_by,
        release_on_stop=_bool(env, "MIRROR_RELEASE_ON_STOP"),
        dry_run=_bool(env, "MIRROR_DRY_RUN"),
        cache_ttl_seconds=_float(env, "MIRROR_CACHE_TTL_SECONDS", 60.0, 0.0, 3600.0),
        max_workers=max_workers,
        deadline_margin_seconds=_float(env, "MIRROR_DEADLINE_MARGIN_SECONDS", 15.0, 1.0, 600.0),
        sweep_grace_seconds=_float(env, "MIRROR_SWEEP_GRACE_SECONDS", 0.0, 0.0, 3600.0),
        role_arn=role_arn,
        function_name=env.get("AWS_LAMBDA_FUNCTION_NAME") or None,
    )
