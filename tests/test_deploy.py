"""Deploying and destroying as a user does: the shipped stack file, the version, what destroy leaves.

`pulumi destroy` with the defaults must succeed: the CloudTrail bucket holds logs, and S3 refuses
to delete a bucket that is not empty, so the bucket (with the settings that keep it private) is
retained unless the user asks for force-destroy.
"""

import json
import runpy
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml
from traffic_mirror.components import TrafficMirrorAutomation
from traffic_mirror.components.config import CONFIG_KEYS, resolve

from testsupport.pulumi_mocks import Run, run_program

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "Pulumi.example.yaml"
PROJECT = "traffic-mirror-automation"
PROVIDER_KEYS = frozenset({"aws:region", "aws:profile"})
BUCKET_TYPES = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
)


def deploy(args: dict[str, Any]) -> Run:
    return run_program(lambda: TrafficMirrorAutomation("mirror", {"regions": ["us-east-1"], **args}))


# --- pulumi destroy and the trail's bucket --------------------------------------------------------------


def test_destroy_keeps_the_trail_bucket_its_logs_and_settings_by_default() -> None:
    run = deploy({"log_expiration_days": 30})
    kept = {r.type for r in run.custom() if r.retain_on_delete}
    assert kept == BUCKET_TYPES, "the bucket and everything that keeps it private, and nothing else"
    (bucket,) = run.of_type("aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is False
    (trail,) = run.of_type("aws:cloudtrail/trail:Trail")
    assert not trail.retain_on_delete, "the trail itself goes: it would go on writing logs"


def test_force_destroy_deletes_the_bucket_with_its_logs() -> None:
    run = deploy({"log_expiration_days": 30, "force_destroy_trail_bucket": True})
    assert not [r.name for r in run.custom() if r.retain_on_delete]
    (bucket,) = run.of_type("aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is True


# --- Pulumi.example.yaml ----------------------------------------------------------------------------------


def _example(uncomment: bool) -> dict[str, Any]:
    """The file's config; with `uncomment`, its commented settings too (each must be valid)."""
    lines = EXAMPLE.read_text().splitlines()
    if uncomment:
        lines = [line.replace("  # ", "  ", 1) if line.lstrip().startswith(f"# {PROJECT}:") or
                 (line.startswith("  #   - ")) else line for line in lines]  # fmt: skip
    config: dict[str, Any] = yaml.safe_load("\n".join(lines))["config"]
    return config


@pytest.mark.parametrize("uncomment", [False, True], ids=["as shipped", "every commented setting on"])
def test_example_stack_file_parses_and_its_keys_are_the_components(uncomment: bool) -> None:
    config = _example(uncomment)
    ours = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    assert set(config) - {f"{PROJECT}:{k}" for k in ours} <= PROVIDER_KEYS
    assert set(ours) <= set(CONFIG_KEYS), f"unknown keys: {set(ours) - set(CONFIG_KEYS)}"
    options = resolve({CONFIG_KEYS[k]: v for k, v in ours.items()}, default_home_region=config["aws:region"])
    assert options.regions == ("us-east-1",)
    assert options.settings.dry_run is True, "the first deploy changes nothing"
    if uncomment:
        assert len(ours) > 10 and options.settings.scope == "tagged" and options.deployment.force_destroy_trail_bucket


def _main(config: dict[str, Any], aws_config: dict[str, Any]) -> Run:
    return run_program(lambda: runpy.run_path(str(REPO / "__main__.py")), config=config, aws_config=aws_config)


def test_the_shipped_program_deploys_the_example_as_a_dry_run() -> None:
    config = _example(uncomment=False)
    ours = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    aws = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("aws:")}
    program = _main(ours, aws)
    (function,) = program.of_type("aws:lambda/function:Function")
    assert function.inputs["environment"]["variables"]["MIRROR_DRY_RUN"] == "true"
    assert set(program.exports["functionArns"]) == {"us-east-1"}


def test_the_shipped_program_exports_the_read_only_role_with_operators() -> None:
    config = {"regions": ["us-east-1"], "organizationUnits": ["ou-ab12-11111111"], "shareTaggedTargets": False}
    plain = _main(config, {"region": "us-east-1"})
    assert "readOnlyRoleName" not in plain.exports
    operators = _main({**config, "operatorPrincipalArns": ["arn:aws:iam::123456789012:role/ops"]}, {"region": "us-east-1"})
    assert operators.exports["readOnlyRoleName"] == "traffic-mirror-automation-member-read-only"


# --- the version ------------------------------------------------------------------------------------------


def test_the_version_is_the_same_everywhere_it_is_stated() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert declared == "0.2.0"
    assert version(PROJECT) == declared, "reinstall the package (make .venv/.installed) after changing the version"
    assert json.loads((REPO / "provider" / "schema.json").read_text())["version"] == declared
    assert f"## [{declared}]" in (REPO / "CHANGELOG.md").read_text()
