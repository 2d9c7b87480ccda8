"""The session budget (docs/budget.md): MIRROR_MAX_SESSIONS, priorities, AWS's session quota.

The rules on their own first (pure: the budget pass over the planner's decisions), then end to end
against moto: events, sweeps, the quota as AWS answers it (`sandbox.session_quota`).
"""

import dataclasses
import datetime
import json
import logging
from collections import Counter
from typing import Any

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from traffic_mirror.handler import app, budget, coverage, inventory, planner
from traffic_mirror.handler.model import (
    Action,
    Decision,
    Health,
    Inventory,
    MirrorFilter,
    Session,
    Source,
    Target,
)
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

from tests.test_tags import tag_event
from testsupport import sandbox
from testsupport.calls import CallCounter
from testsupport.event_builders import run_instances_record, scheduled, state_change, wrap

OURS = {MANAGED_TAG_KEY: "traffic-mirror-automation"}
PRIORITY = "MirrorPriority"


# --- the rules, pure ---------------------------------------------------------------------------


def source(eni_tags: dict[str, str] | None = None, instance_tags: dict[str, str] | None = None) -> Source:
    return Source("eni-1", "i-1", "m5.large", "subnet-1", "vpc-1", "us-east-1a", instance_tags or {}, eni_tags or {})


def test_priority_is_the_enis_tag_over_its_instances_untagged_zero() -> None:
    assert planner.priority(source(), PRIORITY) == (0, None)
    assert planner.priority(source(instance_tags={PRIORITY: "7"}), PRIORITY) == (7, None)
    assert planner.priority(source({PRIORITY: " -2 "}, {PRIORITY: "7"}), PRIORITY) == (-2, None)
    assert planner.priority(source({PRIORITY: "+3"}), PRIORITY) == (3, None)


@pytest.mark.parametrize("value", ["high", "1.5", "", "1_000", "0x10"])
def test_a_priority_that_is_not_an_integer_is_a_problem_of_that_eni_at_priority_zero(value: str) -> None:
    rank, error = planner.priority(source({PRIORITY: value}, {PRIORITY: "9"}), PRIORITY)
    assert rank == 0
    assert error is not None and "ENI tag MirrorPriority" in error and "not an integer" in error


def mirrored(eni: str, prio: int = 0, at: float | None = None) -> Decision:
    return Decision(eni, "i-" + eni, "mirrored", "kept", target_id="t", filter_id="f", kept_session=f"s-{eni}",
                    priority=prio, attached_at=at)  # fmt: skip


def create(eni: str, prio: int = 0, at: float | None = None) -> Decision:
    action = Action("create", eni, target_id="t", filter_id="f", session_number=1, client_token="x")
    return Decision(eni, "i-" + eni, "create", "new", (action,), "t", "f", priority=prio, attached_at=at)


def ours(*enis: str) -> tuple[Session, ...]:
    return tuple(Session(f"s-{e}", e, "t", "f", 1, OURS) for e in enis)


def room(cap: int | None, held: tuple[str, ...] = (), complete: bool = True, **kw: Any) -> budget.Room:
    return budget.Room(cap, ours(*held), complete=complete, **kw)


def outcome(decisions: list[Decision]) -> dict[str, str]:
    return {d.eni_id: d.outcome if d.problem is None else f"{d.outcome}:{d.problem}" for d in decisions}


def test_everything_fits_nothing_changes() -> None:
    decisions = [mirrored("a"), create("b")]
    assert budget.limit(decisions, room(2, ("a",))) == decisions
    assert budget.limit(decisions, room(None, ("a",))) == decisions


def test_the_highest_priorities_fill_the_cap_ties_to_the_older_eni() -> None:
    decisions = [create("a", 1), create("b", 5), create("c", 3, at=20.0), create("d", 3, at=10.0), create("e", 0)]
    found = outcome(budget.limit(decisions, room(2)))
    assert found == {"a": "skipped:over-budget", "b": "create", "c": "skipped:over-budget", "d": "create",
                     "e": "skipped:over-budget"}  # fmt: skip


