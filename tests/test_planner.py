"""The pure core: support table, target and filter choice, session numbers, ownership."""

import dataclasses
import itertools
import random
from collections import Counter
from typing import Any

import pytest
from traffic_mirror.handler import planner, support
from traffic_mirror.handler.clients import Place
from traffic_mirror.handler.context import Container
from traffic_mirror.handler.model import Inventory, Learned, MirrorFilter, Session, Source, Target
from traffic_mirror.handler.settings import MANAGED_TAG_KEY, Settings

SETTINGS = Settings()
MANAGED = {MANAGED_TAG_KEY: SETTINGS.managed_by}


def source(eni: str = "eni-0000000000000001", **kw: Any) -> Source:
    values: dict[str, Any] = {
        "eni_id": eni,
        "instance_id": "i-0000000000000001",
        "instance_type": "m5.large",
        "subnet_id": "subnet-a1",
        "vpc_id": "vpc-1",
        "az": "us-east-1a",
    }
    values.update(kw)
    return Source(**values)


def eni_target(
    tid: str, subnet: str = "subnet-a1", vpc: str = "vpc-1", az: str = "us-east-1a", **tags: str
) -> Target:
    return Target(tid, "network-interface", f"eni-{tid}", vpc, subnet, az, tags)


def nlb(tid: str, vpc: str = "vpc-1", **tags: str) -> Target:
    return Target(tid, "network-load-balancer", f"arn:nlb/{tid}", vpc, None, None, tags)


def gwlbe(tid: str, subnet: str, az: str, vpc: str = "vpc-1", **tags: str) -> Target:
    return Target(tid, "gateway-load-balancer-endpoint", f"vpce-{tid}", vpc, subnet, az, tags)


def inventory(targets: list[Target], filters: list[MirrorFilter] | None = None) -> Inventory:
    return Inventory(tuple(targets), tuple(filters if filters is not None else [MirrorFilter("tmf-1")]))


def session(sid: str, eni: str, target: str, number: int, managed: bool, filter_id: str = "tmf-1") -> Session:
    return Session(sid, eni, target, filter_id, number, MANAGED if managed else {"Owner": "ids-team"})


# --- support table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("itype", "fragment"),
    [
        ("m6i.large", "the m6i family"),
        ("c7g.xlarge", "the c7g family"),
        ("r7iz.2xlarge", "the r7iz family"),
        ("m7i-flex.large", "the m7i-flex family"),
        ("p5.48xlarge", "the p5 family"),
        ("m5.metal", "bare metal"),
        ("c5n.metal", "bare metal"),
        ("i3.metal", "bare metal"),
        ("t2.micro", "previous-generation"),
        ("t1.micro", "previous-generation"),
        ("m3.medium", "previous-generation"),
        ("c3.large", "previous-generation"),
        ("", "not recognised"),
        ("nonsense", "not recognised"),
    ],
)
def test_unsupported_types(itype: str, fragment: str) -> None:
    reason = support.unsupported_reason(itype)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize(
    "itype",
    [
        *(
            "c4.large",
            "m4.xlarge",
            "p3.2xlarge",
            "i3.large",
            "r4.large",
            "x1.16xlarge",
            "d2.xlarge",
            "p2.xlarge",
        ),
        *("m5.large", "c5.24xlarge", "t3.micro", "t3a.nano", "M5.Large"),  # current generation
        *("zz9.large", "m8i-flex.large"),  # in no list: tried, the API decides
    ],
)
def test_supported_and_unknown_types_are_tried(itype: str) -> None:
    assert support.unsupported_reason(itype) is None


def test_an_api_refusal_is_remembered_by_the_container_and_passed_to_the_planner() -> None:
    container = Container()
    place = Place("us-east-1")
    assert support.unsupported_reason("zz9.large", container.learned(place).refused_types) is None
    container.refuse_type("zz9.large")
    refused = container.learned(place).refused_types
    assert "refused earlier" in (support.unsupported_reason("zz9.large", refused) or "")
    assert support.unsupported_reason("zz9.xlarge", refused) is None
    decision = planner.plan_source(source(instance_type="zz9.large"), [], inventory([]), SETTINGS, learned=container.learned(place))
    assert decision.out_of_scope == planner.UNSUPPORTED
    container.reset()
    assert container.learned(place).refused_types == frozenset()


