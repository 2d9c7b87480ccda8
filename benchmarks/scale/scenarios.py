"""The scenarios: one account, one pipeline, one `Run` each."""

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from benchmarks.scale.account import (
    coverage,
    enis_of,
    hub_sensors,
    launch_in_batches,
    member_client,
    scale_account,
    setup_client,
)
from benchmarks.scale.constants import (
    ACCOUNT_ID,
    BATCH_SIZE,
    DEFAULT_MARGIN,
    FUNCTION_TIMEOUT,
    MAX_CONCURRENCY,
    ORGANIZATION_MAX_CONCURRENCY,
    REGION,
    SWEEP_INTERVAL,
)
from benchmarks.scale.containers import Pool
from benchmarks.scale.runs import Run
from benchmarks.scale.sources import DirectModel, QueueModel, SweepModel, simulate
from testsupport import environment, moto_server, throttle
from testsupport.event_builders import run_instances_record, state_change, wrap


@dataclass
class Options:
    rates: throttle.Rates
    events: int = 20
    per_event: int = 10
    sweep_enis: int = 1000
    sweep_budget: float = 30.0
    sweep_interval: float = SWEEP_INTERVAL
    max_sweeps: int = 40
    sweep_at: float = 2.0
    state_changes: bool = False
    state_change_window: tuple[float, float] = (5.0, 20.0)
    runinstances_at: float = 0.0
    direct_concurrency: int = 20
    latency: float = 0.05
    handler_env: dict[str, str] = field(default_factory=dict)
    retries: dict[str, Any] = field(default_factory=dict)
    experiments: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = (
        "queue", "queue+state", "queue+sweep", "direct", "naive", "sweep", "accounts", "failover"
    )  # fmt: skip
    failover_enis: int = 100
    """The `failover` scenario: ENIs on the sensor that fails (one AZ, a second sensor beside it)."""
    quick: bool = False
    accounts: int = 5
    """The `accounts` scenario: the same burst in each of this many member accounts at once."""
    accounts_concurrency: int = ORGANIZATION_MAX_CONCURRENCY
    """The event queue's maximum concurrency in the `accounts` scenario (as deployed for organizations)."""
    queue_concurrency: int = MAX_CONCURRENCY
    """The event queue's maximum concurrency in the queue scenarios (1: a single writer per region)."""
    capped_enis: int = 10_000
    """`sweep-capped`: in-scope ENIs the sweep covers under `cap` (docs/budget.md)."""
    cap: int = 1000
    """`sweep-capped`: MIRROR_MAX_SESSIONS."""
    budget_events: int = 20
    budget_cap: int = 5
    """`budget`: one-ENI launch events through the deployed queue under this cap, then one sweep."""


def _env(url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        **environment.FAKE_CREDENTIALS,
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_ENDPOINT_URL": url,
        "LOG_LEVEL": "INFO",
        "MIRROR_SWEEP_GRACE_SECONDS": "60",  # as the component deploys it
        **extra,
    }