def test_ties_keep_what_is_mirrored_a_strictly_higher_newcomer_displaces_the_lowest() -> None:
    held = (mirrored("a", 2), mirrored("b", 1, at=1.0), mirrored("c", 1, at=2.0))
    equal = budget.limit([*held, create("n", 1)], room(3, ("a", "b", "c")))
    assert outcome(equal)["n"] == "skipped:over-budget" and outcome(equal)["c"] == "mirrored"
    higher = budget.limit([*held, create("n", 2)], room(3, ("a", "b", "c")))
    # The newest of the lowest priority goes, the newcomer comes: the count stays at the cap.
    assert outcome(higher) == {"a": "mirrored", "b": "mirrored", "c": "delete:over-budget", "n": "create"}
    (released,) = [d for d in higher if d.eni_id == "c"]
    assert released.actions == (Action("delete", "c", session_id="s-c"),) and budget.is_release(released)
    assert budget.sessions_after(higher, room(3, ("a", "b", "c"))) == 3


def test_a_complete_pass_releases_the_lowest_above_the_cap_an_events_pass_never_shrinks() -> None:
    held = [mirrored("a", 3), mirrored("b", 1), mirrored("c", 2)]
    sweep = budget.limit(held, room(2, ("a", "b", "c")))
    assert outcome(sweep) == {"a": "mirrored", "b": "delete:over-budget", "c": "mirrored"}
    event = budget.limit(held, room(2, ("a", "b", "c"), complete=False))
    assert outcome(event) == {"a": "mirrored", "b": "mirrored", "c": "mirrored"}
    # An event over the cap only swaps: one in for one out, the lowest out.
    swapped = budget.limit([*held, create("n", 5), create("m", 0)], room(2, ("a", "b", "c"), complete=False))
    assert outcome(swapped) == {"a": "mirrored", "b": "delete:over-budget", "c": "mirrored", "n": "create",
                                "m": "skipped:over-budget"}  # fmt: skip


def test_an_event_displaces_a_session_it_did_not_plan_only_once_its_priority_is_known() -> None:
    unknown = room(1, ("x",), complete=False)
    waiting = budget.limit([create("n", 4)], unknown)
    assert outcome(waiting) == {"n": "skipped:over-budget"}
    assert budget.unknown_holders(waiting, unknown) == ["x"]
    known = dataclasses.replace(unknown, priorities={"x": 1})
    found = budget.limit([create("n", 4)], known)
    assert outcome(found) == {"n": "create", "x": "delete:over-budget"}
    assert budget.limit([create("n", 1)], known)[0].problem == planner.OVER_BUDGET  # equal: waits


def test_fit_only_withholds_creates_and_pinned_sessions_count() -> None:
    planned = budget.limit([mirrored("a", 0), create("n", 5)], room(1, ("a",)))
    assert outcome(planned) == {"a": "delete:over-budget", "n": "create"}
    # The release was not confirmed (pinned): the create it made room for waits, nothing else changes.
    kept = [d for d in planned if d.eni_id != "a"]
    assert outcome(budget.fit(kept, room(1, ("a",)), frozenset({"a"}))) == {"n": "skipped:over-budget"}
    assert outcome(budget.fit(planned, room(1, ("a",)))) == outcome(planned)


def test_other_tools_sessions_count_against_awss_quota_not_the_cap() -> None:
    decisions = [create("a"), create("b"), create("c")]
    assert outcome(budget.limit(decisions, room(3, others=9_000))) == {"a": "create", "b": "create", "c": "create"}
    quota = outcome(budget.limit(decisions, room(None, others=9_998)))
    assert Counter(quota.values()) == {"create": 2, "skipped:quota": 1}
    # AWS refused at 5 sessions in all (learned): 5 - 3 of other tools = room for 2 of ours.
    learned = outcome(budget.limit(decisions, room(10, others=3, quota=5)))
    assert Counter(learned.values()) == {"create": 2, "skipped:quota": 1}


# --- with sensor health and evidence --------------------------------------------------------------