def test_unsupported_source_gets_no_session_but_loses_ours() -> None:
    inv = inventory([eni_target("tmt-a")])
    decision = planner.plan_source(source(instance_type="t2.micro"), [], inv, SETTINGS)
    assert (decision.outcome, decision.actions) == ("skipped", ())
    ours = session("tms-1", "eni-0000000000000001", "tmt-a", 1, True)
    theirs = session("tms-2", "eni-0000000000000001", "tmt-a", 2, False)
    decision = planner.plan_source(source(instance_type="t2.micro"), [ours, theirs], inv, SETTINGS)
    assert [(a.kind, a.session_id) for a in decision.actions] == [("delete", "tms-1")]


@pytest.mark.parametrize("kind", ["nat_gateway", "vpc_endpoint", "lambda", "network_load_balancer"])
def test_managed_interface_types_are_not_sources(kind: str) -> None:
    decision = planner.plan_source(
        source(interface_type=kind), [], inventory([eni_target("tmt-a")]), SETTINGS
    )
    assert decision.outcome == "skipped" and "cannot be mirrored" in decision.reason


# --- target selection --------------------------------------------------------------------


def test_eni_targets_only_serve_their_az() -> None:
    other_az = eni_target("tmt-b", subnet="subnet-b1", az="us-east-1b")
    chosen, reason = planner.choose_target(source(), None, [other_az], "Mirror")
    assert chosen is None
    assert "us-east-1a" in reason and "vpc-1" in reason


def test_preference_same_subnet_then_vpc_then_a_designated_sensor_in_another_vpc() -> None:
    same_subnet = eni_target("tmt-1")
    same_vpc = eni_target("tmt-2", subnet="subnet-a2")
    other_vpc = eni_target("tmt-3", subnet="subnet-x", vpc="vpc-2", Mirror="true")
    for order in itertools.permutations([same_subnet, same_vpc, other_vpc]):
        ranked = planner.eligible_targets(source(), None, list(order), "Mirror")
        assert [t.target_id for t in ranked] == ["tmt-1", "tmt-2", "tmt-3"]
    assert planner.choose_target(source(), None, [other_vpc], "Mirror")[0] == other_vpc


# --- trust model: which targets may receive an ENI's packets -------------------------------


def test_an_untagged_target_in_another_vpc_receives_nothing() -> None:
    """Whoever can create a target in some VPC must not get copies of its neighbours' traffic."""
    stranger = eni_target("tmt-x", subnet="subnet-x", vpc="vpc-2")
    decision = planner.plan_source(source(), [], inventory([stranger]), SETTINGS)
    assert decision.outcome == "skipped" and decision.problem == planner.NO_TARGET
    assert "Mirror=true" in decision.reason  # says how to designate one
    disabled = eni_target("tmt-off", subnet="subnet-x", vpc="vpc-2", Mirror="off")
    assert planner.plan_source(source(), [], inventory([disabled]), SETTINGS).problem == planner.NO_TARGET


@pytest.mark.parametrize("value", ["true", "TRUE", "default", "", "yes"])
def test_a_designated_sensor_serves_other_vpcs_of_its_az_and_says_cross_vpc(value: str) -> None:
    sensor = eni_target("tmt-d", subnet="subnet-x", vpc="vpc-2", Mirror=value)
    decision = planner.plan_source(source(), [], inventory([sensor]), SETTINGS)
    assert decision.outcome == "create" and decision.target_id == "tmt-d"
    assert decision.tier == planner.DESIGNATED and "cross-VPC" in decision.reason
    other_az = source(az="us-east-1b", subnet_id="subnet-b1")
    assert planner.plan_source(other_az, [], inventory([sensor]), SETTINGS).problem == planner.NO_TARGET


