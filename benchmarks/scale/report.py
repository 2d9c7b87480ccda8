"""The scale benchmark's report: tables, reasons, and the done-when verdict."""

from collections.abc import Sequence
from typing import Any

from benchmarks.scale.constants import (
    ACCOUNTS_TARGET_RATIO,
    FAILOVER_TARGET_RATIO,
    FUNCTION_TIMEOUT,
    TARGET_RATIO,
)
from benchmarks.scale.runs import Run
from benchmarks.scale.scenarios import Options
from testsupport import throttle


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s"


def burst_table(runs: Sequence[Run]) -> str:
    header = "| | " + " | ".join(r.name for r in runs) + " |"
    lines = [header, "|---" * (len(runs) + 1) + "|"]

    def row(label: str, values: Sequence[Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    row("ENIs", [r.enis for r in runs])
    row("concurrent containers", [r.containers for r in runs])
    row("makespan (burst to last invocation end)", [_s(r.end) for r in runs])
    row("token-bucket bound", [_s(r.bound()) for r in runs])
    row("makespan / bound", [f"{r.end / r.bound():.2f}x" if r.bound() else "-" for r in runs])
    last = [r.stats.last_pass.get("CreateTrafficMirrorSession") for r in runs]
    row("last session created at", [_s(t) if t is not None else "-" for t in last])
    row("invocations", [len(r.replies) for r in runs])
    row("retries used (Lambda / SQS redeliveries)", [r.retries for r in runs])
    row("function errors", [r.errors for r in runs])
    row(
        "failed SQS messages (batchItemFailures)",
        [r.failed_messages if r.design.startswith("queue") else "-" for r in runs],
    )
    row("events lost (DLQ / dropped after retries)", [r.lost for r in runs])
    row(
        "API calls (throttled)",
        [f"{sum(r.stats.calls.values())} ({sum(r.stats.throttled.values())})" for r in runs],
    )
    row("**duplicates** (must be 0)", [r.duplicates for r in runs])
    row("**ENIs left unmirrored** (must be 0)", [r.unmirrored for r in runs])
    row("**deadline overruns** (must be 0)", [r.overruns for r in runs])
    row(
        "longest invocation / timeout",
        [f"{max((x.elapsed for x in r.replies), default=0):.1f} / {FUNCTION_TIMEOUT:.0f} s" for r in runs],
    )
    row("idle time skipped (virtual clock)", [_s(r.skipped) for r in runs])
    return "\n".join(lines)


def calls_table(runs: Sequence[Run]) -> str:
    actions = sorted({a for r in runs for a in r.stats.calls}, key=lambda a: (not throttle.is_mutating(a), a))
    lines = [
        "| API calls: sent (throttled) | " + " | ".join(r.name for r in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for action in actions:
        cells = [
            f"{r.stats.calls[action]} ({r.stats.throttled[action]})" if r.stats.calls[action] else "-"
            for r in runs
        ]
        lines.append(f"| {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(run: Run) -> str:
    lines = [
        "| sweep | starts at | elapsed / budget | reads before 1st write | created | deferred | failed"
        " | unmirrored after | duplicates |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in enumerate(run.sweeps, 1):
        error = f" (error: {s['error'][:60]})" if s["error"] else ""
        reads = "no write" if s["reads"] is None else f"{s['reads']:.1f} s"
        lines.append(
            f"| {n} | {_s(s['start'])} | {s['elapsed']:.1f} / {s['budget']:.0f} s{error} | {reads} | {s['created']} "
            f"| {s['deferred']} | {s['failed']} | {s['unmirrored']} | {s['duplicates']} |"
        )
    converged = run.sweeps and run.sweeps[-1]["unmirrored"] == 0
    lines += [
        "",
        f"- ENIs: {run.enis}; sweeps needed: {len(run.sweeps)} ({'converged' if converged else 'NOT converged'});"
        f" simulated time {_s(run.end)}; create bound {_s(run.bound())}",
        f"- **deadline overruns: {run.overruns}**, **duplicates: {run.duplicates}**,"
        f" **ENIs left unmirrored: {run.unmirrored}**, sessions on sensor ENIs: {run.strays}",
        f"- API calls: {sum(run.stats.calls.values())}, throttled: {sum(run.stats.throttled.values())}",
        "- moto's answer time per call (the reads' server side; parsing happens in the container): "
        + ", ".join(
            f"{a} {run.stats.moto_seconds.get(a, 0.0) / run.stats.passed[a]:.2f} s"
            for a in sorted(run.stats.passed)
            if not throttle.is_mutating(a)
        ),
        f"- the deadline margin ({run.margin:g} s) leaves {run.sweeps[0]['budget'] - run.margin:g} s per"
        " invocation for reads and writes: a sweep creates nothing once its reads take that long",
    ]
    return "\n".join(lines)


def failover_table(run: Run) -> str:
    """The failover: from the sensor's state-change event to the last move, against the moves' bound."""
    stats = run.stats
    moves = stats.passed.get("ModifyTrafficMirrorSession", 0)
    last = stats.last_pass.get("ModifyTrafficMirrorSession")
    lines = [
        "| | failover |",
        "|---|---|",
        f"| ENIs on the stopped sensor | {run.enis} |",
        f"| makespan (state-change event to the last invocation's end) | {_s(run.end)} |",
        f"| last session moved at | {_s(last) if last is not None else '-'} |",
        f"| token-bucket bound ((moves - burst) / rate) | {_s(run.bound())} |",
        f"| makespan / bound | {run.end / run.bound():.2f}x |" if run.bound() else "| makespan / bound | - |",
        f"| sessions moved (ModifyTrafficMirrorSession passed) | {moves} |",
        f"| invocations | {len(run.replies)} |",
        f"| API calls (throttled) | {sum(stats.calls.values())} ({sum(stats.throttled.values())}) |",
        f"| **left on the stopped sensor** (must be 0) | {run.left_on_failed} |",
        f"| **lost: ENIs without a session** (must be 0) | {run.unmirrored} |",
        f"| **duplicated** (must be 0) | {run.duplicates} |",
        f"| events lost (DLQ) | {run.lost} |",
    ]
    return "\n".join([*lines, *(f"- {note}" for note in run.notes)])


def reasons_text(runs: Sequence[Run]) -> str:
    lines = []
    for run in runs:
        top = run.reasons().most_common(6)
        if top:
            lines.append(f"- {run.name}:")
            lines.extend(f"  - {n} x {reason}" for reason, n in top)
    return "\n".join(lines) if lines else "- none"


def verdict(runs: Sequence[Run], check_makespan: bool = True) -> list[str]:
    """The done-when criteria for the deployed pipeline (queue) and the sweep; empty = met.

    The makespan criterion needs the real sizes and rates (a quick run's bound is a second or so,
    which the 1 s batching window alone exceeds)."""
    misses = []
    for run in runs:
        if run.design == "failover":
            for what, value in (
                ("sessions left on the stopped sensor", run.left_on_failed),
                ("ENIs lost", run.unmirrored),
                ("duplicates", run.duplicates),
                ("events lost", run.lost),
            ):
                if value:
                    misses.append(f"{run.name}: {value} {what}")
            if check_makespan and run.bound() and run.end > FAILOVER_TARGET_RATIO * run.bound():
                misses.append(
                    f"{run.name}: makespan {run.end:.1f} s is over {FAILOVER_TARGET_RATIO}x the bound {run.bound():.1f} s"
                )
            continue
        if run.handler != "ours" or run.design not in ("queue", "queue+state", "queue+sweep", "sweep"):
            continue
        for what, value in (
            ("duplicates", run.duplicates),
            ("ENIs left unmirrored", run.unmirrored),
            ("deadline overruns", run.overruns),
        ):
            if value:
                misses.append(f"{run.name}: {value} {what}")
        target = TARGET_RATIO if run.accounts == 1 else ACCOUNTS_TARGET_RATIO
        if check_makespan and run.design.startswith("queue") and run.bound() and run.end > target * run.bound():
            misses.append(f"{run.name}: makespan {run.end:.1f} s is over {target}x the bound {run.bound():.1f} s")
        if run.design == "sweep" and (not run.sweeps or run.sweeps[-1]["unmirrored"]):
            misses.append(f"{run.name}: did not converge in {len(run.sweeps)} sweeps")
        if run.design == "sweep" and run.over_cap:
            misses.append(f"{run.name}: {run.over_cap} sessions above the cap")
    for run in runs:
        if run.design != "budget":
            continue
        b = run.budget
        if b["after_burst"] - b["cap"] > b["bound"]:
            misses.append(f"{run.name}: {b['after_burst']} sessions after the burst, over the cap {b['cap']} + bound {b['bound']}")
        if b["after_sweep"] != min(b["cap"], run.enis):
            misses.append(f"{run.name}: {b['after_sweep']} sessions after the sweep, not the cap {b['cap']}")
    return misses


def budget_text(run: Run) -> str:
    b = run.budget
    return "\n".join(
        [
            f"- {run.enis} one-ENI launch events, {b['concurrency']} containers side by side (the queue's maximum"
            f" concurrency M), batches of up to {b['per_batch']} ENIs (B), MIRROR_MAX_SESSIONS={b['cap']}",
            f"- sessions after the burst: {b['after_burst']} (overshoot {max(0, b['after_burst'] - b['cap'])};"
            f" the bound (M - 1) x min(cap, B) = {b['bound']})",
            f"- sessions after the next sweep: {b['after_sweep']} (the cap restored, lowest priorities released)",
            f"- duplicates: {run.duplicates}; API calls: {sum(run.stats.calls.values())},"
            f" throttled: {sum(run.stats.throttled.values())}",
        ]
    )


def code_state() -> str:
    """Which handler code ran: the commit, and any uncommitted change to the files that ran."""
    import subprocess

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            return ""
        return done.stdout.rstrip("\n")

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = git("status", "--porcelain", "--", "handler", "benchmarks/baseline.py").splitlines()
    changed = ", ".join(line[3:] for line in dirty)
    return f"Code: commit {head}" + (f" plus uncommitted changes to {changed}." if changed else ".")


def report(runs: Sequence[Run], options: Options) -> str:
    rates = options.rates
    out = [
        code_state(),
        f"EC2 token buckets per API action: describes {rates.describe_burst:g} burst / {rates.describe_rate:g} per s,"
        f" mutating calls {rates.mutate_burst:g} burst / {rates.mutate_rate:g} per s;"
        f" EC2 latency per call {options.latency * 1000:.0f} ms.",
    ]
    if options.handler_env or options.retries or options.experiments:
        out.append(
            f"EXPERIMENT (not the deployed configuration): env {options.handler_env},"
            f" retries {options.retries}, patches {list(options.experiments)}"
        )
    bursts = [r for r in runs if r.design not in ("sweep", "failover", "budget")]
    if bursts:
        out += [
            "",
            f"### Burst: {options.events} RunInstances events x {options.per_event} instances"
            + (
                f" at {options.runinstances_at:g} s, plus one 'running' state-change event per instance"
                f" between {options.state_change_window[0]:g} and {options.state_change_window[1]:g} s"
                if options.state_changes
                else " at once"
            ),
            "",
            burst_table(bursts),
            "",
            calls_table(bursts),
        ]
    sweeps = [r for r in runs if r.design == "sweep"]
    for run in sweeps:
        capped = "" if run.cap is None else f" under MIRROR_MAX_SESSIONS={run.cap:,} (converged: the cap full)"
        out += [
            "",
            f"### Sweep: {run.enis:,} in-scope ENIs{capped}, budget {options.sweep_budget:g} s per invocation,"
            f" every {options.sweep_interval:g} s",
            "",
            sweep_table(run),
        ]
    if sweeps:
        out += ["", calls_table(sweeps)]
    for run in runs:
        if run.design == "budget":
            out += ["", "### Budget: containers side by side under a cap, then a sweep", "", budget_text(run)]
    for run in runs:
        if run.design == "failover":
            out += [
                "",
                f"### Failover: one sensor of an AZ serving {run.enis} ENIs stops, a second stands",
                "",
                failover_table(run),
                "",
                calls_table([run]),
            ]
    for run in runs:
        if run.design != "failover":
            out += [f"- {run.name}: {note}" for note in run.notes]
    out += [
        "",
        "Why ENIs failed or were deferred (per decision, summed over invocations):",
        reasons_text(runs),
    ]
    return "\n".join(out)