def test_an_intercepted_eni_still_holds_or_gets_a_session_of_ours_so_it_takes_a_place() -> None:
    """`intercepted` (another tool's untrusted session numbered below ours) does not stop our session
    from being made or kept: it costs a place under the cap like any other."""
    held = dataclasses.replace(mirrored("a", 1), problem=planner.INTERCEPTED)
    newcomer = dataclasses.replace(create("b", 0), problem=planner.INTERCEPTED)
    assert outcome(budget.limit([held, newcomer], room(1, ("a",)))) == {"a": "mirrored:intercepted",
                                                                       "b": "skipped:over-budget"}  # fmt: skip
    # Ranked like any holder: a higher newcomer displaces it; above the cap the sweep releases it.
    assert outcome(budget.limit([held, create("n", 5)], room(1, ("a",)))) == {"a": "delete:over-budget", "n": "create"}
    assert outcome(budget.limit([held, mirrored("c", 3)], room(1, ("a", "c")))) == {"a": "delete:over-budget",
                                                                                 "c": "mirrored"}  # fmt: skip


def test_a_failover_move_the_budget_releases_no_longer_counts_as_a_repair() -> None:
    """A move off an unusable sensor (`repairs`) that the budget turns into a release: its session is
    deleted, so it is no session stranded on an unusable target, only over the budget."""
    move = Action("modify", "m", session_id="s-m", target_id="t2")
    moving = Decision("m", "i-m", "modify", "failover", (move,), "t2", "f", repairs=planner.TARGET_UNHEALTHY)
    assert coverage.stranded(moving) and coverage.problem(moving) == planner.TARGET_UNHEALTHY
    (released, kept) = budget.limit([moving, mirrored("k", 2)], room(1, ("m", "k")))
    assert (released.outcome, released.problem, released.repairs) == ("delete", planner.OVER_BUDGET, None)
    assert not coverage.stranded(released) and coverage.problem(released) == planner.OVER_BUDGET
    assert kept.outcome == "mirrored"


def test_a_sensors_room_goes_to_the_highest_priority_first() -> None:
    """A target with room for one source and two newcomers: the higher priority gets it (the other is
    `target-full`), whatever their ids; untagged, the lower id (as before priorities)."""
    small = Target("tmt-small", "network-interface", "eni-sensor", "vpc-1", "subnet-1", "us-east-1a",
                   health=Health(capacity=1))  # fmt: skip
    stock = Inventory((small,), (MirrorFilter("tmf-1"),))

    def one(eni: str, prio: str | None) -> Source:
        tags = {PRIORITY: prio} if prio is not None else {}
        return Source(eni, "i-" + eni[4:], "m5.large", "subnet-1", "vpc-1", "us-east-1a", tags)

    ranked = planner.plan([one("eni-1", "1"), one("eni-2", "9")], {}, stock, Settings())
    assert [(d.eni_id, d.outcome, d.problem) for d in ranked] == [
        ("eni-1", "skipped", planner.TARGET_FULL),
        ("eni-2", "create", None),
    ]
    untagged = planner.plan([one("eni-1", None), one("eni-2", None)], {}, stock, Settings())
    assert [(d.eni_id, d.outcome) for d in untagged] == [("eni-1", "create"), ("eni-2", "skipped")]


# --- end to end, moto ---------------------------------------------------------------------------

CAP3 = Settings(max_sessions=3)


def launch(ec2: Any, account: sandbox.Account, *priorities: int | None, az: str = "us-east-1a") -> list[dict[str, Any]]:
    """One instance per priority (None: untagged), in one subnet."""
    found = []
    for prio in priorities:
        tags = {"Name": f"p{prio}"} if prio is None else {"Name": f"p{prio}", PRIORITY: str(prio)}
        found += sandbox.launch(ec2, account, account.subnets[az], tags=tags)
    return found


def eni(instance: dict[str, Any]) -> str:
    return str(instance["NetworkInterfaces"][0]["NetworkInterfaceId"])


def mirrored_enis(ec2: Any) -> dict[str, str]:
    """ENI -> session id, every session in the account."""
    pages = ec2.get_paginator("describe_traffic_mirror_sessions").paginate()
    return {s["NetworkInterfaceId"]: s["TrafficMirrorSessionId"] for p in pages for s in p["TrafficMirrorSessions"]}


