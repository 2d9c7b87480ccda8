"""Fault campaign: the real handler against an EC2 that fails 5%, 20% and 50% of its calls.

    python -m benchmarks.fault_campaign              # 5/20/50%, 24 instances, botocore's real backoff
    python -m benchmarks.fault_campaign --quick      # what the test runs: 8 instances, backoff x0.02
    python -m benchmarks.fault_campaign --rates 0.2 --seed 7 --instances 40

What runs: a moto server (with `testsupport.sandbox.aws_rules()`, so ClientTokens, session numbers
and quotas behave as on AWS) behind `testsupport.faults.FaultyApp`, which fails EC2 and ELBv2
requests (and CloudWatch's, read by the scheduled sweep for the mirror loss) at the given rate with
every kind of fault it knows: HTTP 500 and 503, throttling,
connection resets, slow answers beyond the client's read timeout, lost responses (the call took
effect, the client got a reset) and empty answers to describe calls.

The world: one VPC over two AZs, two sensor ENIs per AZ as traffic mirror targets, a Network
Load Balancer target, one filter; instances in the sensors' subnets and in a third subnet
without a sensor (served by the NLB or the AZ's sensors), one instance type that cannot be
mirrored; sessions made beforehand by "another tool" (no ManagedBy tag) on some ENIs, and some
of our own managed sessions already in place.

What happens, per rate, in one process (one warm Lambda container: its clients, retry quotas and
caches live across invocations, as on Lambda): the launches' RunInstances events arrive through
the queue (SQS batches of 10; a message reported in `batchItemFailures`, or in a batch whose
invocation raised, comes back the next round), then the schedule's sweep runs (a direct
invocation). Rounds repeat until every ENI is mirrored and the queue is empty (at most
`--rounds`). Then faults stop and one more sweep checks the result. Every invocation gets a fake
Lambda context with a `--budget` seconds deadline.

Measured (the must-be-zero figures in bold in the table):
- cases: invocations of the handler; faults: requests that got a fault, of all requests;
- **unmirrored**: ENIs that should be mirrored and have no managed session after the last round;
- **duplicates**: the most ENIs with two managed sessions seen after any invocation;
- **foreign touched**: Modify/Delete requests that reached EC2 for a session another tool made;
- **managed lost**: DeleteTrafficMirrorSession requests that reached EC2 for an ENI's only managed
  session (the world never changes during the campaign, so EC2 never said the session was wrong:
  every such delete came from a bad read); **moved**: Modify requests on managed sessions (ditto);
- **overruns**: invocations that ran longer than their budget; **escapes**: exceptions out of SQS
  invocations (Lambda retries the whole batch), and out of sweeps other than the designed
  `RetryableFailure` (raw botocore errors).

Knobs that trade realism for time: the handler's read timeout is `--read-timeout` (1 s; the
deployed 15 s would make each slow answer cost 15 s; slow answers come 0.5 s after it), and
botocore's own waits (its retry backoff and adaptive mode's client-side rate limiter) can be
compressed with `--backoff-scale` (1.0, the default, = botocore's own; the test uses 0.02).
"""

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testsupport.event_builders import wrap

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
OTHER_TOOL = "another-tool"
BATCH_SIZE = 10
MAX_RECEIVES = 5
RATES = (0.05, 0.2, 0.5)


class Context:
    """The part of Lambda's context object the handler reads: a deadline."""

    function_name = "traffic-mirror-campaign"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:traffic-mirror-campaign"

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.aws_request_id = f"campaign-{time.monotonic_ns()}"
        self._deadline = time.monotonic() + budget

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class World:
    account: Any
    expected: dict[str, str]
    """ENI -> AZ of the ENIs that must end up mirrored (every instance ENI but the unsupported type's)."""
    foreign: set[str]
    """Sessions made by another tool."""
    events: list[dict[str, Any]]
    """RunInstances records of the launches (each campaign gives them its own event ids)."""


