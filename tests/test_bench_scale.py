"""The scale benchmark's machinery: EC2 throttling in front of moto, and a quick smoke run.

No timing assertions: the benchmark itself (`python -m benchmarks.bench_scale`) reports the timings,
deadline overruns included (wall-clock figures: a loaded machine makes invocations longer).
"""

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from benchmarks import bench_scale
from benchmarks.scale.account import setup_client
from benchmarks.scale.constants import FUNCTION_TIMEOUT
from testsupport import moto_server, sandbox, throttle


@pytest.fixture
def server() -> Iterator[moto_server.Server[throttle.ThrottledApp]]:
    clock = throttle.SimClock()
    rates = throttle.Rates(describe_burst=100, describe_rate=100, mutate_burst=1, mutate_rate=0.001)
    with moto_server.Server(lambda moto: throttle.ThrottledApp(moto, rates, clock)) as srv, sandbox.aws_rules():
        srv.reset()
        yield srv


@pytest.mark.moto
def test_throttled_call_never_reaches_moto_and_botocore_sees_throttling(server: Any) -> None:
    setup = setup_client(server.url)
    account = sandbox.build_account(setup)
    instances = sandbox.launch(setup, account, account.subnets["us-east-1a"], count=2)
    enis = [i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in instances]
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=server.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    params: dict[str, Any] = {
        "TrafficMirrorTargetId": account.targets["sensor-us-east-1a-0"],
        "TrafficMirrorFilterId": account.filters["default"],
        "SessionNumber": 1,
    }
    client.create_traffic_mirror_session(NetworkInterfaceId=enis[0], **params)  # the burst's one token
    with pytest.raises(ClientError) as caught:
        client.create_traffic_mirror_session(NetworkInterfaceId=enis[1], **params)
    response = caught.value.response
    assert response["Error"]["Code"] == "RequestLimitExceeded"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert response["ResponseMetadata"]["RetryAttempts"] == 1  # botocore retried it
    assert ThrottledRetryableChecker().is_retryable(RetryContext(attempt_number=1, parsed_response=response))
    # Throttled attempts never reached moto: exactly one session exists.
    sessions = setup.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
    assert [s["NetworkInterfaceId"] for s in sessions] == [enis[0]]
    stats = server.app.stats
    assert stats.calls["CreateTrafficMirrorSession"] == 3
    assert stats.passed["CreateTrafficMirrorSession"] == 1
    assert stats.throttled["CreateTrafficMirrorSession"] == 2
    assert "RunInstances" not in stats.calls  # the benchmark's own setup is not counted


def test_token_bucket_refills_at_its_rate_and_on_skipped_time() -> None:
    clock = throttle.SimClock()
    bucket = throttle.TokenBucket(2, 1.0, clock.now)
    assert bucket.take() and bucket.take()
    assert not bucket.take()
    clock.skip(1.5)
    assert bucket.take()
    assert not bucket.take()


@pytest.mark.moto
def test_quick_run_mirrors_every_eni_exactly_once() -> None:
    options = bench_scale.parse_args(["--quick", "--only", "queue,sweep,accounts"])
    # The quick benchmark's sweeps have 5 s each, 2 s of it for work: on a loaded machine the reads
    # alone take that long and no sweep ever writes. Here a sweep has Lambda's whole timeout (what
    # the deadline does is tested on clocks the tests control: test_retry_budget, test_safety).
    options.sweep_budget = FUNCTION_TIMEOUT
    runs, _ = bench_scale.run_all(options, out=lambda _: None)
    assert [r.design for r in runs] == ["queue", "sweep", "queue"]
    for run in runs:
        assert run.enis > 0
        assert run.duplicates == 0, run.name
        assert run.unmirrored == 0, run.name
        # Nothing failed but the designed "left for the next run" of an invocation near its deadline.
        assert all(r.error is None or r.error.startswith("RetryableFailure") for r in run.replies), run.name
        assert run.strays == 0, run.name
    queue, sweep, accounts = runs
    assert sum(queue.stats.throttled.values()) > 0  # the small buckets did throttle
    assert accounts.accounts == 2 and accounts.enis == 2 * queue.enis  # each account's ENIs, mirrored in it
    assert sweep.sweeps and sweep.sweeps[-1]["unmirrored"] == 0
    assert bench_scale.report(runs, options)


@pytest.mark.moto
def test_containers_side_by_side_overshoot_a_cap_by_at_most_the_bound_and_the_next_sweep_restores_it() -> None:
    """docs/budget.md: each container reads the count of the place and may see room that a container
    beside it is filling; the overshoot is at most (M - 1) x min(cap, B), and the sweep releases it."""
    options = bench_scale.parse_args(["--quick", "--only", "budget"])
    runs, misses = bench_scale.run_all(options, out=lambda _: None)
    (burst,) = runs
    b = burst.budget
    assert (b["concurrency"], b["per_batch"], b["cap"], b["bound"]) == (2, 10, 5, 5)
    assert b["cap"] <= b["after_burst"] <= b["cap"] + b["bound"]
    assert b["after_sweep"] == b["cap"]
    assert burst.duplicates == 0 and burst.strays == 0
    assert not [m for m in misses if "sessions" in m]  # the verdict agrees (overruns are timing: not judged here)
    assert bench_scale.report(runs, options)


def test_each_account_has_its_own_token_buckets() -> None:
    """EC2 throttles per account and region: one account's spent burst leaves another's bucket full."""
    rates = throttle.Rates(mutate_burst=1, mutate_rate=0.001)

    def moto(_environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    app = throttle.ThrottledApp(moto, rates, throttle.SimClock(), account_of=lambda environ: environ["ACCOUNT"])

    def create_session(account: str) -> str:
        body = b"Action=CreateTrafficMirrorSession&Version=2016-11-15"
        environ = {
            "ACCOUNT": account,
            "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        answered: list[str] = []
        app(environ, lambda status, _headers: answered.append(status))
        return answered[0]

    assert create_session("111111111111") == "200 OK"  # the burst's one token
    assert create_session("111111111111").startswith("503")
    assert create_session("222222222222") == "200 OK"
    assert app.stats.throttled["CreateTrafficMirrorSession"] == 1
