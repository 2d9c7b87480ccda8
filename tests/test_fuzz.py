"""Fuzzing the handler's input (hypothesis): real records mutated, random shapes, poisoned SQS batches.

The property: nothing escapes `traffic_mirror.handler.app.handle` (for a direct event, only the
designed `RetryableFailure`; for an SQS batch, nothing at all: Lambda would retry the whole
batch), and in an SQS batch the good messages are never failed because of a poison neighbour.

Inputs: the real CloudTrail/EventBridge records of tests/events, mutated (fields deleted,
retyped, nested 1,000+ levels deep, lone surrogates, huge strings, wrong envelope `source`,
`detail-type`, `account`, `region`), and random JSON shapes; as direct events and as SQS batches
whose poison bodies include JSON nested 1,000+ levels deep and bodies that are not JSON.

Profiles (`HYPOTHESIS_PROFILE`): `ci` (the default: few examples, derandomized so CI is
reproducible) and `campaign` (thousands of examples, random: run it by hand).
Well-formed region names that AWS does not have (`xx-nowhere-1`) are left to the focused
reproducer in test_safety.py (an unknown region fails alone): here a wrong region is one AWS knows.
"""

import copy
import json
import os
import random
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from traffic_mirror.handler import app, events
from traffic_mirror.handler.settings import Settings

from testsupport import sandbox
from testsupport.event_builders import EVENTS_DIR, load_record, run_instances_record, wrap

settings.register_profile(
    "ci", max_examples=60, derandomize=True, deadline=None, database=None, print_blob=True
)
settings.register_profile("campaign", max_examples=5000, deadline=None, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 1 if PROFILE == "ci" else 10
"""The moto-backed properties run fewer examples than the pure parsing one."""

RECORDS = [(p.name, json.loads(p.read_text())) for p in sorted(EVENTS_DIR.glob("*.json"))]
LAUNCH_TEMPLATES = (
    "RunInstances__elastic-integrations__1.json",
    "RunInstances__zalando-stups-fullstop__1.json",
)
ID_KEYS = frozenset({"id", "eventID", "requestID", "instanceId", "networkInterfaceId", "awsRegion", "region"})
DEEP = 1500
"""Levels of nesting for the "nested deeply" mutation (Python's default recursion limit is 1,000)."""

# --- strategies --------------------------------------------------------------------------------

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\udc80",
        "i-\udc80bcdef0123456",
        "i-0123456789abcdef0\udc80",
        "eni-" + "a" * 10_000,
        "x" * 200_000,
        "\x00",
        "null",
        "i-1234567890abcdef0\n",
        "RunInstances",
        "aws.events",
    ]
) | st.text(max_size=30)
ENVELOPE: dict[str, st.SearchStrategy[Any]] = {
    "source": st.sampled_from(["aws.ec2", "aws.events", "attacker.app", "", None, 1, ["aws.ec2"]]),
    "detail-type": st.sampled_from(
        [
            events.CLOUDTRAIL,
            events.STATE_CHANGE,
            events.SCHEDULED,
            "AWS Console Sign In via CloudTrail",
            "",
            None,
            {},
        ]
    ),
    "account": st.sampled_from(["123456789012", "999999999999", "", None, 123456789012]),
    # Regions AWS has (moto serves them), and names that are no region at all.
    "region": st.sampled_from(
        [
            "us-east-1",
            "eu-west-1",
            "ap-southeast-2",
            "",
            "US-EAST-1",
            "us-east-1 ",
            None,
            7,
            "../x",
            "r" * 5000,
        ]
    ),
}


