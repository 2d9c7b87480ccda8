"""Settings: defaults, validation with a clear message naming the variable."""

import os
import subprocess
import sys

import pytest
from traffic_mirror.handler.settings import Settings, SettingsError, load


def test_defaults() -> None:
    assert load({}) == Settings()


def test_every_variable_parsed() -> None:
    env = {
        "MIRROR_TAG_KEY": "Sensor",
        "MIRROR_FILTER_ID": "tmf-0123456789abcdef0",
        "MIRROR_SCOPE": "Tagged",
        "MIRROR_SESSION_NUMBER": "7",
        "MIRROR_VNI": "4242",
        "MIRROR_PACKET_LENGTH": "128",
        "MIRROR_MANAGED_BY": "secops",
        "MIRROR_RELEASE_ON_STOP": "yes",
        "MIRROR_DRY_RUN": "true",
        "MIRROR_CACHE_TTL_SECONDS": "5",
        "MIRROR_MAX_WORKERS": "4",
        "MIRROR_DEADLINE_MARGIN_SECONDS": "20",
        "MIRROR_SWEEP_GRACE_SECONDS": "90",
        "MIRROR_ROLE_ARN": "arn:aws:iam::123456789012:role/mirror",
        "AWS_LAMBDA_FUNCTION_NAME": "mirror-us-east-1",
    }
    s = load(env)
    assert (s.tag_key, s.filter_id, s.scope, s.session_number, s.vni, s.packet_length) == (
        "Sensor",
        "tmf-0123456789abcdef0",
        "tagged",
        7,
        4242,
        128,
    )
    assert s.managed_by == "secops" and s.release_on_stop and s.dry_run
    assert (s.cache_ttl_seconds, s.max_workers, s.deadline_margin_seconds) == (5.0, 4, 20.0)
    assert s.sweep_grace_seconds == 90.0
    assert s.role_arn == "arn:aws:iam::123456789012:role/mirror" and s.function_name == "mirror-us-east-1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MIRROR_SCOPE", "some"),
        ("MIRROR_FILTER_ID", "filter-1"),
        ("MIRROR_SESSION_NUMBER", "0"),
        ("MIRROR_SESSION_NUMBER", "32767"),
        ("MIRROR_VNI", "16777216"),
        ("MIRROR_VNI", "abc"),
        ("MIRROR_PACKET_LENGTH", "9000"),
        ("MIRROR_RELEASE_ON_STOP", "maybe"),
        ("MIRROR_TAG_KEY", "aws:reserved"),
        ("MIRROR_ROLE_ARN", "mirror-role"),
        ("MIRROR_MAX_WORKERS", "0"),
        ("MIRROR_SWEEP_GRACE_SECONDS", "-1"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load({name: value})


def test_the_lambda_imports_nothing_the_component_and_cli_share() -> None:
    """common/ (region names, the declarations' machinery) is not in the Lambda's archive."""
    code = (
        "import sys, pkgutil, importlib, traffic_mirror.handler as h\n"
        "for m in pkgutil.iter_modules(h.__path__):\n"
        "    if m.name != '__main__': importlib.import_module(f'traffic_mirror.handler.{m.name}')\n"
        "bad = [n for n in sys.modules if n.startswith(('traffic_mirror.common', 'traffic_mirror.cli', 'rich', 'pulumi'))]\n"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_mistyped_region_gets_the_same_suggestion_from_the_component_and_the_cli() -> None:
    from traffic_mirror.common.regions import KNOWN_REGIONS, region_error, suggest
    from traffic_mirror.components.config import ConfigError, resolve

    assert suggest("us-esat-1", KNOWN_REGIONS) == " (did you mean 'us-east-1'?)"
    assert "did you mean 'us-east-1'?" in str(region_error("us-esat-1"))
    with pytest.raises(ConfigError, match="did you mean 'us-east-1'"):
        resolve({"regions": ["us-esat-1"]})


@pytest.mark.parametrize("value", ["hub", "hub,member", "member", "123456789012", "hub,210987654321", "HUB"])
def test_sensor_owners_accepts_hub_member_and_account_ids(value: str) -> None:
    assert load({"MIRROR_SENSOR_OWNERS": value}).sensor_owners == value.lower()


@pytest.mark.parametrize("value", ["hubs", "hub member", "12345", "hub,,member"])
def test_sensor_owners_refuses_anything_else(value: str) -> None:
    with pytest.raises(SettingsError, match="MIRROR_SENSOR_OWNERS"):
        load({"MIRROR_SENSOR_OWNERS": value})


def test_a_cold_starts_first_reads_need_only_the_clients() -> None:
    """`app` sends the inventory's first reads before it imports the rest of the handler: what
    sends them must not pull the rest in (it would be imported before the reads leave)."""
    code = (
        "import sys, traffic_mirror.handler.readahead\n"
        "mine = sorted(n for n in sys.modules if n.startswith('traffic_mirror.handler.'))\n"
        "assert mine == ['traffic_mirror.handler.clients', 'traffic_mirror.handler.readahead'], mine"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    assert done.returncode == 0, done.stderr


def test_an_events_cold_start_imports_only_what_an_event_needs() -> None:
    """The plan's guardrails (the CLI's) and the mirror loss (the schedule's sweeps) are not
    compiled at a cold start: the deployed package ships no .pyc, so every module imported costs."""
    code = (
        "import sys, traffic_mirror.handler.app\n"
        "late = ('guardrails', 'loss', 'cloudwatch')\n"
        "bad = [n for n in sys.modules if n.rsplit('.', 1)[-1] in late and n.startswith('traffic_mirror')]\n"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})
    assert done.returncode == 0, done.stderr