def test_tiers_of_own_vpc_targets() -> None:
    cases = [
        (eni_target("tmt-1"), planner.SAME_SUBNET),
        (eni_target("tmt-2", subnet="subnet-a2"), planner.SAME_VPC_AZ),
        (nlb("tmt-n"), planner.SAME_VPC_AZ),
        (gwlbe("tmt-g", "subnet-b9", "us-east-1b"), planner.SAME_VPC),
    ]
    for target, tier in cases:
        decision = planner.plan_source(source(), [], inventory([target]), SETTINGS)
        assert (decision.target_id, decision.tier) == (target.target_id, tier)
        assert "cross-VPC" not in decision.reason


def test_routed_sensors_keep_serving_other_vpcs_of_their_az() -> None:
    pci = eni_target("tmt-pci", subnet="subnet-x", vpc="vpc-2", Mirror="pci")
    routed = source(instance_tags={"Mirror": "pci"})
    decision = planner.plan_source(routed, [], inventory([pci]), SETTINGS)
    assert decision.target_id == "tmt-pci" and decision.tier == planner.DESIGNATED


def test_a_session_on_an_untrusted_cross_vpc_target_moves_home() -> None:
    stranger = eni_target("tmt-x", subnet="subnet-x", vpc="vpc-2")
    own = eni_target("tmt-own", subnet="subnet-a2")
    ours = session("tms-1", "eni-0000000000000001", "tmt-x", 1, managed=True)
    decision = planner.plan_source(source(), [ours], inventory([stranger, own]), SETTINGS)
    assert decision.outcome == "modify" and decision.target_id == "tmt-own"
    assert decision.tier == planner.SAME_VPC_AZ


def test_nlb_serves_its_vpc_in_any_az() -> None:
    target = nlb("tmt-n")
    for az, subnet in (("us-east-1a", "subnet-a1"), ("us-east-1c", "subnet-c1")):
        assert planner.choose_target(source(az=az, subnet_id=subnet), None, [target], "Mirror")[0] == target
    assert planner.choose_target(source(vpc_id="vpc-2"), None, [target], "Mirror")[0] is None
    # A sensor in the same subnet is nearer than the NLB.
    near = eni_target("tmt-near")
    assert planner.eligible_targets(source(), None, [target, near], "Mirror")[0] == near


def test_gwlb_endpoint_serves_its_vpc_preferring_its_az() -> None:
    in_a = gwlbe("tmt-ga", "subnet-a9", "us-east-1a")
    in_b = gwlbe("tmt-gb", "subnet-b9", "us-east-1b")
    assert planner.eligible_targets(source(), None, [in_b, in_a], "Mirror") == [in_a, in_b]
    src_b = source(az="us-east-1b", subnet_id="subnet-b1")
    assert planner.eligible_targets(src_b, None, [in_a, in_b], "Mirror") == [in_b, in_a]
    # Only one endpoint, in another AZ: it still serves.
    assert planner.choose_target(source(), None, [in_b], "Mirror")[0] == in_b
    assert planner.choose_target(source(vpc_id="vpc-9"), None, [in_a], "Mirror")[0] is None


def test_even_and_stable_spread_over_equal_targets() -> None:
    targets = [eni_target(f"tmt-{n}", subnet="subnet-a2") for n in range(3)]
    sources = [source(f"eni-{n:017x}") for n in range(600)]
    first = {s.eni_id: planner.choose_target(s, None, targets, "Mirror")[0] for s in sources}
    share = Counter(t.target_id for t in first.values() if t)
    assert set(share) == {"tmt-0", "tmt-1", "tmt-2"}
    assert all(150 <= n <= 250 for n in share.values()), share
    rng = random.Random(7)
    for _ in range(5):
        shuffled = targets[:]
        rng.shuffle(shuffled)
        again = {s.eni_id: planner.choose_target(s, None, shuffled, "Mirror")[0] for s in sources}
        assert again == first
    # Rendezvous: removing a target only moves the ENIs that were on it.
    without = {s.eni_id: planner.choose_target(s, None, targets[:2], "Mirror")[0] for s in sources}
    moved = [e for e in first if first[e] != without[e]]
    assert moved and all(first[e] == targets[2] for e in moved)


