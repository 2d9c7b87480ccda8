"""Teardown, the handler's side: the teardown event releases exactly our sessions; sweeps publish coverage."""

import json
import logging
from typing import Any

import pytest
from traffic_mirror.handler import app, coverage, report
from traffic_mirror.handler.events import RELEASE_REGION, TEARDOWN_SOURCE, Change, Skip, parse
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from testsupport import sandbox

REGION = "us-east-1"
SETTINGS = Settings()


def release_event(action: str | None = "delete", **extra: Any) -> dict[str, Any]:
    """What the component's CRUD invocation sends (pulumi-aws adds the `tf` key)."""
    event: dict[str, Any] = {
        "version": "0",
        "id": "pulumi-teardown",
        "source": TEARDOWN_SOURCE,
        "detail-type": RELEASE_REGION,
        "region": REGION,
        "detail": {},
        **extra,
    }
    if action is not None:
        event["tf"] = {"action": action, "prev_input": {}}
    return event


def test_only_the_hooks_delete_action_releases() -> None:
    change = parse(release_event("delete"), SETTINGS)
    assert isinstance(change, Change) and (change.kind, change.region) == ("release-region", REGION)
    for action in ("create", "update", "", 7):
        skip = parse(release_event(None, tf={"action": action}), SETTINGS)
        assert isinstance(skip, Skip) and skip.status == "ignored", action
    assert isinstance(parse(release_event(None, tf="delete"), SETTINGS), Skip)
    # An operator's direct `aws lambda invoke` (no lifecycle key) is an explicit order.
    direct = parse(release_event(None), SETTINGS)
    assert isinstance(direct, Change) and direct.kind == "release-region"


@pytest.mark.parametrize(
    "changed", [{"source": "aws.events"}, {"source": "attacker.app"}, {"detail-type": "Scheduled"}, {"region": "x"}]
)
def test_other_shapes_are_not_a_release(changed: dict[str, Any]) -> None:
    parsed = parse({**release_event("delete"), **changed}, SETTINGS)
    assert not (isinstance(parsed, Change) and parsed.kind == "release-region")


def _session(ec2: Any, eni: str, target: str, filter_id: str, number: int, managed_by: str | None) -> str:
    tags = [{"Key": MANAGED_TAG_KEY, "Value": managed_by}] if managed_by else [{"Key": "Owner", "Value": "soc"}]
    return str(
        ec2.create_traffic_mirror_session(
            NetworkInterfaceId=eni,
            TrafficMirrorTargetId=target,
            TrafficMirrorFilterId=filter_id,
            SessionNumber=number,
            TagSpecifications=[{"ResourceType": "traffic-mirror-session", "Tags": tags}],
        )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    )


def test_release_deletes_exactly_the_managed_sessions(aws: Any) -> None:
    account = sandbox.build_account(aws)
    subnet = account.subnets[f"{REGION}a"]
    target, filter_id = account.targets[f"sensor-{REGION}a-0"], account.filters["default"]
    instances = sandbox.launch(aws, account, subnet, "m5.large", count=3)
    enis = [i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in instances]
    app.handle({"id": "first", "source": "aws.events", "detail-type": "Scheduled Event", "region": REGION,
                "resources": [], "detail": {}}, settings=SETTINGS)  # fmt: skip
    ours = {s["TrafficMirrorSessionId"] for s in aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]}
    assert len(ours) == 3
    foreign = _session(aws, enis[0], target, filter_id, 5, None)
    other_tool = _session(aws, enis[1], target, filter_id, 6, "another-deployment")

    result = app.handle(release_event("delete"), settings=SETTINGS)
    left = {s["TrafficMirrorSessionId"] for s in aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]}
    assert left == {foreign, other_tool}
    assert result["counts"]["Deleted"] == 3 and result["counts"]["Failed"] == 0

    # The hook's create/update invocations write nothing.
    app.handle({"id": "again", "source": "aws.events", "detail-type": "Scheduled Event", "region": REGION,
                "resources": [], "detail": {}}, settings=SETTINGS)  # fmt: skip
    before = aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    app.handle(release_event("update"), settings=SETTINGS)
    assert aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == before


def test_release_in_dry_run_writes_nothing(aws: Any) -> None:
    account = sandbox.build_account(aws)
    sandbox.launch(aws, account, account.subnets[f"{REGION}a"], "m5.large")
    app.handle({"id": "s", "source": "aws.events", "detail-type": "Scheduled Event", "region": REGION,
                "resources": [], "detail": {}}, settings=SETTINGS)  # fmt: skip
    result = app.handle(release_event("delete"), settings=Settings(dry_run=True))
    assert result["counts"]["Planned"] == 1
    assert len(aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 1


def test_sweep_publishes_coverage_as_emf(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], logged: list[logging.LogRecord]
) -> None:
    account = sandbox.build_account(aws)
    sandbox.launch(aws, account, account.subnets[f"{REGION}a"], "m5.large", count=2)
    sandbox.launch(aws, account, account.subnets[f"{REGION}b"], "m5.large", {"Mirror": "off"})
    sandbox.launch(aws, account, account.subnets[f"{REGION}b"], "m5.large", {"Mirror": "pci"})  # no pci sensor
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mirror-fn")
    capsys.readouterr()
    app.handle({"id": "s", "source": "aws.events", "detail-type": "Scheduled Event", "region": REGION,
                "resources": [], "detail": {}}, settings=SETTINGS)  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (emf,) = [line for line in lines if "CoveragePercent" in line]
    (spec,) = emf["_aws"]["CloudWatchMetrics"]
    assert spec["Namespace"] == "TrafficMirrorAutomation" and spec["Dimensions"] == [["FunctionName"]]
    assert {m["Name"] for m in spec["Metrics"]} == set(report.COVERAGE_METRICS)
    # 2 created + the routed one without a sensor are in scope; the opted-out one is not.
    assert (emf["InScope"], emf["Mirrored"], emf["CoveragePercent"]) == (3, 2, 66.67)
    assert emf["FunctionName"] == "mirror-fn" and emf["SweepDurationMs"] > 0
    (line,) = [vars(r) for r in logged if r.getMessage() == "coverage"]
    assert (line["in_scope"], line["mirrored"]) == (3, 2)

    # Event batches (not a sweep) publish no coverage: they see only some ENIs.
    capsys.readouterr()
    app.handle(release_event("update"), settings=SETTINGS)
    assert "CoveragePercent" not in capsys.readouterr().out


def test_coverage_of_nothing_in_scope_is_full() -> None:
    assert coverage.percent(0, 0) == 100.0
    assert round(coverage.percent(1, 3), 2) == 33.33  # (mirrored, in scope)
