"""Cold start as Lambda pays it: a new process, from its start to the end of its first event.

`bench_handler`'s cold rows import the handler anew in a process whose botocore models are
already loaded: they leave out what a real cold start pays on top (starting Python, importing
boto3, parsing the models), and that part is not the same for both sides. Here each run is a
new `python` process (`lambda_bootstrap.py`) started on a task directory that holds exactly the
deployment package (`components.packaging`: sources only, no .pyc, so they are compiled at
import as in Lambda's read-only /var/task) and the baseline's module; its environment is what
Lambda's runtime sets (AWS_EXECUTION_ENV, AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, ...), so our
handler's init runs as it does in Lambda. AWS is a moto server on loopback (AWS_ENDPOINT_URL),
with `testsupport.sandbox`'s AWS rules, an optional latency per call, and each run's EC2 calls
counted by action. Both sides get the same account and the same event (one RunInstances: one
instance with one ENI, a new instance id each run); each run's sessions are checked and deleted
afterwards, untimed. The two sides alternate, so drift on the machine hits both alike; two
references, the interpreter alone and `import boto3`, say how much of it is not the handler's.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testsupport import environment
from testsupport.event_builders import run_instances_record, wrap

REGION = "us-east-1"
SIDES = ("ours", "baseline")
BYTECODE = "ours, with bytecode"
"""Our package as deployed from the runtime's own Python: each module's .pyc beside its source
(`components.packaging.bytecode_files`); "ours" is the package of sources only."""
REFERENCES = ("python", "boto3")
BOOTSTRAP = Path(__file__).resolve().parent / "lambda_bootstrap.py"
BASELINE = Path(__file__).resolve().parent / "baseline.py"
FUNCTION_NAME = "traffic-mirror-cold-start"
NO_THROTTLING = 1e9
"""Token buckets too large to ever throttle: the server only counts calls and adds latency."""


def lambda_environment(endpoint: str, home: Path, task: Path) -> dict[str, str]:
    """What Lambda's Python runtime puts in a function's environment, with fake credentials and
    moto as every service's endpoint (nothing of the caller's environment leaks in)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(home),  # empty: no ~/.aws files
        "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only: the package is compiled every time
        "LAMBDA_TASK_ROOT": str(task),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]cold",
        "AWS_ACCESS_KEY_ID": environment.FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": environment.FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
    }


@dataclass
class Start:
    """One new process: seconds from its spawn to the end of init and of the first event."""

    side: str
    init: float  # spawn -> the end of init (imports, module-level code, the baseline's client)
    total: float  # spawn -> the end of the first event (= init for the references)
    cpu: float  # the process's CPU time (all threads) to the end of the first event: load barely moves it
    calls: Counter[str]
    server: float = 0.0  # moto's time answering those calls (AWS's stand-in, on the same CPUs; no latency)


@dataclass
class Result:
    latency_ms: float
    stat: str
    repeat: int = 0
    runs: dict[str, list[Start]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average before and after the measurement."""

    def of(self, side: str, what: str) -> float:
        values = [getattr(r, what) for r in self.runs.get(side, [])]
        if not values:
            return float("nan")
        return (min(values) if self.stat == "min" else statistics.median(values)) * 1000.0

    def calls(self, side: str) -> Counter[str]:
        runs = self.runs.get(side) or []
        return runs[0].calls if runs else Counter()


def _task_directory(root: Path, handler: Path | None = None, bytecode: bool = False) -> Path:
    """The deployment package exactly as `components.packaging` zips it (of `handler`, a directory
    of the handler's sources; by default the installed one; `bytecode`: as deployed from the
    runtime's own Python), plus the baseline's module."""
    from traffic_mirror.components import packaging

    task = root / "task"
    task.mkdir(parents=True)
    runtime = packaging.this_runtime() if bytecode else None
    with zipfile.ZipFile(packaging.write_zip(root / "function.zip", handler, runtime)) as archive:
        archive.extractall(task)
    shutil.copy(BASELINE, task / "baseline.py")
    shutil.copy(BOOTSTRAP, task / "bootstrap.py")
    return task


def _sources_at(ref: str, root: Path) -> Path:
    """The handler's sources as commit `ref` has them (`git archive`), to measure a change."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "archive", ref, "handler"], cwd=repo, capture_output=True, check=True, timeout=60
    ).stdout
    root.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True, timeout=60)
    return root / "handler"