@dataclass
class Figures:
    rate: float
    seed: int
    rounds: int = 0
    converged: bool = False
    cases: int = 0
    calls: int = 0
    faults: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    unmirrored: int = 0
    duplicates: int = 0
    foreign_touched: int = 0
    managed_lost: int = 0
    managed_moved: int = 0
    overruns: int = 0
    longest: float = 0.0
    escapes: int = 0
    sweep_errors: int = 0
    dead_letters: int = 0
    check_unmirrored: int = 0
    check_writes: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    """Exceptions out of invocations, by type and message."""
    check_detail: Counter[str] = field(default_factory=Counter)
    """The fault-free check's writes, by action."""
    bad_writes: list[str] = field(default_factory=list)
    """The writes counted as foreign touched, managed lost or moved."""

    def must_be_zero(self) -> dict[str, int]:
        return {
            "unmirrored": self.unmirrored,
            "duplicates": self.duplicates,
            "foreign touched": self.foreign_touched,
            "managed lost": self.managed_lost,
            "managed moved": self.managed_moved,
            "overruns": self.overruns,
            "escapes": self.escapes + self.sweep_errors,
        }


@dataclass
class Options:
    rates: tuple[float, ...] = RATES
    seed: int = 11
    instances: int = 24
    rounds: int = 10
    min_rounds: int = 6
    budget: float = 60.0
    margin: float = 15.0
    read_timeout: float = 1.0
    slow_extra: float = 0.5
    """A slow answer comes this long after the client's read timeout."""
    backoff_scale: float = 1.0


QUICK = Options(
    instances=6,
    rounds=6,
    min_rounds=5,
    budget=300.0,
    margin=5.0,
    read_timeout=1.0,
    slow_extra=0.1,
    backoff_scale=0.02,
)
"""The test's version: a small world, five rounds, botocore's waits compressed 50 times, and the
deployed function's timeout as the budget (invocations take seconds, but on a loaded 2-core machine
a 20 s budget was overrun, and what was measured was the machine: the deadline is tested on clocks
the tests control, in test_retry_budget and test_safety)."""


# --- the world -----------------------------------------------------------------------------------


def _tags(items: Any) -> dict[str, str]:
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value", "")) for t in items or ()}


