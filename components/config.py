"""Component options: declarations, validation, and the stack-config reader.

Every option is declared once, as a `Spec`: the handler's own settings in
`handler/settings.py` (those marked `component`), the deployment's below in `Deployment`.
Arguments, stack-config keys, checks, defaults and the function's environment all derive from
those declarations (the argument types in `args.py` and `Pulumi.yaml` are generated from them:
`make generate`). Everything a user can get wrong is checked here, before a single resource is
registered, so a typo fails `pulumi preview` with a message naming the option instead of
failing half-way through `pulumi up` with an AWS error.
"""

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

# The region table and "did you mean" are shared with the CLI, without pulumi: see common/.
from ..common import declarations
from ..common.regions import KNOWN_REGIONS, PARTITION_OF_REGION, suggest
from ..common.regions import REGIONS_BY_PARTITION as REGIONS_BY_PARTITION
from ..handler import settings as handler_settings
from ..handler.settings import Settings, SettingsError, Spec, setting
from . import filter as mirror_filter
from . import permissions
from .sensors import Sensor, SensorError, parse_sensors

RUNTIMES = ("python3.12", "python3.13", "python3.14")
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
MAX_CONCURRENCY = 2
"""max_concurrency's default for one account (the scale benchmark's deployed pipeline)."""
ORGANIZATION_MAX_CONCURRENCY = 10
"""max_concurrency's default when the deployment covers other accounts (organization_units or accounts)."""
IAM_INLINE_POLICY_LIMIT = 10_240
"""IAM's limit on a role's inline policies, in characters without whitespace."""

