"""The fault-injection layer in front of moto server (testsupport/faults.py): each fault as botocore sees it.

Only the `slow` fault needs a short read timeout (the server holds its answer longer than that,
whatever the load); every other call has all the time a loaded machine needs.
"""

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from rich.console import Console
from traffic_mirror import cli

from testsupport import faults, moto_server, sandbox

ONE_TRY = Config(retries={"total_max_attempts": 1}, read_timeout=30)
IMPATIENT = ONE_TRY.merge(Config(read_timeout=0.3))
"""Gives up before a `slow` answer (0.5 s late) arrives."""


pytestmark = pytest.mark.moto

Server = moto_server.Server[faults.FaultyApp]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with moto_server.Server(lambda moto: faults.FaultyApp(moto, slow_seconds=0.5, services=("ec2", "monitoring"))) as srv, sandbox.aws_rules():
        yield srv


@pytest.fixture
def world(server: Server) -> tuple[Any, Any, sandbox.Account]:
    server.app.configure()
    server.reset(seed=1)
    setup = faults.bypass(boto3.client("ec2", region_name="us-east-1", endpoint_url=server.url))
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=server.url, config=ONE_TRY)
    return setup, client, sandbox.build_account(setup, azs=("a",), ami=sandbox.moto_ami())


def test_errors_reach_botocore_as_aws_answers_them(server: Server, world: Any) -> None:
    _, client, _ = world
    for kind, status, code in [
        ("error", 500, "InternalError"),
        ("unavailable", 503, "Unavailable"),
        ("throttle", 503, "RequestLimitExceeded"),
    ]:
        server.app.force(kind, times=1)
        with pytest.raises(ClientError) as caught:
            client.describe_traffic_mirror_targets()
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    server.app.force("reset", times=1)
    with pytest.raises(ConnectionClosedError):
        client.describe_traffic_mirror_targets()
    assert server.app.stats.reached["DescribeTrafficMirrorTargets"] == 0  # none of those reached moto
    server.app.force("slow", times=1)
    impatient = boto3.client("ec2", region_name="us-east-1", endpoint_url=server.url, config=IMPATIENT)
    with pytest.raises(ReadTimeoutError):
        impatient.describe_traffic_mirror_targets()
    assert server.app.wait_reached("DescribeTrafficMirrorTargets", 1)  # the slow one, after the client gave up
    assert len(client.describe_traffic_mirror_targets()["TrafficMirrorTargets"]) == 1
    assert server.app.stats.reached["DescribeTrafficMirrorTargets"] == 2


def test_a_lost_response_took_effect_and_an_empty_answer_is_a_200_with_nothing(
    server: Server, world: Any
) -> None:
    setup, client, account = world
    instance = sandbox.launch(setup, account, account.subnets["us-east-1a"])[0]
    server.app.force("lost", ["CreateTrafficMirrorSession"], times=1)
    with pytest.raises(ConnectionClosedError):
        client.create_traffic_mirror_session(
            NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
            TrafficMirrorTargetId=account.targets["sensor-us-east-1a-0"],
            TrafficMirrorFilterId=account.filters["default"],
            SessionNumber=1,
        )
    assert len(setup.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 1
    server.app.force("empty", times=2)  # `empty` skips writes: it waits for the next describe
    assert client.describe_traffic_mirror_sessions()["TrafficMirrorSessions"] == []
    assert client.describe_instances()["Reservations"] == []
    assert len(client.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]) == 1


def test_random_faults_follow_the_seed_and_the_rate(server: Server, world: Any) -> None:
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=server.url, config=ONE_TRY)

    def outcomes(seed: int) -> list[str]:
        server.app.configure(0.3, seed, {"error": 1.0, "throttle": 1.0})
        found = []
        for _ in range(60):
            try:
                client.describe_traffic_mirror_filters()
                found.append("ok")
            except ClientError as error:
                found.append(error.response["Error"]["Code"])
        return found

    first = outcomes(5)
    assert outcomes(5) == first
    assert outcomes(6) != first
    assert 8 <= sum(o != "ok" for o in first) <= 30
    assert set(first) == {"ok", "InternalError", "RequestLimitExceeded"}
    server.app.configure()


def test_cloudwatch_errors_leave_the_coverage_report_intact_with_loss_unknown(
    server: Server, world: Any
) -> None:
    setup, _, account = world
    sandbox.launch(setup, account, account.subnets["us-east-1a"])
    where = ["--region", "us-east-1", "--endpoint-url", server.url]

    def coverage() -> tuple[int, dict[str, Any], str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["coverage", "--format", "json", *where], console=Console(file=out, width=200),
                        err_console=Console(file=err, width=200))  # fmt: skip
        return code, json.loads(out.getvalue()), err.getvalue()

    assert cli.main(["sweep", "--apply", *where], console=Console(file=io.StringIO())) == 0
    for kind, answer, code_seen in [
        ("error", ("400 Bad Request", "Throttling"), "Throttling"),
        ("error", ("400 Bad Request", "AccessDeniedException"), "AccessDeniedException"),
    ]:
        server.app.configure()  # a new scenario: no rule left from the last one
        server.app.force(kind, ["GetMetricData"], times=3, answer=answer)  # every attempt the CLI makes
        code, report, err = coverage()
        assert code == 0, err
        assert (report["in_scope"], report["mirrored"]) == (1, 1), "the rest of the report is intact"
        loss = report["mirror_loss"]
        assert (loss["mirrored_instances"], loss["unknown_instances"], loss["percent"]) == (1, 1, None)
        assert code_seen in loss["error"] and "mirror loss unknown" in err
        assert server.app.stats.by_action[("GetMetricData", kind)] >= 1
    server.app.configure()
    code, report, err = coverage()  # faults over: read again (no metrics here: unknown, without an error)
    assert report["mirror_loss"]["error"] is None and err == ""