def test_spread_through_plan_is_the_same_for_any_source_order() -> None:
    targets = [eni_target(f"tmt-{n}", subnet="subnet-a2") for n in range(3)]
    inv = inventory(targets)
    sources = [source(f"eni-{n:017x}") for n in range(60)]
    forward = {d.eni_id: d.target_id for d in planner.plan(sources, {}, inv, SETTINGS)}
    backward = {d.eni_id: d.target_id for d in planner.plan(reversed(sources), {}, inv, SETTINGS)}
    assert forward == backward
    assert len(set(forward.values())) == 3


def test_a_sensor_eni_is_never_a_source() -> None:
    sensor = eni_target("tmt-a")
    other = eni_target("tmt-b")
    inv = inventory([sensor, other])
    decision = planner.plan_source(source(sensor.resource_id), [], inv, SETTINGS)
    assert decision.outcome == "skipped" and "never a source" in decision.reason
    stale = session("tms-1", sensor.resource_id, "tmt-b", 1, True)
    decision = planner.plan_source(source(sensor.resource_id), [stale], inv, SETTINGS)
    assert [a.kind for a in decision.actions] == ["delete"]


def test_no_eligible_target_gives_the_reason() -> None:
    decision = planner.plan_source(source(), [], inventory([]), SETTINGS)
    assert decision.outcome == "skipped"
    assert "no traffic mirror target without a route can serve us-east-1a / vpc-1" in decision.reason


# --- filter selection --------------------------------------------------------------------


def test_filter_id_setting_wins() -> None:
    filters = [MirrorFilter("tmf-1"), MirrorFilter("tmf-2", {"Mirror": "default"})]
    settings = Settings(filter_id="tmf-1")
    assert planner.choose_filter(None, filters, settings).filter_id == "tmf-1"
    missing = Settings(filter_id="tmf-9")
    choice = planner.choose_filter(None, filters, missing)
    chosen, reason = choice.filter_id, choice.reason
    assert chosen is None and "tmf-9 does not exist" in reason


def test_filter_tagged_default_then_the_only_one() -> None:
    tagged = [MirrorFilter("tmf-1"), MirrorFilter("tmf-2", {"Mirror": "Default"}), MirrorFilter("tmf-3")]
    assert planner.choose_filter(None, tagged, SETTINGS).filter_id == "tmf-2"
    assert planner.choose_filter(None, [MirrorFilter("tmf-7")], SETTINGS).filter_id == "tmf-7"
    # A routed or disabled filter does not count against "the only one".
    only = [
        MirrorFilter("tmf-7"),
        MirrorFilter("tmf-8", {"Mirror": "pci"}),
        MirrorFilter("tmf-9", {"Mirror": "off"}),
    ]
    assert planner.choose_filter(None, only, SETTINGS).filter_id == "tmf-7"


def test_ambiguous_filters_name_the_candidates() -> None:
    choice = planner.choose_filter(None, [MirrorFilter("tmf-2"), MirrorFilter("tmf-1")], SETTINGS)
    chosen, reason = choice.filter_id, choice.reason
    assert chosen is None
    assert "tmf-1, tmf-2" in reason and "MIRROR_FILTER_ID" in reason
    two_defaults = [
        MirrorFilter("tmf-1", {"Mirror": "default"}),
        MirrorFilter("tmf-2", {"Mirror": "default"}),
    ]
    choice = planner.choose_filter(None, two_defaults, SETTINGS)
    chosen, reason = choice.filter_id, choice.reason
    assert chosen is None and "tmf-1, tmf-2" in reason
    choice = planner.choose_filter(None, [], SETTINGS)
    chosen, reason = choice.filter_id, choice.reason
    assert chosen is None and "no traffic mirror filter" in reason


def test_ambiguity_leaves_existing_sessions_alone() -> None:
    inv = inventory([eni_target("tmt-a")], [MirrorFilter("tmf-1"), MirrorFilter("tmf-2")])
    ours = session("tms-1", "eni-0000000000000001", "tmt-a", 1, True)
    decision = planner.plan_source(source(), [ours], inv, SETTINGS)
    assert decision.outcome == "skipped" and decision.actions == ()
    assert decision.reason.startswith("no filter:")


