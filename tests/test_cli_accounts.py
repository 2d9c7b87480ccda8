"""The operator CLI over several accounts (`--account`, `--accounts`): one hub, two members, in moto.

The world is the one of `test_organization` (hub sensors shared with the members, each member with
its own AZ names); built once for the module. The tests run in file order: reads first, then the
sweep that writes, then what the reads say after it.
"""

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from rich.console import Console
from traffic_mirror import cli
from traffic_mirror.cli import aws, exits

from tests.test_cli_ops import check_page_against_json
from tests.test_organization import HUB, MEMBER_A, MEMBER_B, REGION, World, roles_refused_in
from testsupport import sandbox

pytestmark = pytest.mark.moto

BOTH = f"{MEMBER_A},{MEMBER_B}"


LAUNCHED: dict[str, list[dict[str, Any]]] = {}
"""The workload instances of each member, launched with the world."""
SESSION = boto3.session.Session()
"""One session for every run: parsing EC2's model again costs about a second per run."""


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with mock_aws(), sandbox.aws_rules(), mock.patch.object(aws, "session", lambda _profile: SESSION):
        built = World()
        LAUNCHED[MEMBER_A] = built.launch(MEMBER_A, "us-east-1a", count=2)
        LAUNCHED[MEMBER_B] = built.launch(MEMBER_B, "us-east-1b")
        yield built


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["--region", REGION, *argv],
        console=Console(file=out, width=200, color_system=None),
        err_console=Console(file=err, width=200, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def enis(world: World, account: str) -> list[str]:
    return [e["NetworkInterfaceId"] for i in LAUNCHED[account] for e in i["NetworkInterfaces"]]


def coverage_json(*argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run("coverage", "--format", "json", *argv)
    return code, json.loads(out), err


def test_coverage_per_account_with_a_total(world: World) -> None:
    code, report, err = coverage_json("--accounts", BOTH, "--min", "50")
    assert code == exits.BELOW_MIN, err  # nothing mirrored yet: the total is judged
    assert set(report) == {"schema_version", "generated_at", "region", "total", "accounts", "failed_accounts"}
    assert report["schema_version"] == 4 and report["region"] == REGION
    assert [a["account_id"] for a in report["accounts"]] == [HUB, MEMBER_A, MEMBER_B]  # own first
    assert report["failed_accounts"] == []
    by_account = {a["account_id"]: a for a in report["accounts"]}
    assert (by_account[MEMBER_A]["in_scope"], by_account[MEMBER_A]["mirrored"]) == (2, 0)
    assert (by_account[MEMBER_B]["in_scope"], by_account[MEMBER_B]["mirrored"]) == (1, 0)
    total = report["total"]
    assert {k: v for k, v in total.items() if k not in ("untrusted_sessions", "mirror_loss")} == {
        "accounts": 3,
        "in_scope": sum(a["in_scope"] for a in report["accounts"]),
        "mirrored": 0,
        "coverage_percent": 0.0,
    }
    assert total["untrusted_sessions"] == 0
    assert (total["mirror_loss"]["mirrored_instances"], total["mirror_loss"]["percent"]) == (0, None)
    # Zones by AZ id: the member's us-east-1a is another zone than the hub's.
    zones_a = world.members[MEMBER_A][2]
    assert by_account[MEMBER_A]["by_az"] == [
        {"az": "us-east-1a", "az_id": zones_a["us-east-1a"], "in_scope": 2, "mirrored": 0, "coverage_percent": 0.0}
    ]
    assert {u["eni"] for u in by_account[MEMBER_A]["unmirrored"]} == set(enis(world, MEMBER_A))
    assert {u["action"] for u in by_account[MEMBER_A]["unmirrored"]} == {"create"}  # the hub's sensor
    # That sensor is in the same zone (by id), though its AZ name in the hub is another.
    assert by_account[MEMBER_A]["cost"]["mirrored_enis"] == 2
    assert by_account[MEMBER_A]["cost"]["cross_az_enis"] == 0

    code, table, _ = run("coverage", "--accounts", BOTH)
    assert code == 0
    for index, account in enumerate((HUB, MEMBER_A, MEMBER_B)):
        assert f"=== Account {account} ({index + 1} of 3) ===" in table
        assert f"account {account}, region {REGION}" in table
    assert "By AZ ID" in table and zones_a["us-east-1a"] in table
    assert f"{MEMBER_A}         2         0      0.0%" in table
    assert f"Total in {REGION} over 3 accounts: 0.0% (0 of {total['in_scope']} in-scope ENIs mirrored)" in table


def test_plan_of_one_member_account(world: World) -> None:
    code, out, err = run("plan", "--account", MEMBER_A)
    assert code == 0, err
    assert f"=== Account {MEMBER_A} (1 of 1) ===" in out and f"account {MEMBER_A}, region" in out
    assert HUB not in out and MEMBER_B not in out
    expected = world.expected_sensor(MEMBER_A, "us-east-1a")
    for eni in enis(world, MEMBER_A):
        assert eni in out
    assert out.count(f"target {expected}, filter {world.members[MEMBER_A][1].filters['default']}") == 2
    assert "2 to create" in out and "Nothing was written." in out
    assert not any(e in out for e in enis(world, MEMBER_B))


def test_an_account_whose_role_cannot_be_assumed_is_one_line_and_the_others_report(world: World) -> None:
    with roles_refused_in(MEMBER_B):
        code, report, err = coverage_json("--accounts", BOTH)
        plan_code, plan_out, plan_err = run("plan", "--accounts", MEMBER_B)  # the hub's own still runs
    assert code == exits.CANNOT_RUN
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: account {MEMBER_B}: ") and "AccessDenied" in line
    assert [a["account_id"] for a in report["accounts"]] == [HUB, MEMBER_A]
    assert [f["account_id"] for f in report["failed_accounts"]] == [MEMBER_B]
    assert plan_code == exits.CANNOT_RUN
    assert len(plan_err.strip().splitlines()) == 1 and MEMBER_B in plan_err
    assert f"account {HUB}, region" in plan_out and f"=== Account {MEMBER_B} (2 of 2) ===" in plan_out


def test_sweep_apply_creates_the_sessions_in_each_member(world: World) -> None:
    code, out, err = run("sweep", "--apply", "--accounts", BOTH)
    assert code == 0, err
    assert f"=== Account {MEMBER_B} (3 of 3) ===" in out
    for account, az in ((MEMBER_A, "us-east-1a"), (MEMBER_B, "us-east-1b")):
        found = world.members[account][0].describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        assert sorted(s["NetworkInterfaceId"] for s in found) == sorted(enis(world, account))
        assert {s["TrafficMirrorTargetId"] for s in found} == {world.expected_sensor(account, az)}
    assert world.hub_sessions() == []  # nothing made in the hub
    code, report, _ = coverage_json("--accounts", BOTH, "--min", "100", "--fail-if-empty")
    assert code == 0
    assert report["total"]["mirrored"] == report["total"]["in_scope"] == 3


def test_coverage_html_over_accounts_is_the_json(world: World, tmp_path: Path) -> None:
    """One page for every account: the total, a bar per account and AZ, every unmirrored ENI."""
    assert run("sweep", "--apply", "--accounts", BOTH)[0] == 0  # done already when the tests run in order
    (late,) = world.launch(MEMBER_B, "us-east-1b")  # after the sweep: not mirrored yet
    code, report, _ = coverage_json("--accounts", BOTH)
    assert code == 0 and report["total"]["mirrored"] == report["total"]["in_scope"] - 1 == 3
    target = tmp_path / "coverage.html"
    code, out, err = run("coverage", "--accounts", BOTH, "--format", "html", "-o", str(target), "--min", "100")
    assert code == exits.BELOW_MIN and out == "", err
    page = check_page_against_json(target.read_text(encoding="utf-8"), report)
    (row,) = page.table("unmirrored").records()
    assert (row["account_id"], row["eni"]) == (MEMBER_B, late["NetworkInterfaces"][0]["NetworkInterfaceId"])
    by_account = {r["account_id"]: r for r in page.table("by-account").records()}
    assert list(by_account) == [HUB, MEMBER_A, MEMBER_B]
    assert [float(by_account[a]["coverage_percent"]) for a in (MEMBER_A, MEMBER_B)] == [100.0, 50.0]
    assert {bar["data-account"] for bar in page.bars} == {MEMBER_A, MEMBER_B}  # the hub has nothing in scope


def test_accounts_organization_and_usage_errors(world: World) -> None:
    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    joined = str(org.create_account(Email="w@example.com", AccountName="w")["CreateAccountStatus"]["AccountId"])
    code, report, err = coverage_json("--accounts", "organization", "--fail-if-empty")
    assert [a["account_id"] for a in report["accounts"]] == [HUB, joined]  # MEMBER_A/B are not in it
    assert code == exits.EMPTY, err  # nothing in scope in the hub or the new account
    assert run("plan", "--account", MEMBER_A, "--accounts", BOTH)[0] == exits.USAGE
    for wrong in (["--account", "12345"], ["--accounts", "everyone"]):
        with pytest.raises(SystemExit) as refused:
            run("plan", *wrong)
        assert refused.value.code == exits.USAGE


def test_release_over_accounts_deletes_each_members_sessions(world: World) -> None:
    code, out, err = run("plan", "--accounts", BOTH, "--format", "json")
    plans = json.loads(out)
    assert code == 0 and plans["schema_version"] == 1 and plans["failed_accounts"] == []
    assert [p["account_id"] for p in plans["accounts"]] == [HUB, MEMBER_A, MEMBER_B]
    assert run("sweep", "--apply", "--accounts", BOTH)[0] == 0  # whatever ran before in this process
    members = {a: world.members[a][0] for a in (MEMBER_A, MEMBER_B)}
    before = {a: len(ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) for a, ec2 in members.items()}
    assert before[MEMBER_A] == 2 and before[MEMBER_B] >= 1
    code, out, _ = run("release", "--accounts", BOTH, "--format", "json")
    document = json.loads(out)
    assert [(a["account_id"], a["session_count"], a["dry_run"]) for a in document["accounts"]] == [
        (HUB, 0, True),
        (MEMBER_A, 2, True),
        (MEMBER_B, before[MEMBER_B], True),
    ]
    code, out, err = run("release", "--accounts", BOTH, "--apply")
    assert code == 0, err
    assert f"=== Account {MEMBER_B} (3 of 3) ===" in out and out.count(f"{before[MEMBER_B]} deleted") >= 1
    for ec2 in members.values():
        assert ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []


def test_a_members_rogue_session_is_reported_in_its_section_and_the_total(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A member of the test's own: a session made there to a target of the member's own (MIRROR_SENSOR_OWNERS
    is the hub's, so it is not trusted), reported by the CLI and by the hub's fleet sweep, left in place."""
    from traffic_mirror.handler import app, planner
    from traffic_mirror.handler.settings import Settings

    from testsupport.event_builders import scheduled

    member = "333333333301"
    world.add_member(member)
    ec2, built, _ = world.members[member]
    (web,) = world.launch(member, "us-east-1a")
    own_target = sandbox.add_eni_target(ec2, built, built.subnets["us-east-1a"], "member-own-capture")
    rogue = ec2.create_traffic_mirror_session(
        NetworkInterfaceId=web["NetworkInterfaces"][0]["NetworkInterfaceId"], TrafficMirrorTargetId=own_target,
        TrafficMirrorFilterId=built.filters["default"], SessionNumber=7,
    )["TrafficMirrorSession"]  # fmt: skip
    accounts = f"{MEMBER_A},{member}"

    code, report, err = coverage_json("--accounts", accounts)
    assert code == 0, err
    by_account = {a["account_id"]: a for a in report["accounts"]}
    assert by_account[HUB]["untrusted_sessions"] == by_account[MEMBER_A]["untrusted_sessions"] == []
    (found,) = by_account[member]["untrusted_sessions"]
    assert (found["session"], found["target"], found["target_owner"], found["finding"], found["intercepts"]) == (
        rogue["TrafficMirrorSessionId"], own_target, member, planner.OWNER_NOT_ALLOWED, False
    )  # fmt: skip
    assert report["total"]["untrusted_sessions"] == 1
    code, table, _ = run("coverage", "--accounts", accounts)
    section = table.split(f"=== Account {member} (3 of 3) ===")[1]
    assert "Untrusted sessions (1)" in section and f"target {own_target}, of account {member}" in section
    assert f"Untrusted sessions over 3 accounts: 1 (in {member})" in table

    # The hub's scheduled sweep over its accounts: the same, as a warning line and the metric by account.
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-handler")
    app.CONTAINER.reset()
    capsys.readouterr()
    with mock.patch.object(aws, "session", lambda _profile: SESSION):
        app.handle(scheduled("fleet-rogue"), settings=Settings(accounts=accounts, dry_run=True))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert [(m.get("Account"), m["UntrustedSessions"]) for m in lines if "UntrustedSessions" in m] == [
        (None, 1), (member, 1)
    ]  # fmt: skip
    after = ec2.describe_traffic_mirror_sessions(TrafficMirrorSessionIds=[rogue["TrafficMirrorSessionId"]])
    assert after["TrafficMirrorSessions"][0]["TrafficMirrorTargetId"] == own_target  # left as it was
