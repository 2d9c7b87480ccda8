"""What a container keeps (`Container`) and what one piece of work needs (`Context`).

A Lambda container lives for many invocations: its clients, the targets-and-filters cache, the
instance types (and service ENIs) EC2 refused and the targets that said they are full are worth keeping, and they
all live here, with one `reset`. Everything else is passed: the planner gets what the container
learned as plain data (`Learned`), never by reading it behind the caller's back.
"""

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from . import readahead
from .clients import RETRY_CONFIG, Clients, Place
from .model import Inventory, Learned
from .settings import Settings

FLEET_WORKERS = 8
"""Accounts a multi-account sweep covers at once (each with its own clients and rate limiters)."""
FULL_TARGET_SECONDS = 900.0
"""How long a target that refused a source is passed over for new sessions."""
QUOTA_SECONDS = 900.0
"""How long a place whose session quota AWS refused is planned within what it held then."""
MARGIN_FRACTION = 0.6
"""The deadline margin is at most this share of the invocation's budget (see `Context.margin`)."""
LOSS_INTERVAL_SECONDS = 240.0
"""A container reads a place's mirror-loss metrics at most this often: once per scheduled sweep
(every 5 minutes by default), never again for a sweep that an event asked for in between."""


class Container:
    """Clients, caches and lessons of one Lambda container (or one CLI run)."""

    def __init__(self, clients: Clients | None = None, inventory_reads: ThreadPoolExecutor | None = None) -> None:
        self.clients = clients or Clients(RETRY_CONFIG)
        self.reads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="mirror-io")
        """Concurrent reads of one invocation."""
        self.inventory_reads = inventory_reads or readahead.pool()
        """The inventory's own fan-out, separate so a read waiting on it never starves `reads`."""
        self.groups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mirror-account")
        """One thread per (account, region) of a batch: accounts never wait behind each other."""
        self.fleet = ThreadPoolExecutor(max_workers=FLEET_WORKERS, thread_name_prefix="mirror-fleet")
        """Accounts a multi-account sweep works on at once."""
        self.lock = threading.Lock()
        self.inventories: dict[Place, Inventory] = {}
        self.prefetching: dict[Place, Future[Inventory]] = {}
        self.refused_types: set[str] = set()
        self.refused_enis: set[str] = set()
        self.full_targets: dict[tuple[Place, str], float] = {}
        self.session_quota: dict[Place, tuple[float, int]] = {}
        """Place -> (until, sessions the account held) after AWS refused a session for its quota."""
        self.own_account: str | None = None
        self.organization: tuple[float, tuple[str, ...]] | None = None
        """(read at, ACTIVE account ids) of the organization, when MIRROR_ACCOUNTS=organization."""
        self.sweep_cursor = 0
        """Where the next multi-account sweep starts: the first account the last one did not finish."""
        self.loss_read: dict[Place, float] = {}
        """When each place's mirror-loss metrics were last read (monotonic seconds)."""

    def learned(self, place: Place) -> Learned:
        now = time.monotonic()
        with self.lock:
            full = frozenset(t for (p, t), until in self.full_targets.items() if p == place and until > now)
            until, held = self.session_quota.get(place, (0.0, 0))
            quota = held if until > now else None
            return Learned(frozenset(self.refused_types), full, frozenset(self.refused_enis), quota)

    def refuse_type(self, instance_type: str) -> None:
        """Remember an API refusal so later ENIs of this type are skipped without a call."""
        if instance_type:
            with self.lock:
                self.refused_types.add(instance_type.strip().lower())

    def loss_due(self, place: Place) -> bool:
        """Whether the place's mirror loss may be read now; if so, the slot is taken."""
        now = time.monotonic()
        with self.lock:
            last = self.loss_read.get(place)
            if last is not None and now - last < LOSS_INTERVAL_SECONDS:
                return False
            self.loss_read[place] = now
            return True

    def refuse_eni(self, eni_id: str) -> None:
        """Remember an API refusal of a service's ENI (it has no instance type to remember)."""
        with self.lock:
            self.refused_enis.add(eni_id)

    def target_full(self, place: Place, target_id: str) -> None:
        with self.lock:
            self.full_targets[(place, target_id)] = time.monotonic() + FULL_TARGET_SECONDS

    def quota_reached(self, place: Place, held: int) -> None:
        """AWS refused a session for the account's quota while it held `held`: plan within that for a while."""
        with self.lock:
            self.session_quota[place] = (time.monotonic() + QUOTA_SECONDS, held)

    def reset(self) -> None:
        """Forget every client and everything learned (tests, and the demo when it switches mocks)."""
        self.clients.reset()
        with self.lock:
            self.inventories.clear()
            self.prefetching.clear()
            self.refused_types.clear()
            self.refused_enis.clear()
            self.full_targets.clear()
            self.session_quota.clear()
            self.own_account = None
            self.organization = None
            self.sweep_cursor = 0
            self.loss_read.clear()


def deadline_margin(settings: Settings, budget: float | None) -> float:
    """Seconds kept free at the end of an invocation: no write and no round of reads starts later.

    MIRROR_DEADLINE_MARGIN_SECONDS, or 60% of the invocation's budget when that is smaller:
    with a budget below the setting, a sweep would otherwise never write anything.
    """
    setting = settings.deadline_margin_seconds
    return setting if budget is None else min(setting, MARGIN_FRACTION * max(budget, 0.0))


@dataclass(frozen=True)
class Context:
    """One invocation's work in one place."""

    place: Place
    settings: Settings
    container: Container
    remaining: Callable[[], float] | None = None
    """Seconds left before the invocation's deadline (None: no deadline, as in the CLI)."""
    budget: float | None = None
    """Seconds the invocation had when it started (None: `remaining` at first use)."""

    @property
    def margin(self) -> float:
        budget = self.budget if self.budget is not None else (self.remaining() if self.remaining else None)
        return deadline_margin(self.settings, budget)

    def too_late(self) -> bool:
        """Inside the margin: start nothing new."""
        return self.remaining is not None and self.remaining() < self.margin

    @property
    def region(self) -> str:
        return self.place.region

    @property
    def clients(self) -> Clients:
        return self.container.clients

    def learned(self) -> Learned:
        return self.container.learned(self.place)

    @property
    def hub(self) -> "Context":
        """The same work in the handler's own account (its sensors, Organizations, STS)."""
        if self.place.account is None:
            return self
        return dataclasses.replace(self, place=dataclasses.replace(self.place, account=None, role=None))

    def at(self, account: str | None, remaining: Callable[[], float] | None = None) -> "Context":
        """The same region in another account (None: our own), through the member role."""
        role = self.settings.member_role_name if account else None
        place = dataclasses.replace(self.place, account=account, role=role)
        if account:
            # Filters cannot be shared: MIRROR_FILTER_ID names one of the handler's own account; a
            # member's filter is chosen by the usual rules among the member's own filters.
            settings = dataclasses.replace(self.settings, filter_id=None)
            return dataclasses.replace(self, place=place, settings=settings, remaining=remaining or self.remaining)
        return dataclasses.replace(self, place=place, remaining=remaining or self.remaining)
