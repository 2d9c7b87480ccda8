"""Issues 11 and 14, component side, under Pulumi's mocks: sensors and filter as code, teardown,
dashboard and alarms, asynchronous invocations, the managed_by guard."""

import json
from typing import Any

import pytest
from traffic_mirror.components import ConfigError, TrafficMirrorAutomation
from traffic_mirror.components import filter as mirror_filter
from traffic_mirror.components.config import resolve
from traffic_mirror.handler import report
from traffic_mirror.handler.events import Change, Skip, parse
from traffic_mirror.handler.settings import Settings

from testsupport.pulumi_mocks import ACCOUNT, Registered, Run, run_program

REGIONS = ["us-east-1", "eu-west-1"]
NLB = f"arn:aws:elasticloadbalancing:eu-west-1:{ACCOUNT}:loadbalancer/net/ids/0123456789abcdef"
ENI = "us-east-1/eni-0123456789abcdef0"
GWLBE = "us-east-1/vpce-0fedcba9876543210=pci"


def deploy(args: dict[str, Any] | None = None, **kwargs: Any) -> Run:
    return run_program(
        lambda: TrafficMirrorAutomation("mirror", {"regions": REGIONS, **(args or {})}),  # type: ignore[typeddict-item]
        **kwargs,
    )


@pytest.fixture(scope="module")
def run() -> Run:
    return deploy({"sensors": [NLB, ENI, GWLBE], "coverage_alarm_percent": 95})


def of(run: Run, typ: str, region: str, kind: str = "") -> list[Registered]:
    return [r for r in run.of_type(typ) if r.region == region and kind in r.name]


def only(run: Run, typ: str, region: str, kind: str = "") -> Registered:
    (found,) = of(run, typ, region, kind)
    return found


# --- sensors -----------------------------------------------------------------------------------


def test_sensors_become_targets_in_their_region_tagged_as_designated(run: Run) -> None:
    targets = run.of_type("aws:ec2/trafficMirrorTarget:TrafficMirrorTarget")
    by_region = {r: [t.inputs for t in targets if t.region == r] for r in REGIONS}
    (nlb,) = by_region["eu-west-1"]
    assert nlb["networkLoadBalancerArn"] == NLB and "networkInterfaceId" not in nlb
    assert nlb["tags"] == {"Mirror": "true", "ManagedBy": "traffic-mirror-automation", "Name": "mirror-sensor"}
    east = {t.get("networkInterfaceId") or t.get("gatewayLoadBalancerEndpointId"): t for t in by_region["us-east-1"]}
    assert set(east) == {"eni-0123456789abcdef0", "vpce-0fedcba9876543210"}
    assert east["eni-0123456789abcdef0"]["tags"]["Mirror"] == "true"
    assert east["vpce-0fedcba9876543210"]["tags"]["Mirror"] == "pci", "a route designates it for that route"
    # The one-time sweep runs after the targets exist (it must see them).
    sweep = only(run, "aws:lambda/invocation:Invocation", "us-east-1", "initial-sweep")
    assert sweep.inputs["functionName"]