def test_route_filters() -> None:
    filters = [
        MirrorFilter("tmf-def", {"Mirror": "default"}),
        MirrorFilter("tmf-pci", {"Mirror": "PCI"}),
        MirrorFilter("tmf-x1", {"Mirror": "lab"}),
        MirrorFilter("tmf-x2", {"Mirror": "lab"}),
    ]
    assert planner.choose_filter("pci", filters, SETTINGS).filter_id == "tmf-pci"
    assert planner.choose_filter(None, filters, SETTINGS).filter_id == "tmf-def"
    assert planner.choose_filter("dmz", filters, SETTINGS).filter_id == "tmf-def"  # no routed filter: the default
    choice = planner.choose_filter("lab", filters, SETTINGS)
    chosen, reason = choice.filter_id, choice.reason
    assert chosen is None and "tmf-x1, tmf-x2" in reason
    assert planner.choose_filter("pci", filters, Settings(filter_id="tmf-def")).filter_id == "tmf-pci"


# --- session numbers and ownership -------------------------------------------------------


def test_free_session_number() -> None:
    assert planner.free_session_number([], 1) == 1
    assert planner.free_session_number([1], 1) == 2
    assert planner.free_session_number([1, 2, 4], 1) == 3
    assert planner.free_session_number([5], 5) == 6
    assert planner.free_session_number([10], 7) == 7
    assert planner.free_session_number([32766], 32766) == 1
    assert planner.free_session_number(range(1, 32767), 1) is None


def test_create_takes_a_number_foreign_sessions_leave_free() -> None:
    inv = inventory([eni_target("tmt-a"), eni_target("tmt-b")])
    theirs = [session("tms-x", "eni-0000000000000001", "tmt-b", 1, False)]
    decision = planner.plan_source(source(), theirs, inv, SETTINGS)
    (create,) = decision.actions
    assert (create.kind, create.session_number) == ("create", 2)
    preferred = planner.plan_source(source(), theirs, inv, Settings(session_number=10))
    assert preferred.actions[0].session_number == 10
    taken = [session("tms-x", "eni-0000000000000001", "tmt-b", 10, False)]
    assert (
        planner.plan_source(source(), taken, inv, Settings(session_number=10)).actions[0].session_number == 11
    )


def test_three_foreign_sessions_mean_no_fourth() -> None:
    inv = inventory([eni_target("tmt-a")])
    theirs = [session(f"tms-{n}", "eni-0000000000000001", "tmt-a", n, False) for n in (1, 2, 3)]
    decision = planner.plan_source(source(), theirs, inv, SETTINGS)
    assert decision.outcome == "skipped" and decision.actions == ()
    assert "3 sessions" in decision.reason


def test_foreign_sessions_are_never_touched() -> None:
    theirs = session("tms-x", "eni-0000000000000001", "tmt-a", 1, False)
    inv = inventory([eni_target("tmt-a")])
    for src in (source(instance_type="t2.micro"), source(eni_tags={"Mirror": "off"})):
        assert planner.plan_source(src, [theirs], inv, SETTINGS).actions == ()
    released = planner.plan_source(source(), [theirs], inv, SETTINGS, release=True)
    assert released.actions == ()
    orphans = planner.plan_orphans([theirs], frozenset(), Settings(release_on_stop=True))
    assert orphans == []


def test_managed_session_is_kept_while_its_target_qualifies() -> None:
    near, far = eni_target("tmt-near"), eni_target("tmt-far", subnet="subnet-a2")
    ours = session("tms-1", "eni-0000000000000001", "tmt-far", 1, True)
    decision = planner.plan_source(source(), [ours], inventory([near, far]), SETTINGS)
    assert (decision.outcome, decision.actions) == ("mirrored", ())


