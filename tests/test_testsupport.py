"""The test-support helpers themselves: a helper that miscounts makes every test that uses it lie."""

import sys
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from testsupport import faults, lambda_context, modules, moto_server, throttle
from testsupport.calls import CallCounter

THREADS, CALLS = 8, 20_000


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    """Switch threads every microsecond, so an unlocked `+= 1` does lose counts."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


def test_call_counter_is_exact_under_threads(frequent_switches: None) -> None:
    counter = CallCounter()
    models = [SimpleNamespace(name=op) for op in ("DescribeInstances", "CreateTrafficMirrorSession")]
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait()
        for n in range(CALLS):
            counter(models[n % 2])

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.total() == THREADS * CALLS
    assert counter.reads() == counter.writes() == THREADS * CALLS // 2
    counter.clear()
    assert counter.total() == 0


def test_shrinking_context_counts_down_per_question() -> None:
    context = lambda_context.shrinking(start=10, step=2)
    assert [context.get_remaining_time_in_millis() for _ in range(7)] == [10_000, 8_000, 6_000, 4_000, 2_000, 0, 0]
    steady = lambda_context.shrinking(start=900, step=0)
    assert steady.get_remaining_time_in_millis() == steady.get_remaining_time_in_millis() == 900_000


def test_preserved_gives_back_the_callers_handler_modules() -> None:
    from traffic_mirror.handler import app

    with modules.preserved():
        cold = modules.fresh_handler()
        assert cold is not app
        assert sys.modules["traffic_mirror.handler.app"] is cold
    assert sys.modules["traffic_mirror.handler.app"] is app


def _in_process() -> None:
    from moto import mock_aws

    with mock_aws():
        pass


def _threaded() -> None:
    from moto.server import ThreadedMotoServer

    ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False).start()


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(_in_process, id="mock_aws"),
        pytest.param(moto_server.Server, id="server"),
        pytest.param(lambda: moto_server.Server(faults.FaultyApp), id="server-with-faults"),
        pytest.param(
            lambda: moto_server.Server(
                lambda moto: throttle.ThrottledApp(moto, throttle.Rates(), throttle.SimClock())
            ),
            id="server-with-throttling",
        ),
        pytest.param(_threaded, id="moto-threaded-server"),
    ],
)
def test_outside_the_moto_tier_every_way_of_starting_moto_is_refused(start: Callable[[], object]) -> None:
    """The unit tier's guard (conftest.py): a test that starts moto without the mark fails."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    before = DomainDispatcherApplication.__init__
    with moto_server.refused("unmarked"), pytest.raises(RuntimeError, match="unmarked"):
        start()
    assert DomainDispatcherApplication.__init__ is before


# --- the sandbox's sensors: AWS's documented rules where moto is lax -------------------------------


@pytest.mark.moto
def test_the_sandbox_holds_aws_rules_for_sensors(aws: Any) -> None:
    from tests import conftest
    from testsupport import sandbox

    elbv2 = conftest.SESSION.client("elbv2", region_name="us-east-1")
    account = sandbox.build_account(aws, ami=sandbox.moto_ami())
    nlb = sandbox.add_nlb_target(aws, elbv2, account, "nlb", ["us-east-1a"])
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=nlb.arn)["Listeners"]
    assert (listener["Protocol"], listener["Port"]) == ("UDP", 4789)

    def states() -> set[tuple[str, str]]:
        found = elbv2.describe_target_health(TargetGroupArn=nlb.target_group_arn)["TargetHealthDescriptions"]
        return {(d["TargetHealth"]["State"], d["TargetHealth"].get("Reason", "")) for d in found}

    assert states() == {("healthy", "")}
    (backend,) = nlb.instances["us-east-1a"]
    sandbox.fail_health_checks([backend])
    assert states() == {("unhealthy", "Target.FailedHealthChecks")}
    sandbox.fail_health_checks([backend], failing=False)
    aws.stop_instances(InstanceIds=[backend])
    assert states() == {("unused", "Target.InvalidState")}
    aws.start_instances(InstanceIds=[backend])
    (elsewhere,) = sandbox.launch(aws, account, account.subnets["us-east-1b"], "c5.xlarge")
    elbv2.register_targets(TargetGroupArn=nlb.target_group_arn, Targets=[{"Id": elsewhere["InstanceId"]}])
    assert states() == {("healthy", ""), ("unused", "Target.NotInUse")}  # us-east-1b is not enabled

    # DescribeInstances' filter by ENI; a terminated instance's primary ENI goes, with its sessions.
    (web,) = sandbox.launch(aws, account, account.subnets["us-east-1a"])
    eni = web["NetworkInterfaces"][0]["NetworkInterfaceId"]
    by_eni = aws.describe_instances(Filters=[{"Name": "network-interface.network-interface-id", "Values": [eni]}])
    assert [i["InstanceId"] for r in by_eni["Reservations"] for i in r["Instances"]] == [web["InstanceId"]]
    sensor = account.targets["sensor-us-east-1a-0"]
    filter_id = account.filters["default"]
    aws.create_traffic_mirror_session(
        NetworkInterfaceId=eni, TrafficMirrorTargetId=sensor, TrafficMirrorFilterId=filter_id, SessionNumber=1
    )
    aws.terminate_instances(InstanceIds=[web["InstanceId"]])
    assert aws.describe_network_interfaces(Filters=[{"Name": "network-interface-id", "Values": [eni]}])[
        "NetworkInterfaces"
    ] == []
    assert aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []


@pytest.mark.moto
def test_modifying_a_sessions_target_holds_the_rules_of_a_create(aws: Any) -> None:
    from botocore.exceptions import ClientError

    from testsupport import sandbox

    account = sandbox.build_account(aws, sensors_per_az=0, ami=sandbox.moto_ami())
    a, b = account.subnets["us-east-1a"], account.subnets["us-east-1b"]
    small = sandbox.add_eni_target(aws, account, a, "small", "c5.xlarge")  # 10 sources
    big = sandbox.add_eni_target(aws, account, a, "big", "c5.24xlarge")  # 100 sources
    other_az = sandbox.add_eni_target(aws, account, b, "b", "c5.24xlarge")
    filter_id = account.filters["default"]
    sessions: list[str] = []
    for inst in sandbox.launch(aws, account, a, count=11):
        eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
        target = small if len(sessions) < 10 else big
        sessions.append(aws.create_traffic_mirror_session(
            NetworkInterfaceId=eni, TrafficMirrorTargetId=target, TrafficMirrorFilterId=filter_id, SessionNumber=1
        )["TrafficMirrorSession"]["TrafficMirrorSessionId"])  # fmt: skip
    last = sessions[-1]
    for target, code in (
        (small, "TrafficMirrorSourcesPerTargetLimitExceeded"),
        (other_az, "InvalidParameterValue"),
        ("tmt-0123456789abcdef0", "InvalidTrafficMirrorTargetId.NotFound"),
    ):
        with pytest.raises(ClientError) as refused:
            aws.modify_traffic_mirror_session(TrafficMirrorSessionId=last, TrafficMirrorTargetId=target)
        assert refused.value.response["Error"]["Code"] == code
    # One leaves the small sensor: then it has room.
    aws.modify_traffic_mirror_session(TrafficMirrorSessionId=sessions[0], TrafficMirrorTargetId=big)
    aws.modify_traffic_mirror_session(TrafficMirrorSessionId=last, TrafficMirrorTargetId=small)
