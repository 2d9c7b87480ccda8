"""The operator CLI (`python -m handler`) against an embedded AWS: moto in server mode on loopback."""

import argparse
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from rich.console import Console
from traffic_mirror import cli
from traffic_mirror.cli import coverage as coverage_model
from traffic_mirror.cli import entry, exits, sweep_cmd
from traffic_mirror.handler import planner, reconcile
from traffic_mirror.handler.coverage import is_mirrored
from traffic_mirror.handler.model import Inventory, MirrorFilter, Session, Source, Target
from traffic_mirror.handler.planner import plan_source
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings, SettingsError

from testsupport import sandbox

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def ec2(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def account(ec2: Any) -> sandbox.Account:
    """Sensors in both AZs; instances: untagged (x2 ENIs), opted out, unsupported, routed without a target."""
    account = sandbox.build_account(ec2, REGION)
    sandbox.launch_sample_workloads(ec2, account)
    return account


def run(*argv: str, width: int = 220) -> tuple[int, str]:
    """stdout and stderr together, as a person sees them."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    code = cli.main(list(argv), console=console, err_console=console)
    return code, out.getvalue()


def run_split(*argv: str) -> tuple[int, str, str]:
    """stdout and stderr apart (JSON must be alone on stdout)."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        list(argv),
        console=Console(file=out, width=80, color_system=None),
        err_console=Console(file=err, width=80, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"])


def common(endpoint: str) -> list[str]:
    return ["--region", REGION, "--endpoint-url", endpoint]


def enis_of(ec2: Any, name: str) -> list[str]:
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])["Reservations"]
    return [e["NetworkInterfaceId"] for r in found for i in r["Instances"] for e in i["NetworkInterfaces"]]


# --- plan ------------------------------------------------------------------------------------


def test_plan_is_read_only_and_explains_every_eni(endpoint: str, ec2: Any, account: Any) -> None:
    code, out = run("plan", *common(endpoint))
    assert code == 0
    assert sessions(ec2) == []
    for name in ("web-1", "app-1", "db-1", "build-1", "payments-1"):
        for eni in enis_of(ec2, name):
            assert eni in out
    assert "opted out by instance tag Mirror=off" in out
    assert "does not support traffic mirroring" in out
    assert "no target tagged Mirror=pci" in out
    assert "ENI is a traffic mirror target" in out
    assert "3 to create" in out  # web-1 and both ENIs of app-1
    assert "Nothing was written" in out


def test_plan_shows_already_mirrored_after_apply(endpoint: str, ec2: Any, account: Any) -> None:
    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    before = sessions(ec2)
    code, out = run("plan", *common(endpoint))
    assert code == 0
    assert "mirrored   app-1" in out
    assert "already mirrored: its target and filter still qualify" in out
    assert ", session tms-" in out
    assert sessions(ec2) == before


def test_flags_override_environment_settings(endpoint: str, ec2: Any, account: Any) -> None:
    code, out = run("plan", "--scope", "tagged", *common(endpoint))
    assert code == 0
    assert "not tagged Mirror (MIRROR_SCOPE=tagged)" in out
    code, out = run("plan", "--tag-key", "Sniff", *common(endpoint))
    assert code == 0
    # Under another key, db-1's Mirror=off and payments-1's Mirror=pci mean nothing: both are
    # planned like web-1 and app-1's two ENIs; only build-1 (t2) and the two sensors are skipped.
    assert "opted out" not in out and "Mirror=pci" not in out
    assert "5 to create, 3 skipped" in out
    assert sessions(ec2) == []


def test_plan_max_sessions_shows_what_a_cap_keeps_drops_and_saves_without_writing(
    endpoint: str, ec2: Any, account: Any
) -> None:
    (app_1,) = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if {"Key": "Name", "Value": "app-1"} in i.get("Tags", [])]  # fmt: skip
    ec2.create_tags(Resources=[app_1["InstanceId"]], Tags=[{"Key": "MirrorPriority", "Value": "5"}])
    code, out = run("plan", "--max-sessions", "2", *common(endpoint))
    assert code == 0
    assert sessions(ec2) == []
    assert "Session budget: at most 2 session(s) (max_sessions)" in out
    assert "Cost at the cap: 2 session(s) x 730 h x $0.015/h = $21.90 per month." in out
    # Uncapped: web-1 and app-1's two ENIs (payments-1 has no target). app-1 (priority 5) stays.
    assert "Without the cap: 3 session(s), $32.85 per month; the cap keeps 2 and drops 1, saving $10.95 per month." in out
    (web_1,) = enis_of(ec2, "web-1")
    assert f"priority 0: web-1 {web_1} (over-budget, waits)" in out
    assert "2 to create" in out
    # No cap: nothing about a budget in the table (nothing waits).
    assert "Session budget" not in run("plan", *common(endpoint))[1]


