"""The inventory's first reads: the targets and filters, then the ENI sensors' instances and sessions.

They need botocore and nothing else of the handler. A cold start sends them as soon as its EC2
client exists (`app`), before it imports the rest of the handler (some 6,000 lines and 35
classes: about 100 ms from source, half of it with bytecode), so they travel while it imports
and the first event finds them answered. `inventory` turns the raw answers into targets with
their health; every inventory load starts here, a cold start's only earlier.

No dataclass here: each costs about 1 ms to create at import, and this module is imported first.
"""

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from .clients import Clients, Place

FILTER_VALUES_PER_CALL = 200
OPERATIONS = (
    "describe_traffic_mirror_targets",
    "describe_traffic_mirror_filters",
    "describe_instances",
    "describe_traffic_mirror_sessions",
)


class FirstReads(NamedTuple):
    """The raw answers, as futures: `targets` and `filters` in the first round; `sensors` (the
    instances that list the ENI targets' ENIs) and `sessions_on` (the sessions on the ENI targets)
    in the second, which starts as soon as the targets are read."""

    targets: "Future[list[Any]]"
    filters: "Future[list[Any]]"
    sensors: "Future[list[Any]]"
    sessions_on: "Future[list[Any]]"


def pool() -> ThreadPoolExecutor:
    """Threads for the inventory's reads: `start` has 4 in flight at most."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirror-inventory")


def chunks(values: Sequence[str], size: int = FILTER_VALUES_PER_CALL) -> Iterator[list[str]]:
    unique = sorted(set(values))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


def pages(clients: Clients, place: Place, operation: str, key: str, **kwargs: Any) -> list[Any]:
    """Every item of a paginated EC2 describe call."""
    items: list[Any] = []
    for page in clients.paginator(place, operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def by_filter(
    clients: Clients, place: Place, operation: str, key: str, name: str, values: Sequence[str], **kw: Any
) -> list[Any]:
    """A describe filtered on up to 200 values per call (filters never raise NotFound for gone ids)."""
    items: list[Any] = []
    extra = kw.pop("Filters", [])
    for chunk in chunks(values):
        filters = [{"Name": name, "Values": chunk}, *extra]
        items.extend(pages(clients, place, operation, key, Filters=filters, **kw))
    return items


def shared_with_us(target: Any, account: str | None) -> bool:
    """A target another account owns and shares with `account` (None: not known yet, so none is):
    only its owner can describe what it points to."""
    return account is not None and bool(target.get("OwnerId")) and target["OwnerId"] != account


def eni_targets(listed: Sequence[Any], account: str | None) -> tuple[list[str], list[str]]:
    """The ENIs of the listed ENI targets `account` owns, and those targets' ids."""
    enis = [t for t in listed if t.get("NetworkInterfaceId") and not shared_with_us(t, account)]
    return [str(t["NetworkInterfaceId"]) for t in enis], [str(t["TrafficMirrorTargetId"]) for t in enis]


def start(
    clients: Clients,
    place: Place,
    pool: Executor,
    account: str | None = None,
    before_second_round: Callable[[], None] | None = None,
) -> FirstReads:
    """Send the first round now and the second when the targets arrive.

    The second round reads the ENI targets `account` owns (None, at a cold start: every listed
    one; the caller keeps its own). `before_second_round` may raise (a deadline too near): the
    second round's futures then carry that error, as they carry any other.
    """
    for operation in OPERATIONS:  # the client and its paginators made here, once, not by 4 threads at once
        clients.paginator(place, operation)
    targets = pool.submit(pages, clients, place, "describe_traffic_mirror_targets", "TrafficMirrorTargets")
    filters = pool.submit(pages, clients, place, "describe_traffic_mirror_filters", "TrafficMirrorFilters")
    sensors: Future[list[Any]] = Future()
    sessions_on: Future[list[Any]] = Future()

    def second_round(done: "Future[list[Any]]") -> None:
        try:
            if before_second_round:
                before_second_round()
            eni_ids, target_ids = eni_targets(done.result(), account)
            instances = ("describe_instances", "Reservations", "network-interface.network-interface-id", eni_ids)
            on = ("describe_traffic_mirror_sessions", "TrafficMirrorSessions", "traffic-mirror-target-id", target_ids)
            _chain(pool.submit(by_filter, clients, place, *instances), sensors)
            _chain(pool.submit(by_filter, clients, place, *on), sessions_on)
        except BaseException as error:  # handed to whoever waits on the round (a callback's is lost)
            for waiting in (sensors, sessions_on):
                if not waiting.done():
                    waiting.set_exception(error)

    targets.add_done_callback(second_round)
    return FirstReads(targets, filters, sensors, sessions_on)


def _chain(source: "Future[list[Any]]", sink: "Future[list[Any]]") -> None:
    """`sink` gets `source`'s result or error when it has one."""

    def copy(done: "Future[list[Any]]") -> None:
        try:
            sink.set_result(done.result())
        except BaseException as error:  # the read's error, or its cancellation
            sink.set_exception(error)

    source.add_done_callback(copy)
