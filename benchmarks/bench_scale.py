"""Scale benchmark: bursts of launches and large sweeps under EC2's API throttling.

    python -m benchmarks.bench_scale            # the full run (several minutes of real time)
    python -m benchmarks.bench_scale --quick    # a small smoke run

What is simulated, and how honestly:

- EC2: a moto server (with `testsupport.sandbox.aws_rules()`) behind `testsupport.throttle.ThrottledApp`,
  which holds EC2's token buckets per API action (describes 100 burst / 20 per second, mutating
  calls 50 burst / 5 per second; `--describe-burst` etc. change them) and answers an empty
  bucket with HTTP 503 `RequestLimitExceeded` without passing the request to moto.
- Lambda: every container is its own process (spawned, not forked) that imports `handler.app` and
  calls `lambda_handler(event, context)`: its own boto3 clients, adaptive rate limiters, retry
  quotas, inventory cache and thread pools. Containers are started before the clock starts (the
  INIT phase is not timed, about a second on Lambda), start cold (nothing cached) and stay warm
  for later invocations. The context's `get_remaining_time_in_millis` counts down the function
  timeout (300 s) or the sweep's budget.
- The deployed pipeline: EventBridge -> SQS -> event source mapping (batches of 10, 1 s batching
  window, maximum concurrency 2) -> Lambda with ReportBatchItemFailures; a failed message comes
  back after the visibility timeout (330 s) and goes to the DLQ after 5 receives.
- The alternative "direct" design: EventBridge invokes the Lambda asynchronously, one invocation per
  event, each in its own container (20 at once); a function error is retried by Lambda twice, after
  about 60 s and 120 s. The naive per-instance baseline (`benchmarks.baseline.naive_handler`) runs in
  the same design with its own boto3 client (default configuration) per container.
- Sweeps: the schedule invokes the Lambda every 5 minutes with a short budget (`--sweep-budget`);
  each sweep stops starting writes `MIRROR_DEADLINE_MARGIN_SECONDS` before its deadline and the next
  one continues, until every ENI is mirrored.

Scenarios (`--only`): `queue` (the issue's burst: 20 RunInstances events x 10 instances, through
the deployed queue), `queue+state` (the same plus each instance's "running" state-change event,
which the deployed rules also match, arriving 5-20 s later), `queue+sweep` (the same burst while the
schedule's sweep starts, with the deployed 300 s timeout, 2 s in), `direct` and `naive` (the
burst through direct asynchronous invocations, our handler and the blog post's), `sweep`
(1,000 ENIs, no events, short budget), `accounts` (the burst in several member accounts at once),
`failover` (one sensor of an AZ serving 100 ENIs stops while a second stands: its `stopping`
state-change event through the deployed queue moves every session), `sweep-capped` (beside the
sweep: 10,000 in-scope ENIs under MIRROR_MAX_SESSIONS=1,000, `--capped-enis`, `--cap`) and `budget`
(20 one-ENI launch events under a cap of 5 through the deployed queue, then one sweep: what
containers side by side overshoot, and the sweep restoring the cap; docs/budget.md).
`--queue-concurrency 1` measures what a single writer per region would cost the burst. The direct
design is not run with the state-change events:
that would be 220 concurrent containers, more processes than a benchmark box should spawn.

A larger burst compares the two designs where they part: `--events 60 --only queue,direct`
(600 ENIs, 60 direct containers).

`--experiment NAME` patches a proposed handler change into the handler's containers (see
EXPERIMENTS), so a fix can be measured before it is made; the output says so in its header.

Time: everything runs in real time (botocore's backoff sleeps and the buckets' refills share the
wall clock), except waits during which nothing is in flight (Lambda's retry delays, the visibility
timeout, the time between sweeps): those are skipped on a shared virtual clock. The buckets refill
for the skipped time, and every container's `time.time`/`time.monotonic` advance by the same
offset, so botocore's rate limiters and the handler's cache see the time pass too.
"""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.scale.constants import MAX_CONCURRENCY, ORGANIZATION_MAX_CONCURRENCY, SWEEP_INTERVAL
from benchmarks.scale.containers import EXPERIMENTS
from benchmarks.scale.report import report, verdict
from benchmarks.scale.runs import Run
from benchmarks.scale.scenarios import Bench, Options
from testsupport import environment, moto_server, throttle

