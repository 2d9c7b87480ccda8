"""What a container keeps (`Container`) and what one piece of work needs (`Context`).

A Lambda container lives for many invocations: its clients, the targets-and-filters cache, the
instance types EC2 refused and the targets that said they are full are worth keeping, and they
all live here, with one `reset`. Everything else is passed: the planner gets what the container
learned as plain data (`Learned`), never by reading it behind the caller's back.
"""

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .clients import RETRY_CONFIG, Clients, Place
from .model import Inventory, Learned
from .settings import Settings

FULL_TARGET_SECONDS = 900.0
"""How long a target that refused a source is passed over for new sessions."""


class Container:
    """Clients, caches and lessons of one Lambda container (or one CLI run)."""

    def __init__(self, clients: Clients | None = None, max_workers: int = 8) -> None:
        self.clients = clients or Clients(RETRY_CONFIG)
        self.reads = ThreadPoolExecutor(max_workers=16, thread_name_prefix="mirror-io")
        """Concurrent reads of one invocation."""
        self.inventory_reads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirror-inventory")
        """The inventory's own fan-out, separate so a read waiting on it never starves `reads`."""
        self.writes = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="mirror-write")
        """Bounded writers (MIRROR_MAX_WORKERS at a time)."""
        self.lock = threading.Lock()
        self.inventories: dict[Place, Inventory] = {}
        self.prefetching: dict[Place, Future[Inventory]] = {}
        self.refused_types: set[str] = set()
        self.full_targets: dict[tuple[Place, str], float] = {}

    def learned(self, place: Place) -> Learned:
        now = time.monotonic()
        with self.lock:
            full = frozenset(t for (p, t), until in self.full_targets.items() if p == place and until > now)
            return Learned(frozenset(self.refused_types), full)

    def refuse_type(self, instance_type: str) -> None:
        """Remember an API refusal so later ENIs of this type are skipped without a call."""
        if instance_type:
            with self.lock:
                self.refused_types.add(instance_type.strip().lower())

    def target_full(self, place: Place, target_id: str) -> None:
        with self.lock:
            self.full_targets[(place, target_id)] = time.monotonic() + FULL_TARGET_SECONDS

    def reset(self) -> None:
        """Forget every client and everything learned (tests, and the demo when it switches mocks)."""
        self.clients.reset()
        with self.lock:
            self.inventories.clear()
            self.prefetching.clear()
            self.refused_types.clear()
            self.full_targets.clear()


@dataclass(frozen=True)
class Context:
    """One invocation's work in one place."""

    place: Place
    settings: Settings
    container: Container
    remaining: Callable[[], float] | None = None
    """Seconds left before the invocation's deadline (None: no deadline, as in the CLI)."""

    @property
    def region(self) -> str:
        return self.place.region

    @property
    def clients(self) -> Clients:
        return self.container.clients

    def learned(self) -> Learned:
        return self.container.learned(self.place)