def nested(levels: int, leaf: Any) -> Any:
    """`leaf` inside `levels` alternating dicts and lists, built without recursion."""
    value = leaf
    for level in range(levels):
        value = {"items": value} if level % 2 else [value]
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if len(prefix) > 12:  # inside a deep nest already: enough places to mutate
        return
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated_events(draw: st.DrawFn, records: Sequence[tuple[str, Any]] = RECORDS) -> Any:
    """A real record (bare or as EventBridge delivers it), then a few mutations, then the envelope."""
    _, record = draw(st.sampled_from(records))
    event: Any = copy.deepcopy(record)
    if "detail" not in event and draw(st.booleans()):
        event = wrap(event)
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(list(_paths(event))))
        op = draw(st.sampled_from(["delete", "retype", "deep", "string", "surrogate", "id"]))
        ids = [p for p in _paths(event) if p and p[-1] in ID_KEYS]
        if op == "id" and ids:  # ids reach the API calls and the ClientTokens: hit them often
            path = draw(st.sampled_from(ids))
            op = draw(st.sampled_from(["surrogate", "string", "deep", "retype"]))
        current = _get(event, path)
        if op == "delete" and path:
            del _get(event, path[:-1])[path[-1]]
            continue
        if op == "surrogate" and isinstance(current, str):
            cut = draw(st.integers(0, len(current)))
            replacement: Any = current[:cut] + "\udcff" + current[cut:]
        elif op == "deep":
            replacement = nested(draw(st.integers(DEEP, DEEP + 500)), current)
        elif op == "string":
            replacement = draw(ODD_STRINGS)
        else:
            replacement = draw(JSON_VALUES)
        if path:
            _get(event, path[:-1])[path[-1]] = replacement
        else:
            event = replacement
    if isinstance(event, dict):
        for key, values in ENVELOPE.items():
            if draw(st.integers(0, 4)) == 0:
                event[key] = draw(values)
    return event


ANY_EVENT = mutated_events() | JSON_VALUES


def _dumps(event: Any) -> str:
    try:
        return json.dumps(event)
    except (RecursionError, ValueError):  # too deep for json itself: the deep text stands for it
        return "[" * DEEP + "]" * DEEP


POISON_BODIES = st.one_of(
    ANY_EVENT.map(_dumps),
    st.integers(DEEP, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(DEEP, 5000).map(lambda n: '{"detail":' * n + "{}" + "}" * n),
    st.text(max_size=50),
    st.sampled_from(["{", "null", "\udc80", "{" + '"id": "\\udc80",' + '"detail": {}}', "x" * 300_000]),
)


def sqs_record(message_id: str, body: Any) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:mirror-events-us-east-1",
        "awsRegion": "us-east-1",
    }


# --- properties --------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(max_examples=300 * SCALE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ANY_EVENT)
def test_parsing_any_event_never_raises(event: Any) -> None:
    """The pure layer alone (no AWS): every shape becomes a Change or a Skip."""
    result = events.parse(event, Settings())
    assert isinstance(result, events.Change | events.Skip)


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(POISON_BODIES | ANY_EVENT, min_size=1, max_size=6))
def test_unwrapping_any_sqs_batch_never_raises(bodies: list[Any]) -> None:
    batch = {"Records": [sqs_record(f"m-{i}", body) for i, body in enumerate(bodies)]}
    pairs = app._unwrap(batch)
    assert [mid for mid, _ in pairs] == [f"m-{i}" for i in range(len(bodies))]
    for _, body in pairs:
        assert isinstance(events.parse(body, Settings()), events.Change | events.Skip)


