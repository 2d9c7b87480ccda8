"""The CLI as a newcomer meets it: nothing lost at 80 columns, one line per mistake, a fast
failure on a dead endpoint, options anywhere, a summary for big sweeps."""

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from rich.console import Console
from traffic_mirror import cli
from traffic_mirror.cli import aws, coverage, exits, reasons, sweep_cmd
from traffic_mirror.cli.cost import estimate
from traffic_mirror.handler import reconcile
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container, Context
from traffic_mirror.handler.model import Decision, Target
from traffic_mirror.handler.settings import Settings

from testsupport import sandbox

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


def flat(text: str) -> str:
    """Whitespace collapsed: a reason wrapped over lines reads the same, a cropped one does not."""
    return " ".join(text.split())


def run(*argv: str, width: int = 80, terminal: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=terminal, color_system=None, soft_wrap=not terminal
    )
    errors = Console(file=err, width=width, color_system=None, soft_wrap=True)
    code = cli.main(list(argv), console=console, err_console=errors)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def ec2(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def workloads(ec2: Any) -> sandbox.Account:
    """Something of every kind: mirrored, opted out, unsupported, routed without a target, no filter choice."""
    account = sandbox.build_account(ec2, REGION)
    sandbox.launch_sample_workloads(ec2, account)
    return account


def common(endpoint: str) -> list[str]:
    return ["--region", REGION, "--endpoint-url", endpoint]


# --- nothing lost at 80 columns --------------------------------------------------------------


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_every_reason_is_whole_at_80_columns(
    endpoint: str, workloads: sandbox.Account, terminal: bool
) -> None:
    here = Context(Place(REGION, None, endpoint), Settings(), Container())
    decisions, _ = reconcile.read_only_plan(here)
    assert len(decisions) >= 8

    code, plan, _ = run("plan", *common(endpoint), terminal=terminal)
    assert code == exits.OK
    for d in decisions:
        assert flat(reasons.gist(d)) in flat(plan), d
        assert d.eni_id in plan
    assert "web-1  eni-" in plan  # the Name tag, not a bare instance id, heads each record

    code, report, _ = run("coverage", *common(endpoint), terminal=terminal)
    assert code == exits.OK
    for u in coverage.coverage(REGION, decisions).unmirrored:
        assert flat(u.reason) in flat(report), u

    code, dry, _ = run("sweep", *common(endpoint), terminal=terminal)
    assert code == exits.OK
    dry_ctx = Context(Place(REGION, None, endpoint), Settings(dry_run=True), Container())
    outcome = reconcile.sweep(dry_ctx, reconcile.SweepPolicy(trigger="test"))
    for r in outcome.results:
        text = sweep_cmd.skip_reason(r) if r.status == "skipped" else sweep_cmd.note(r)
        assert flat(text) in flat(dry), r

    for text in (plan, report, dry):
        lines = text.splitlines()
        assert all(line == line.rstrip() for line in lines), "trailing spaces"
        if terminal:
            assert max(len(line) for line in lines) <= 80
    assert "unrouted" not in plan + report + dry
    for text in (plan, report):
        assert "Estimated cost: 3 session(s) x 730 h x $0.015/h = $32.85 per month" in flat(text)


def test_cost_counts_sessions_left_in_place_and_cross_az_targets() -> None:
    gwlbe = Target("tmt-far", "gateway-load-balancer-endpoint", "vpce-1", "vpc-1", "subnet-b", "us-east-1b")
    near = Target("tmt-near", "network-interface", "eni-s", "vpc-1", "subnet-a", "us-east-1a")
    targets = {t.target_id: t for t in (gwlbe, near)}

    def decided(outcome: Any, target: str | None, **kw: Any) -> Decision:
        return Decision("eni-1", "i-1", outcome, "why", target_id=target, az="us-east-1a", **kw)

    decisions = [
        decided("create", "tmt-far"),  # to another AZ
        decided("mirrored", "tmt-near", kept_session="tms-1"),
        decided("modify", "tmt-near"),
        decided("skipped", None, out_of_scope="opted-out"),
        decided("skipped", None, problem="no-target"),
        decided("delete", None, out_of_scope="opted-out"),  # its sessions go away
    ]
    found = estimate(decisions, targets)
    assert (found.mirrored_enis, found.cross_az) == (3, 1)
    assert round(found.monthly_usd, 2) == round(3 * 730 * 0.015, 2)
    assert "cross-AZ data for 1 ENI(s)" in found.sentence()


# --- one line per mistake, and the documented exit code ----------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


MISTAKES = [
    (["plan", "--filter-id", "abc", "--region", REGION], exits.USAGE, "--filter-id"),
    (["plan", "--region", "us-esat-1"], exits.USAGE, "did you mean 'us-east-1'"),
    (["plan", "--region", "mars-north-1"], exits.USAGE, "not a known AWS region"),
    (["plan", "--region", REGION, "--endpoint-url", "127.0.0.1:5000"], exits.USAGE, "scheme"),
    (["coverage", "--region", REGION, "--min", "120"], exits.USAGE, "--min"),
    (["coverage", "--region", REGION, "--format", "yaml"], exits.USAGE, "--format"),
    (["plan", "--region", REGION, "--timeout", "soon"], exits.USAGE, "--timeout"),
    (["plan", "--bogus"], exits.USAGE, "--bogus"),
    (["launch"], exits.USAGE, "invalid choice"),
    (
        ["plan", "--region", REGION, "--profile", "prod"],
        exits.CANNOT_RUN,
        "profile (prod) could not be found",
    ),
]


@pytest.mark.parametrize(("argv", "code", "says"), MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_each_mistake_is_one_line_and_its_exit_code(
    argv: list[str], code: int, says: str, capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    try:
        got = cli.main(argv)
    except SystemExit as exit_:
        got = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert got == code, err
    assert len(err.strip().splitlines()) == 1, err
    assert says in err and "Traceback" not in err + out


def test_mistakes_in_the_environment_are_one_line(
    capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "prod")
    assert cli.main(["plan", "--region", REGION]) == exits.CANNOT_RUN
    assert "profile (prod)" in capsys.readouterr().err
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert cli.main(["plan"]) == exits.USAGE
    assert "--region" in capsys.readouterr().err
    monkeypatch.setenv("MIRROR_SCOPE", "everything")
    assert cli.main(["plan", "--region", REGION]) == exits.CANNOT_RUN
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "MIRROR_SCOPE" in err


@pytest.mark.parametrize("entry", ["module", "script"])
def test_help_works_with_a_missing_profile(entry: str, tmp_path: Path) -> None:
    """No boto3 session at import: a broken AWS_PROFILE cannot break --help."""
    script = Path(sys.executable).parent / "traffic-mirror"
    command = [sys.executable, "-m", "handler", "--help"] if entry == "module" else [str(script), "--help"]
    if entry == "script" and not script.exists():
        pytest.skip("the console script is installed by `make` (pip install -e .)")
    env = {**os.environ, "AWS_PROFILE": "prod", "AWS_CONFIG_FILE": str(tmp_path / "none")}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "exit codes:" in done.stdout and "--profile" in done.stdout


# --- failing fast --------------------------------------------------------------------------------


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's waits between attempts, recorded instead of slept: how long a failure takes is
    then what the CLI's settings make it (attempts, timeouts, waits), whatever the machine's load."""
    waits: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", waits.append)
    return waits


def test_an_unreachable_endpoint_fails_in_seconds(backoff: list[float]) -> None:
    code, _out, err = run(
        "coverage", "--region", REGION, "--endpoint-url", f"http://127.0.0.1:{closed_port()}"
    )
    assert code == exits.CANNOT_RUN
    assert len(backoff) == aws.MAX_ATTEMPTS - 1 and sum(backoff) < 10, backoff  # a refusal costs no wait
    assert len(err.strip().splitlines()) == 1 and "cannot reach" in err, err


def test_a_server_that_never_answers_fails_within_the_timeout(
    backoff: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[Any] = []
    config = aws.config

    def recorded(timeout: float) -> Any:
        built.append(config(timeout))
        return built[-1]

    monkeypatch.setattr(aws, "config", recorded)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connections; nobody answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code, _, err = run("plan", "--region", REGION, "--endpoint-url", url, "--timeout", "1")
        silent.setblocking(False)
        accepted = []  # the connections the attempts made, still queued
        with contextlib.suppress(BlockingIOError):
            while True:
                accepted.append(silent.accept()[0])
        for connection in accepted:
            connection.close()
    assert code == exits.CANNOT_RUN
    assert "did not answer within --timeout 1 s" in err
    # Each attempt waited its 1 s read timeout (the kernel's clock), then botocore's short backoff.
    assert built and {(c.connect_timeout, c.read_timeout) for c in built} == {(1, 1)}
    assert len(accepted) == aws.MAX_ATTEMPTS and len(backoff) == aws.MAX_ATTEMPTS - 1, (accepted, backoff)
    assert aws.MAX_ATTEMPTS * 1 + sum(backoff) < 10, backoff


def test_the_spinner_shows_botocore_retrying() -> None:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    activity = aws.Activity(Console(file=io.StringIO()))
    activity.watch(session)
    client: Any = session.client("ec2", endpoint_url=f"http://127.0.0.1:{closed_port()}", config=aws.config())
    with activity.show("Reading us-east-1..."), pytest.raises(EndpointConnectionError):
        client.describe_regions()
    last = aws.MAX_ATTEMPTS - 1
    assert activity.text == f"Reading us-east-1... (retry {last} of {last} after EndpointConnectionError)"


# --- options anywhere, summaries, JSON -----------------------------------------------------------


def test_global_options_before_or_after_the_command(endpoint: str, workloads: sandbox.Account) -> None:
    before = run("--region", REGION, "--endpoint-url", endpoint, "--scope", "tagged", "plan")
    after = run("plan", "--scope", "tagged", *common(endpoint))
    assert before[0] == after[0] == exits.OK
    assert "not tagged Mirror (MIRROR_SCOPE=tagged)" in before[1]
    strip = [line for line in before[1].splitlines() if " UTC" not in line]
    assert strip == [line for line in after[1].splitlines() if " UTC" not in line]


def test_a_large_sweep_is_summarised_and_failures_listed(
    endpoint: str, ec2: Any, workloads: sandbox.Account
) -> None:
    subnet = workloads.subnets[f"{REGION}a"]
    sandbox.launch(ec2, workloads, subnet, "m5.large", count=sweep_cmd.SUMMARY_THRESHOLD)
    sandbox.launch(ec2, workloads, subnet, "m8i-flex.large", {"Name": "new-1"})  # refused by the API
    code, out, _ = run("sweep", "--apply", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert "Changes, summarised" in out
    created = sweep_cmd.SUMMARY_THRESHOLD + 3
    assert f"{created}  created  in scope (MIRROR_SCOPE=all)" in out, out
    assert "Failed (1)" in out and "new-1" in out and "NetworkInterfaceNotSupported" in out
    assert out.count("\ncreated ") == 0  # no record per created ENI
    assert "Skipped" in out and "opted out by tag" in out
    code, out, _ = run("sweep", "--no-summary", *common(endpoint))
    assert "Changes, summarised" not in out


def test_coverage_json_is_clean_and_names_account_and_time(endpoint: str, workloads: sandbox.Account) -> None:
    import json

    code, out, _err = run("coverage", "--format", "json", *common(endpoint))
    assert code == exits.OK
    report = json.loads(out)  # nothing else on stdout
    assert report["account_id"] == "123456789012"
    assert report["region"] == REGION and report["generated_at"].endswith("Z")
    assert set(report["out_of_scope"]) <= set(coverage.OUT_OF_SCOPE_CATEGORIES)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", key) for key in report["out_of_scope"])


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A proxy in the environment would turn a refused loopback port into a proxy's answer."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield
