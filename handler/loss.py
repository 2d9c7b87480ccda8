"""Mirror loss: the share of mirrored bytes AWS could not copy, from CloudWatch's own counts. Pure.

AWS drops mirrored packets before production ones when an instance's bandwidth is short, and
counts both per instance (namespace AWS/EC2, dimension InstanceId): `NetworkMirrorIn/Out`, the
bytes mirrored, and `NetworkSkipMirrorIn/Out`, the bytes it skipped. Loss = skipped / (mirrored +
skipped). A session that exists can still lose a quarter of its copies; this is how it shows.

An instance with no bytes in the window (no traffic, or the metrics not yet published) is
unknown, never 0% loss; so is every instance when CloudWatch could not be read (`failed`). The
queries (`queries`) and what is made of the answers (`measure`) live here; the reads, batched and
paginated, in `cloudwatch.py`. The CLI's coverage report and the sweep's metric use both.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import coverage
from .model import Decision

NAMESPACE = "AWS/EC2"
MIRRORED = ("NetworkMirrorIn", "NetworkMirrorOut")
SKIPPED = ("NetworkSkipMirrorIn", "NetworkSkipMirrorOut")
METRICS = (*MIRRORED, *SKIPPED)
QUERIES_PER_CALL = 500
"""GetMetricData's limit of queries per call."""
DEFAULT_WINDOW_SECONDS = 3600
"""The last hour (`coverage --window`, and what the sweep's metric measures)."""
WORST_SHOWN = 10
HINT = (
    "Skipped bytes are mirrored copies AWS dropped to keep the instance's own traffic flowing: give the "
    "instance more network bandwidth (a larger type), or narrow the filter to the traffic the sensors need."
)


@dataclass(frozen=True)
class Mirrored:
    """An instance with at least one mirrored ENI: CloudWatch counts mirror bytes per instance."""

    instance_id: str
    enis: tuple[str, ...]
    az: str = ""
    az_id: str = ""

    @property
    def zone(self) -> str:
        """The AZ by id where known (names differ between accounts), else by name."""
        return self.az_id or self.az


def mirrored_instances(
    decisions: Iterable[Decision],
    statuses: Mapping[str, str] | None = None,
    zone_ids: Mapping[str, str] | None = None,
) -> tuple[Mirrored, ...]:
    """The instances whose ENIs coverage counts as mirrored (`coverage.is_mirrored`), by id."""
    statuses, zone_ids = statuses or {}, zone_ids or {}
    enis: dict[str, list[str]] = {}
    zones: dict[str, str] = {}
    for d in decisions:
        if d.instance_id and coverage.is_mirrored(d, statuses.get(d.eni_id)):
            enis.setdefault(d.instance_id, []).append(d.eni_id)
            zones.setdefault(d.instance_id, d.az)
    return tuple(
        Mirrored(i, tuple(sorted(e)), zones[i], zone_ids.get(zones[i], "")) for i, e in sorted(enis.items())
    )


def query_id(index: int, metric: int) -> str:
    """GetMetricData ids start with a lower-case letter: `q<instance>_<metric>`."""
    return f"q{index}_{metric}"


def period(window_seconds: int) -> int:
    """One datapoint per metric for the whole window (CloudWatch periods are multiples of 60 s)."""
    return max(60, window_seconds // 60 * 60)


def queries(instances: Sequence[Mirrored], window_seconds: int) -> list[dict[str, Any]]:
    """Four sums per instance (mirrored in/out, skipped in/out) over the window."""
    return [
        {
            "Id": query_id(index, number),
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "InstanceId", "Value": instance.instance_id}],
                },
                "Period": period(window_seconds),
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for index, instance in enumerate(instances)
        for number, metric in enumerate(METRICS)
    ]


def _bytes(values: Iterable[Any]) -> float:
    """The sum of what CloudWatch returned; anything that is not a byte count is ignored."""
    total = 0.0
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            total += float(value)
    return total


@dataclass(frozen=True)
class InstanceLoss:
    instance_id: str
    enis: tuple[str, ...]
    zone: str
    mirrored_bytes: float
    skipped_bytes: float

    @property
    def percent(self) -> float:
        return percent(self.mirrored_bytes, self.skipped_bytes) or 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "enis": list(self.enis),
            "az": self.zone,
            "mirrored_bytes": int(self.mirrored_bytes),
            "skipped_bytes": int(self.skipped_bytes),
            "percent": round(self.percent, 2),
        }


