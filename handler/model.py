"""Plain data shared by the pure core (events, planner) and the shell (inventory, apply).

Everything here is immutable and free of boto3, so the planner can be tested on its own.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from . import kinds

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
    private_ip: str = ""
    """The ENI's primary private IPv4 address: the outer source address of its mirrored copies."""
    security_groups: tuple[str, ...] = ()
    """The ENI's security groups (a sensor's rule may admit VXLAN from a group)."""
    kind: str = kinds.INSTANCES
    """Its kind of source (`kinds.KINDS`, or `kinds.OTHER`): an instance's ENI, or a service's
    (instance_id and instance_type are "" then; `instance_tags` are its load balancer's)."""
    service: str = ""
    """A service's ENI: the service in the kinds table (`alb`, `clb`, `rds`)."""
    resource: str = ""
    """A service's ENI: what it belongs to, as reports name it and its tags are read by (an ALB's
    ARN, a Classic Load Balancer's name; "" for a database: its ENI does not say which)."""

    @property
    def name(self) -> str | None:
        """The Name tag of its instance or load balancer (the ENI's own is not a session's name)."""
        return self.instance_tags.get("Name") or None

    @property
    def owner(self) -> str:
        """What `instance_tags` belong to, in words: "instance", "load balancer", "database"."""
        return kinds.owner(self.kind)

    @property
    def label(self) -> str:
        """Who people know this ENI by: its instance, or its service's resource."""
        if self.instance_id:
            return self.instance_id
        if self.resource:
            return f"{self.service} {self.resource.rsplit(':loadbalancer/', 1)[-1]}"
        return self.service or self.kind


@dataclass(frozen=True)
class Health:
    """Whether a target can receive packets now, and how many sources it takes (`handler/health.py`).

    Read with the inventory (batched, cached with it). The default is what a target whose health
    nobody read looks like: usable, no limit (unit tests build targets this way).
    """

    usable: bool = True
    why: str | None = None
    """Why not usable, as a stable identifier (one of `health.WHY`); None when usable."""
    detail: str = ""
    """The same in words, with the ids (logged, shown by the CLI)."""
    capacity: int | None = None
    """Sources the target accepts (ENI targets: 10, or 100 on AWS's list of large sizes); None: no limit."""
    zones: frozenset[str] | None = None
    """NLB targets without cross-zone load balancing: the AZ names (in the owner's account) that have
    a healthy target; a source elsewhere is not served. None: every AZ."""
    zone_ids: frozenset[str] | None = None
    """The same zones by AZ id (filled when zone ids were read: zones are compared across accounts)."""
    instance_id: str = ""
    """ENI targets: the sensor instance the ENI is attached to (events name instances)."""
    target_groups: frozenset[str] = frozenset()
    """NLB targets: the target groups behind its UDP 4789 listener (DeregisterTargets names them)."""
    backends: frozenset[str] = frozenset()
    """NLB targets: the targets registered behind it (instance ids or addresses; a state change names them)."""


USABLE = Health()


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
    security_groups: tuple[str, ...] = ()
    """An ENI target's security groups (they must admit VXLAN, UDP 4789, from its sources)."""
    health: Health = USABLE
    """Read in the account that owns the target, with its inventory."""


@dataclass(frozen=True)
class FilterRule:
    """One rule of a traffic mirror filter, as DescribeTrafficMirrorFilters shows it."""

    direction: Literal["ingress", "egress"]
    number: int
    action: Literal["accept", "reject"]
    protocol: int | None = None
    """IANA protocol number; None: every protocol."""
    source_cidr: str = "0.0.0.0/0"
    destination_cidr: str = "0.0.0.0/0"
    source_ports: tuple[int, int] | None = None
    destination_ports: tuple[int, int] | None = None


