"""Plain data shared by the pure core (events, planner) and the shell (inventory, apply).

Everything here is immutable and free of boto3, so the planner can be tested on its own.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MEMBER_SESSION_NAME = "traffic-mirror-automation"
"""The role session name of the handler in member accounts: CloudTrail shows it as the caller."""

TargetKind = Literal["network-interface", "network-load-balancer", "gateway-load-balancer-endpoint"]
ActionKind = Literal["create", "modify", "delete"]
Outcome = Literal["create", "modify", "delete", "mirrored", "skipped"]


@dataclass(frozen=True)
class Source:
    """One ENI that could be a mirror source, with what selection and tagging need."""

    eni_id: str
    instance_id: str
    instance_type: str
    subnet_id: str
    vpc_id: str
    az: str
    instance_tags: Mapping[str, str] = field(default_factory=dict)
    eni_tags: Mapping[str, str] = field(default_factory=dict)
    interface_type: str = "interface"
    trigger: str = ""
    """Id of the event that brought this ENI in; seeds the ClientToken."""
    attached_at: float | None = None
    """When the ENI was attached (epoch seconds), where known: the sweep's grace period uses it."""
    account: str = ""
    """The account that owns the ENI ("" = the handler's own)."""
    az_id: str = ""
    """The AZ's id (use1-az1): AZ names differ per account, ids do not. "" when not needed."""

    @property
    def name(self) -> str | None:
        return self.instance_tags.get("Name") or None


@dataclass(frozen=True)
class Target:
    target_id: str
    kind: TargetKind
    resource_id: str
    vpc_id: str | None
    subnet_id: str | None
    az: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""
    """The account that owns the target ("" = the account the sessions are made in)."""
    az_id: str = ""
    """The AZ id of an ENI or GWLB endpoint target, where the owner's zone map was read."""


@dataclass(frozen=True)
class MirrorFilter:
    filter_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Session:
    session_id: str
    eni_id: str
    target_id: str
    filter_id: str
    number: int
    tags: Mapping[str, str] = field(default_factory=dict)
    owner: str = ""
    """The account that made the session (its source ENI's account). A target owner's listing
    also shows the sessions other accounts made on its shared targets: those are never its own
    to plan, count or touch."""


@dataclass(frozen=True)
class Inventory:
    """Targets and filters of one region of one account: read once, cached for a short TTL.

    `targets` are what sessions made here may use (the candidates `sensor_owners` allows, each
    read in the account that owns it); the rest says what the listing showed beside them.
    """

    targets: tuple[Target, ...]
    filters: tuple[MirrorFilter, ...]
    fetched_at: float = 0.0
    zone_ids: Mapping[str, str] = field(default_factory=dict)
    """AZ name -> AZ id in this account (read only when several accounts are covered)."""
    sensor_enis: frozenset[str] = frozenset()
    """This account's ENIs that are traffic mirror targets: never mirrored themselves."""
    shared: Mapping[str, str] = field(default_factory=dict)
    """Targets another account owns that this account's listing shows (target id -> owner): what
    RAM shares with it right now. Never described here: their details are read in their owner."""
    not_shared: tuple[Target, ...] = ()
    """Designated sensors of an allowed owner that this account's listing does not show: they
    cannot be used here until their owner shares them (reported as `not-shared`)."""

    @property
    def target_eni_ids(self) -> frozenset[str]:
        """This account's ENIs that are sensors (its own targets', usable or not): never mirrored."""
        own = (t.resource_id for t in self.targets if t.kind == "network-interface" and not t.owner)
        return self.sensor_enis | frozenset(own)

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.target_id == target_id), None)

    def has_filter(self, filter_id: str) -> bool:
        return any(f.filter_id == filter_id for f in self.filters)


@dataclass(frozen=True)
class Action:
    """One write against EC2, fully decided by the planner."""

    kind: ActionKind
    eni_id: str
    session_id: str | None = None
    target_id: str | None = None
    filter_id: str | None = None
    session_number: int | None = None
    client_token: str | None = None
    name: str | None = None
    description: str = ""
    vni: int | None = None
    """VXLAN network id for a create (None: MIRROR_VNI, or AWS picks)."""


@dataclass(frozen=True)
class Decision:
    """What the planner decided for one ENI, and why (one log line each)."""

    eni_id: str
    instance_id: str
    outcome: Outcome
    reason: str
    actions: tuple[Action, ...] = ()
    target_id: str | None = None
    filter_id: str | None = None
    vpc_id: str = ""
    az: str = ""
    instance_type: str = ""
    out_of_scope: str | None = None
    """None: the automation means to mirror this ENI; else why it is excluded by design, as a
    stable identifier (one of `planner.OUT_OF_SCOPE`), so coverage never counts it."""
    problem: str | None = None
    """Why an in-scope ENI cannot be mirrored as configured, as a stable identifier (one of
    `planner.PROBLEMS`): configuration errors are reported by kind, never parsed from `reason`."""
    kept_session: str | None = None
    """The managed session that already mirrors this ENI (outcome `mirrored`, or kept while
    duplicates are removed)."""
    session_number: int | None = None
    """Number of the session created, kept or moved."""
    tier: str | None = None
    """Trust tier of the chosen target (one of `planner.TIERS`): in the source's own VPC, or
    `designated-cross-vpc` (another VPC, a sensor the operator tagged)."""
    priority: int = 0
    """The ENI's priority under a session budget (MIRROR_PRIORITY_TAG_KEY; untagged: 0)."""
    priority_error: str | None = None
    """Why the priority tag was not understood (not an integer): a configuration problem of this
    ENI, reported; it does not stop mirroring (the priority is 0)."""
    attached_at: float | None = None
    """When the ENI was attached, where known: of two ENIs of equal priority, the older keeps its session."""


@dataclass(frozen=True)
class Learned:
    """What EC2 told this container, as the planner needs it."""

    refused_types: frozenset[str] = frozenset()
    """Instance types EC2 answered NetworkInterfaceNotSupported for."""
    full_targets: frozenset[str] = frozenset()
    """Targets that recently answered TrafficMirrorSourcesPerTargetLimitExceeded."""
    session_quota: int | None = None
    """Sessions the account held when AWS last refused one for its session quota
    (TrafficMirrorSessionLimitExceeded), recently: None when it has not."""