class Runner:
    """The moto server, its account and the task directories: spawns and checks one process at a time."""

    def __init__(self, server: Any, root: Path, before: str | None = None) -> None:
        import boto3

        from testsupport import sandbox, throttle

        self.server = server
        self.files = root
        task = _task_directory(root / "now")
        self.tasks = {side: task for side in (*SIDES, *REFERENCES)}
        """Side -> the task directory its process starts in."""
        self.tasks[BYTECODE] = _task_directory(root / "bytecode", bytecode=True)
        if before:
            self.tasks[before_side(before)] = _task_directory(root / "before", _sources_at(before, root / "src"))
        self.home = root / "home"
        self.home.mkdir()
        self.sandbox = sandbox
        self.admin = throttle.bypass(
            boto3.session.Session().client("ec2", region_name=REGION, endpoint_url=server.url)
        )
        self.account = sandbox.build_account(self.admin, REGION, sensors_per_az=2, ami=sandbox.moto_ami())
        self.serial = 0

    def _event(self) -> Path:
        """A new m5.large instance with one ENI, and its RunInstances event (a new event id)."""
        self.serial += 1
        subnet = list(self.account.subnets.values())[self.serial % 2]
        instances = self.sandbox.launch(self.admin, self.account, subnet, "m5.large", {"Name": f"cold-{self.serial}"})
        event_id = f"cold-start-{self.serial}"
        path = self.files / "event.json"
        path.write_text(json.dumps(wrap(run_instances_record(instances, event_id=event_id), event_id=event_id)))
        return path

    def _sessions(self) -> list[str]:
        pages = self.admin.get_paginator("describe_traffic_mirror_sessions").paginate()
        return [s["TrafficMirrorSessionId"] for page in pages for s in page["TrafficMirrorSessions"]]

    def start(self, side: str) -> tuple[Start, str | None]:
        """One new process for `side`; (its times and calls, a problem or None)."""
        event = self._event()
        out = self.files / "result.json"
        out.unlink(missing_ok=True)
        self.server.app.reset()
        task = self.tasks[side]
        role = "ours" if side.startswith("ours") else side
        spawned = time.time()
        done = subprocess.run(
            [sys.executable, str(task / "bootstrap.py"), role, str(event), str(out)],
            cwd=task,
            env=lambda_environment(self.server.url, self.home, task),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        calls = Counter(self.server.app.stats.calls)
        server = sum(self.server.app.stats.moto_seconds.values())
        if done.returncode != 0 or not out.exists():
            return Start(side, 0, 0, 0, calls), f"{side}: exit {done.returncode}: {done.stderr.strip()[-600:]}"
        found = json.loads(out.read_text())
        run = Start(
            side,
            found["initialised"] - spawned,
            found["ended"] - spawned,
            found["cpu"],
            calls,
            server,
        )
        problem = None
        if role in SIDES:
            sessions = self._sessions()
            for session_id in sessions:  # untimed: the next run starts from the same account
                self.admin.delete_traffic_mirror_session(TrafficMirrorSessionId=session_id)
            if len(sessions) != 1:
                problem = f"{side}: {len(sessions)} session(s) created, expected 1 ({found['answer']})"
        return run, problem


def before_side(ref: str) -> str:
    return f"ours at {ref}"


@contextmanager
def _world(latency_ms: float, before: str | None = None) -> Iterator[Runner]:
    """Fake credentials and a moto server (with the AWS rules) for the block; a scratch directory."""
    with ExitStack() as stack:
        stack.enter_context(environment.isolated(environment.TEST_EXTRA))
        from testsupport import moto_server, sandbox, throttle

        stack.enter_context(sandbox.aws_rules())
        rates = throttle.Rates(NO_THROTTLING, NO_THROTTLING, NO_THROTTLING, NO_THROTTLING)
        clock, latency = throttle.SimClock(), latency_ms / 1000.0
        server = stack.enter_context(
            moto_server.Server(lambda moto: throttle.ThrottledApp(moto, rates, clock, latency))
        )
        server.reset()  # moto's backends live in this process: start from an empty account every time
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cold-start-")))
        yield Runner(server, root, before)


def measure(
    repeat: int = 15, latency_ms: float = 0.0, stat: str = "min", warm_up: int = 1, before: str | None = None
) -> Result:
    """`repeat` new processes per side and per reference, interleaved (the order rotates);
    `before`: also the handler as that git commit has it."""
    result = Result(latency_ms, stat, repeat)
    with _world(latency_ms, before) as runner:
        order = list(runner.tasks)
        for side in order * warm_up:  # untimed: moto's first answer to each action, the page cache
            runner.start(side)
        result.load = (os.getloadavg()[0], 0.0)
        for rep in range(repeat):
            shift = rep % len(order)
            for side in order[shift:] + order[:shift]:
                run, problem = runner.start(side)
                if problem:
                    result.problems.append(problem)
                    continue
                result.runs.setdefault(side, []).append(run)
        result.load = (result.load[0], os.getloadavg()[0])
    for side in result.runs:
        calls = {frozenset(r.calls.items()) for r in result.runs[side]}
        if len(calls) > 1:
            result.problems.append(f"{side}: EC2 calls differ between runs: {calls}")
    return result


def table(result: Result) -> str:
    """Markdown: each side's process cold start, and what it adds to the references."""
    name = "best" if result.stat == "min" else "median"
    boto3 = result.of("boto3", "total")
    python = result.of("python", "total")
    sides = [side for side in result.runs if side not in REFERENCES and side != "baseline"]
    head = " | ".join(sides)
    ratios = " | ".join(f"{side} ÷ baseline" for side in sides)
    lines = [
        f"| New process, {result.latency_ms:g} ms per call ({name} of {result.repeat}) | {head} | baseline | {ratios} |",
        "|---|" + "---|" * (2 * len(sides) + 1),
    ]

    def row(label: str, what: str, minus: float = 0.0) -> None:
        theirs = result.of("baseline", what) - minus
        ours = [result.of(side, what) - minus for side in sides]
        cells = " | ".join(f"{value:.0f}" for value in ours)
        shares = " | ".join(f"{value / theirs:.2f}x" for value in ours)
        lines.append(f"| {label} | {cells} | {theirs:.0f} | {shares} |")

    row("Process start to the end of the first event, ms", "total")
    row("of which init (to the end of Lambda's init phase), ms", "init")
    row(f"beyond `import boto3` ({boto3:.0f} ms; the interpreter alone {python:.0f} ms), ms", "total", boto3)
    row("CPU time to the end of the first event (every thread), ms", "cpu")
    row("moto's time answering the calls (AWS's stand-in, on the same CPUs), ms", "server")
    calls = " | ".join(str(sum(result.calls(side).values())) for side in sides)
    lines.append(f"| EC2 calls | {calls} | {sum(result.calls('baseline').values())} |" + " |" * len(sides))
    return "\n".join(lines)


def describe(result: Result) -> str:
    ops = {side: ", ".join(f"{op} {n}" for op, n in sorted(result.calls(side).items())) for side in SIDES}
    load = (
        f"load average {result.load[0]:.2f} before, {result.load[1]:.2f} after, on {os.cpu_count()} CPU(s); "
        f"Python {sys.version.split()[0]}"
    )
    return "\n".join(
        [
            f"- Each figure is the {'best' if result.stat == 'min' else 'median'} of {result.repeat} new "
            f"processes per side, sides interleaved; {load}.",
            f"- EC2 calls: ours {ops['ours']}; baseline {ops['baseline']}.",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_process", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="new processes per side")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every AWS call")
    parser.add_argument("--stat", choices=("min", "median"), default="min")
    parser.add_argument("--before", metavar="GIT_REF", help="also measure the handler as this commit has it")
    args = parser.parse_args(argv)
    result = measure(args.repeat, args.latency_ms, args.stat, before=args.before)
    print(table(result))
    print()
    print(describe(result))
    for problem in result.problems:
        print(f"INVALID  {problem}")
    return 2 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
