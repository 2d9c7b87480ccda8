"""The fault campaign, small (benchmarks.fault_campaign.QUICK): its must-be-zero figures at 5, 20, 50%.

The full campaign is `python -m benchmarks.fault_campaign` (README, "Faults and hostile input").
"""

from typing import Any

import pytest

from benchmarks import fault_campaign

pytestmark = pytest.mark.moto


@pytest.fixture(scope="module")
def figures() -> dict[float, fault_campaign.Figures]:
    return {f.rate: f for f in fault_campaign.run(fault_campaign.QUICK, out=lambda _: None)}


def check(figures: fault_campaign.Figures) -> None:
    assert figures.faults > 0 and figures.cases > 0
    assert figures.must_be_zero() == dict.fromkeys(figures.must_be_zero(), 0), (
        figures.bad_writes,
        figures.errors,
    )
    assert figures.converged
    assert (figures.check_unmirrored, figures.check_writes) == (0, 0)


def test_five_percent(figures: Any) -> None:
    check(figures[0.05])


def test_twenty_percent(figures: Any) -> None:
    check(figures[0.2])


def test_fifty_percent(figures: Any) -> None:
    check(figures[0.5])


def test_the_table_names_every_must_be_zero_figure(figures: Any) -> None:
    text = fault_campaign.table(list(figures.values()))
    for label in ("unmirrored", "duplicates", "foreign sessions touched", "lost to a bad read", "overruns"):
        assert label in text
    assert text.splitlines()[0] == "| fault rate | 5% | 20% | 50% |"