@dataclass(frozen=True)
class MirrorFilter:
    filter_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    rules: tuple[FilterRule, ...] = ()


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
    to plan or touch (they count against the target's capacity)."""


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
    sessions_on: Mapping[str, tuple[Session, ...]] = field(default_factory=dict)
    """ENI target id -> the sessions on it, as its owner lists them (other accounts' included):
    the planner counts sources against the target's capacity from these."""
    sensor_enis: frozenset[str] = frozenset()
    """This account's ENIs that are traffic mirror targets: never mirrored themselves."""
    shared: Mapping[str, str] = field(default_factory=dict)
    """Targets another account owns that this account's listing shows (target id -> owner): what
    RAM shares with it right now. Never described here: their details are read in their owner."""
    not_shared: tuple[Target, ...] = ()
    """Designated sensors of an allowed owner that this account's listing does not show: they
    cannot be used here until their owner shares them (reported as `not-shared`)."""
    listed: tuple[Target, ...] = ()
    """The other targets this account's listing shows, which sessions made here may not use: its
    own when MIRROR_SENSOR_OWNERS does not allow it, and other accounts' shared with it (with their
    details when read in an allowed owner, else only their id, kind and owner). A session of
    another tool to one of them is reported (`planner.untrusted_sessions`)."""
    allowed_owners: frozenset[str] | None = None
    """The accounts MIRROR_SENSOR_OWNERS allows (None: this account's own targets only)."""
    account: str = ""
    """This place's account id, when several accounts are covered ("" = not needed)."""

    @property
    def target_eni_ids(self) -> frozenset[str]:
        """This account's ENIs that are sensors (its own targets', usable or not): never mirrored."""
        own = (t.resource_id for t in self.targets if t.kind == "network-interface" and not t.owner)
        return self.sensor_enis | frozenset(own)

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.target_id == target_id), None)

    def seen(self, target_id: str) -> Target | None:
        """Any target this place knows of: usable, designated but not shared, or only listed."""
        return next((t for t in (*self.targets, *self.not_shared, *self.listed) if t.target_id == target_id), None)

    def has_filter(self, filter_id: str) -> bool:
        return any(f.filter_id == filter_id for f in self.filters)

    def sources_on(self, target_id: str) -> frozenset[str]:
        """Source ENIs of the sessions on this target, as read with the inventory."""
        return frozenset(s.eni_id for s in self.sessions_on.get(target_id, ()))


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
class Untrusted:
    """A session the automation did not create, on a covered ENI, to a target not trusted for it."""

    session_id: str
    eni_id: str
    instance_id: str
    number: int
    target_id: str
    target_owner: str
    """The target's account ("" = the ENI's own account; unknown targets: "")."""
    finding: str
    """Why it is not trusted, as a stable identifier (one of `planner.UNTRUSTED`)."""
    reason: str
    target_kind: str = ""
    """The target's kind, when this place can see the target."""
    intercepts: bool = False
    """Numbered below our session on the ENI: AWS gives it the packets its filter accepts first."""


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
    untrusted: tuple[Untrusted, ...] = ()
    """Sessions of other tools on this ENI whose target is not trusted for it: never touched,
    always reported (a session to one's own target is a known way to copy traffic out)."""
    repairs: str | None = None
    """The problem this decision's actions repair (`planner.TARGET_UNHEALTHY` for a failover move):
    the ENI has it until they are applied, so a plan not applied counts it as that problem."""
    kind: str = kinds.INSTANCES
    """The source's kind (`Source.kind`): coverage counts by it."""
    resource: str = ""
    """A service's ENI: what it belongs to (`Source.label`, e.g. `alb app/web/50dc6c495c0c9188`)."""


@dataclass(frozen=True)
class Learned:
    """What EC2 told this container, as the planner needs it."""

    refused_types: frozenset[str] = frozenset()
    """Instance types EC2 answered NetworkInterfaceNotSupported for."""
    full_targets: frozenset[str] = frozenset()
    """Targets that recently answered TrafficMirrorSourcesPerTargetLimitExceeded."""
    refused_enis: frozenset[str] = frozenset()
    """Service ENIs (no instance type to remember) EC2 answered NetworkInterfaceNotSupported for."""
    session_quota: int | None = None
    """Sessions the account held when AWS last refused one for its session quota
    (TrafficMirrorSessionLimitExceeded), recently: None when it has not."""