# --- sweep -----------------------------------------------------------------------------------


def test_sweep_dry_run_writes_nothing(endpoint: str, ec2: Any, account: Any) -> None:
    code, out = run("sweep", *common(endpoint))
    assert code == 0
    assert sessions(ec2) == []
    assert "planned" in out
    assert "Dry run: nothing was written" in out
    assert "--apply to make 3 change(s)" in out


def test_sweep_apply_creates_then_has_nothing_to_do(endpoint: str, ec2: Any, account: Any) -> None:
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == 0
    assert "3 created" in out
    created = sessions(ec2)
    assert {s["NetworkInterfaceId"] for s in created} == set(enis_of(ec2, "web-1") + enis_of(ec2, "app-1"))
    assert all({"Key": MANAGED_TAG_KEY, "Value": "traffic-mirror-automation"} in s["Tags"] for s in created)
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == 0
    assert "created" not in out
    assert "3 mirrored" in out
    assert len(sessions(ec2)) == 3


def test_sweep_apply_shows_a_progress_bar_on_long_runs(endpoint: str, ec2: Any, account: Any) -> None:
    sandbox.launch(
        ec2, account, account.subnets[f"{REGION}a"], "m5.large", count=sweep_cmd.PROGRESS_THRESHOLD
    )
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == 0
    total = sweep_cmd.PROGRESS_THRESHOLD + 3
    assert f"{total}/{total}" in out  # the bar's M/N column, completed
    assert len(sessions(ec2)) == total


