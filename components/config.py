"""Component options: defaults, validation, and the stack-config reader.

Everything a user can get wrong is checked here, in Python, before a single resource is
registered, so a typo in a region or a tag key fails `pulumi preview` with a message that
names the option instead of failing half-way through `pulumi up` with an AWS error.
The handler-level settings (tag key, filter id, scope, session number, ...) are checked by
`handler.settings.load`, the same code the Lambda runs at cold start: one source of truth.
"""

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from ..handler import settings as handler_settings

# Region names per partition, as data. A stack can only span one partition (one set of
# credentials), so mixing them is rejected. Extend this table when AWS opens a region.
REGIONS_BY_PARTITION: Mapping[str, tuple[str, ...]] = {
    "aws": (
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ),
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
    "aws-us-gov": ("us-gov-east-1", "us-gov-west-1"),
    "aws-eusc": ("eusc-de-east-1",),
}
PARTITION_OF_REGION: Mapping[str, str] = {
    region: partition for partition, regions in REGIONS_BY_PARTITION.items() for region in regions
}
KNOWN_REGIONS: frozenset[str] = frozenset(PARTITION_OF_REGION)

RUNTIMES = ("python3.12", "python3.13", "python3.14")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
IAM_INLINE_POLICY_LIMIT = 10_240
"""IAM's limit on a role's inline policies, in characters without whitespace."""