def event(instances: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return wrap(run_instances_record(instances, event_id=name))


def test_the_highest_priorities_fill_the_cap_from_one_batch(aws: Any, account: sandbox.Account) -> None:
    (other,) = launch(aws, account, 9)
    other_tool = aws.create_traffic_mirror_session(  # another tool's session: not counted against our cap
        NetworkInterfaceId=eni(other),
        TrafficMirrorTargetId=account.targets["sensor-us-east-1a-0"],
        TrafficMirrorFilterId=account.filters["default"],
        SessionNumber=5,
    )["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    instances = launch(aws, account, 1, 5, 3, None, 4)
    result = app.handle(event(instances, "batch"), settings=CAP3)
    found = mirrored_enis(aws)
    assert found.pop(eni(other)) == other_tool
    assert set(found) == {eni(instances[i]) for i in (1, 2, 4)}  # priorities 5, 3, 4
    assert result["counts"]["Created"] == 3 and result["counts"]["OverBudget"] == 2
    assert result["problems"] == {planner.OVER_BUDGET: 2}


def test_a_higher_priority_newcomer_displaces_the_lowest(aws: Any, account: sandbox.Account) -> None:
    first = launch(aws, account, 2, 1, 3)
    app.handle(event(first, "first"), settings=CAP3)
    before = mirrored_enis(aws)
    (newcomer,) = launch(aws, account, 4)
    result = app.handle(event([newcomer], "second"), settings=CAP3)
    after = mirrored_enis(aws)
    # Priority 1 (not in this event: its priority read from its tags) made room for priority 4.
    assert set(after) == {eni(first[0]), eni(first[2]), eni(newcomer)}
    assert all(after[e] == before[e] for e in (eni(first[0]), eni(first[2])))  # the others untouched
    assert result["counts"]["Created"] == 1 and result["counts"]["Deleted"] == 1


def test_an_equal_or_lower_newcomer_waits_and_is_mirrored_when_an_eni_is_released(
    aws: Any, account: sandbox.Account
) -> None:
    settings = Settings(max_sessions=2, release_on_stop=True)
    held = launch(aws, account, 1, 1)
    app.handle(event(held, "held"), settings=settings)
    equal, lower = launch(aws, account, 1, 0)
    result = app.handle(event([equal, lower], "late"), settings=settings)
    assert set(mirrored_enis(aws)) == {eni(i) for i in held}
    assert result["counts"]["Created"] == 0 and result["problems"] == {planner.OVER_BUDGET: 2}
    assert app.handle(scheduled(), settings=settings)["counts"]["OverBudget"] == 2  # still waiting
    aws.stop_instances(InstanceIds=[held[0]["InstanceId"]])
    app.handle(state_change(held[0]["InstanceId"], "stopped"), settings=settings)
    assert set(mirrored_enis(aws)) == {eni(held[1])}
    app.handle(scheduled(), settings=settings)  # room: the higher of the two waiting comes first
    assert set(mirrored_enis(aws)) == {eni(held[1]), eni(equal)}


def test_the_enis_priority_tag_overrides_its_instances(aws: Any, account: sandbox.Account) -> None:
    low_eni, high = launch(aws, account, 9, 5)
    aws.create_tags(Resources=[eni(low_eni)], Tags=[{"Key": PRIORITY, "Value": "0"}])
    settings = Settings(max_sessions=1)
    app.handle(event([low_eni, high], "tags"), settings=settings)
    assert set(mirrored_enis(aws)) == {eni(high)}
    app.handle(scheduled(), settings=settings)  # the sweep reads the ENI's tag too: no change
    assert set(mirrored_enis(aws)) == {eni(high)}
    # Raising the ENI's own priority is an event under a cap: it displaces at once.
    aws.create_tags(Resources=[eni(low_eni)], Tags=[{"Key": PRIORITY, "Value": "6"}])
    app.handle(tag_event("CreateTags", [eni(low_eni)], {PRIORITY: "6"}, "raise"), settings=settings)
    assert set(mirrored_enis(aws)) == {eni(low_eni)}


def backdate(instance: dict[str, Any]) -> None:
    """Its ENI attached long before the others (moto stamps every attachment with the time of the call)."""
    backend = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.get_network_interface(eni(instance)).attach_time = datetime.datetime(2020, 1, 1)


def test_sweeps_with_nothing_changed_leave_every_session_id_as_it_was(aws: Any, account: sandbox.Account) -> None:
    (older,) = launch(aws, account, 0)
    backdate(older)  # the oldest ENI, of the same priority, but not mirrored: it must not take a place
    held = launch(aws, account, 0, 0, 0)
    app.handle(event(held, "held"), settings=CAP3)
    first = mirrored_enis(aws)
    assert set(first) == {eni(i) for i in held}
    for _ in range(2):
        assert app.handle(scheduled(), settings=CAP3)["counts"]["OverBudget"] == 1
        assert mirrored_enis(aws) == first
    # A strictly higher priority does move one (and only one); then nothing moves again.
    (high,) = launch(aws, account, 2, az="us-east-1b")
    app.handle(scheduled(), settings=CAP3)
    settled = mirrored_enis(aws)
    assert len(settled) == 3 and eni(high) in settled and len(set(first.items()) & set(settled.items())) == 2
    for _ in range(2):
        app.handle(scheduled(), settings=CAP3)
        assert mirrored_enis(aws) == settled


def test_a_sweep_releases_the_lowest_above_the_cap_only_when_a_second_count_confirms_it(
    aws: Any, account: sandbox.Account, counter: CallCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = launch(aws, account, 3, 1, 2, 0)
    app.handle(event(instances, "uncapped"))  # four sessions, no cap yet
    # Under a cap of 3 the sweep would release priority 0, but between its listing and the
    # confirmation someone else deletes that session: the second count finds room, nothing is deleted.
    real, listings = inventory.all_sessions, []

    def listing(ctx: Any) -> Any:
        found = real(ctx)
        listings.append(len(found))
        if len(listings) == 1:
            aws.delete_traffic_mirror_session(TrafficMirrorSessionId=mirrored_enis(aws)[eni(instances[3])])
        return found

    monkeypatch.setattr(inventory, "all_sessions", listing)
    counter.calls.clear()
    app.handle(scheduled(), settings=Settings(max_sessions=3))
    assert listings == [4, 3]  # the sweep's, then the confirmation's own count
    assert "DeleteTrafficMirrorSession" not in counter.calls
    assert set(mirrored_enis(aws)) == {eni(instances[i]) for i in (0, 1, 2)}
    monkeypatch.undo()
    result = app.handle(scheduled(), settings=Settings(max_sessions=2))  # confirmed: the lowest goes
    assert set(mirrored_enis(aws)) == {eni(instances[0]), eni(instances[2])}
    assert result["counts"]["Deleted"] == 1 and result["counts"]["OverBudget"] == 2


def test_no_cap_costs_no_call_a_cap_one_listing_per_event(
    aws: Any, account: sandbox.Account, counter: CallCounter
) -> None:
    app.handle(scheduled())  # warm
    for settings, expected in ((Settings(), 2), (CAP3, 3)):
        instances = launch(aws, account, None)
        counter.calls.clear()
        app.handle(event(instances, f"warm-{expected}"), settings=settings)
        assert counter.reads() == expected, counter.calls  # tags + sessions (+ the place's listing)


def test_a_priority_that_is_not_an_integer_is_reported_and_mirrored_at_zero(
    aws: Any, account: sandbox.Account, logged: list[logging.LogRecord]
) -> None:
    (instance,) = sandbox.launch(aws, account, account.subnets["us-east-1a"], tags={PRIORITY: "urgent"})
    app.handle(event([instance], "bad"), settings=CAP3)
    assert set(mirrored_enis(aws)) == {eni(instance)}
    (line,) = [r for r in logged if r.getMessage() == "decision"]
    assert line.levelno == logging.ERROR and "not an integer" in getattr(line, "priority_error", "")
    assert any(r.getMessage() == "configuration problem" and "priority" in getattr(r, "reason", "") for r in logged)


# --- AWS's quota, simulated --------------------------------------------------------------------


def test_awss_session_quota_waits_by_priority_reported_not_retried(
    aws: Any, account: sandbox.Account, counter: CallCounter, logged: list[logging.LogRecord]
) -> None:
    with sandbox.session_quota(3):
        instances = sandbox.launch(aws, account, account.subnets["us-east-1a"], tags={PRIORITY: "0"}, count=12)
        queued = {"Records": [{"messageId": "m1", "body": json.dumps(event(instances, "burst"))}]}
        result = app.handle(queued)  # no cap of ours: AWS's quota binds
        assert result == {"batchItemFailures": []}  # the message succeeds: not retried, not dead-lettered
        assert len(mirrored_enis(aws)) == 3
        # One refusal, then no more calls that would be refused (at most max_workers were in flight).
        refused = counter.calls["CreateTrafficMirrorSession"] - 3
        assert 1 <= refused <= Settings().max_workers < 12 - 3
        (summary,) = [r for r in logged if r.getMessage() == "summary"]
        assert vars(summary)["counts"]["AtQuota"] == 9 and vars(summary)["problems"] == {planner.QUOTA: 9}
        assert any(r.getMessage() == "session quota reached" and r.levelno == logging.ERROR for r in logged)
        # Handled by priority like the cap: the learned quota lets a higher priority displace the lowest.
        held = mirrored_enis(aws)
        (urgent,) = launch(aws, account, 5)
        counter.calls.clear()
        app.handle(event([urgent], "urgent"))
        after = mirrored_enis(aws)
        assert eni(urgent) in after and len(after) == 3 and len(set(held) & set(after)) == 2
        assert counter.calls["CreateTrafficMirrorSession"] == 1  # made room first: never refused
        # An equal priority waits without a call.
        (late,) = launch(aws, account, 0)
        counter.calls.clear()
        assert app.handle(event([late], "late"))["problems"] == {planner.QUOTA: 1}
        assert "CreateTrafficMirrorSession" not in counter.calls


# --- organizations --------------------------------------------------------------------------------


@pytest.mark.moto
def test_an_organization_member_has_its_own_cap() -> None:
    """The cap counts each account's own sessions in a region: not the hub's, nor the sessions of the
    members that the hub's listing shows on its shared sensors."""
    from tests.test_organization import HUB, MEMBER_A, SCHEDULED, World, handle

    with mock_aws(), sandbox.aws_rules():
        app.CONTAINER.reset()
        world = World((MEMBER_A,))
        settings = Settings(accounts=MEMBER_A, max_sessions=2, sweep_grace_seconds=0)
        ec2, built, _ = world.members[MEMBER_A]
        subnet = built.subnets["us-east-1a"]
        member = [sandbox.launch(ec2, built, subnet, tags={PRIORITY: str(p)})[0] for p in (1, 3, 2)]
        hub = sandbox.launch(world.hub, world.hub_account, world.hub_account.subnets["us-east-1a"], count=2)
        assert handle(world.event(HUB, hub, "hub"), settings)["counts"]["Created"] == 2
        result = handle(world.event(MEMBER_A, member, "member"), settings)
        assert result["problems"] == {planner.OVER_BUDGET: 1}
        assert set(mirrored_enis(ec2)) == {eni(member[1]), eni(member[2])}
        hub_sessions = {s["TrafficMirrorSessionId"] for s in world.hub_sessions()}
        assert len(hub_sessions) == 2
        # A higher priority in the member displaces the member's lowest, never a hub session.
        (urgent,) = sandbox.launch(ec2, built, subnet, tags={PRIORITY: "5"})
        handle(world.event(MEMBER_A, [urgent], "urgent"), settings)
        settled = mirrored_enis(ec2)
        assert set(settled) == {eni(urgent), eni(member[1])}
        assert {s["TrafficMirrorSessionId"] for s in world.hub_sessions()} == hub_sessions
        # The fleet's sweep keeps each account at its own cap: nothing moves.
        handle(SCHEDULED, settings)
        assert mirrored_enis(ec2) == settled
        assert {s["TrafficMirrorSessionId"] for s in world.hub_sessions()} == hub_sessions
    app.CONTAINER.reset()
