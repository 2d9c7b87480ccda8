"""The naive baseline keeps the blog post's known flaws; our handler does not. And a benchmark smoke run.

Under moto with `sandbox.aws_rules()` (the `aws` fixture), so EC2's rules hold: a session number
already in use on an ENI is refused, as AWS does. Nothing here asserts a timing.
"""

import re
import sys
from typing import Any

import boto3
import pytest
from traffic_mirror.handler import app

from benchmarks import baseline, bench_handler
from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import run_instances_record, wrap


def event(instances: list[dict[str, Any]], event_id: str) -> dict[str, Any]:
    return wrap(run_instances_record(instances, event_id=event_id))


def sessions_of(ec2: Any, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    enis = {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}
    found = ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    return [s for s in found if s["NetworkInterfaceId"] in enis]


@pytest.fixture
def subnet(account: sandbox.Account) -> str:
    return account.subnets["us-east-1a"]


def test_naive_port_mirrors_a_launch_as_the_post_describes(
    aws: Any, account: sandbox.Account, subnet: str
) -> None:
    instances = sandbox.launch(aws, account, subnet, "m5.large", {"Name": "web-1"}, extra_enis=1)
    result = baseline.naive_handler(event(instances, "naive-1"), aws)
    assert result["ok"], result
    found = sessions_of(aws, instances)
    assert len(found) == 2
    for session in found:
        assert session["TrafficMirrorTargetId"] == account.targets["sensor-us-east-1a-0"]  # same subnet
        assert session["TrafficMirrorFilterId"] == account.filters["default"]
        assert session["SessionNumber"] == 1
        assert session["Description"] == "Automated Mirror Session"
        assert {t["Key"]: t["Value"] for t in session["Tags"]} == {"Name": "web-1"}


def test_redelivery_fails_the_naive_handler_but_not_ours(
    aws: Any, account: sandbox.Account, subnet: str
) -> None:
    theirs = sandbox.launch(aws, account, subnet, extra_enis=1)
    delivery = event(theirs, "redelivered-naive")
    assert baseline.naive_handler(delivery, aws)["ok"]
    again = baseline.naive_handler(delivery, aws)  # EventBridge delivers at least once
    assert not again["ok"]
    assert "session number 1 is already in use" in again["message"]
    assert len(sessions_of(aws, theirs)) == 2  # nothing gained; the invocation failed (and is retried)

    ours = sandbox.launch(aws, account, subnet, extra_enis=1)
    delivery = event(ours, "redelivered-ours")
    first, second = app.handle(delivery), app.handle(delivery)
    assert first["counts"]["Created"] == 2
    assert second["counts"]["Created"] == 0
    assert second["counts"]["AlreadyMirrored"] == 2
    assert second["counts"]["Failed"] == 0
    assert len(sessions_of(aws, ours)) == 2


def test_first_filter_wins_for_the_naive_handler(aws: Any, account: sandbox.Account, subnet: str) -> None:
    tags = [{"ResourceType": "traffic-mirror-filter", "Tags": [{"Key": "Mirror", "Value": "default"}]}]
    chosen = aws.create_traffic_mirror_filter(Description="the one to use", TagSpecifications=tags)[
        "TrafficMirrorFilter"
    ]["TrafficMirrorFilterId"]

    theirs = sandbox.launch(aws, account, subnet)
    assert baseline.naive_handler(event(theirs, "filters-naive"), aws)["ok"]
    (naive_session,) = sessions_of(aws, theirs)
    assert naive_session["TrafficMirrorFilterId"] == account.filters["default"] != chosen

    ours = sandbox.launch(aws, account, subnet)
    assert app.handle(event(ours, "filters-ours"))["counts"]["Created"] == 1
    (our_session,) = sessions_of(aws, ours)
    assert our_session["TrafficMirrorFilterId"] == chosen


def test_two_untagged_filters_the_naive_handler_guesses_ours_refuses(
    aws: Any, account: sandbox.Account, subnet: str
) -> None:
    aws.create_traffic_mirror_filter(Description="dns only")
    theirs = sandbox.launch(aws, account, subnet)
    assert baseline.naive_handler(event(theirs, "guess-naive"), aws)["ok"]
    assert [s["TrafficMirrorFilterId"] for s in sessions_of(aws, theirs)] == [account.filters["default"]]

    ours = sandbox.launch(aws, account, subnet)
    counts = app.handle(event(ours, "guess-ours"))["counts"]
    assert counts["Created"] == 0
    assert counts["Skipped"] == 1  # logged: set MIRROR_FILTER_ID or tag one filter Mirror=default
    assert sessions_of(aws, ours) == []


def test_stale_nitro_list_skips_what_ours_mirrors(aws: Any, account: sandbox.Account, subnet: str) -> None:
    theirs = sandbox.launch(aws, account, subnet, "c5.large")  # Nitro, but not in the post's list
    result = baseline.naive_handler(event(theirs, "nitro-naive"), aws)
    assert result == {
        "ok": False,
        "message": "No instances to work on [isNitro]",
        "sessions": [],
        "errors": [],
    }

    ours = sandbox.launch(aws, account, subnet, "c5.large")
    assert app.handle(event(ours, "nitro-ours"))["counts"]["Created"] == 1


def test_naive_reads_grow_with_instances_ours_do_not(
    aws: Any, account: sandbox.Account, subnet: str, counter: CallCounter
) -> None:
    naive_client = boto3.client("ec2", region_name="us-east-1")
    naive_calls = CallCounter()
    naive_client.meta.events.register("before-call", naive_calls)
    theirs = sandbox.launch(aws, account, subnet, count=4)
    assert baseline.naive_handler(event(theirs, "calls-naive"), naive_client)["ok"]
    assert naive_calls.calls == {
        "DescribeTrafficMirrorTargets": 4,
        "DescribeNetworkInterfaces": 4,
        "DescribeTrafficMirrorFilters": 4,
        "CreateTrafficMirrorSession": 4,
    }

    ours = sandbox.launch(aws, account, subnet, count=4)
    counter.calls.clear()
    app.handle(event(ours, "calls-ours"))
    # cold: targets, filters, the sensors' instances (with their ENIs), the sessions on the sensors,
    # tags, sessions
    assert counter.reads() == 6
    assert counter.calls["CreateTrafficMirrorSession"] == 4


ROW = re.compile(r"^\| (\d+ x \d+) \| (\d+) / (\d+) / (\d+) \| (\d+) / (\d+) / (\d+) \|", re.MULTILINE)


@pytest.mark.moto
def test_benchmark_quick_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    modules = {name: sys.modules[name] for name in ("traffic_mirror.handler.app", "traffic_mirror.handler.clients", "benchmarks.baseline")}
    assert bench_handler.main(["--quick", "--latency-ms", "0"]) == 0
    out = capsys.readouterr().out
    rows = {m[0]: tuple(int(x) for x in m[1:]) for m in ROW.findall(out)}
    # EC2 calls ours cold / warm / naive, then the reads among them. Warm is what sensor health
    # adds to an event: nothing; cold pays one more read once per region per TTL with the
    # inventory (the sessions on the sensors, for capacity; the sensors' ENIs are read with their
    # instances, whose state and type health needs).
    assert rows == {
        "1 x 1": (7, 3, 4, 6, 2, 3),
        "1 x 2": (8, 4, 5, 6, 2, 3),
        "2 x 1": (8, 4, 8, 6, 2, 6),
        "2 x 2": (10, 6, 10, 6, 2, 6),
    }
    assert "INVALID" not in out and "FAIL" not in out
    assert all(sys.modules[name] is module for name, module in modules.items())  # state given back
