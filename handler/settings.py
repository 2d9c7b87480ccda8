"""Settings, each declared once: a field of `Settings` with its `Spec` (doc, range, variable).

Everything else is derived from these declarations: the handler reads its environment with
`load()`; the Pulumi component derives its arguments, stack-config keys, validation and the
function's environment from `SPECS` (see `components/config.py`), and the operator CLI its
override flags from the specs marked `cli`, both through `common/declarations.py` (not shipped
in the Lambda's archive). A bad value raises `SettingsError` naming the
variable (or the argument), so a misconfigured function fails loudly at cold start instead of
mirroring to the wrong place.

Adding a setting: one field below (then `make generate` refreshes the component's argument
types, `Pulumi.yaml` and the README's tables, which the tests check).
"""

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import kinds

MANAGED_TAG_KEY = "ManagedBy"
"""Tag key that marks a session as created (and owned) by this tool; the IAM policy keys on it."""

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
"""Lambda's application log levels (the component's `log_level`, Lambda's AWS_LAMBDA_LOG_LEVEL)."""

_TRUE = frozenset({"1", "true", "yes", "on", "enabled"})
_FALSE = frozenset({"0", "false", "no", "off", "disabled", ""})


class _Same:
    """Marks `Spec.deployed` as "the handler's own default"."""

    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable or argument."""


@dataclass(frozen=True)
class Spec:
    """How one setting is documented, checked and passed around."""

    doc: str
    """One line for the README, the component's argument and `Pulumi.yaml`."""
    env: str = ""
    """Environment variable; "" = MIRROR_<FIELD NAME>. Filled in by `_specs`."""
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str | None = None
    """A regular expression the whole value must match (with `like` saying what that means)."""
    like: str = ""
    lower: bool = False
    """Compared and stored in lower case."""
    component: bool = True
    """Settable through the Pulumi component (else: set by the platform or the component itself)."""
    environment: bool = True
    """The component passes it to the function as an environment variable."""
    deployed: Any = SAME
    """The component's default when it differs from the handler's own."""
    cli: bool = False
    """The operator CLI has a `--flag` that overrides it."""
    name: str = ""
    kind: Any = None
    optional: bool = False
    default: Any = None

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.lo is not None and self.hi is not None:
            return f"between {_num(self.lo)} and {_num(self.hi)}"
        return self.like

    def check(self, value: Any, label: str) -> Any:
        """Range, choices and pattern of an already-typed value (None = unset, always fine)."""
        if value is None:
            return None
        ranged = self.kind in (int, float) and self.lo is not None and self.hi is not None
        if ranged and not self.lo <= value <= self.hi:
            raise SettingsError(f"{label} must be {self.describe_range()}, got {_num(value)}")
        if self.choices and value not in self.choices:
            shown = ", ".join(str(c) for c in self.choices)
            raise SettingsError(f"{label} must be one of {shown}, got {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, str(value)):
            raise SettingsError(f"{label} must be {self.like}, got {value!r}")
        return value

    def parse(self, raw: str | None, label: str | None = None) -> Any:
        """An environment string -> the typed, checked value ("" or absent = the default)."""
        label = label or self.env
        text = (raw or "").strip()
        if self.kind is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return self.default if not text else False
            raise SettingsError(f"{label} must be true or false, got {text!r}")
        if not text:
            return self.default
        if self.kind is int:
            try:
                value: Any = int(text)
            except ValueError:
                raise SettingsError(f"{label} must be an integer {self.describe_range()}, got {text!r}") from None
        elif self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise SettingsError(f"{label} must be a number {self.describe_range()}, got {text!r}") from None
        else:
            value = text.lower() if self.lower else text
        return self.check(value, label)

def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def setting(default: Any, doc: str, **spec: Any) -> Any:
    """A `Settings` field: its default and its `Spec`."""
    return field(default=default, metadata={"spec": Spec(doc=doc, **spec)})


@dataclass(frozen=True)
class Settings:
    """The handler's settings, validated once per container (`load`)."""

    tag_key: str = setting(
        "Mirror",
        "Instance/ENI tag key the handler reads (opt in with scope=tagged, opt out with value false, "
        "any other value routes to sensors tagged the same).",
        pattern=r"(?i)(?!aws:).{1,128}",
        like="a tag key of 1-128 characters, not starting with aws:",
        cli=True,
    )
    filter_id: str | None = setting(
        None,
        "Traffic mirror filter (tmf-...) for new sessions in this account (a member account's filter is "
        "chosen among its own). Unset: the handler picks the region's filter.",
        pattern=r"(tmf|traf-mir-fil)-[0-9a-zA-Z]+",  # the second prefix is moto's
        like="a traffic mirror filter id like tmf-0123456789abcdef0",
        cli=True,
    )
    scope: str = setting(
        "all",
        'all: every ENI not opted out is mirrored; tagged: only ENIs/instances tagged with the tag key.',
        choices=("all", "tagged"),
        lower=True,
        cli=True,
    )
    sources: str = setting(
        kinds.INSTANCES,
        "Which ENIs are mirror sources: comma-separated from instances, load-balancers (Application and "
        "Classic Load Balancers' nodes), databases (RDS), or all (every kind AWS can mirror). Unset: instances.",
        pattern=kinds.PATTERN,
        like="instances, load-balancers, databases (comma-separated) or all",
        lower=True,
        cli=True,
    )
    session_number: int = setting(
        1, "Session number for new sessions; lower numbers take precedence on an ENI.", lo=1, hi=32766
    )
    vni: int | None = setting(
        None, "VXLAN network identifier for new sessions. Unset: AWS assigns one.", lo=1, hi=16777215
    )
    packet_length: int | None = setting(
        None, "Bytes of each packet to mirror. Unset: the whole packet.", lo=1, hi=8500
    )
    managed_by: str = setting(
        "traffic-mirror-automation",
        "Value of the ManagedBy tag on created sessions; only sessions carrying it are ever changed or deleted.",
        pattern=r".{1,256}",
        like="a tag value of 1-256 characters",
        cli=True,
    )
    release_on_stop: bool = setting(
        False, "Delete an instance's sessions when it stops or an ENI is detached (AWS bills stopped ones)."
    )
    dry_run: bool = setting(False, "Log what the handler would do without creating or deleting sessions.")
    cache_ttl_seconds: float = setting(
        60.0, "How long a warm function reuses the region's targets and filters, in seconds.", lo=0, hi=3600
    )
    max_workers: int = setting(8, "Writes (create/modify/delete) in flight at once per invocation.", lo=1, hi=64)
    deadline_margin_seconds: float = setting(
        15.0,
        "Time kept free before the invocation's deadline: no write or round of reads starts later"
        " (at most 60% of the invocation's budget, so short invocations still make progress).",
        lo=1,
        hi=600,
    )
    sweep_grace_seconds: float = setting(
        0.0,
        "The scheduled sweep leaves ENIs attached less than this many seconds ago to their own events.",
        lo=0,
        hi=3600,
        deployed=60,
    )
    accounts: str | None = setting(
        None,
        "Accounts the handler covers besides its own: comma-separated account ids; 'organization' for every "
        "ACTIVE account of the organization; or 'organization:' and OU/root ids for the accounts under those "
        "units (the management account is left out unless it is this one). Unset: this account only.",
        pattern=r"organization(:(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})(,(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32}))*)?|\d{12}(,\d{12})*",
        like="account ids, 'organization', or 'organization:ou-...,r-...'",
    )
    sensor_owners: str | None = setting(
        None,
        "Whose traffic mirror targets may serve a covered ENI: 'hub' (only this account's sensors designated by "
        "the tag key and shared with the ENI's account), 'hub,member' (also the ENI's own account's targets), or "
        "account ids (sensor accounts; 'hub' and 'member' may be listed beside them). Unset: 'hub' when other "
        "accounts are covered (accounts), else this account's own targets.",
        pattern=r"(hub|member|\d{12})(,(hub|member|\d{12}))*",
        like="'hub', 'hub,member', or account ids",
        lower=True,
    )
    member_role_name: str = setting(
        "traffic-mirror-automation-member",
        "Role the handler assumes in another account (arn:<partition>:iam::<account>:role/<name>).",
        pattern=r"[\w+=,.@-]{1,64}",
        like="an IAM role name",
        cli=True,
    )
    vni_per_vpc: bool = setting(
        False,
        "Give each (account, VPC) its own deterministic VXLAN network id, so sensors can tell overlapping "
        "CIDRs apart (overrides vni).",
    )
    max_sessions: int | None = setting(
        None,
        "The most traffic mirror sessions the automation keeps in one account and region: over it, the "
        "highest priorities are mirrored (priority_tag_key) and the rest wait. Unset: no cap of ours "
        "(AWS's quota of 10,000 sessions per account still applies, handled the same way).",
        lo=1,
        hi=10000,
        cli=True,
    )
    priority_tag_key: str = setting(
        "MirrorPriority",
        "Instance/ENI tag key whose integer value is an ENI's priority under a session budget (the ENI's "
        "own tag over its instance's or load balancer's; untagged: 0; higher wins).",
        pattern=r"(?i)(?!aws:).{1,128}",
        like="a tag key of 1-128 characters, not starting with aws:",
        cli=True,
    )
    loss_alarm_percent: float = setting(
        5.0,
        "Mirror loss (the share of mirrored bytes AWS skipped, per AZ, over the last hour) above which the "
        "sweep's loss line is a warning and the loss alarm fires.",
        lo=0,
        hi=100,
    )
    log_level: str = setting(
        "INFO",
        "Lambda application log level.",
        env="AWS_LAMBDA_LOG_LEVEL",
        choices=LOG_LEVELS,
        environment=False,  # Lambda's logging configuration sets the variable
    )
    role_arn: str | None = setting(
        None,
        "The function's execution role (set by the component): calls it made are its own, never acted on.",
        pattern=r"arn:[a-z-]+:iam::\d{12}:role/.+",
        like="an IAM role ARN",
        component=False,
    )
    function_name: str | None = setting(
        None, "The function's name (set by Lambda).", env="AWS_LAMBDA_FUNCTION_NAME", component=False
    )

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds of source ENI MIRROR_SOURCES selects (`kinds.KINDS`)."""
        return kinds.parse(self.sources)


def specs_of(cls: type, env_prefix: str | None = "MIRROR_") -> tuple[Spec, ...]:
    """The `Spec` of every field of a dataclass declared with `setting`, filled in from the field:
    its name, type (`int | None` -> int, optional; `tuple[str, ...]` -> tuple), default and, with
    `env_prefix`, its variable (None: not a variable, e.g. the component's own options)."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = isinstance(hint, types.UnionType) and len(args) == 1
        kind = args[0] if optional else (tuple if typing.get_origin(hint) is tuple else hint)
        spec: Spec = f.metadata["spec"]
        env = spec.env or (f"{env_prefix}{f.name.upper()}" if env_prefix is not None else "")
        environment = spec.environment and env_prefix is not None
        specs.append(
            dataclasses.replace(
                spec, env=env, name=f.name, kind=kind, optional=optional, default=f.default, environment=environment
            )
        )
    return tuple(specs)


SPECS: tuple[Spec, ...] = specs_of(Settings)
"""Every setting, in declaration order."""
SPEC_OF: Mapping[str, Spec] = {s.name: s for s in SPECS}


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting's variable; raise SettingsError on the first bad one."""
    env = os.environ if env is None else env
    return Settings(**{s.name: s.parse(env.get(s.env)) for s in SPECS})