def test_sweep_apply_exits_3_when_writes_fail(endpoint: str, ec2: Any, account: Any) -> None:
    # m8i-flex is not in the support table, so it is tried, and the embedded AWS refuses it.
    sandbox.launch(ec2, account, account.subnets[f"{REGION}a"], "m8i-flex.large", {"Name": "new-1"})
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert "failed" in out and "NetworkInterfaceNotSupported" in out
    assert len(sessions(ec2)) == 3
    # Each CLI run is its own container: nothing learned is kept between runs, so the next run
    # asks EC2 again and gets the same final answer (a Lambda container remembers it instead).
    code, out = run("sweep", "--apply", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert "NetworkInterfaceNotSupported" in out and len(sessions(ec2)) == 3


# --- coverage --------------------------------------------------------------------------------


def coverage_json(endpoint: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run_split("coverage", "--format", "json", *extra, *common(endpoint))
    return code, json.loads(out)


def test_coverage_json_budget(endpoint: str, ec2: Any, account: Any) -> None:
    assert run("sweep", "--apply", *common(endpoint))[0] == 0  # three sessions, uncapped
    code, report = coverage_json(endpoint, "--max-sessions", "1")
    assert code == 0
    budget = report["budget"]
    assert budget["max_sessions"] == 1 and budget["priority_tag_key"] == "MirrorPriority"
    assert (budget["sessions"], budget["sessions_after"], budget["uncapped_sessions_after"]) == (3, 1, 3)
    assert budget["monthly_usd_at_cap"] == 10.95 and budget["monthly_usd_saved"] == 21.9
    assert (budget["other_sessions"], budget["aws_quota"]) == (0, 10_000)
    released = budget["waiting"]
    assert len(released) == 2 and {w["action"] for w in released} == {"delete"}
    assert {w["problem"] for w in released} == {planner.OVER_BUDGET} and {w["priority"] for w in released} == {0}
    over = [u for u in report["unmirrored"] if u["problem"] == planner.OVER_BUDGET]
    assert {u["eni"] for u in over} == {w["eni"] for w in released}
    assert report["cost"]["mirrored_enis"] == 1
    assert len(sessions(ec2)) == 3  # read-only
    _, uncapped = coverage_json(endpoint)
    assert uncapped["budget"]["max_sessions"] is None and uncapped["budget"]["waiting"] == []


def test_coverage_json_schema_and_min_gate(endpoint: str, ec2: Any, account: Any) -> None:
    code, report = coverage_json(endpoint)
    assert code == 0
    assert set(report) == {
        "schema_version",
        "account_id",
        "region",
        "generated_at",
        "in_scope",
        "mirrored",
        "coverage_percent",
        "by_vpc",
        "by_az",
        "by_kind",
        "unmirrored",
        "out_of_scope",
        "untrusted_sessions",
        "mirror_loss",
        "sensors",
        "cost",
        "budget",
    }
    assert report["schema_version"] == 4
    assert report["untrusted_sessions"] == []
    assert report["mirror_loss"]["mirrored_instances"] == 0 and report["mirror_loss"]["percent"] is None
    assert report["account_id"] == "123456789012"  # moto's default account
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["generated_at"])
    assert report["region"] == REGION
    # web-1 (1 ENI), app-1 (2 ENIs), payments-1 (routed, no target): in scope, none mirrored yet.
    assert (report["in_scope"], report["mirrored"], report["coverage_percent"]) == (4, 0, 0.0)
    assert report["out_of_scope"] == {planner.SENSOR: 2, planner.OPTED_OUT: 1, planner.UNSUPPORTED: 1}
    assert set(report["out_of_scope"]) <= set(coverage_model.OUT_OF_SCOPE_CATEGORIES)
    assert report["by_vpc"] == [{"vpc": account.vpc, "in_scope": 4, "mirrored": 0, "coverage_percent": 0.0}]
    assert [g["az"] for g in report["by_az"]] == [f"{REGION}a", f"{REGION}b"]
    assert report["by_kind"] == [{"kind": "instances", "in_scope": 4, "mirrored": 0, "coverage_percent": 0.0}]
    fields_ = {"eni", "instance", "name", "vpc", "az", "action", "problem", "reason", "kind"}
    assert all(set(u) == fields_ for u in report["unmirrored"])
    assert {u["kind"] for u in report["unmirrored"]} == {"instances"}
    assert {u["name"] for u in report["unmirrored"]} == {"web-1", "app-1", "payments-1"}
    # 4 in scope, of which payments-1 has no target: 3 sessions once the sweep has run.
    assert report["cost"]["mirrored_enis"] == 3
    assert report["cost"]["monthly_usd"] == round(3 * 730 * 0.015, 2)
    assert {u["action"] for u in report["unmirrored"]} == {"create", "none"}
    assert sessions(ec2) == []
    assert coverage_json(endpoint, "--min", "50")[0] == exits.BELOW_MIN

    assert run("sweep", "--apply", *common(endpoint))[0] == 0
    code, report = coverage_json(endpoint, "--min", "75")
    assert code == 0
    assert (report["in_scope"], report["mirrored"], report["coverage_percent"]) == (4, 3, 75.0)
    (left,) = report["unmirrored"]
    assert left["eni"] == enis_of(ec2, "payments-1")[0]
    assert left["action"] == "none"
    assert left["problem"] == planner.NO_TARGET
    assert "no target tagged Mirror=pci" in left["reason"]
    by_az = {g["az"]: g for g in report["by_az"]}
    assert by_az[f"{REGION}a"]["coverage_percent"] == 100.0
    assert by_az[f"{REGION}b"] == {
        "az": f"{REGION}b",
        "in_scope": 3,
        "mirrored": 2,
        "coverage_percent": 66.67,
    }
    assert coverage_json(endpoint, "--min", "75.1")[0] == exits.BELOW_MIN
    assert coverage_json(endpoint, "--min", "0")[0] == 0


def test_coverage_table(endpoint: str, ec2: Any, account: Any) -> None:
    run("sweep", "--apply", *common(endpoint))
    code, out = run("coverage", "--min", "100", *common(endpoint))
    assert code == exits.BELOW_MIN
    assert f"Coverage in {REGION}: 75.0% (3 of 4 in-scope ENIs mirrored)" in out
    assert "By VPC" in out and "By AZ" in out
    assert "In scope but not mirrored" in out
    assert enis_of(ec2, "payments-1")[0] in out
    assert "Out of scope (not counted)" in out
    assert "Below the required minimum of 100%" in out


def test_min_must_be_a_percentage(endpoint: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["coverage", "--min", "120", *common(endpoint)])
    assert exit_info.value.code == 2


def test_empty_region_warns_and_fails_if_asked(endpoint: str) -> None:
    """0 in scope is usually the wrong region or account: say so, and --fail-if-empty fails."""
    code, out, err = run_split("coverage", "--format", "json", "--min", "100", *common(endpoint))
    assert code == exits.OK
    report = json.loads(out)
    assert (report["in_scope"], report["coverage_percent"], report["unmirrored"]) == (0, 100.0, [])
    assert "no in-scope ENIs in us-east-1 of account 123456789012" in err
    code, out, err = run_split("coverage", "--fail-if-empty", *common(endpoint))
    assert code == exits.EMPTY
    assert "nothing in scope" in out and "no in-scope ENIs" in err


# --- errors ----------------------------------------------------------------------------------


def test_aws_errors_are_one_clear_line(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "You are not authorized"}},
            "DescribeInstances",
        )

    monkeypatch.setattr(reconcile, "read_only", refuse)
    code, out = run("plan", *common(endpoint))
    assert code == exits.CANNOT_RUN
    assert "AWS refused a request" in out and "UnauthorizedOperation" in out
    assert "Traceback" not in out