def percent(mirrored: float, skipped: float) -> float | None:
    """skipped / (mirrored + skipped) x 100; None when nothing was counted (unknown, never 0%)."""
    total = mirrored + skipped
    return None if total <= 0 else skipped * 100.0 / total


@dataclass(frozen=True)
class Zone:
    """The loss of one AZ's mirrored instances."""

    zone: str
    mirrored_bytes: float
    skipped_bytes: float

    @property
    def percent(self) -> float | None:
        return percent(self.mirrored_bytes, self.skipped_bytes)


@dataclass(frozen=True)
class Loss:
    """What CloudWatch says of the mirrored instances over one window."""

    window_seconds: int
    measured: tuple[InstanceLoss, ...] = ()
    """Instances with mirror bytes in the window."""
    unknown: tuple[str, ...] = ()
    """Mirrored instances without any (no traffic, metrics not yet published, or the read failed)."""
    error: str = ""
    """Why CloudWatch could not be read ("" = it was)."""

    @property
    def instances(self) -> int:
        return len(self.measured) + len(self.unknown)

    @property
    def mirrored_bytes(self) -> float:
        return sum(i.mirrored_bytes for i in self.measured)

    @property
    def skipped_bytes(self) -> float:
        return sum(i.skipped_bytes for i in self.measured)

    @property
    def percent(self) -> float | None:
        """The share skipped over every measured instance; None: unknown."""
        return percent(self.mirrored_bytes, self.skipped_bytes)

    def worst(self, count: int | None = None) -> list[InstanceLoss]:
        """Instances that lost copies, worst first."""
        lossy = sorted(
            (i for i in self.measured if i.skipped_bytes > 0),
            key=lambda i: (-i.percent, -i.skipped_bytes, i.instance_id),
        )
        return lossy if count is None else lossy[:count]

    def by_zone(self) -> list[Zone]:
        """The loss per AZ (by id where known), for the sweep's metric."""
        sums: dict[str, list[float]] = {}
        for i in self.measured:
            found = sums.setdefault(i.zone or "(unknown)", [0.0, 0.0])
            found[0] += i.mirrored_bytes
            found[1] += i.skipped_bytes
        return [Zone(z, m, s) for z, (m, s) in sorted(sums.items())]

    def summary_json(self) -> dict[str, Any]:
        """The totals (the organization's total has only these)."""
        known = self.percent is not None
        return {
            "window_seconds": self.window_seconds,
            "mirrored_instances": self.instances,
            "measured_instances": len(self.measured),
            "unknown_instances": len(self.unknown),
            "mirrored_bytes": int(self.mirrored_bytes) if known else None,
            "skipped_bytes": int(self.skipped_bytes) if known else None,
            "percent": round(self.percent, 2) if self.percent is not None else None,
            "error": self.error or None,
        }

    def to_json(self) -> dict[str, Any]:
        """Coverage JSON's `mirror_loss` (README, "Coverage JSON"): unknown is null, never 0."""
        return {**self.summary_json(), "instances": [i.to_json() for i in self.worst()]}


def measure(instances: Sequence[Mirrored], values: Mapping[str, Sequence[Any]], window_seconds: int) -> Loss:
    """The loss from GetMetricData's answers (query id -> values), the queries being `queries(instances)`."""
    measured: list[InstanceLoss] = []
    unknown: list[str] = []
    for index, instance in enumerate(instances):
        sums = [_bytes(values.get(query_id(index, number), ())) for number in range(len(METRICS))]
        mirrored, skipped = sum(sums[: len(MIRRORED)]), sum(sums[len(MIRRORED) :])
        if mirrored + skipped <= 0:
            unknown.append(instance.instance_id)
            continue
        measured.append(InstanceLoss(instance.instance_id, instance.enis, instance.zone, mirrored, skipped))
    return Loss(window_seconds, tuple(measured), tuple(unknown))


def failed(instances: Sequence[Mirrored], window_seconds: int, error: str) -> Loss:
    """CloudWatch could not be read: every instance unknown, and why."""
    return Loss(window_seconds, (), tuple(i.instance_id for i in instances), error)


def combine(losses: Iterable[Loss], window_seconds: int) -> Loss:
    """Several accounts' losses as one (the organization's total)."""
    found = list(losses)
    errors = [f.error for f in found if f.error]
    return Loss(
        window_seconds,
        tuple(i for f in found for i in f.measured),
        tuple(i for f in found for i in f.unknown),
        "; ".join(errors),
    )