def test_any_direct_event_never_escapes_the_handler(aws: Any, account: sandbox.Account) -> None:
    """Under moto with AWS's rules: a world with sensors, a filter and instances; the real records
    mutated, and the same shapes carrying this world's ids (so mutations reach the writes)."""
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    ours = [("moto", run_instances_record(instances, template=name)) for name in LAUNCH_TEMPLATES]

    known = wrap({**ours[0][1], "eventID": "launch-\udc80"})  # a lone surrogate in an event id

    @settings(
        max_examples=40 * SCALE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    @given(ANY_EVENT | mutated_events(ours))
    @example(known)
    def check(event: Any) -> None:
        try:
            result = app.handle(event)
        except app.RetryableFailure:
            return  # the designed signal for Lambda's retry of a direct event
        assert isinstance(result, dict)

    check()


def test_poison_messages_never_fail_their_neighbours(aws: Any, account: sandbox.Account) -> None:
    instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    instances += sandbox.launch(aws, account, account.subnets["us-east-1b"], count=2)
    good = [
        json.dumps(wrap(run_instances_record([inst], event_id=f"launch-{n}")))
        for n, inst in enumerate(instances)
    ]
    good.append(
        json.dumps(wrap(load_record("TerminateInstances__elastic-integrations__1.json")))
    )
    enis = {e["NetworkInterfaceId"] for i in instances for e in i["NetworkInterfaces"]}

    @settings(
        max_examples=25 * SCALE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    @given(st.lists(POISON_BODIES, min_size=1, max_size=4), st.randoms(use_true_random=False))
    @example(["[" * DEEP + "]" * DEEP], random.Random(0))  # a body nested too deep
    def check(poison: list[Any], rng: Any) -> None:
        bodies = [("good", body) for body in good] + [("poison", body) for body in poison]
        rng.shuffle(bodies)
        records = [sqs_record(f"{kind}-{i}", body) for i, (kind, body) in enumerate(bodies)]
        result = app.handle({"Records": records})
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        assert not {mid for mid in failed if mid.startswith("good-")}, result
        mirrored = {
            s["NetworkInterfaceId"] for s in aws.describe_traffic_mirror_sessions()["TrafficMirrorSessions"]
        }
        assert enis <= mirrored

    check()


CLOUDWATCH_ERRORS = ("AccessDeniedException", "InvalidParameterValue", "LimitExceeded", "ResourceNotFound")
"""What CloudWatch may answer the loss read instead of data, without a retry (throttling, retried
first, is in the fault suite: tests/test_faults.py)."""
BYTE_COUNTS = st.lists(
    st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**18), 10**18), max_size=4
)


def test_any_cloudwatch_answer_leaves_the_sweep_and_its_coverage_intact(
    aws: Any, account: sandbox.Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled sweep reads the mirrored instances' loss from CloudWatch: whatever comes back (an
    error, values that are no byte counts, answers for queries it never asked), the sweep's coverage
    is published as usual and the loss is a percentage or unknown, never an exception."""
    from moto.cloudwatch.exceptions import CloudWatchException
    from moto.cloudwatch.models import CloudWatchBackend

    from testsupport.event_builders import scheduled
    from testsupport.logs import captured

    sandbox.launch(aws, account, account.subnets["us-east-1a"], count=2)
    app.handle(scheduled("mirror-first"))  # the sessions exist: the next sweeps read their loss

    @settings(max_examples=10 * SCALE, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(CLOUDWATCH_ERRORS) | st.lists(BYTE_COUNTS, max_size=10), st.booleans())
    def check(answer: Any, strange_ids: bool) -> None:
        def get_metric_data(self: Any, queries: list[dict[str, Any]], *_: Any, **__: Any) -> list[dict[str, Any]]:
            if isinstance(answer, str):
                raise CloudWatchException(answer, "injected")
            ids = [f"x{n}" for n in range(len(answer))] if strange_ids else [q["Id"] for q in queries]
            return [{"id": i, "label": i, "values": v, "timestamps": [], "status_code": "Complete"}
                    for i, v in zip(ids, answer, strict=False)]  # fmt: skip

        monkeypatch.setattr(CloudWatchBackend, "get_metric_data", get_metric_data)
        app.CONTAINER.loss_read.clear()  # every example is a new sweep period
        with captured() as records:
            result = app.handle(scheduled())
        assert isinstance(result, dict)
        (coverage,) = [vars(r) for r in records if r.getMessage() == "coverage"]
        assert (coverage["in_scope"], coverage["mirrored"]) == (2, 2)
        (loss,) = [vars(r) for r in records if r.getMessage() == "mirror loss"]
        assert loss["loss_percent"] is None or 0 <= loss["loss_percent"] <= 100
        assert bool(loss.get("error")) == isinstance(answer, str)

    check()