class Bench:
    def __init__(
        self, server: moto_server.Server[throttle.ThrottledApp], clock: throttle.SimClock, options: Options
    ) -> None:
        self.server, self.clock, self.options = server, clock, options

    def _fresh(self) -> Any:
        self.server.reset()
        return setup_client(self.server.url)

    def _count(self, run: Run) -> None:
        """Full buckets and zero counters before the containers start: their INIT-phase calls
        (the handler prefetches its inventory at cold start) count, as on Lambda, where INIT
        runs when the first event arrives. INIT itself is not timed (`_start` comes after)."""
        self.server.app.reset(self.options.rates)
        run.rates = self.options.rates

    def _start(self, run: Run) -> None:
        self.clock.start()

    def _finish(self, run: Run, ec2: Any, expected: set[str]) -> Run:
        run.stats = self.server.app.stats
        run.duplicates, run.unmirrored, run.strays = coverage(ec2, expected)
        if run.cap is not None:  # under a cap: the sessions short of it, and those above it
            mirrored = len(expected) - run.unmirrored
            run.unmirrored = max(0, min(run.cap, len(expected)) - mirrored)
            run.over_cap = max(0, mirrored - run.cap)
        return run

    def burst(self, name: str, design: str, handler: str) -> Run:
        opts = self.options
        ec2 = self._fresh()
        total = opts.events * opts.per_event
        account = scale_account(ec2, total)
        events: list[dict[str, Any]] = []
        arrivals: list[float] = []
        expected: set[str] = set()
        rng = random.Random(7)
        for index, instances in enumerate(launch_in_batches(ec2, account, total, opts.per_event)):
            expected |= enis_of(instances)
            record = run_instances_record(instances, event_id=f"{uuid.uuid4()}")
            events.append(wrap(record, event_id=f"evt-{index}"))
            arrivals.append(opts.runinstances_at)
            if opts.state_changes or design == "queue+state":
                for instance in instances:
                    events.append(state_change(instance["InstanceId"]))
                    arrivals.append(rng.uniform(*opts.state_change_window))
        order = sorted(range(len(events)), key=lambda i: (arrivals[i], rng.random()))
        events, arrivals = [events[i] for i in order], [arrivals[i] for i in order]
        env = _env(self.server.url, opts.handler_env)
        size = opts.queue_concurrency if design.startswith("queue") else min(opts.direct_concurrency, len(events))
        run = Run(name, design, handler, enis=len(expected), containers=size)
        self._count(run)
        pools = [Pool(handler, size, env, opts.retries, opts.experiments)]
        try:
            model: Any = (
                QueueModel(events, concurrency=size, arrivals=arrivals)
                if design.startswith("queue")
                else DirectModel(events, concurrency=size, arrivals=arrivals)
            )
            parts = [(model, pools[0])]
            if design == "queue+sweep":
                # The schedule's sweep is an asynchronous invocation of its own (not capped by the
                # event source mapping), with the deployed timeout.
                pools.append(Pool(handler, 1, env, opts.retries, opts.experiments))
                run.containers += 1
                sweep = SweepModel(
                    FUNCTION_TIMEOUT,
                    SWEEP_INTERVAL,
                    1,
                    lambda: coverage(ec2, expected)[:2],
                    lambda: self.server.app.stats,
                    first=opts.sweep_at,
                )
                parts.append((sweep, pools[1]))
            self._start(run)
            simulate(parts, self.clock, run)
        finally:
            for pool in pools:
                pool.close()
        return self._finish(run, ec2, expected)

    def accounts(self) -> Run:
        """The burst in each of several member accounts at once, through the hub's deployed queue.

        Every account has its own token buckets (testsupport/throttle.py keys them by the caller's
        account); the hub's handler assumes its member role in each (one AssumeRole per account and
        container). With isolation the makespan stays near one account's bound, not N times it.

        As an organization is deployed (MIRROR_SENSOR_OWNERS defaults to the hub): the sensors are
        the hub's, tagged for mirroring and shared with every member (RAM, as the sandbox has it);
        the members have none of their own.
        """
        opts = self.options
        self.server.reset()
        per_account = opts.events * opts.per_event
        members = [f"{100000000000 + k + 1}" for k in range(opts.accounts)]
        hub_sensors(setup_client(self.server.url), per_account * len(members), members)
        events: list[dict[str, Any]] = []
        clients: dict[str, Any] = {}
        expected: dict[str, set[str]] = {m: set() for m in members}
        for member in members:
            ec2 = clients[member] = member_client(self.server.url, member)
            account = scale_account(ec2, per_account, sensors=False)
            for index, instances in enumerate(launch_in_batches(ec2, account, per_account, opts.per_event)):
                expected[member] |= enis_of(instances)
                record = run_instances_record(instances, event_id=f"{uuid.uuid4()}")
                events.append(wrap(record, event_id=f"evt-{member}-{index}", account=member))
        random.Random(7).shuffle(events)
        env = _env(self.server.url, {**opts.handler_env, "MIRROR_ACCOUNTS": ",".join(members)})
        total = sum(len(e) for e in expected.values())
        name = f"ours, {opts.accounts} accounts x {per_account} ENIs, SQS queue"
        size = opts.accounts_concurrency
        run = Run(name, "queue", "ours", enis=total, containers=size, accounts=opts.accounts)
        self._count(run)
        pool = Pool("ours", size, env, opts.retries, opts.experiments)
        try:
            self._start(run)
            simulate(
                [(QueueModel(events, arrivals=[opts.runinstances_at] * len(events)), pool)], self.clock, run
            )
        finally:
            pool.close()
        run.stats = self.server.app.stats
        for member in members:
            duplicates, unmirrored, strays = coverage(clients[member], expected[member])
            run.duplicates += duplicates
            run.unmirrored += unmirrored
            run.strays += strays
        return run

    def sweep(self, enis: int | None = None, cap: int | None = None) -> Run:
        """Sweeps of `enis` ENIs (default `sweep_enis`) with no event, until converged; under `cap`
        (MIRROR_MAX_SESSIONS) converged means the cap is full, the sensors sized for the cap."""
        opts = self.options
        enis = enis or opts.sweep_enis
        ec2 = self._fresh()
        account = scale_account(ec2, enis if cap is None else min(cap, enis), enis)
        expected: set[str] = set()
        for instances in launch_in_batches(ec2, account, enis, 100):
            expected |= enis_of(instances)
        name = "ours, scheduled sweep" if cap is None else f"ours, scheduled sweep, cap {cap:,}"
        run = Run(name, "sweep", "ours", enis=len(expected), containers=2, cap=cap)
        run.margin = float(opts.handler_env.get("MIRROR_DEADLINE_MARGIN_SECONDS", DEFAULT_MARGIN))
        self._count(run)
        # These instances stand for ones that existed long before the sweep, so no grace period.
        sweep_env = {"MIRROR_SWEEP_GRACE_SECONDS": "0", **opts.handler_env}
        if cap is not None:
            sweep_env["MIRROR_MAX_SESSIONS"] = str(cap)
        pool = Pool("ours", 2, _env(self.server.url, sweep_env), opts.retries, opts.experiments)
        try:
            model = SweepModel(
                opts.sweep_budget,
                opts.sweep_interval,
                opts.max_sweeps,
                lambda: self._progress(ec2, expected, cap),
                lambda: self.server.app.stats,
            )
            self._start(run)
            simulate([(model, pool)], self.clock, run)
        finally:
            pool.close()
        return self._finish(run, ec2, expected)

    @staticmethod
    def _progress(ec2: Any, expected: set[str], cap: int | None) -> tuple[int, int]:
        """(duplicates, what is left to do): ENIs unmirrored, or under a cap the sessions short of it."""
        duplicates, unmirrored, _ = coverage(ec2, expected)
        if cap is None:
            return duplicates, unmirrored
        return duplicates, max(0, min(cap, len(expected)) - (len(expected) - unmirrored))

    def sweep_capped(self) -> Run:
        """The sweep over `capped_enis` in-scope ENIs under a cap of `cap` (beside the uncapped sweep)."""
        return self.sweep(self.options.capped_enis, self.options.cap)

    def budget(self) -> Run:
        """One-ENI launch events through the deployed queue under a small cap, then one sweep.

        Containers side by side may each see room: the sessions after the burst may exceed the cap,
        by at most (M - 1) x min(cap, B) with no sweep beside them (M: the queue's concurrency, B:
        the ENIs one batch names); the sweep then releases the lowest priorities above the cap.
        """
        opts = self.options
        ec2 = self._fresh()
        count, cap = opts.budget_events, opts.budget_cap
        account = scale_account(ec2, count)
        events: list[dict[str, Any]] = []
        expected: set[str] = set()
        for index, instances in enumerate(launch_in_batches(ec2, account, count, 1)):
            expected |= enis_of(instances)
            events.append(wrap(run_instances_record(instances, event_id=f"{uuid.uuid4()}"), event_id=f"evt-{index}"))
        env = _env(self.server.url, {**opts.handler_env, "MIRROR_MAX_SESSIONS": str(cap)})
        size = opts.queue_concurrency
        run = Run(f"ours, SQS queue, cap {cap}, then a sweep", "budget", "ours", enis=count, containers=size + 1, cap=cap)
        self._count(run)
        pools = [Pool("ours", size, env, opts.retries, opts.experiments)]
        try:
            self._start(run)
            simulate([(QueueModel(events, concurrency=size), pools[0])], self.clock, run)
            after_burst = self._sessions(ec2)
            pools.append(Pool("ours", 1, {**env, "MIRROR_SWEEP_GRACE_SECONDS": "0"}, opts.retries, opts.experiments))
            sweep = SweepModel(FUNCTION_TIMEOUT, SWEEP_INTERVAL, 1, lambda: (0, 0), lambda: self.server.app.stats)
            simulate([(sweep, pools[1])], self.clock, run)
        finally:
            for pool in pools:
                pool.close()
        per_batch = min(count, BATCH_SIZE)  # one ENI per event, ten events per batch
        run.budget = {
            "cap": cap,
            "concurrency": size,
            "per_batch": per_batch,
            "bound": (size - 1) * min(cap, per_batch),
            "after_burst": after_burst,
            "after_sweep": self._sessions(ec2),
        }
        return self._finish(run, ec2, expected)

    @staticmethod
    def _sessions(ec2: Any) -> int:
        return sum(len(p["TrafficMirrorSessions"]) for p in ec2.get_paginator("describe_traffic_mirror_sessions").paginate())

    def failover(self) -> Run:
        """One sensor of an AZ serves every ENI there and stops; a second, large sensor stands beside it.

        The sessions (ours: made with the ManagedBy tag, as the handler makes them) are all on the
        first sensor; the containers start (their INIT reads the inventory: both sensors running),
        the sensor's instance is stopped, and its `stopping` state-change event goes through the
        deployed queue. Done when every session is on the second sensor: 0 left on the stopped one,
        0 lost (every ENI still has its session), 0 duplicated, within 1.3x of the bucket bound
        for the moves ((N - burst) / rate of ModifyTrafficMirrorSession).
        """
        from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

        from testsupport import sandbox

        opts = self.options
        ec2 = self._fresh()
        account = sandbox.build_account(ec2, REGION, azs=("a",), sensor_type="c5.24xlarge")
        subnet = account.subnets[f"{REGION}a"]
        failing = account.targets[f"sensor-{REGION}a-0"]
        expected: set[str] = set()
        for start in range(0, opts.failover_enis, 100):
            expected |= enis_of(sandbox.launch(ec2, account, subnet, count=min(100, opts.failover_enis - start)))
        tags = [{"ResourceType": "traffic-mirror-session", "Tags": [{"Key": MANAGED_TAG_KEY, "Value": Settings().managed_by}]}]
        for eni in sorted(expected):
            ec2.create_traffic_mirror_session(
                NetworkInterfaceId=eni,
                TrafficMirrorTargetId=failing,
                TrafficMirrorFilterId=account.filters["default"],
                SessionNumber=1,
                TagSpecifications=tags,
            )
        standing = sandbox.add_eni_target(ec2, account, subnet, f"sensor-{REGION}a-1", "c5.24xlarge")
        eni = account.target_enis[failing]
        (sensor,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
        instance = sensor["Attachment"]["InstanceId"]
        name = f"ours, failover of {len(expected)} ENIs (state-change event, SQS queue)"
        run = Run(name, "failover", "ours", enis=len(expected), containers=MAX_CONCURRENCY)
        self._count(run)
        pool = Pool("ours", MAX_CONCURRENCY, _env(self.server.url, opts.handler_env), opts.retries, opts.experiments)
        try:
            ec2.stop_instances(InstanceIds=[instance])
            event = state_change(instance, "stopping", f"failover-{uuid.uuid4()}")
            event["account"] = ACCOUNT_ID
            self._start(run)
            simulate([(QueueModel([event]), pool)], self.clock, run)
        finally:
            pool.close()
        self._finish(run, ec2, expected)
        per_target: dict[str, int] = {}
        for page in ec2.get_paginator("describe_traffic_mirror_sessions").paginate():
            for found in page["TrafficMirrorSessions"]:
                per_target[found["TrafficMirrorTargetId"]] = per_target.get(found["TrafficMirrorTargetId"], 0) + 1
        run.left_on_failed = per_target.get(failing, 0)
        run.notes.append(f"sessions per sensor after: stopped {per_target.get(failing, 0)}, standing {per_target.get(standing, 0)}")
        return run
