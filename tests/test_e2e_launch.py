"""RunInstances end to end under moto: every ENI of every instance mirrored once, never twice."""

from collections.abc import Iterator
from typing import Any

import pytest
from traffic_mirror.handler import app, inventory
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from tests.conftest import home
from testsupport import modules, sandbox
from testsupport.event_builders import run_instances_record, wrap


def sessions(ec2: Any) -> list[dict[str, Any]]:
    return ec2.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]


def by_eni(ec2: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for s in sessions(ec2):
        found.setdefault(s["NetworkInterfaceId"], []).append(s)
    return found


def enis(instances: list[dict[str, Any]]) -> set[str]:
    return {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}


def test_one_instance_one_eni_gets_one_session(aws: Any, account: sandbox.Account) -> None:
    subnet = account.subnets["us-east-1a"]
    instances = sandbox.launch(aws, account, subnet, "m5.large", {"Name": "web-1"})
    result = app.handle(wrap(run_instances_record(instances)))
    assert result["counts"]["Created"] == 1
    (session,) = sessions(aws)
    eni = instances[0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert session["NetworkInterfaceId"] == eni
    assert session["TrafficMirrorTargetId"] == account.targets["sensor-us-east-1a-0"]
    assert session["TrafficMirrorFilterId"] == account.filters["default"]
    assert session["SessionNumber"] == 1
    tags = {t["Key"]: t["Value"] for t in session["Tags"]}
    assert tags == {MANAGED_TAG_KEY: "traffic-mirror-automation", "Name": "web-1"}
    assert eni in session["Description"]


def test_multi_instance_multi_eni_event(aws: Any, account: sandbox.Account) -> None:
    subnet_a, subnet_b = account.subnets["us-east-1a"], account.subnets["us-east-1b"]
    instances = sandbox.launch(aws, account, subnet_a, count=3, extra_enis=1) + sandbox.launch(
        aws, account, subnet_b, count=2
    )
    app.handle(wrap(run_instances_record(instances)))
    found = by_eni(aws)
    assert set(found) == enis(instances)
    assert all(len(v) == 1 for v in found.values())
    for instance in instances:
        az = instance["Placement"]["AvailabilityZone"]
        for eni in instance["NetworkInterfaces"]:
            assert (
                found[eni["NetworkInterfaceId"]][0]["TrafficMirrorTargetId"]
                == account.targets[f"sensor-{az}-0"]
            )


@pytest.fixture
def cold_modules() -> Iterator[None]:
    """The test imports the handler anew; later tests get the original modules back."""
    with modules.preserved():
        yield


def test_redelivery_three_times_and_to_a_cold_module(
    aws: Any, account: sandbox.Account, cold_modules: None
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2, extra_enis=1)
    event = wrap(run_instances_record(instances))
    for _ in range(3):
        app.handle(event)
    # A cold container: fresh modules, no caches, same event.
    cold = modules.fresh_handler()
    assert cold is not app and cold.CONTAINER is not app.CONTAINER
    cold.handle(event)
    found = by_eni(aws)
    assert set(found) == enis(instances)
    assert all(len(v) == 1 for v in found.values()), found


def test_client_token_alone_prevents_duplicates(aws: Any, account: sandbox.Account) -> None:
    """Two racing invocations that both saw no session: the same ClientToken returns one session."""
    from traffic_mirror.handler import apply, planner
    from traffic_mirror.handler.settings import Settings

    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    record = run_instances_record(instances)
    from traffic_mirror.handler.events import Change, parse

    change = parse(wrap(record), Settings())
    assert isinstance(change, Change)
    ctx = home()
    decisions = planner.plan(change.sources, {}, inventory.inventory(ctx), Settings())
    first = apply.apply_all(decisions, ctx)
    second = apply.apply_all(decisions, ctx)
    assert first[0].session_ids == second[0].session_ids
    assert len(sessions(aws)) == 1


@pytest.mark.parametrize("n", [1, 5, 20])
def test_reads_per_event_do_not_grow_with_instances(
    aws: Any, account: sandbox.Account, counter: Any, n: int
) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=n)
    inventory.inventory(home())  # warm
    counter.calls.clear()
    app.handle(wrap(run_instances_record(instances, event_id=f"warm-{n}")))
    assert counter.reads() == 2, counter.calls  # tags + sessions, whatever n
    assert counter.calls.get("CreateTrafficMirrorSession") == n


def test_cold_reads_are_a_constant(aws: Any, account: sandbox.Account, counter: Any) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=7)
    counter.calls.clear()
    app.handle(wrap(run_instances_record(instances)))
    # targets, filters, the sensors' instances (with their ENIs), the sessions on the sensors
    # (capacity), tags, the ENIs' sessions: the inventory's four reads are made once per region per TTL.
    assert counter.reads() == 6, counter.calls