def build_world(ec2: Any, elbv2: Any, instances: int) -> World:
    """Sensors, an NLB target, a filter and instances; `place_sessions` adds the sessions."""
    from testsupport import sandbox
    from testsupport.event_builders import run_instances_record

    account = sandbox.build_account(ec2, REGION, sensors_per_az=2, ami=sandbox.moto_ami())
    app_subnet = ec2.create_subnet(
        VpcId=account.vpc, CidrBlock="10.0.64.0/20", AvailabilityZone=f"{REGION}a"
    )["Subnet"]["SubnetId"]
    sandbox.add_nlb_target(ec2, elbv2, account, "nlb")  # a UDP 4789 listener, healthy sensors behind it
    subnets = [*account.subnets.values(), app_subnet]
    launched: list[list[dict[str, Any]]] = []
    for n in range(0, instances, 2):
        launched.append(
            sandbox.launch(ec2, account, subnets[(n // 2) % len(subnets)], count=min(2, instances - n))
        )
    unsupported = sandbox.launch(ec2, account, account.subnets[f"{REGION}b"], "t2.micro")
    launched.append(unsupported)
    enis = {
        e["NetworkInterfaceId"]: i["Placement"]["AvailabilityZone"]
        for batch in launched[:-1]
        for i in batch
        for e in i["NetworkInterfaces"]
    }
    events = [run_instances_record(batch, event_id=f"launch-{n}") for n, batch in enumerate(launched)]
    return World(account, enis, set(), events)


def place_sessions(ec2: Any, world: World) -> None:
    """Delete every session, then make the starting ones: another tool's, and some of ours."""
    from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

    for page in ec2.get_paginator("describe_traffic_mirror_sessions").paginate():
        for session in page["TrafficMirrorSessions"]:
            ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=session["TrafficMirrorSessionId"])
    account, enis = world.account, sorted(world.expected.items())
    sensor_of = {}
    for name, target in account.targets.items():
        if name.startswith("sensor-") and name.endswith("-0"):
            sensor_of[name.removeprefix("sensor-").removesuffix("-0")] = target
    filter_id = account.filters["default"]
    world.foreign.clear()
    for eni, az in enis[1:4]:  # another tool's sessions, number 1
        world.foreign.add(
            ec2.create_traffic_mirror_session(
                NetworkInterfaceId=eni,
                TrafficMirrorTargetId=sensor_of[az],
                TrafficMirrorFilterId=filter_id,
                SessionNumber=1,
                TagSpecifications=[
                    {
                        "ResourceType": "traffic-mirror-session",
                        "Tags": [{"Key": "Owner", "Value": OTHER_TOOL}],
                    }
                ],
            )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
        )
    managed_tags = [{"Key": MANAGED_TAG_KEY, "Value": Settings().managed_by}]
    for eni, az in enis[4:7]:  # ours, from an earlier run
        ec2.create_traffic_mirror_session(
            NetworkInterfaceId=eni,
            TrafficMirrorTargetId=sensor_of[az],
            TrafficMirrorFilterId=filter_id,
            SessionNumber=1,
            TagSpecifications=[{"ResourceType": "traffic-mirror-session", "Tags": managed_tags}],
        )


def managed_by_eni(ec2: Any) -> dict[str, list[str]]:
    from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

    found: dict[str, list[str]] = {}
    for page in ec2.get_paginator("describe_traffic_mirror_sessions").paginate():
        for s in page["TrafficMirrorSessions"]:
            if _tags(s.get("Tags")).get(MANAGED_TAG_KEY) == Settings().managed_by:
                found.setdefault(s["NetworkInterfaceId"], []).append(s["TrafficMirrorSessionId"])
    return found


class Judge:
    """Sees every write as it reaches moto (under the fault layer's lock) and judges it."""

    def __init__(self, foreign: set[str]) -> None:
        self.foreign = foreign
        self.foreign_touched = 0
        self.managed_lost = 0
        self.managed_moved = 0
        self.writes: Counter[str] = Counter()
        self.log: list[str] = []
        """What each bad write was (for the campaign's details)."""

    def __call__(self, action: str, params: Mapping[str, str], _fault: str | None) -> None:
        if not action.startswith(("Create", "Modify", "Delete")):
            return
        self.writes[action] += 1
        session_id = params.get("TrafficMirrorSessionId")
        if action not in ("DeleteTrafficMirrorSession", "ModifyTrafficMirrorSession") or not session_id:
            return
        if session_id in self.foreign:
            self.foreign_touched += 1
            return
        if action == "ModifyTrafficMirrorSession":
            self.managed_moved += 1
            self.log.append(f"{action} {dict(params)}")
            return
        backend = _backend()
        session = backend.traffic_mirror_sessions.get(session_id)
        if session is None:
            return  # already gone: the delete changes nothing
        siblings = [
            s
            for s in backend.traffic_mirror_sessions.values()
            if s.network_interface_id == session.network_interface_id
            and s.id != session_id
            and s.id not in self.foreign
        ]
        if not siblings:
            self.managed_lost += 1
            self.log.append(f"{action} {session_id} on {session.network_interface_id}")


def _backend() -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT_ID][REGION]


# --- the container ---------------------------------------------------------------------------------


class _FastClock:
    """A clock that runs `1/scale` times faster than real time (for botocore's rate limiter)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._t0 = time.time()

    def sleep(self, amount: float) -> None:
        time.sleep(amount * self.scale)

    def current_time(self) -> float:
        return self._t0 + (time.time() - self._t0) / self.scale


@contextlib.contextmanager
def compressed_waits(scale: float) -> Iterator[None]:
    """botocore's waits `scale` times as long: retry backoff, and adaptive mode's token bucket."""
    from botocore.retries import bucket, standard

    if scale == 1.0:
        yield
        return
    delay, sleep_amount, init = (
        standard.ExponentialBackoff.delay_amount,
        bucket.TokenBucket._sleep_amount,
        bucket.TokenBucket.__init__,
    )

    def scaled_delay(self: Any, context: Any) -> float:
        return float(delay(self, context)) * scale

    def scaled_sleep(self: Any, amount: float) -> float:
        return float(sleep_amount(self, amount)) * scale

    def fast_init(self: Any, max_rate: float, clock: Any, min_rate: float = 0.5) -> None:
        init(self, max_rate, _FastClock(scale), min_rate)

    standard.ExponentialBackoff.delay_amount = scaled_delay  # type: ignore[method-assign]
    bucket.TokenBucket._sleep_amount = scaled_sleep  # type: ignore[method-assign]
    bucket.TokenBucket.__init__ = fast_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        standard.ExponentialBackoff.delay_amount = delay  # type: ignore[method-assign]
        bucket.TokenBucket._sleep_amount = sleep_amount  # type: ignore[method-assign]
        bucket.TokenBucket.__init__ = init  # type: ignore[method-assign]


@contextlib.contextmanager
def container(options: Options) -> Iterator[Any]:
    """A fresh warm container (new clients with a short read timeout, empty caches), waits maybe compressed."""
    from botocore.config import Config
    from traffic_mirror.handler.clients import RETRY_CONFIG, Clients
    from traffic_mirror.handler.context import Container

    config = RETRY_CONFIG.merge(Config(read_timeout=options.read_timeout, connect_timeout=1))
    with compressed_waits(options.backoff_scale):
        yield Container(Clients(config))


def sweep_event(event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/mirror-sweep-{REGION}"],
        "detail": {},
    }


def state_change_event(event_id: str, instance_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": ACCOUNT_ID,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": "running"},
    }


def run_rate(server: Any, setup: Any, world: World, rate: float, options: Options) -> Figures:
    """One campaign at one fault rate (see the module docstring)."""
    from traffic_mirror.handler import app
    from traffic_mirror.handler.settings import Settings


    started = time.monotonic()
    figures = Figures(rate, options.seed)
    server.seed(options.seed + round(rate * 1000))
    place_sessions(setup, world)
    judge = Judge(world.foreign)
    settings = Settings(deadline_margin_seconds=options.margin)
    tag = f"r{round(rate * 100)}s{options.seed}"  # event ids, hence ClientTokens, of this campaign only
    queue: dict[str, tuple[str, int]] = {}
    instance_ids: list[str] = []
    for n, record in enumerate(world.events):
        event = wrap({**record, "eventID": f"{tag}-launch-{n}"})
        queue[f"{tag}-launch-{n}"] = (json.dumps(event), 0)
        instance_ids += [i["instanceId"] for i in record["responseElements"]["instancesSet"]["items"]]

    def invoke(event: dict[str, Any]) -> tuple[Any, BaseException | None]:
        context = Context(options.budget)
        begin = time.monotonic()
        try:
            result: Any = app.handle(event, context, endpoint=server.url, settings=settings, container=warm)
            error: BaseException | None = None
        except Exception as exc:
            result, error = None, exc
            figures.errors[f"{type(exc).__name__}: {str(exc)[:300]}"] += 1
        elapsed = time.monotonic() - begin
        figures.cases += 1
        figures.longest = max(figures.longest, elapsed)
        if elapsed > context.budget:
            figures.overruns += 1
        duplicates = sum(1 for ids in managed_by_eni(setup).values() if len(ids) > 1)
        figures.duplicates = max(figures.duplicates, duplicates)
        return result, error

    def deliver() -> None:
        ids = list(queue)
        for start in range(0, len(ids), BATCH_SIZE):
            batch = ids[start : start + BATCH_SIZE]
            result, error = invoke({"Records": [{"messageId": m, "body": queue[m][0]} for m in batch]})
            if error is not None:
                figures.escapes += 1
            failed = (
                set(batch)
                if error is not None
                else {f["itemIdentifier"] for f in result["batchItemFailures"]}
            )
            for mid in batch:
                body, receives = queue.pop(mid)
                if mid not in failed:
                    continue
                if receives + 1 >= MAX_RECEIVES:
                    figures.dead_letters += 1
                else:
                    queue[mid] = (body, receives + 1)

    server.app.observer = judge
    with container(options) as warm:
        server.app.configure(rate, options.seed)
        for round_number in range(1, options.rounds + 1):
            figures.rounds = round_number
            if round_number > 1:  # instances seen running again: EC2's state-change events
                for n in range(round_number - 2, len(instance_ids), 3):
                    event_id = f"{tag}-state-{round_number}-{n}"
                    queue[event_id] = (json.dumps(state_change_event(event_id, instance_ids[n])), 0)
            deliver()
            _, error = invoke(sweep_event(f"{tag}-tick-{round_number}"))
            if error is not None and not isinstance(error, app.RetryableFailure):
                figures.sweep_errors += 1  # RetryableFailure is the designed "left for a retry"
            done = not queue and set(world.expected) <= set(managed_by_eni(setup))
            if done and round_number >= options.min_rounds:
                figures.converged = True
                break
        figures.unmirrored = len(set(world.expected) - set(managed_by_eni(setup)))
        stats = server.app.stats
        figures.calls, figures.faults = stats.total_calls, stats.total_faults
        figures.kinds, figures.by_action = Counter(stats.faults), Counter(stats.by_action)
        server.app.configure(0.0)
        writes_before = Counter(judge.writes)
        invoke({**sweep_event(f"{tag}-check"), "resources": []})
        figures.check_detail = judge.writes - writes_before
        figures.check_writes = sum(figures.check_detail.values())
        figures.check_unmirrored = len(set(world.expected) - set(managed_by_eni(setup)))
    server.app.observer = None
    if server.app.observer_errors:
        raise RuntimeError(f"the campaign's judge failed: {server.app.observer_errors[:3]}")
    figures.foreign_touched, figures.managed_lost = judge.foreign_touched, judge.managed_lost
    figures.managed_moved, figures.bad_writes = judge.managed_moved, judge.log
    remaining = {
        s["TrafficMirrorSessionId"] for s in setup.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    }
    figures.foreign_touched += len(world.foreign - remaining)  # deleted by any means
    figures.seconds = time.monotonic() - started
    return figures


@contextlib.contextmanager
def campaign_server(options: Options) -> Iterator[tuple[Any, Any, World]]:
    """The faulty moto server, AWS's rules, and the world (built once: moto's AMIs are slow to list)."""
    import boto3

    from testsupport import faults, moto_server, sandbox

    slow = options.read_timeout + options.slow_extra
    with (
        moto_server.Server(
            lambda moto: faults.FaultyApp(moto, slow_seconds=slow, services=("ec2", "elasticloadbalancing", "monitoring"))
        ) as server,
        sandbox.aws_rules(),
    ):
        server.reset(seed=options.seed)
        setup = faults.bypass(boto3.client("ec2", region_name=REGION, endpoint_url=server.url))
        elbv2 = faults.bypass(boto3.client("elbv2", region_name=REGION, endpoint_url=server.url))
        yield server, setup, build_world(setup, elbv2, options.instances)


def run(options: Options, out: Callable[[str], None] = print) -> list[Figures]:
    results = []
    with campaign_server(options) as (server, setup, world):
        for rate in options.rates:
            figures = run_rate(server, setup, world, rate, options)
            out(
                f"rate {rate:.0%}: {figures.cases} invocations, {figures.faults} faults, {figures.seconds:.1f} s"
            )
            results.append(figures)
    return results


# --- the report ------------------------------------------------------------------------------------


def table(results: Sequence[Figures]) -> str:
    def row(label: str, values: Sequence[Any]) -> str:
        return f"| {label} | " + " | ".join(str(v) for v in values) + " |"

    lines = [
        row("fault rate", [f"{f.rate:.0%}" for f in results]),
        "|---|" + "---:|" * len(results),
        row("rounds (converged?)", [f"{f.rounds} ({'yes' if f.converged else 'no'})" for f in results]),
        row("cases (invocations)", [f.cases for f in results]),
        row("faults injected / requests", [f"{f.faults} / {f.calls}" for f in results]),
        row(
            "faults by kind",
            [", ".join(f"{k} {n}" for k, n in sorted(f.kinds.items())) or "-" for f in results],
        ),
        row("**ENIs unmirrored at the end** (must be 0)", [f.unmirrored for f in results]),
        row("**duplicates** (must be 0)", [f.duplicates for f in results]),
        row("**foreign sessions touched** (must be 0)", [f.foreign_touched for f in results]),
        row("**managed sessions lost to a bad read** (must be 0)", [f.managed_lost for f in results]),
        row("**managed sessions moved by a bad read** (must be 0)", [f.managed_moved for f in results]),
        row("**deadline overruns** (must be 0)", [f.overruns for f in results]),
        row("longest invocation (s)", [f"{f.longest:.1f}" for f in results]),
        row(
            "**exceptions escaping: SQS batches / sweeps** (must be 0)",
            [f"{f.escapes} / {f.sweep_errors}" for f in results],
        ),
        row("messages dead-lettered", [f.dead_letters for f in results]),
        row(
            "fault-free check: unmirrored, writes",
            [f"{f.check_unmirrored}, {f.check_writes}" for f in results],
        ),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fault_campaign", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the test's small, time-compressed version")
    parser.add_argument("--rates", type=lambda s: tuple(float(r) for r in s.split(",")))
    parser.add_argument("--seed", type=int)
    parser.add_argument("--instances", type=int)
    parser.add_argument("--rounds", type=int, help="at most this many rounds")
    parser.add_argument("--min-rounds", type=int, help="at least this many (sweeps over a mirrored world)")
    parser.add_argument("--budget", type=float, help="seconds per invocation (the fake context's deadline)")
    parser.add_argument("--margin", type=float, help="MIRROR_DEADLINE_MARGIN_SECONDS")
    parser.add_argument("--read-timeout", type=float)
    parser.add_argument("--backoff-scale", type=float)
    args = parser.parse_args(argv)
    base = QUICK if args.quick else Options()
    values = {k: v for k, v in vars(args).items() if k != "quick" and v is not None}
    return Options(**{**base.__dict__, **values})


def main(argv: Sequence[str] | None = None) -> int:
    import logging
    import os

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_REGION", None)  # no import-time clients aimed at real AWS
    options = parse_args(argv)
    logging.getLogger("traffic_mirror").disabled = True  # one JSON line per decision is too much here
    results = run(options, out=lambda line: print(line, file=sys.stderr))
    print(
        f"Fault campaign: seed {options.seed}, {options.instances} instances, budget {options.budget:g} s, "
        f"margin {options.margin:g} s, read timeout {options.read_timeout:g} s, "
        f"backoff x{options.backoff_scale:g}, at most {options.rounds} rounds\n"
    )
    print(table(results))
    failing = {f"{f.rate:.0%}": {k: v for k, v in f.must_be_zero().items() if v} for f in results}
    failing = {k: v for k, v in failing.items() if v}
    if failing:
        print(f"\nmust-be-zero figures that are not zero: {failing}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