_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)$")
_CRON = re.compile(r"^cron\(\S+( \S+){5}\)$")
_TOPIC_ARN = re.compile(r"^arn:(aws[a-z-]*):sns:([a-z0-9-]+):(\d{12}):[A-Za-z0-9_.-]{1,256}$")
_ORGANIZATION_UNIT = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
_OPERATOR_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/[\w+=,.@/*?-]+$")
_TARGET_ARN = re.compile(r"^arn:(aws[a-z-]*):ec2:([a-z0-9-]+):(\d{12}):traffic-mirror-target/(tmt|traf-mir-tar)-[0-9a-zA-Z]+$")


class ConfigError(ValueError):
    """An option is missing or malformed; the message names the option and says what is allowed."""


def _region(value: Any, label: str) -> str:
    if not isinstance(value, str) or value.strip() not in KNOWN_REGIONS:
        shown = value.strip() if isinstance(value, str) else value
        hint = suggest(shown, KNOWN_REGIONS) if isinstance(shown, str) else ""
        raise ConfigError(
            f"{label}: {shown!r} is not a known AWS region name{hint}; "
            "use names like 'us-east-1' (the list is REGIONS_BY_PARTITION in common/regions.py)"
        )
    return value.strip()


def _strings(value: Any, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{label} must be a list of strings, got {value!r}")
    return tuple(value)


def _regions(value: Any, label: str = "regions") -> tuple[str, ...]:
    how = f"`pulumi config set --path '{label}[0]' us-east-1`"
    if value is None:
        raise ConfigError(f"{label} is required: list the regions to deploy to, e.g. {how}")
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{label} must be a list of region names, got {value!r}; set it with {how}")
    if len(value) == 0:
        raise ConfigError(f"{label} must list at least one region, e.g. {how}")
    regions = tuple(_region(item, label) for item in value)
    seen: set[str] = set()
    for region in regions:
        if region in seen:
            raise ConfigError(f"{label} lists {region!r} twice; list each region once")
        seen.add(region)
    partitions = {PARTITION_OF_REGION[region] for region in regions}
    if len(partitions) > 1:
        raise ConfigError(
            f"{label} span several AWS partitions ({', '.join(sorted(partitions))}); "
            "one stack deploys to one partition, use a stack per partition"
        )
    return regions


@dataclass(frozen=True)
class Deployment:
    """The deployment's own options (the handler's are `Settings` fields marked `component`)."""

    regions: tuple[str, ...] = setting(
        (), "AWS regions to deploy to, e.g. [us-east-1, eu-west-1]. Order does not matter.", like="required"
    )
    home_region: str | None = setting(
        None, "Region of the CloudTrail trail and its bucket. Unset: the provider's aws:region, else the first region."
    )
    existing_trail_arn: str | None = setting(
        None,
        "Use this trail (e.g. an organization trail) instead of creating a trail and its bucket.",
        pattern=r"arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:\d{12}:trail/[A-Za-z0-9._-]{3,128}",
        like="a CloudTrail trail ARN like arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail",
    )
    log_expiration_days: int | None = setting(
        None, "Delete CloudTrail log files from the created bucket after this many days. Unset: keep them.",
        lo=1, hi=36500,
    )  # fmt: skip
    force_destroy_trail_bucket: bool = setting(
        False,
        "Let `pulumi destroy` delete the trail bucket with its logs; false: destroy leaves the bucket, its logs "
        "and its settings in the account (no longer managed by the stack).",
    )
    runtime: str = setting("python3.13", "Lambda runtime (the function runs on arm64).", choices=RUNTIMES)
    timeout_seconds: int = setting(
        300, "Lambda timeout in seconds; the event queue's visibility timeout is this plus 30.", lo=30, hi=900
    )
    memory_size_mb: int = setting(256, "Lambda memory in MB.", lo=128, hi=10240)
    max_concurrency: int | None = setting(
        None,
        "Most concurrent Lambda invocations the event queue may drive, per region. Unset: 2, or 10 when "
        "the deployment covers other accounts (so no account's burst waits behind another's).",
        lo=2,
        hi=1000,
    )
    log_retention_days: int = setting(
        30, "Retention of the Lambda's log group, in days (a CloudWatch Logs value).", choices=LOG_RETENTION_DAYS
    )
    sweep_schedule: str = setting(
        "rate(5 minutes)",
        "EventBridge schedule of the periodic sweep.",
        pattern=_RATE.pattern + "|" + _CRON.pattern,
        like="an EventBridge schedule expression such as 'rate(5 minutes)', 'rate(1 hour)' or 'cron(0/10 * * * ? *)'",
    )
    initial_sweep: bool = setting(
        True, "Invoke a sweep right after deploy (and after code or setting changes), so existing instances are covered."
    )
    alarm_topic_arns: tuple[str, ...] = setting(
        (), "SNS topics the alarms notify; each region's alarms use the topics in that region."
    )
    # --- organization coverage (components/organization.py) ---
    organization_units: tuple[str, ...] = setting(
        (),
        "Organization units (ou-...) or the root (r-...) whose accounts are covered, now and when they join, "
        "through service-managed StackSets. Empty: this account only.",
    )
    call_as: str = setting(
        "DELEGATED_ADMIN",
        "How the stack sets are managed: DELEGATED_ADMIN from a delegated administrator account, "
        "SELF from the organization's management account.",
        choices=("DELEGATED_ADMIN", "SELF"),
    )
    create_member_filters: bool = setting(
        True,
        "With organizationUnits: give every member account and region a traffic mirror filter (all IPv4 "
        "traffic, tagged <tagKey>=default) owned by the deployment; false: each account's own filter is used.",
    )
    shared_target_arns: tuple[str, ...] = setting(
        (),
        "With organizationUnits: this account's traffic mirror target ARNs to share with the organization "
        "units through AWS RAM (each in one of the regions).",
    )
    share_tagged_targets: bool = setting(
        True,
        "With organizationUnits: also share this account's targets tagged with the tag key as sensors "
        "(found at deploy time; run pulumi up again after adding one).",
    )
    operator_principal_arns: tuple[str, ...] = setting(
        (),
        "With organizationUnits: IAM role or user ARNs (wildcards allowed in the name) trusted by a read-only "
        "role in every member account, <memberRoleName>-read-only, so that people can run `traffic-mirror plan` "
        "and `coverage` with --account and --member-role-name <that role> using their own credentials. "
        "Empty: no such role.",
    )
    sensors: tuple[str, ...] = setting(
        (),
        "Sensors to create traffic mirror targets for, each an NLB ARN, REGION/eni-... or REGION/vpce-... "
        "(a Gateway Load Balancer endpoint), optionally followed by =ROUTE; each target is tagged with the tag "
        "key (value true, or the route): a sensor the operator designated.",
    )
    create_filter: bool = setting(
        True,
        "Create the deployment's own traffic mirror filter in each region and give its id to the handler "
        "(not when filter_id is set); false: the handler picks the region's filter.",
    )
    filter_exclude_vxlan: bool = setting(
        True, "The owned filter rejects UDP 4789 (VXLAN) both ways: copies on their way to sensors are not mirrored."
    )
    filter_mirror_amazon_dns: bool = setting(
        False, "The owned filter also mirrors Amazon DNS traffic (AWS's amazon-dns network service)."
    )
    filter_rules: tuple[str, ...] = setting(
        (),
        "Extra rules of the owned filter, evaluated before its defaults: '<ingress|egress> <accept|reject> "
        "<protocol> <source CIDR> <destination CIDR> [port[-port]]'; at most 4 (AWS allows 10 per filter).",
    )
    release_on_destroy: bool = setting(
        True,
        "`pulumi destroy` first deletes every session the deployment created (its ManagedBy tag) in each "
        "region, then the function.",
    )
    reserve_concurrency: bool = setting(
        True,
        "Reserve max_concurrency + 2 concurrent executions for the function, so event bursts never starve "
        "the sweep (turn off in accounts with a very low concurrency quota).",
    )
    dashboard: bool = setting(
        True,
        "A CloudWatch dashboard per region: coverage, sessions created/failed/deferred, events, sweep duration, "
        "dead letters.",
    )
    coverage_alarm_percent: int | None = setting(
        None, "Alarm when a region's coverage stays below this percent. Unset: no coverage alarm.", lo=1, hi=100
    )
    allow_managed_by_change: bool = setting(
        False,
        "Allow changing managed_by on a running deployment (its old sessions stay, new ones are added beside "
        "them); refused at preview otherwise.",
    )


HANDLER_SPECS: tuple[Spec, ...] = tuple(s for s in handler_settings.SPECS if s.component)
"""The handler's settings the component takes (in the function's environment, or its logging config)."""
DEPLOYMENT_SPECS: tuple[Spec, ...] = handler_settings.specs_of(Deployment, env_prefix=None)
ARG_SPECS: tuple[Spec, ...] = (DEPLOYMENT_SPECS[0], *HANDLER_SPECS, *DEPLOYMENT_SPECS[1:])
"""Every component argument, in the order the docs list them (regions first)."""
_ARG_OF: Mapping[str, Spec] = {s.name: s for s in ARG_SPECS}
REQUIRED = frozenset({"regions"})


@dataclass(frozen=True)
class Options:
    """The component's arguments after validation, with every default filled in."""

    deployment: Deployment
    settings: Settings = field(default_factory=Settings)
    """The handler's settings as deployed (the platform-set ones stay unset here)."""
    home_region: str = ""
    sensors: tuple[Sensor, ...] = ()
    """`deployment.sensors`, parsed."""

    @property
    def regions(self) -> tuple[str, ...]:
        return self.deployment.regions

    @property
    def owns_filter(self) -> bool:
        """The deployment creates its own filter per region unless told to use one (or none)."""
        return self.deployment.create_filter and self.settings.filter_id is None

    @property
    def filter_rules(self) -> tuple[mirror_filter.Rule, ...]:
        return mirror_filter.rules(self.deployment.filter_rules, self.deployment.filter_exclude_vxlan)

    @property
    def max_concurrency(self) -> int:
        """The event queue's cap (`resolve` fills in the default for one or several accounts)."""
        return self.deployment.max_concurrency or MAX_CONCURRENCY

    @property
    def reserved_concurrency(self) -> int | None:
        """The event queue's cap, plus one for the scheduled sweep and one for a sweep by hand, the
        initial sweep or the teardown hook: a burst of events can never starve the sweep."""
        return self.max_concurrency + 2 if self.deployment.reserve_concurrency else None

    @property
    def partition(self) -> str:
        return PARTITION_OF_REGION[self.home_region]

    @property
    def organization(self) -> bool:
        """Organization coverage is on: member accounts get the footprint through StackSets."""
        return bool(self.deployment.organization_units)

    @property
    def create_trail(self) -> bool:
        return self.deployment.existing_trail_arn is None

    def topics_in(self, region: str) -> list[str]:
        """Alarm topics usable from `region`: CloudWatch alarms only notify topics in their own region."""
        return [arn for arn in self.deployment.alarm_topic_arns if arn.split(":")[3] == region]

    def handler_environment(self) -> dict[str, str]:
        """The handler's variables, except MIRROR_ROLE_ARN (an output, added by the component).

        Only settings that differ from the handler's own defaults are set: the handler holds the
        defaults, so a deployment that changes nothing sets nothing (and upgrades pick up new ones).
        """
        env = {}
        for spec in HANDLER_SPECS:
            value = getattr(self.settings, spec.name)
            text = declarations.to_env(value)
            if spec.environment and text is not None and value != spec.default:
                env[spec.env] = text
        return env

    def settings_hash(self) -> str:
        """Changes whenever a setting that changes what the sweep would do changes."""
        blob = json.dumps(self.handler_environment(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _value(spec: Spec, raw: Any) -> Any:
    """One argument, checked by its declaration; errors name the argument."""
    try:
        if spec.name == "regions":
            return _regions(raw)
        if spec.name == "home_region":
            return None if raw is None or raw == "" else _region(raw, "home_region")
        if spec.kind is tuple:
            return _strings(raw, spec.name)
        return declarations.coerce(spec, raw)
    except SettingsError as error:
        raise ConfigError(str(error)) from None


OUTPUT_ARGUMENT = (
    "comes from another resource's output (a pulumi Output); the component decides what to create from "
    "its arguments, so each must be a plain value known at preview: a literal or a stack config value"
)
"""Why an Output-valued argument is refused (from Python, or from another language through the provider)."""


def is_output(value: Any) -> bool:
    """An Output, or a list holding one: unknown at preview, and not a value `resolve` can check."""
    if isinstance(value, pulumi.Output):
        return True
    return isinstance(value, list | tuple) and any(isinstance(item, pulumi.Output) for item in value)


def resolve(args: Mapping[str, Any], default_home_region: str | None = None) -> Options:
    """Validate the component's arguments and fill in defaults; raise ConfigError on the first bad one."""
    for key, value in args.items():
        if is_output(value):
            raise ConfigError(f"{key} {OUTPUT_ARGUMENT}")
    unknown = sorted(set(args) - set(_ARG_OF))
    if unknown:
        hints = "".join(suggest(key, list(_ARG_OF)) for key in unknown)
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)}{hints}")
    values = {spec.name: _value(spec, args.get(spec.name)) for spec in ARG_SPECS}
    if values["max_concurrency"] is None:
        # Several accounts share one queue: enough containers that no account's burst waits behind
        # another's (each account has its own EC2 budget; measured in the scale benchmark).
        several = values["organization_units"] or values["accounts"]
        values["max_concurrency"] = ORGANIZATION_MAX_CONCURRENCY if several else MAX_CONCURRENCY
    deployment = Deployment(**{s.name: values[s.name] for s in DEPLOYMENT_SPECS})
    settings = Settings(**{s.name: values[s.name] for s in HANDLER_SPECS})

    regions = deployment.regions
    home_region = _region(deployment.home_region or default_home_region or regions[0], "home_region")
    if PARTITION_OF_REGION[home_region] != PARTITION_OF_REGION[regions[0]]:
        raise ConfigError(f"home_region {home_region!r} is not in the same AWS partition as the regions")
    for arn in deployment.alarm_topic_arns:
        match = _TOPIC_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise ConfigError(f"alarm_topic_arns: {arn!r} is not an SNS topic ARN")
        if match.group(2) not in regions:
            raise ConfigError(
                f"alarm_topic_arns: {arn!r} is in {match.group(2)}, which is not one of the regions; "
                "CloudWatch alarms can only notify a topic in their own region"
            )
    _check_organization(deployment, settings.member_role_name, PARTITION_OF_REGION[home_region])
    if deployment.organization_units and settings.accounts is None:
        # The handler covers the accounts under those units (the hub's own with its own credentials),
        # not the management account or accounts elsewhere, where no member role was deployed.
        units = ",".join(deployment.organization_units)
        settings = dataclasses.replace(settings, accounts=f"organization:{units}")
    try:
        sensors = parse_sensors(deployment.sensors, regions)
        mirror_filter.rules(deployment.filter_rules, deployment.filter_exclude_vxlan)  # AWS's 10-rule limit
    except (SensorError, mirror_filter.FilterRuleError) as exc:
        raise ConfigError(str(exc)) from None
    return Options(deployment, settings, home_region, sensors)


def _check_organization(deployment: Deployment, member_role_name: str, partition: str) -> None:
    """Organization coverage: OU/root ids, shared target and operator ARNs are checked before any resource."""
    for unit in deployment.organization_units:
        if not isinstance(unit, str) or not _ORGANIZATION_UNIT.match(unit):
            raise ConfigError(
                f"organization_units: {unit!r} is not an organization unit id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
            )
    if len(set(deployment.organization_units)) != len(deployment.organization_units):
        raise ConfigError("organization_units lists an id twice; list each once")
    if deployment.shared_target_arns and not deployment.organization_units:
        raise ConfigError("shared_target_arns needs organization_units: targets are shared with those units")
    for arn in deployment.shared_target_arns:
        match = _TARGET_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise ConfigError(
                f"shared_target_arns: {arn!r} is not a traffic mirror target ARN "
                "(arn:aws:ec2:<region>:<account>:traffic-mirror-target/tmt-...)"
            )
        if match.group(2) not in deployment.regions:
            raise ConfigError(f"shared_target_arns: {arn!r} is in {match.group(2)}, which is not one of the regions")
    _check_operators(deployment, member_role_name, partition)


def _check_operators(deployment: Deployment, member_role_name: str, partition: str) -> None:
    """Operator principals: IAM role or user ARNs of this partition, for a role name IAM accepts."""
    operators = deployment.operator_principal_arns
    if operators and not deployment.organization_units:
        raise ConfigError(
            "operator_principal_arns needs organization_units: the read-only role is deployed to their accounts"
        )
    for arn in operators:
        match = _OPERATOR_ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise ConfigError(
                f"operator_principal_arns: {arn!r} is not an IAM role or user ARN "
                "(arn:aws:iam::<account>:role/<name> or user/<name>; an assumed-role session's ARN is not a principal)"
            )
        if match.group(1) != partition:
            raise ConfigError(f"operator_principal_arns: {arn!r} is not in the deployment's partition ({partition})")
    if len(set(operators)) != len(operators):
        raise ConfigError("operator_principal_arns lists an ARN twice; list each once")
    name = permissions.read_only_role_name(member_role_name)
    if operators and len(name) > permissions.ROLE_NAME_MAX:
        raise ConfigError(
            f"operator_principal_arns: the read-only role's name {name!r} would be longer than IAM's "
            f"{permissions.ROLE_NAME_MAX} characters; shorten member_role_name"
        )


# Pulumi.yaml can't declare an optional key without a default, so "unset" is spelled "" or 0
# (0 only where it is outside the option's range).
def _unset(spec: Spec, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return value is None
    if value == "":
        return True
    zero_is_a_value = spec.lo is not None and spec.lo <= 0
    return value == 0 and spec.optional and not zero_is_a_value


def args_from_config(config: pulumi.Config) -> dict[str, Any]:
    """Read the stack's config (camelCase keys) into component arguments, leaving out unset values.

    Type errors name the config key; range and value checks happen in `resolve`, for config
    and direct callers alike.
    """
    args: dict[str, Any] = {}
    for spec in ARG_SPECS:
        key = declarations.config_key(spec)
        value: Any
        try:
            if spec.kind is tuple:
                value = config.get_object(key)
            elif spec.kind is int:
                value = config.get_int(key)
            elif spec.kind is float:
                value = config.get_float(key)
            elif spec.kind is bool:
                value = config.get_bool(key)
            else:
                value = config.get(key)
        except pulumi.ConfigTypeError as exc:
            raise ConfigError(f"config {key}: {exc}") from None
        except json.JSONDecodeError:
            raise ConfigError(
                f"config {key} must be a list; set it with `pulumi config set --path '{key}[0]' VALUE`"
            ) from None
        if spec.name in REQUIRED:
            args[spec.name] = value  # resolve() explains what to set when it is missing
        elif not _unset(spec, value):
            args[spec.name] = value
    return args


CONFIG_KEYS: Mapping[str, str] = {declarations.config_key(spec): spec.name for spec in ARG_SPECS}
"""Stack-config key (camelCase, as in Pulumi.yaml) -> component argument (snake_case)."""