def test_no_credentials_exit_1_without_traceback(tmp_path: Path, endpoint: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "handler", "coverage", *common(endpoint)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "no usable AWS credentials" in done.stderr
    assert "Traceback" not in done.stderr


def test_lambda_path_never_imports_rich() -> None:
    """The Lambda runtime has boto3 but not rich: only the CLI may import it."""
    code = "import sys, traffic_mirror.handler.app; assert 'rich' not in sys.modules and 'traffic_mirror.cli' not in sys.modules"
    env = {**os.environ, "AWS_REGION": "", "AWS_EC2_METADATA_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_module_entry_point_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "handler", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    for command in ("plan", "coverage", "sweep"):
        assert command in done.stdout


# --- the coverage model on the planner's own decisions -----------------------------------------

SETTINGS = Settings()
TARGET = Target("tmt-a", "network-interface", "eni-sensor0001", "vpc-1", "subnet-1", "us-east-1a")
FILTER = MirrorFilter("tmf-1")
INVENTORY = Inventory((TARGET,), (FILTER,))


def source(eni: str = "eni-00000001", itype: str = "m5.large", **kw: Any) -> Source:
    return Source(eni, "i-00000001", itype, "subnet-1", "vpc-1", "us-east-1a", **kw)


def session(sid: str, managed: bool = True, number: int = 1, eni: str = "eni-00000001") -> Session:
    tags = {MANAGED_TAG_KEY: SETTINGS.managed_by} if managed else {}
    return Session(sid, eni, "tmt-a", "tmf-1", number, tags)


@pytest.mark.parametrize(
    ("src", "existing", "inv", "settings", "release", "category", "mirrored"),
    [
        (source("eni-sensor0001"), (), INVENTORY, SETTINGS, False, planner.SENSOR, False),
        (source(interface_type="nat_gateway"), (), INVENTORY, SETTINGS, False, planner.INTERFACE_TYPE, False),
        (source(itype="t2.micro"), (), INVENTORY, SETTINGS, False, planner.UNSUPPORTED, False),
        (source(itype="m5.metal"), (), INVENTORY, SETTINGS, False, planner.UNSUPPORTED, False),
        (source(itype="weird"), (), INVENTORY, SETTINGS, False, planner.UNSUPPORTED, False),
        (source(instance_tags={"Mirror": "off"}), (), INVENTORY, SETTINGS, False, planner.OPTED_OUT, False),
        (
            source(eni_tags={"Mirror": "no"}),
            (session("tms-1"),),
            INVENTORY,
            SETTINGS,
            False,
            planner.OPTED_OUT,
            False,
        ),
        (source(), (), INVENTORY, Settings(scope="tagged"), False, planner.NOT_TAGGED, False),
        (source(), (session("tms-1"),), INVENTORY, SETTINGS, True, planner.RELEASED, False),
        # In scope, but not mirrored: the report must show these.
        (source(), (), INVENTORY, SETTINGS, False, None, False),  # create
        (source(), (), Inventory((TARGET,), ()), SETTINGS, False, None, False),  # no filter
        (source(instance_tags={"Mirror": "pci"}), (), INVENTORY, SETTINGS, False, None, False),  # no target
        (
            source(),
            tuple(session(f"tms-{n}", managed=False, number=n) for n in (1, 2, 3)),
            INVENTORY,
            SETTINGS,
            False,
            None,
            False,
        ),  # 3 foreign sessions
        (
            source(),
            (session("tms-1"),),
            Inventory((), (FILTER,)),
            SETTINGS,
            False,
            None,
            False,
        ),  # target gone
        # Mirrored.
        (source(), (session("tms-1"),), INVENTORY, SETTINGS, False, None, True),
        (source(), (session("tms-1"), session("tms-2", number=2)), INVENTORY, SETTINGS, False, None, True),
    ],
)
def test_scope_of_planner_decisions(
    src: Source,
    existing: tuple[Session, ...],
    inv: Inventory,
    settings: Settings,
    release: bool,
    category: str | None,
    mirrored: bool,
) -> None:
    decision = plan_source(src, existing, inv, settings, release=release)
    assert decision.out_of_scope == category, decision.reason
    assert is_mirrored(decision) == mirrored, decision
    if category is None and not mirrored:
        assert coverage_model.unmirrored_reason(decision)


def test_settings_from_flags_validate_like_variables() -> None:
    args = argparse.Namespace(tag_key="Sniff", scope="tagged", filter_id="tmf-0123456789abcdef0")
    settings = entry.settings_from(args, {"MIRROR_TAG_KEY": "Mirror", "MIRROR_MANAGED_BY": "me"})
    assert (settings.tag_key, settings.scope, settings.filter_id, settings.managed_by) == (
        "Sniff",
        "tagged",
        "tmf-0123456789abcdef0",
        "me",
    )
    unset = argparse.Namespace(tag_key=None, scope=None, filter_id=None)
    assert entry.settings_from(unset, {"MIRROR_SCOPE": "tagged"}).scope == "tagged"
    with pytest.raises(SettingsError, match="--tag-key"):
        entry.settings_from(argparse.Namespace(tag_key="aws:x", scope=None, filter_id=None), {})