# --- command line ---------------------------------------------------------------------------------


def _baseline_available() -> bool:
    try:
        from benchmarks.baseline import naive_handler  # noqa: F401
    except ImportError:
        return False
    return True


def run_all(options: Options, out: Callable[[str], None] = print) -> tuple[list[Run], list[str]]:
    """Run the chosen scenarios; return the runs and the missed done-when criteria."""
    from testsupport import sandbox

    clock = throttle.SimClock()
    runs: list[Run] = []
    with (
        moto_server.Server(lambda moto: throttle.ThrottledApp(moto, options.rates, clock, options.latency)) as server,
        sandbox.aws_rules(),
    ):
        bench = Bench(server, clock, options)
        plan: list[tuple[str, Callable[[], Run]]] = []
        if "queue" in options.scenarios:
            plan.append(("queue", lambda: bench.burst("ours, SQS queue (deployed)", "queue", "ours")))
        if "queue+state" in options.scenarios:
            lo, hi = options.state_change_window
            plan.append(
                (
                    "queue+state",
                    lambda: bench.burst(
                        f"ours, SQS queue + {options.events * options.per_event} state-change events"
                        f" ({lo:g}-{hi:g} s)",
                        "queue+state",
                        "ours",
                    ),
                )
            )
        if "queue+sweep" in options.scenarios:
            plan.append(
                (
                    "queue+sweep",
                    lambda: bench.burst(
                        f"ours, SQS queue + a sweep at {options.sweep_at:g} s", "queue+sweep", "ours"
                    ),
                )
            )
        if "direct" in options.scenarios:
            plan.append(("direct", lambda: bench.burst("ours, direct", "direct", "ours")))
        if "naive" in options.scenarios:
            if _baseline_available():
                plan.append(("naive", lambda: bench.burst("naive per-instance, direct", "direct", "naive")))
            else:
                out("(benchmarks.baseline is not there yet: the naive baseline is skipped)")
        if "sweep" in options.scenarios:
            plan.append(("sweep", bench.sweep))
        if "accounts" in options.scenarios:
            plan.append(("accounts", bench.accounts))
        if "failover" in options.scenarios:
            plan.append(("failover", bench.failover))
        if "sweep-capped" in options.scenarios:
            plan.append(("sweep-capped", bench.sweep_capped))
        if "budget" in options.scenarios:
            plan.append(("budget", bench.budget))
        for label, scenario in plan:
            started = time.monotonic()
            run = scenario()
            runs.append(run)
            out(f"({label}: {time.monotonic() - started:.0f} s of real time)")
    return runs, verdict(runs, check_makespan=not options.quick)


def _pairs(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        key, _, val = value.partition("=")
        found[key] = val
    return found


def _window(value: str) -> tuple[float, float]:
    lo, _, hi = value.partition(",")
    return float(lo), float(hi or lo)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--describe-burst", type=float, default=100.0)
    parser.add_argument("--describe-rate", type=float, default=20.0)
    parser.add_argument("--mutate-burst", type=float, default=50.0)
    parser.add_argument("--mutate-rate", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=20, help="RunInstances events in the burst")
    parser.add_argument("--per-event", type=int, default=10, help="instances (one ENI each) per event")
    parser.add_argument("--sweep-enis", type=int, default=1000)
    parser.add_argument("--sweep-budget", type=float, default=30.0, help="seconds per sweep invocation")
    parser.add_argument("--sweep-interval", type=float, default=SWEEP_INTERVAL)
    parser.add_argument("--max-sweeps", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.05, help="EC2's own latency per call, seconds")
    parser.add_argument(
        "--only",
        default="queue,queue+state,queue+sweep,direct,naive,sweep,accounts,failover,sweep-capped,budget",
        help="comma-separated: queue, queue+state, queue+sweep, direct, naive, sweep, accounts, failover, sweep-capped,"
        " budget",
    )
    parser.add_argument(
        "--failover-enis", type=int, default=100, help="failover: ENIs on the sensor that stops (one AZ)"
    )
    parser.add_argument(
        "--queue-concurrency",
        type=int,
        default=MAX_CONCURRENCY,
        help="the queue scenarios' maximum concurrency (1: what a single writer per region would cost)",
    )
    parser.add_argument("--capped-enis", type=int, default=10_000, help="sweep-capped: in-scope ENIs")
    parser.add_argument("--cap", type=int, default=1000, help="sweep-capped: MIRROR_MAX_SESSIONS")
    parser.add_argument("--budget-events", type=int, default=20, help="budget: one-ENI launch events")
    parser.add_argument("--budget-cap", type=int, default=5, help="budget: MIRROR_MAX_SESSIONS")
    parser.add_argument(
        "--accounts", type=int, default=5, help="accounts: the burst in each of this many member accounts at once"
    )
    parser.add_argument(
        "--accounts-concurrency",
        type=int,
        default=ORGANIZATION_MAX_CONCURRENCY,
        help="accounts: the event queue's maximum concurrency (default: as deployed for organizations)",
    )
    parser.add_argument(
        "--sweep-at", type=float, default=2.0, help="queue+sweep: when the schedule's sweep starts"
    )
    parser.add_argument(
        "--handler-env", action="append", default=[], metavar="KEY=VALUE",
        help="extra environment for the handler's containers (experiments, e.g. MIRROR_MAX_WORKERS=4)",
    )  # fmt: skip
    parser.add_argument(
        "--retry", action="append", default=[], metavar="KEY=VALUE",
        help="experiment: override the handler's botocore retries (mode=standard, max_attempts=20)",
    )  # fmt: skip
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        choices=sorted(EXPERIMENTS),
        help="experiment: patch a proposed handler change into the handler's containers",
    )
    parser.add_argument(
        "--state-changes",
        action="store_true",
        help="also send each instance's 'running' state-change event (the deployed rules match it)",
    )
    parser.add_argument(
        "--state-change-window",
        default="5,20",
        help="LO,HI: state-change events arrive uniformly in this window (seconds after the burst)",
    )
    parser.add_argument(
        "--runinstances-at", type=float, default=0.0, help="when the RunInstances events arrive"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run (about 30 s)")
    args = parser.parse_args(argv)
    retries: dict[str, Any] = {k: int(v) if v.isdigit() else v for k, v in _pairs(args.retry).items()}
    rates = throttle.Rates(args.describe_burst, args.describe_rate, args.mutate_burst, args.mutate_rate)
    options = Options(
        rates,
        events=args.events,
        per_event=args.per_event,
        sweep_enis=args.sweep_enis,
        sweep_budget=args.sweep_budget,
        sweep_interval=args.sweep_interval,
        max_sweeps=args.max_sweeps,
        sweep_at=args.sweep_at,
        state_changes=args.state_changes,
        state_change_window=_window(args.state_change_window),
        runinstances_at=args.runinstances_at,
        latency=args.latency,
        handler_env=_pairs(args.handler_env),
        retries=retries,
        experiments=tuple(args.experiment),
        scenarios=tuple(s.strip() for s in args.only.split(",") if s.strip()),
        accounts=args.accounts,
        accounts_concurrency=args.accounts_concurrency,
        failover_enis=args.failover_enis,
        queue_concurrency=args.queue_concurrency,
        capped_enis=args.capped_enis,
        cap=args.cap,
        budget_events=args.budget_events,
        budget_cap=args.budget_cap,
    )
    if args.quick:
        options = quick(options)
    options.direct_concurrency = options.events
    return options


def quick(options: Options) -> Options:
    """Tiny sizes and small buckets: every mechanism runs (throttling included) in well under a minute."""
    options.rates = throttle.Rates(describe_burst=40, describe_rate=40, mutate_burst=4, mutate_rate=8)
    options.events, options.per_event = 4, 3
    options.accounts = 2
    options.sweep_enis, options.sweep_budget = 40, 5.0
    options.failover_enis = 12
    options.capped_enis, options.cap = 40, 10
    options.handler_env = {"MIRROR_DEADLINE_MARGIN_SECONDS": "3", **options.handler_env}
    options.latency = 0.01
    options.quick = True
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    with environment.isolated():
        runs, misses = run_all(options, out=lambda line: print(line, file=sys.stderr, flush=True))
    print(report(runs, options))
    if misses:
        print("\nDONE-WHEN MISSED:\n" + "\n".join(f"- {m}" for m in misses))
        return 1
    print("\nDone-when criteria met for the deployed pipeline and the sweep.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
