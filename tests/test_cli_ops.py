"""The CLI as operations run it: `release`, JSON from every command (against its documented schema),
`--quiet` and stderr, failures grouped by error code, the HTML coverage report, `--version`,
suggestions, shell completion, and `--account` through `--endpoint-url` (STS included).

Against an embedded AWS (moto in server mode) with the sample workloads of `test_cli`.
"""

import io
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console
from traffic_mirror import cli
from traffic_mirror.cli import aws, entry, exits, html_report, sweep_cmd
from traffic_mirror.handler import reconcile
from traffic_mirror.handler.apply import Result
from traffic_mirror.handler.model import Decision
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from testsupport import html_page, sandbox

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parent.parent
OURS = "traffic-mirror-automation"


def run(*argv: str) -> tuple[int, str, str]:
    """stdout and stderr apart."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        list(argv),
        console=Console(file=out, width=200, color_system=None, soft_wrap=True),
        err_console=Console(file=err, width=200, color_system=None, soft_wrap=True),
    )
    return code, out.getvalue(), err.getvalue()


def common(endpoint: str) -> list[str]:
    return ["--region", REGION, "--endpoint-url", endpoint]


@pytest.fixture
def ec2(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)


@pytest.fixture
def workloads(ec2: Any) -> sandbox.Account:
    account = sandbox.build_account(ec2, REGION)
    sandbox.launch_sample_workloads(ec2, account)
    return account


def sessions(ec2: Any) -> dict[str, dict[str, Any]]:
    found = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    return {s["TrafficMirrorSessionId"]: s for s in found}


def eni_of(ec2: Any, name: str) -> str:
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])["Reservations"]
    return str(found[0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"])


def foreign_session(ec2: Any, account: sandbox.Account, eni: str, number: int, managed_by: str | None) -> str:
    """A session another tool (or another deployment, `managed_by`) made: never ours to delete."""
    tags = [{"Key": MANAGED_TAG_KEY, "Value": managed_by}] if managed_by else []
    return str(
        ec2.create_traffic_mirror_session(
            NetworkInterfaceId=eni,
            TrafficMirrorTargetId=account.targets[f"sensor-{REGION}b-0"],
            TrafficMirrorFilterId=account.filters["default"],
            SessionNumber=number,
            TagSpecifications=[{"ResourceType": "traffic-mirror-session", "Tags": tags}] if tags else [],
        )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    )


# --- the documented schemas ------------------------------------------------------------------

DOCS = ROOT / "docs" / "cli-json.md"


def documented(command: str) -> set[str]:
    """The keys docs/cli-json.md lists for one command's single-account document (or `several`)."""
    text = DOCS.read_text()
    heading = "Over several accounts" if command == "several" else f"{command} (`schema_version`"
    section = text.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def paths(document: Any, documented_keys: set[str], prefix: str = "") -> set[str]:
    """The key paths of a document (`a.b`, `a[].b`), down to those documented as a whole."""
    found: set[str] = set()
    if isinstance(document, dict):
        for key, value in document.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            deeper = any(k.startswith((f"{path}.", f"{path}[].")) for k in documented_keys)
            if deeper:
                found |= paths(value, documented_keys, path)
    elif isinstance(document, list) and document:
        found.add(f"{prefix}[]")  # a list with items: its items' keys can be checked
        for item in document:
            found |= paths(item, documented_keys, f"{prefix}[]")
    return found


def check_schema(command: str, documents: list[dict[str, Any]]) -> None:
    """Every key printed is documented, and every documented key was printed by one of `documents`."""
    keys = documented(command)
    printed: set[str] = set()
    for document in documents:
        printed |= paths(document, keys)
    # A list of objects is documented by its items' keys ("a[].b"), an object by its own keys.
    containers = {k[: m.start()] for k in keys for m in re.finditer(r"(\[\])?\.", k)}
    lists = {p for p in printed if p.endswith("[]")}
    assert printed - lists - containers - keys == set(), f"{command}: printed but not documented"
    # Keys of a list that was empty in every document (no failure to report, say) cannot be seen.
    unseen = {k for k in keys if "[]" in k and k[: k.rindex("[]") + 2] not in lists}
    assert keys - printed - containers - unseen == set(), f"{command}: documented but never printed"


# --- release -----------------------------------------------------------------------------------