def test_managed_session_moves_in_place_when_its_target_is_gone() -> None:
    ours = session("tms-1", "eni-0000000000000001", "tmt-gone", 1, True, "tmf-old")
    decision = planner.plan_source(source(), [ours], inventory([eni_target("tmt-a")]), SETTINGS)
    (modify,) = decision.actions
    assert (modify.kind, modify.session_id, modify.target_id, modify.filter_id) == (
        "modify",
        "tms-1",
        "tmt-a",
        "tmf-1",
    )


def test_duplicate_managed_sessions_keep_the_lowest_number() -> None:
    inv = inventory([eni_target("tmt-a")])
    dupes = [
        session("tms-2", "eni-0000000000000001", "tmt-a", 2, True),
        session("tms-1", "eni-0000000000000001", "tmt-a", 1, True),
    ]
    decision = planner.plan_source(source(), dupes, inv, SETTINGS)
    assert [(a.kind, a.session_id) for a in decision.actions] == [("delete", "tms-2")]


def test_client_token_is_stable_and_depends_on_the_choice() -> None:
    src = source(trigger="ev-1")
    token = planner.client_token(src, "tmt-a", "tmf-1", 1)
    assert token == planner.client_token(src, "tmt-a", "tmf-1", 1)
    assert len(token) <= 64
    assert token != planner.client_token(src, "tmt-b", "tmf-1", 1)
    assert token != planner.client_token(source(trigger="ev-2"), "tmt-a", "tmf-1", 1)


def test_plan_gives_one_decision_per_eni_in_stable_order() -> None:
    inv = inventory([eni_target("tmt-a")])
    sources = [source("eni-0000000000000003"), source("eni-0000000000000001"), source("eni-0000000000000003")]
    decisions = planner.plan(sources, {}, inv, SETTINGS)
    assert [d.eni_id for d in decisions] == ["eni-0000000000000001", "eni-0000000000000003"]


def test_orphans_only_released_with_the_setting() -> None:
    ours = session("tms-1", "eni-gone", "tmt-a", 1, True)
    assert planner.plan_orphans([ours], frozenset(), SETTINGS) == []
    (decision,) = planner.plan_orphans([ours], frozenset(), Settings(release_on_stop=True))
    assert [(a.kind, a.session_id) for a in decision.actions] == [("delete", "tms-1")]
    assert planner.plan_orphans([ours], frozenset({"eni-gone"}), Settings(release_on_stop=True)) == []


def test_full_targets_only_lose_new_sessions() -> None:
    """A target that refused a source: new ENIs go elsewhere, its sessions stay where they are."""
    near, far = eni_target("tmt-near"), eni_target("tmt-far", subnet="subnet-x")
    inv = inventory([near, far])
    full = frozenset({"tmt-near"})
    new = planner.plan_source(source(), [], inv, SETTINGS, learned=Learned(full_targets=full))
    assert new.actions[0].target_id == "tmt-far"
    ours = session("tms-1", "eni-0000000000000001", "tmt-near", 1, True)
    kept = planner.plan_source(source(), [ours], inv, SETTINGS, learned=Learned(full_targets=full))
    assert (kept.outcome, kept.actions) == ("mirrored", ())
    # Nothing else qualifies: the full one is still tried (the API's answer stays retryable).
    alone = planner.plan_source(source(), [], inventory([near]), SETTINGS, learned=Learned(full_targets=full))
    assert alone.actions[0].target_id == "tmt-near"
    decisions = planner.plan([source()], {}, inv, SETTINGS, learned=Learned(full_targets=full))
    assert decisions[0].target_id == "tmt-far"


def test_the_per_vpc_vni_is_a_fixed_function_of_account_and_vpc() -> None:
    """Sensors map VNIs back to VPCs in their own configuration: a VPC's VNI must be the same in
    every container and every release (a salted `hash()` would not be), and the account counts."""
    source = Source("eni-1", "i-1", "m5.large", "subnet-1", "vpc-0a1b2c3d4e5f60718", "us-east-1a", account="111111111111")
    assert planner.vni_for(source) == 7147086
    assert planner.vni_for(dataclasses.replace(source, account="222222222222")) == 1440111
    assert 1 <= planner.vni_for(dataclasses.replace(source, vpc_id="vpc-1")) <= planner.MAX_VNI