def test_sensor_names_do_not_depend_on_the_list_order(run: Run) -> None:
    reordered = deploy({"sensors": [GWLBE, ENI, NLB], "coverage_alarm_percent": 95})
    names = lambda r: sorted(t.name for t in r.of_type("aws:ec2/trafficMirrorTarget:TrafficMirrorTarget"))  # noqa: E731
    assert names(reordered) == names(run)


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        (["eni-0123456789abcdef0"], "is not an NLB ARN"),
        (["ap-south-1/eni-0123456789abcdef0"], "not one of the regions"),
        ([f"arn:aws:elasticloadbalancing:ap-south-1:{ACCOUNT}:loadbalancer/net/x/0123456789abcdef"], "ap-south-1"),
        ([f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/x/0123456789abcdef"], "NLB ARN"),
        ([ENI, ENI], "twice"),
        (["us-east-1/eni-0123456789abcdef0=off"], "naming a route"),
        ("us-east-1/eni-0123456789abcdef0", "must be a list"),
    ],
)
def test_bad_sensors_fail_at_preview(sensors: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve({"regions": REGIONS, "sensors": sensors})


# --- the owned filter --------------------------------------------------------------------------


def rules_of(run: Run, region: str) -> list[dict[str, Any]]:
    return [r.inputs for r in run.of_type("aws:ec2/trafficMirrorFilterRule:TrafficMirrorFilterRule") if r.region == region]


def test_each_region_owns_a_filter_whose_id_the_handler_gets(run: Run) -> None:
    for region in REGIONS:
        owned = only(run, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", region)
        assert owned.inputs["tags"]["ManagedBy"] == "traffic-mirror-automation"
        assert "networkServices" not in owned.inputs, "Amazon DNS is not mirrored by default"
        env = only(run, "aws:lambda/function:Function", region).inputs["environment"]["variables"]
        assert env["MIRROR_FILTER_ID"] == owned.outputs["id"]
        rules = rules_of(run, region)
        assert {r["trafficMirrorFilterId"] for r in rules} == {owned.outputs["id"]}
        assert len(rules) <= mirror_filter.MAX_RULES
        for direction in ("ingress", "egress"):
            mine = sorted((r for r in rules if r["trafficDirection"] == direction), key=lambda r: r["ruleNumber"])
            numbers = [r["ruleNumber"] for r in mine]
            assert len(set(numbers)) == len(numbers) and all(1 <= n <= 32766 for n in numbers)
            vxlan, all_v4, all_v6 = mine
            assert (vxlan["ruleAction"], vxlan["protocol"], vxlan["destinationPortRange"]) == (
                "reject", 17, {"fromPort": 4789, "toPort": 4789}
            )  # fmt: skip
            assert vxlan["ruleNumber"] < all_v4["ruleNumber"], "the exclusion is evaluated first"
            for accept, cidr in ((all_v4, "0.0.0.0/0"), (all_v6, "::/0")):
                assert accept["ruleAction"] == "accept" and "protocol" not in accept
                assert (accept["sourceCidrBlock"], accept["destinationCidrBlock"]) == (cidr, cidr)


def test_user_rules_come_first_and_exclusions_can_be_turned_off() -> None:
    custom = deploy(
        {
            "filter_rules": ["ingress reject tcp 0.0.0.0/0 10.0.0.0/8 22", "egress accept all 10.0.0.0/8 0.0.0.0/0"],
            "filter_exclude_vxlan": False,
            "filter_mirror_amazon_dns": True,
        }
    )
    rules = sorted(rules_of(custom, "us-east-1"), key=lambda r: (r["trafficDirection"], r["ruleNumber"]))
    assert [(r["trafficDirection"], r["ruleNumber"], r["ruleAction"]) for r in rules] == [
        ("egress", 100, "accept"), ("egress", 32000, "accept"), ("egress", 32001, "accept"),
        ("ingress", 100, "reject"), ("ingress", 32000, "accept"), ("ingress", 32001, "accept"),
    ]  # fmt: skip
    ssh = rules[3]
    assert (ssh["protocol"], ssh["destinationCidrBlock"], ssh["destinationPortRange"]) == (
        6, "10.0.0.0/8", {"fromPort": 22, "toPort": 22}
    )  # fmt: skip
    owned = only(custom, "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter", "us-east-1")
    assert owned.inputs["networkServices"] == ["amazon-dns"]


def test_a_given_filter_id_is_used_and_none_is_created() -> None:
    given = deploy({"filter_id": "tmf-0123456789abcdef0"})
    assert not given.of_type("aws:ec2/trafficMirrorFilter:TrafficMirrorFilter")
    env = only(given, "aws:lambda/function:Function", "eu-west-1").inputs["environment"]["variables"]
    assert env["MIRROR_FILTER_ID"] == "tmf-0123456789abcdef0"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (["ingress reject tcp 0.0.0.0/0 10.0.0.0/8 22"] * 5, "over AWS's 10 per filter"),
        (["sideways accept all 0.0.0.0/0 0.0.0.0/0"], "direction"),
        (["ingress drop all 0.0.0.0/0 0.0.0.0/0"], "action"),
        (["ingress accept gre 0.0.0.0/0 0.0.0.0/0"], "protocol"),
        (["ingress accept tcp 10.0.0.0/33 0.0.0.0/0"], "not a CIDR"),
        (["ingress accept tcp 10.0.0.0/8 ::/0"], "IPv4 or both IPv6"),
        (["ingress accept icmp 0.0.0.0/0 0.0.0.0/0 22"], "ports need protocol tcp or udp"),
        (["ingress accept tcp 0.0.0.0/0 0.0.0.0/0 90-80"], "low to high"),
        (["ingress accept tcp"], "must be"),
    ],
)
def test_bad_filter_rules_fail_at_preview(rules: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve({"regions": REGIONS, "filter_rules": rules})


def test_the_rule_limit_counts_the_defaults() -> None:
    four = ["ingress reject tcp 0.0.0.0/0 10.0.0.0/8 22"] * 4
    assert len(mirror_filter.rules(tuple(four), exclude_vxlan=True)) == 10
    with pytest.raises(mirror_filter.FilterRuleError, match="frees 2"):
        mirror_filter.rules(tuple(four + four[:1]), exclude_vxlan=True)
    assert len(mirror_filter.rules(tuple(four + four[:2]), exclude_vxlan=False)) == 10


# --- scheduled invocations -----------------------------------------------------------------------


def test_async_invocations_are_not_retried_and_concurrency_is_reserved(run: Run) -> None:
    for region in REGIONS:
        fn = only(run, "aws:lambda/function:Function", region)
        config = only(run, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", region)
        assert config.inputs["functionName"] == fn.outputs["name"]
        assert config.inputs["maximumRetryAttempts"] == 0
        assert 60 <= config.inputs["maximumEventAgeInSeconds"] <= 300, "short: the next tick is the retry"
        assert fn.inputs["reservedConcurrentExecutions"] == 2 + 2, "the queue's 2, the sweep, one by hand"
    bigger = only(deploy({"max_concurrency": 10}), "aws:lambda/function:Function", "us-east-1")
    assert bigger.inputs["reservedConcurrentExecutions"] == 12
    unreserved = only(deploy({"reserve_concurrency": False}), "aws:lambda/function:Function", "us-east-1")
    assert "reservedConcurrentExecutions" not in unreserved.inputs


# --- alarms and the dashboard ------------------------------------------------------------------


def test_failed_eni_and_coverage_alarms(run: Run) -> None:
    for region in REGIONS:
        fn = only(run, "aws:lambda/function:Function", region)
        failed = only(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "failed-enis-alarm").inputs
        assert (failed["namespace"], failed["metricName"]) == (report.METRIC_NAMESPACE, "Failed")
        assert failed["dimensions"] == {"FunctionName": fn.outputs["name"]}
        assert (failed["statistic"], failed["threshold"], failed["comparisonOperator"]) == (
            "Sum", 0, "GreaterThanThreshold"
        )  # fmt: skip
        coverage = only(run, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "coverage-alarm").inputs
        assert (coverage["namespace"], coverage["metricName"]) == (report.METRIC_NAMESPACE, "CoveragePercent")
        assert coverage["dimensions"] == {"FunctionName": fn.outputs["name"]}
        assert (coverage["threshold"], coverage["comparisonOperator"], coverage["statistic"]) == (
            95, "LessThanThreshold", "Minimum"
        )  # fmt: skip
    assert not [a for a in deploy().of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "coverage" in a.name]
    with pytest.raises(ConfigError, match="coverage_alarm_percent must be between 1 and 100"):
        resolve({"regions": REGIONS, "coverage_alarm_percent": 101})


def test_untrusted_session_and_mirror_loss_alarms(run: Run) -> None:
    custom = deploy({"loss_alarm_percent": 12.5})
    for deployed, threshold in ((run, 5), (custom, 12.5)):
        for region in REGIONS if deployed is run else ("us-east-1",):
            fn = only(deployed, "aws:lambda/function:Function", region).outputs["name"]
            rogue = only(deployed, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "untrusted-sessions-alarm").inputs
            assert (rogue["namespace"], rogue["metricName"], rogue["dimensions"]) == (
                report.METRIC_NAMESPACE, "UntrustedSessions", {"FunctionName": fn}
            )  # fmt: skip
            assert (rogue["statistic"], rogue["threshold"], rogue["comparisonOperator"]) == (
                "Maximum", 0, "GreaterThanThreshold"
            )  # fmt: skip
            lossy = only(deployed, "aws:cloudwatch/metricAlarm:MetricAlarm", region, "mirror-loss-alarm").inputs
            assert (lossy["metricName"], lossy["dimensions"]) == ("MirrorLossPercent", {"FunctionName": fn})
            assert (lossy["statistic"], lossy["threshold"], lossy["comparisonOperator"]) == (
                "Maximum", threshold, "GreaterThanThreshold"
            )  # fmt: skip
            assert lossy["treatMissingData"] == "notBreaching", "no loss read is no alarm, never a made-up 0%"
    # The handler reads the same setting (its warning line), from the function's environment.
    env = only(custom, "aws:lambda/function:Function", "us-east-1").inputs["environment"]["variables"]
    assert env["MIRROR_LOSS_ALARM_PERCENT"] == "12.5"


def test_a_dashboard_per_region_shows_what_the_handler_emits(run: Run) -> None:
    emitted = set(report.METRICS) | set(report.COVERAGE_METRICS) | set(report.EVIDENCE_METRICS) | {"DurationMs"}
    for region in REGIONS:
        board = only(run, "aws:cloudwatch/dashboard:Dashboard", region)
        assert region in board.inputs["dashboardName"] and len(board.inputs["dashboardName"]) <= 255
        fn = only(run, "aws:lambda/function:Function", region).outputs["name"]
        dlq = next(q for q in of(run, "aws:sqs/queue:Queue", region) if "-dlq-" in q.name).outputs["name"]
        widgets = json.loads(board.inputs["dashboardBody"])["widgets"]
        metrics = [m for w in widgets for m in w["properties"]["metrics"]]
        assert all(w["properties"]["region"] == region for w in widgets)
        ours = {m[1] for m in metrics if m[0] == report.METRIC_NAMESPACE}
        assert ours <= emitted, ours - emitted
        assert {"CoveragePercent", "InScope", "Mirrored", "Created", "Failed", "Deferred", "SweepDurationMs"} <= ours
        assert set(report.EVIDENCE_METRICS) <= ours
        searches = [m[0]["expression"] for m in metrics if isinstance(m[0], dict)]
        for metric, dimension in (("UntrustedSessions", "Account"), ("MirrorLossPercent", "AvailabilityZone")):
            query = f'{{{report.METRIC_NAMESPACE},{dimension},FunctionName}} MetricName="{metric}" FunctionName="{fn}"'
            assert f"SEARCH('{query}', 'Maximum', 300)" in searches
        assert all(m[2:4] == ["FunctionName", fn] for m in metrics if m[0] == report.METRIC_NAMESPACE)
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq] in [m[:4] for m in metrics]
    assert not deploy({"dashboard": False}).of_type("aws:cloudwatch/dashboard:Dashboard")


# --- teardown ------------------------------------------------------------------------------------


def test_destroy_releases_the_sessions_before_the_function_goes(run: Run) -> None:
    for region in REGIONS:
        fn = only(run, "aws:lambda/function:Function", region)
        hook = only(run, "aws:lambda/invocation:Invocation", region, "release-on-destroy")
        assert hook.inputs["functionName"] == fn.outputs["name"]
        assert hook.inputs["lifecycleScope"] == "CRUD" and hook.inputs["terraformKey"] == "tf"
        assert "triggers" not in hook.inputs, "a changed trigger would replace the hook: a delete, a release"
        event = hook.json_input("input")
        assert "managed_by" not in json.dumps(event), "the input never changes with settings"
        settings = Settings()
        # What pulumi-aws sends on each lifecycle event, as the handler reads it.
        for action in ("create", "update"):
            assert isinstance(parse({**event, "tf": {"action": action, "prev_input": event}}, settings), Skip)
        released = parse({**event, "tf": {"action": "delete", "prev_input": event}}, settings)
        assert isinstance(released, Change) and (released.kind, released.region) == ("release-region", region)
    # Destroy order (dependents are deleted first): whatever could create a session goes before
    # the hook, the hook before the function and the role's policy.
    for region in REGIONS:
        hook = only(run, "aws:lambda/invocation:Invocation", region, "release-on-destroy")
        assert hook.depends_on(f"mirror-function-{region}")
        for invoker in (f"mirror-event-source-{region}", f"mirror-sweep-target-{region}"):
            assert run.named(invoker).depends_on(hook.name), invoker
        assert run.named(f"mirror-initial-sweep-{region}").depends_on(f"mirror-event-source-{region}")

    # Turning the option off keeps the hook (removing it would be its delete: a release) and only
    # changes its input, an update the handler ignores; its delete then releases nothing.
    kept = deploy({"release_on_destroy": False})
    on = {h.name: h.json_input("input") for h in run.of_type("aws:lambda/invocation:Invocation") if "release" in h.name}
    off = {h.name: h.json_input("input") for h in kept.of_type("aws:lambda/invocation:Invocation") if "release" in h.name}
    assert set(off) == set(on)
    for name, event in off.items():
        assert {k: v for k, v in event.items() if k != "detail"} == {k: v for k, v in on[name].items() if k != "detail"}
        for action in ("update", "delete"):
            assert isinstance(parse({**event, "tf": {"action": action, "prev_input": on[name]}}, Settings()), Skip)


def test_the_release_command_is_the_hooks_event_without_the_lifecycle_key() -> None:
    from traffic_mirror.components.teardown import release_command, release_event

    command = release_command("mirror-handler-us-east-1-abc", "us-east-1")
    payload = json.loads(command.split("--payload '")[1].split("'")[0])
    assert payload == release_event("us-east-1") and "tf" not in payload
    parsed = parse(payload, Settings())
    assert isinstance(parsed, Change) and parsed.kind == "release-region"


# --- managed_by guard ------------------------------------------------------------------------------


def _function_names(run: Run) -> list[str]:
    return [f.inputs["name"] for f in run.of_type("aws:lambda/function:Function")]


def test_changing_managed_by_on_a_running_deployment_is_refused(run: Run) -> None:
    running = {name: {"MIRROR_MANAGED_BY": "traffic-mirror-automation"} for name in _function_names(run)}
    same = deploy(existing_functions=running)
    assert {f.inputs["tags"]["ManagedBy"] for f in same.of_type("aws:lambda/function:Function")} == {
        "traffic-mirror-automation"
    }
    with pytest.raises(Exception, match="managed_by would change from 'traffic-mirror-automation' to 'team-b'"):
        deploy({"managed_by": "team-b"}, existing_functions=running)
    allowed = deploy({"managed_by": "team-b", "allow_managed_by_change": True}, existing_functions=running)
    assert {f.inputs["tags"]["ManagedBy"] for f in allowed.of_type("aws:lambda/function:Function")} == {"team-b"}
    # A first deployment (no function yet) takes any value.
    assert deploy({"managed_by": "team-b"}).of_type("aws:lambda/function:Function")