def test_release_deletes_our_sessions_and_nothing_else(
    endpoint: str, ec2: Any, workloads: sandbox.Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("sweep", "--apply", *common(endpoint))[0] == exits.OK
    ours = set(sessions(ec2))
    assert len(ours) == 3
    db = eni_of(ec2, "db-1")  # opted out: no session of ours; other tools may still mirror it
    untagged = foreign_session(ec2, workloads, db, 1, None)
    other_deployment = foreign_session(ec2, workloads, db, 2, "another-deployment")
    before = sessions(ec2)

    released: list[bool] = []
    real = reconcile.release_region

    def spy(ctx: Any) -> reconcile.Outcome:
        released.append(ctx.settings.dry_run)
        return real(ctx)

    monkeypatch.setattr(reconcile, "release_region", spy)  # the handler's own tear-down path

    code, out, err = run("release", *common(endpoint))
    assert code == exits.OK, err
    assert released == [True]
    assert sessions(ec2) == before  # a dry run
    assert "(dry run: nothing written)" in out and f"sessions tagged {MANAGED_TAG_KEY}={OURS}" in out
    assert all(s in out for s in ours) and untagged not in out and other_deployment not in out
    assert "Run again with --apply to make 3 change(s)." in out

    code, out, _ = run("release", "--dry-run", "--format", "json", *common(endpoint))
    document = json.loads(out)
    assert (code, document["schema_version"], document["dry_run"]) == (exits.OK, 1, True)
    assert (document["managed_by"], document["session_count"], document["counts"]["planned"]) == (OURS, 3, 3)
    assert {s for c in document["changes"] for s in c["sessions"]} == ours
    assert sessions(ec2) == before

    code, out, _ = run("release", "--apply", *common(endpoint))
    assert code == exits.OK
    assert set(sessions(ec2)) == {untagged, other_deployment}
    assert "3 deleted" in out
    assert run("release", "--apply", *common(endpoint))[1].count("0 ENI(s): nothing to do.") == 1

    # Another deployment's value releases that deployment's sessions only.
    code, out, _ = run("release", "--apply", "--managed-by", "another-deployment", *common(endpoint))
    assert code == exits.OK
    assert set(sessions(ec2)) == {untagged}
    assert released == [True, True, False, False, False]


# --- JSON everywhere, as documented ----------------------------------------------------------


def test_every_command_prints_its_documented_json(endpoint: str, ec2: Any, workloads: sandbox.Account) -> None:
    def document(*argv: str) -> dict[str, Any]:
        code, out, err = run(*argv, "--format", "json", *common(endpoint))
        assert code in (exits.OK, exits.BELOW_MIN), err
        parsed: dict[str, Any] = json.loads(out)  # nothing else on stdout
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", parsed["generated_at"])
        assert (parsed["account_id"], parsed["region"]) == ("123456789012", REGION)
        return parsed

    plan = document("plan")
    assert plan["schema_version"] == 1
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [workloads.vpc]}])
    assert sorted(e["eni"] for e in plan["enis"]) == sorted(
        e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]
    )
    assert [e["eni"] for e in plan["enis"]] == sorted(e["eni"] for e in plan["enis"])
    assert plan["counts"] == {"create": 3, "modify": 0, "delete": 0, "mirrored": 0, "skipped": 5}
    web = next(e for e in plan["enis"] if e["name"] == "web-1")
    assert web["action"] == "create" and web["target"] == workloads.targets[f"sensor-{REGION}a-0"]
    assert web["writes"] == [{"kind": "create", "session": None, "target": web["target"], "filter": web["filter"]}]

    dry = document("sweep", "--dry-run")
    assert (dry["schema_version"], dry["dry_run"], dry["counts"]["planned"]) == (1, True, 3)
    assert sessions(ec2) == {}
    assert {s["out_of_scope"] for s in dry["skipped"]} >= {"sensor", "opted-out", "unsupported-type"}

    sandbox.launch(ec2, workloads, workloads.subnets[f"{REGION}a"], "m8i-flex.large", {"Name": "new-1"})
    many = sweep_cmd.PROGRESS_THRESHOLD  # enough writes for a progress bar: on stderr, not in the JSON
    sandbox.launch(ec2, workloads, workloads.subnets[f"{REGION}a"], "m5.large", count=many)
    code, out, err = run("sweep", "--apply", "--format", "json", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert f"{many + 4}/{many + 4}" in err
    applied = json.loads(out)
    assert (applied["dry_run"], applied["counts"]["created"], applied["counts"]["failed"]) == (False, many + 3, 1)
    created = {s for c in applied["changes"] if c["status"] == "created" for s in c["sessions"]}
    assert created == set(sessions(ec2))
    (failure,) = applied["failures"]
    assert failure["error_code"] == "NetworkInterfaceNotSupported" and failure["enis"] == [eni_of(ec2, "new-1")]

    coverage = document("coverage")
    assert coverage["schema_version"] == 4  # by_kind and unmirrored[].kind (MIRROR_SOURCES); evidence; sensors; budget
    release = document("release")
    own = ["--account", "123456789012", "--format", "json", *common(endpoint)]
    several = {command: json.loads(run(command, *own)[1]) for command in ("plan", "coverage", "release")}
    assert [d["schema_version"] for d in several.values()] == [1, 4, 1]
    assert several["coverage"]["total"]["in_scope"] == coverage["in_scope"]
    check_schema("plan", [plan, *several["plan"]["accounts"]])
    check_schema("sweep", [dry, applied])
    check_schema("release", [release, *several["release"]["accounts"]])
    check_schema("coverage", [coverage, *several["coverage"]["accounts"]])
    check_schema("several", list(several.values()))


# --- stderr and --quiet ------------------------------------------------------------------------


def test_verdicts_and_warnings_on_stderr_and_quiet_keeps_the_summary(
    endpoint: str, workloads: sandbox.Account
) -> None:
    code, out, err = run("coverage", "--min", "100", *common(endpoint))
    assert code == exits.BELOW_MIN
    assert "Below the required minimum of 100%." in err and "minimum" not in out
    code, out, err = run("coverage", "--min", "100", "--format", "json", *common(endpoint))
    assert code == exits.BELOW_MIN and json.loads(out)["in_scope"] == 4
    assert "Below the required minimum of 100%." in err
    code, out, err = run("coverage", "--min", "0", *common(endpoint))
    assert "At or above the required minimum of 0%." in err

    code, out, err = run("coverage", "--min", "100", "--quiet", *common(endpoint))
    assert code == exits.BELOW_MIN
    assert out.splitlines() == [f"Coverage in {REGION}: 0.0% (0 of 4 in-scope ENIs mirrored)"]
    assert err.splitlines() == ["Below the required minimum of 100%."]
    code, out, err = run("coverage", "--min", "0", "-q", *common(endpoint))
    assert (code, err) == (exits.OK, "")

    code, out, err = run("-q", "sweep", *common(endpoint))
    assert (code, err) == (exits.OK, "")
    assert out.splitlines() == [
        "8 ENI(s): 3 planned, 5 skipped.",
        "Dry run: nothing was written. Run again with --apply to make 3 change(s).",
    ]
    code, out, err = run("plan", "--quiet", *common(endpoint))
    assert len(out.splitlines()) == 2 and out.startswith("8 ENI(s): 3 to create, 5 skipped.")
    code, out, err = run("release", "--quiet", *common(endpoint))
    assert out.splitlines() == ["0 ENI(s): nothing to do.", "Dry run: nothing to change."]


def test_quiet_shows_no_spinner() -> None:
    shown = io.StringIO()
    terminal = Console(file=shown, force_terminal=True, width=80)
    with aws.Activity(terminal).show("Reading..."):
        pass
    assert "Reading..." in shown.getvalue()
    quiet = io.StringIO()
    with aws.Activity(Console(file=quiet, force_terminal=True, width=80), quiet=True).show("Reading..."):
        pass
    assert quiet.getvalue() == ""


# --- failures grouped by error code ------------------------------------------------------------


def test_sweep_failures_are_grouped_by_error_code(endpoint: str, ec2: Any, workloads: sandbox.Account) -> None:
    # m8i-flex is not in the support table, so it is tried, and the embedded AWS refuses it.
    refused = sandbox.launch(ec2, workloads, workloads.subnets[f"{REGION}a"], "m8i-flex.large", {"Name": "new"}, 5)
    failing = sorted(i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in refused)
    code, out, _ = run("sweep", "--apply", "--summary", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert "Failed (5) by error code (--no-summary lists each ENI)" in out
    assert "5  NetworkInterfaceNotSupported" in out
    assert f"{failing[0]} (new), {failing[1]} (new), {failing[2]} (new) and 2 more" in out
    assert not any(eni in out for eni in failing[3:])
    assert out.count("NetworkInterfaceNotSupported") == 3  # the group, and AWS's answer for the first
    assert "first: create failed: NetworkInterfaceNotSupported" in out

    code, out, _ = run("sweep", "--apply", "--no-summary", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert all(eni in out for eni in failing) and "by error code" not in out
    assert out.count("\nfailed ") == 5

    code, out, _ = run("sweep", "--apply", "--quiet", *common(endpoint))
    assert code == exits.FAILED_WRITES
    assert "5  NetworkInterfaceNotSupported" in out and out.splitlines()[-1].startswith("13 ENI(s):")


def result(eni: str, code: str, status: str = "failed") -> Result:
    return Result(Decision(eni, f"i-{eni}", "create", "why"), status, f"create failed: {code}: no", error_code=code)


def test_failure_groups_largest_first_with_every_eni_in_json() -> None:
    results = [
        result("eni-3", "AccessDenied"),
        result("eni-1", "Throttling"),
        result("eni-2", "AccessDenied"),
        result("eni-4", "Throttling"),
        result("eni-5", "Throttling"),
        result("eni-6", "", status="created"),
    ]
    groups = sweep_cmd.failure_groups(results)
    assert [(g.code, [r.decision.eni_id for r in g.results]) for g in groups] == [
        ("Throttling", ["eni-1", "eni-4", "eni-5"]),
        ("AccessDenied", ["eni-2", "eni-3"]),
    ]
    assert groups[1].to_json() == {
        "error_code": "AccessDenied",
        "count": 2,
        "enis": ["eni-2", "eni-3"],
        "first_reason": "create failed: AccessDenied: no",
    }
    out = io.StringIO()
    sweep_cmd.render_failures(Console(file=out, width=200, color_system=None), results, {"i-eni-1": "web-1"})
    text = out.getvalue()
    assert "Failed (5) by error code" in text
    assert text.index("3  Throttling") < text.index("2  AccessDenied")
    assert "eni-1 (web-1), eni-4, eni-5\n" in text  # three shown: no "and more"


# --- the HTML report ---------------------------------------------------------------------------


def no_external_assets(raw: str, page: html_page.Page) -> None:
    """One self-contained page: no script, no link, no image or font from elsewhere."""
    assert page.tags["script"] == page.tags["link"] == page.tags["img"] == page.tags["iframe"] == 0
    assert not any(name in ("src", "href") for _, name, _ in page.attributes)
    assert "url(" not in raw and "@import" not in raw
    assert page.tags["style"] == 1 and page.tags["svg"] <= 1


def check_page_against_json(raw: str, document: dict[str, Any]) -> html_page.Page:
    """The page's figures are the JSON's: totals, the chart, the tables, the unmirrored ENIs."""
    page = html_page.read(raw)
    no_external_assets(raw, page)
    several = "total" in document
    accounts = document["accounts"] if several else [document]
    totals = page.table("totals").pairs
    expected = document["total"] if several else document
    for key in ("in_scope", "mirrored", "coverage_percent"):
        assert float(totals[key]) == expected[key], key
    bars = [(a["account_id"], z) for a in accounts for z in a["by_az"]]
    assert len(page.bars) == len(bars)
    for bar, (account, zone) in zip(page.bars, bars, strict=True):
        assert (bar["data-account"], bar["data-az"], bar["data-az-id"]) == (account, zone["az"], zone.get("az_id", ""))
        assert (int(bar["data-in-scope"]), int(bar["data-mirrored"])) == (zone["in_scope"], zone["mirrored"])
        assert float(bar["data-coverage-percent"]) == zone["coverage_percent"]
        share = zone["mirrored"] / zone["in_scope"]
        assert float(bar["fill_width"]) == pytest.approx(float(bar["track_width"]) * share, abs=0.1)
    lead = ["account_id"] if several else []
    for section, key in (("by_az", "by_az"), ("by_vpc", "by_vpc"), ("unmirrored", "unmirrored")):
        rows = [({"account_id": a["account_id"]} if several else {}) | r for a in accounts for r in a[key]]
        if not rows:
            continue
        table = page.table(section)
        assert table.keys == lead + list(next(r for a in accounts for r in a[key]))
        assert len(table.records()) == len(rows)
        for shown, row in zip(table.records(), rows, strict=True):
            for k, v in row.items():
                assert shown[k] == ("—" if v is None else str(v)), (section, k)
    assert page.titles["unmirrored"] == f"In scope but not mirrored ({sum(len(a['unmirrored']) for a in accounts)})"
    return page


def test_coverage_html_is_the_json_on_one_page(
    endpoint: str, ec2: Any, workloads: sandbox.Account, tmp_path: Path
) -> None:
    hostile = '<script>alert("x")</script> & <b>co</b>'
    sandbox.launch(ec2, workloads, workloads.subnets[f"{REGION}b"], "m5.large", {"Name": hostile, "Mirror": "pci"})
    run("sweep", "--apply", *common(endpoint))
    code, out, _ = run("coverage", "--format", "json", *common(endpoint))
    document = json.loads(out)
    assert (document["in_scope"], document["mirrored"]) == (5, 3)
    target = tmp_path / "coverage.html"
    code, out, err = run("coverage", "--format", "html", "--output", str(target), "--min", "90", *common(endpoint))
    assert code == exits.BELOW_MIN
    assert out == "" and f"Wrote the html report to {target}." in err
    raw = target.read_text(encoding="utf-8")
    assert raw.startswith("<!DOCTYPE html>")
    page = check_page_against_json(raw, document)
    assert hostile in " ".join(r["name"] for r in page.table("unmirrored").records())
    assert "<script" not in raw and "<b>co" not in raw
    assert page.table("out_of_scope").pairs == {k: str(v) for k, v in document["out_of_scope"].items()}
    assert float(page.table("cost").pairs["monthly_usd"]) == document["cost"]["monthly_usd"]
    # On stdout without --output: the same page.
    code, out, _ = run("coverage", "--format", "html", *common(endpoint))
    assert out.strip().startswith("<!DOCTYPE html>") and out.count("<svg") == 1
    code, _, err = run("coverage", "--format", "html", "-o", str(tmp_path / "no" / "such.html"), *common(endpoint))
    assert code == exits.CANNOT_RUN and err.startswith("error: cannot write") and len(err.splitlines()) == 1


def test_html_renders_sections_it_does_not_know_as_tables() -> None:
    """What later schemas add (sensors, untrusted sessions, mirror loss, a budget) shows without a change."""
    document: dict[str, Any] = {
        "schema_version": 4,
        "account_id": "123456789012",
        "region": REGION,
        "generated_at": "2026-12-01T00:00:00Z",
        "in_scope": 2,
        "mirrored": 1,
        "coverage_percent": 50.0,
        "by_vpc": [],
        "by_az": [{"az": "us-east-1a", "in_scope": 2, "mirrored": 1, "coverage_percent": 50.0}],
        "unmirrored": [],
        "out_of_scope": {},
        "untrusted_sessions": [
            {"session": "tms-1", "eni": "eni-1", "target": "tmt-evil", "target_owner": "999999999999",
             "reason": 'target <not> "trusted"'}
        ],
        "sensors": [],
        "mirror_loss": {"mirrored_bytes": 10, "skipped_bytes": None, "percent": None,
                        "instances": [{"instance": "i-1", "enis": ["eni-1"], "percent": 25.0}]},
        "budget": 7,
    }
    raw = html_report.page(document)
    page = html_page.read(raw)
    no_external_assets(raw, page)
    (rogue,) = page.table("extra-untrusted_sessions").records()
    assert rogue == {**document["untrusted_sessions"][0], "reason": 'target <not> "trusted"'}
    assert "<not>" not in raw
    assert page.titles["extra-untrusted_sessions"] == "Untrusted sessions (1)"
    assert page.titles["extra-sensors"] == "Sensors (0)"
    loss = page.table("extra-mirror_loss").pairs
    assert (loss["mirrored_bytes"], loss["skipped_bytes"], loss["percent"]) == ("10", "—", "—")
    nested = next(t for t in page.tables if t.section == "extra-mirror_loss" and t.depth == 1)
    assert nested.records() == [{"instance": "i-1", "enis": "eni-1", "percent": "25.0"}]
    assert "budget" in page.titles["extra-budget"].lower()
    # Over several accounts: one table, each row led by its account.
    several = {
        "schema_version": 4, "generated_at": "x", "region": REGION,
        "total": {"accounts": 2, "in_scope": 4, "mirrored": 2, "coverage_percent": 50.0, "budget_used": 3},
        "accounts": [document, {**document, "account_id": "111111111111", "untrusted_sessions": []}],
        "failed_accounts": [],
    }
    page = html_page.read(html_report.page(several))
    assert [r["account_id"] for r in page.table("extra-untrusted_sessions").records()] == ["123456789012"]
    assert page.table("totals").pairs["budget_used"] == "3"
    assert [r["account_id"] for r in page.table("extra-mirror_loss").records()] == ["123456789012", "111111111111"]


# --- --account through --endpoint-url ----------------------------------------------------------

MEMBER = "210987654321"


def member_ec2(endpoint: str) -> Any:
    """EC2 in another account of the embedded AWS, through its member role (moto's AssumeRole)."""
    sts = boto3.client("sts", region_name=REGION, endpoint_url=endpoint)
    role = f"arn:aws:iam::{MEMBER}:role/traffic-mirror-automation-member"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_account_reaches_sts_through_the_endpoint(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AssumeRole goes to --endpoint-url (or AWS_ENDPOINT_URL) like every other call; the region
    comes from --region or AWS_REGION when the credentials name none (as in the playground)."""
    member = member_ec2(endpoint)
    account = sandbox.build_account(member, REGION, azs=("a",))
    (instance,) = sandbox.launch(member, account, account.subnets[f"{REGION}a"], "m5.large", {"Name": "far-1"})
    eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)

    code, out, err = run("plan", "--account", MEMBER, "--endpoint-url", endpoint)
    assert code == exits.OK, err
    assert f"account {MEMBER}, region {REGION} via {endpoint}" in out and eni in out and "far-1" in out

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    code, out, err = run("coverage", "--account", MEMBER, "--format", "json")
    assert code == exits.OK, err
    (report,) = json.loads(out)["accounts"]
    assert (report["account_id"], [u["eni"] for u in report["unmirrored"]]) == (MEMBER, [eni])
    code, out, err = run("plan", "--account", MEMBER)
    assert f"via {endpoint}" in out
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:1")
    code, out, err = run("plan")
    assert code == exits.CANNOT_RUN and err.startswith("error: AWS_ENDPOINT_URL must be a URL")


# --- --version, suggestions, completion ---------------------------------------------------------


def test_version_comes_from_the_package_metadata(capsys: Any) -> None:
    for argv in (["--version"], ["coverage", "--version"]):
        with pytest.raises(SystemExit) as done:
            cli.main(argv)
        assert done.value.code == 0
        assert capsys.readouterr().out == f"traffic-mirror {metadata.version('traffic-mirror-automation')}\n"


SUGGESTIONS = [
    (["releas"], "invalid choice: 'releas' (did you mean 'release'?)"),
    (["plan", "--endpoint-ulr", "http://127.0.0.1:5000"], "(did you mean --endpoint-url?)"),
    (["--endpoint-ulr", "http://127.0.0.1:5000", "plan"], "(did you mean --endpoint-url?)"),
    (["sweep", "--aply"], "(did you mean --apply?)"),
    (["plan", "--min", "50"], "(--min is an option of coverage)"),
    (["plan", "--apply"], "(--apply is an option of sweep and release)"),
    (["coverage", "--format", "htm"], "invalid choice: 'htm' (did you mean 'html'?)"),
    (["sweep", "--apply", "--dry-run"], "not allowed with argument --apply"),
    (["coverage", "--output", "report.html"], "--output needs --format json or html"),
]


@pytest.mark.parametrize(("argv", "says"), SUGGESTIONS, ids=[" ".join(s[0]) for s in SUGGESTIONS])
def test_mistakes_name_the_closest_command_or_flag(argv: list[str], says: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == exits.USAGE
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert says in err


def complete(line: str, tmp_path: Path) -> set[str]:
    """What the shell's completion gets, as bash's hook asks it (argcomplete's protocol)."""
    answer = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SHELL": "bash",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "COMP_TYPE": "9",
    }
    done = subprocess.run(
        [sys.executable, "-m", "traffic_mirror.cli"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return {w.strip() for w in answer.read_text().split("\n") if w.strip()}


def test_shell_completion(tmp_path: Path) -> None:
    assert complete("traffic-mirror rel", tmp_path) == {"release"}
    assert complete("traffic-mirror coverage --format ", tmp_path) == {"table", "json", "html"}
    assert complete("traffic-mirror plan --region us-east-", tmp_path) == {"us-east-1", "us-east-2"}
    # The activation line the docs give: argcomplete's own script, installed with the package.
    script = Path(sys.executable).parent / "register-python-argcomplete"
    done = subprocess.run([str(script), "traffic-mirror"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "complete" in done.stdout and "traffic-mirror" in done.stdout


def test_unrecognized_names_the_first_flag_with_a_hint() -> None:
    known = ["--region", "--endpoint-url", "-q", "--quiet"]
    assert entry.unrecognized(["x", "--regoin"], known, {}) == "unrecognized arguments: x --regoin (did you mean --region?)"
    assert entry.unrecognized(["--zzz"], known, {}) == "unrecognized arguments: --zzz"
    assert entry.unrecognized(["--min=5"], known, {"--min": ["coverage"]}).endswith("(--min is an option of coverage)")