_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)$")
_CRON = re.compile(r"^cron\(\S+( \S+){5}\)$")
_TOPIC_ARN = re.compile(r"^arn:(aws[a-z-]*):sns:([a-z0-9-]+):(\d{12}):[A-Za-z0-9_.-]{1,256}$")
_TRAIL_ARN = re.compile(r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[A-Za-z0-9._-]{3,128}$")


class ConfigError(ValueError):
    """An option is missing or malformed; the message names the option and says what is allowed."""


HANDLER_DEFAULTS = handler_settings.Settings()
"""The handler's own defaults: the component's defaults for the same settings come from here."""


@dataclass(frozen=True)
class Options:
    """The component's arguments after validation, with every default filled in."""

    regions: tuple[str, ...]
    home_region: str
    tag_key: str = HANDLER_DEFAULTS.tag_key
    filter_id: str | None = None
    scope: str = HANDLER_DEFAULTS.scope
    session_number: int = HANDLER_DEFAULTS.session_number
    vni: int | None = None
    packet_length: int | None = None
    managed_by: str = HANDLER_DEFAULTS.managed_by
    release_on_stop: bool = False
    dry_run: bool = False
    existing_trail_arn: str | None = None
    log_expiration_days: int | None = None
    force_destroy_trail_bucket: bool = False
    runtime: str = "python3.13"
    timeout_seconds: int = 300
    memory_size_mb: int = 256
    max_concurrency: int = 2
    log_retention_days: int = 30
    log_level: str = "INFO"
    sweep_schedule: str = "rate(5 minutes)"
    sweep_grace_seconds: int = 60
    initial_sweep: bool = True
    alarm_topic_arns: tuple[str, ...] = ()

    @property
    def partition(self) -> str:
        return PARTITION_OF_REGION[self.home_region]

    @property
    def create_trail(self) -> bool:
        return self.existing_trail_arn is None

    def topics_in(self, region: str) -> list[str]:
        """Alarm topics usable from `region`: CloudWatch alarms only notify topics in their own region."""
        return [arn for arn in self.alarm_topic_arns if arn.split(":")[3] == region]

    def handler_environment(self) -> dict[str, str]:
        """The handler's MIRROR_* variables, except MIRROR_ROLE_ARN (an output, added by the component).

        Optional settings are left out when not given, so the handler's own defaults apply.
        """
        env = {
            "MIRROR_TAG_KEY": self.tag_key,
            "MIRROR_SCOPE": self.scope,
            "MIRROR_SESSION_NUMBER": str(self.session_number),
            "MIRROR_MANAGED_BY": self.managed_by,
            "MIRROR_RELEASE_ON_STOP": _bool_str(self.release_on_stop),
            "MIRROR_DRY_RUN": _bool_str(self.dry_run),
            "MIRROR_SWEEP_GRACE_SECONDS": str(self.sweep_grace_seconds),
        }
        if self.filter_id is not None:
            env["MIRROR_FILTER_ID"] = self.filter_id
        if self.vni is not None:
            env["MIRROR_VNI"] = str(self.vni)
        if self.packet_length is not None:
            env["MIRROR_PACKET_LENGTH"] = str(self.packet_length)
        return env

    def settings_hash(self) -> str:
        """Changes whenever a setting that changes what the sweep would do changes."""
        blob = json.dumps(self.handler_environment(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


# Argument name -> environment variable, to turn the handler's SettingsError into one that
# names the component argument the user actually wrote.
_ENV_OF_ARG = {
    "tag_key": "MIRROR_TAG_KEY",
    "filter_id": "MIRROR_FILTER_ID",
    "scope": "MIRROR_SCOPE",
    "session_number": "MIRROR_SESSION_NUMBER",
    "vni": "MIRROR_VNI",
    "packet_length": "MIRROR_PACKET_LENGTH",
    "managed_by": "MIRROR_MANAGED_BY",
    "sweep_grace_seconds": "MIRROR_SWEEP_GRACE_SECONDS",
}
_ARG_NAMES = frozenset(
    {
        "regions",
        "home_region",
        "tag_key",
        "filter_id",
        "scope",
        "session_number",
        "vni",
        "packet_length",
        "managed_by",
        "release_on_stop",
        "dry_run",
        "existing_trail_arn",
        "log_expiration_days",
        "force_destroy_trail_bucket",
        "runtime",
        "timeout_seconds",
        "memory_size_mb",
        "max_concurrency",
        "log_retention_days",
        "log_level",
        "sweep_schedule",
        "sweep_grace_seconds",
        "initial_sweep",
        "alarm_topic_arns",
    }
)


def _bool_str(value: bool) -> str:
    return "true" if value else "false"


def _suggest(word: str, choices: Sequence[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _region(value: Any, option: str) -> str:
    if not isinstance(value, str) or value.strip() not in KNOWN_REGIONS:
        shown = value.strip() if isinstance(value, str) else value
        hint = _suggest(shown, KNOWN_REGIONS) if isinstance(shown, str) else ""
        raise ConfigError(
            f"{option}: {shown!r} is not a known AWS region name{hint}; "
            "use names like 'us-east-1' (the list is REGIONS_BY_PARTITION in components/config.py)"
        )
    return value.strip()


def _regions(value: Any) -> tuple[str, ...]:
    if value is None:
        raise ConfigError(
            "regions is required: list the regions to deploy to, e.g. "
            "`pulumi config set --path 'regions[0]' us-east-1`"
        )
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"regions must be a list of region names, got {value!r}; set it with "
            "`pulumi config set --path 'regions[0]' us-east-1`"
        )
    if len(value) == 0:
        raise ConfigError(
            "regions must list at least one region, e.g. `pulumi config set --path 'regions[0]' us-east-1`"
        )
    regions = tuple(_region(item, "regions") for item in value)
    seen: set[str] = set()
    for region in regions:
        if region in seen:
            raise ConfigError(f"regions lists {region!r} twice; list each region once")
        seen.add(region)
    partitions = {PARTITION_OF_REGION[region] for region in regions}
    if len(partitions) > 1:
        raise ConfigError(
            f"regions span several AWS partitions ({', '.join(sorted(partitions))}); "
            "one stack deploys to one partition, use a stack per partition"
        )
    return regions


def _int(args: Mapping[str, Any], name: str, default: int | None, lo: int, hi: int) -> int | None:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _bool(args: Mapping[str, Any], name: str, default: bool) -> bool:
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    return value.strip() or None


def _choice(args: Mapping[str, Any], name: str, default: str, choices: Sequence[str]) -> str:
    value = _str(args, name)
    if value is None:
        return default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}{_suggest(value, choices)}")
    return value


def resolve(args: Mapping[str, Any], default_home_region: str | None = None) -> Options:
    """Validate the component's arguments and fill in defaults; raise ConfigError on the first bad one."""
    unknown = sorted(set(args) - _ARG_NAMES)
    if unknown:
        hints = "".join(_suggest(key, _ARG_NAMES) for key in unknown)
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)}{hints}")
    regions = _regions(args.get("regions"))

    home = args.get("home_region") or default_home_region or regions[0]
    home_region = _region(home, "home_region")
    if PARTITION_OF_REGION[home_region] != PARTITION_OF_REGION[regions[0]]:
        raise ConfigError(f"home_region {home_region!r} is not in the same AWS partition as the regions")

    existing_trail_arn = _str(args, "existing_trail_arn")
    if existing_trail_arn is not None and not _TRAIL_ARN.match(existing_trail_arn):
        raise ConfigError(
            "existing_trail_arn must be a CloudTrail trail ARN like "
            f"arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail, got {existing_trail_arn!r}"
        )

    sweep_schedule = _str(args, "sweep_schedule") or "rate(5 minutes)"
    if not (_RATE.match(sweep_schedule) or _CRON.match(sweep_schedule)):
        raise ConfigError(
            "sweep_schedule must be an EventBridge schedule expression such as 'rate(5 minutes)', "
            f"'rate(1 hour)' or 'cron(0/10 * * * ? *)', got {sweep_schedule!r}"
        )

    raw_topics = args.get("alarm_topic_arns") or ()
    if isinstance(raw_topics, str) or not isinstance(raw_topics, Sequence):
        raise ConfigError(f"alarm_topic_arns must be a list of SNS topic ARNs, got {raw_topics!r}")
    for arn in raw_topics:
        match = _TOPIC_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise ConfigError(f"alarm_topic_arns: {arn!r} is not an SNS topic ARN")
        if match.group(2) not in regions:
            raise ConfigError(
                f"alarm_topic_arns: {arn!r} is in {match.group(2)}, which is not one of the regions; "
                "CloudWatch alarms can only notify a topic in their own region"
            )

    log_retention_days = _int(args, "log_retention_days", 30, 1, 3653)
    if log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"log_retention_days must be one of CloudWatch's values ({', '.join(map(str, LOG_RETENTION_DAYS))}), "
            f"got {log_retention_days}"
        )

    managed_by = args.get("managed_by")
    tag_key = args.get("tag_key")
    for name, value in (("managed_by", managed_by), ("tag_key", tag_key)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")

    options = Options(
        regions=regions,
        home_region=home_region,
        tag_key=(tag_key or "").strip() or HANDLER_DEFAULTS.tag_key,
        filter_id=_str(args, "filter_id"),
        scope=(_str(args, "scope") or HANDLER_DEFAULTS.scope).lower(),
        session_number=_int(args, "session_number", HANDLER_DEFAULTS.session_number, 1, 32766)
        or HANDLER_DEFAULTS.session_number,
        vni=_int(args, "vni", None, 1, 16777215),
        packet_length=_int(args, "packet_length", None, 1, 8500),
        managed_by=(managed_by if managed_by is not None else HANDLER_DEFAULTS.managed_by).strip(),
        release_on_stop=_bool(args, "release_on_stop", False),
        dry_run=_bool(args, "dry_run", False),
        existing_trail_arn=existing_trail_arn,
        log_expiration_days=_int(args, "log_expiration_days", None, 1, 36500),
        force_destroy_trail_bucket=_bool(args, "force_destroy_trail_bucket", False),
        runtime=_choice(args, "runtime", "python3.13", RUNTIMES),
        timeout_seconds=_int(args, "timeout_seconds", 300, 30, 900) or 300,
        memory_size_mb=_int(args, "memory_size_mb", 256, 128, 10240) or 256,
        max_concurrency=_int(args, "max_concurrency", 2, 2, 1000) or 2,
        log_retention_days=log_retention_days or 30,
        log_level=_choice(args, "log_level", "INFO", LOG_LEVELS),
        sweep_schedule=sweep_schedule,
        sweep_grace_seconds=_int(args, "sweep_grace_seconds", 60, 0, 3600) or 0,
        initial_sweep=_bool(args, "initial_sweep", True),
        alarm_topic_arns=tuple(raw_topics),
    )
    _check_handler_settings(options)
    return options


def _check_handler_settings(options: Options) -> None:
    """Run the handler's own validation on the environment the Lambda will get."""
    env = options.handler_environment()
    env["MIRROR_ROLE_ARN"] = f"arn:{options.partition}:iam::123456789012:role/placeholder"
    try:
        handler_settings.load(env)
    except handler_settings.SettingsError as exc:
        message = str(exc)
        for arg, var in _ENV_OF_ARG.items():
            if var in message:
                raise ConfigError(f"{arg}: {message}") from None
        raise ConfigError(message) from None


# Stack config (camelCase, as in Pulumi.yaml) -> component argument (snake_case).
CONFIG_KEYS: Mapping[str, str] = {
    "regions": "regions",
    "homeRegion": "home_region",
    "tagKey": "tag_key",
    "filterId": "filter_id",
    "scope": "scope",
    "sessionNumber": "session_number",
    "vni": "vni",
    "packetLength": "packet_length",
    "managedBy": "managed_by",
    "releaseOnStop": "release_on_stop",
    "dryRun": "dry_run",
    "existingTrailArn": "existing_trail_arn",
    "logExpirationDays": "log_expiration_days",
    "forceDestroyTrailBucket": "force_destroy_trail_bucket",
    "runtime": "runtime",
    "timeoutSeconds": "timeout_seconds",
    "memorySizeMb": "memory_size_mb",
    "maxConcurrency": "max_concurrency",
    "logRetentionDays": "log_retention_days",
    "logLevel": "log_level",
    "sweepSchedule": "sweep_schedule",
    "sweepGraceSeconds": "sweep_grace_seconds",
    "initialSweep": "initial_sweep",
    "alarmTopicArns": "alarm_topic_arns",
}
_INT_KEYS = {"sessionNumber", "vni", "packetLength", "logExpirationDays", "timeoutSeconds", "memorySizeMb",
             "maxConcurrency", "logRetentionDays", "sweepGraceSeconds"}  # fmt: skip
_ZERO_IS_A_VALUE = {"sweepGraceSeconds"}
_BOOL_KEYS = {"releaseOnStop", "dryRun", "forceDestroyTrailBucket", "initialSweep"}
_LIST_KEYS = {"regions", "alarmTopicArns"}
# Pulumi.yaml can't declare an optional key without a default, so "unset" is spelled "" or 0.
_UNSET = ("", 0)


def args_from_config(config: pulumi.Config) -> dict[str, Any]:
    """Read the stack's config into component arguments, leaving out unset (""/0) values.

    Type errors name the config key; range and value checks happen in `resolve`, for config
    and direct callers alike.
    """
    args: dict[str, Any] = {}
    for key, arg in CONFIG_KEYS.items():
        value: Any
        try:
            if key in _LIST_KEYS:
                value = config.get_object(key)
            elif key in _INT_KEYS:
                value = config.get_int(key)
            elif key in _BOOL_KEYS:
                value = config.get_bool(key)
            else:
                value = config.get(key)
        except pulumi.ConfigTypeError as exc:
            raise ConfigError(f"config {key}: {exc}") from None
        except json.JSONDecodeError:
            raise ConfigError(
                f"config {key} must be a list; set it with `pulumi config set --path '{key}[0]' VALUE`"
            ) from None
        if key == "regions":
            args[arg] = value  # required: resolve() explains what to set when it is missing
        elif value is not None and (key in _ZERO_IS_A_VALUE or isinstance(value, bool) or value not in _UNSET):
            args[arg] = value
    return args
