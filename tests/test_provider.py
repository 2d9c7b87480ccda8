"""The component as other Pulumi languages see it: the provider's schema, and construction through it.

TypeScript, Go, C#, Java and YAML programs reach the component through provider/ (PulumiPlugin.yaml):
the engine sends inputs as a protobuf Struct (camelCase names, every number a float) and the
provider maps them onto the Python component.
"""

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml
from google.protobuf import struct_pb2
from pulumi.errors import InputPropertyError
from pulumi.provider.server import ComponentInitError, ProviderServicer
from traffic_mirror.components import TYPE_TOKEN, ConfigError, TrafficMirrorAutomation, provider
from traffic_mirror.components.config import resolve

from testsupport.pulumi_mocks import Run, run_program

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "provider" / "schema.json").read_text())
RESOURCE = SCHEMA["resources"][TYPE_TOKEN]


def test_committed_schema_is_the_one_the_provider_serves() -> None:
    """A rename, a type change or a new required input changes the served schema: it must be committed."""
    assert provider.schema() == SCHEMA, "run `make generate` and review provider/schema.json"
    assert SCHEMA["name"] == provider.PACKAGE == TYPE_TOKEN.split(":")[0]
    assert RESOURCE["isComponent"] is True
    assert RESOURCE["requiredInputs"] == ["regions"]
    inputs, outputs = RESOURCE["inputProperties"], RESOURCE["properties"]
    assert inputs["sessionNumber"]["type"] == "integer"
    assert inputs["cacheTtlSeconds"]["type"] == "number"
    assert inputs["sensors"] == inputs["sensors"] | {"type": "array", "items": inputs["sensors"]["items"]}
    assert {"functionArns", "functionNames", "filterIds", "eventQueueUrls", "deadLetterQueueUrls"} <= set(outputs)
    assert outputs["functionNames"]["additionalProperties"]["type"] == "string"
    assert all(p.get("description") for p in {**inputs, **outputs}.values())


def test_plugin_manifest_and_entry_point() -> None:
    plugin = yaml.safe_load((REPO / "provider" / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"
    requirements = [line for line in (REPO / "provider" / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]  # fmt: skip
    assert requirements == [".."], "the plugin installs this repository's package"
    assert "serve()" in (REPO / "provider" / "__main__.py").read_text()


def _as_sent(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the provider receives them from the engine: through a protobuf Struct."""
    struct = struct_pb2.Struct()
    struct.update(inputs)
    return asyncio.run(ProviderServicer._construct_inputs(struct, {}))


def _construct(inputs: Any) -> Run:
    def build() -> None:
        sent = inputs() if callable(inputs) else inputs
        result = provider.TrafficMirrorProvider().construct("mirror", TYPE_TOKEN, sent, None)
        for key, value in result.state.items():
            pulumi.export(key, value)

    return run_program(build)


def test_construct_through_the_provider_with_inputs_as_other_languages_send_them() -> None:
    sent = _as_sent({
        "regions": ["us-east-1", "eu-west-1"], "sessionNumber": 3, "timeoutSeconds": 120, "tagKey": "Sensor",
        "cacheTtlSeconds": 30, "sensors": ["eu-west-1/eni-0123456789abcdef0"], "dryRun": True,
    })  # fmt: skip
    assert sent["sessionNumber"] == 3.0 and isinstance(sent["sessionNumber"], float)
    served = provider.TrafficMirrorProvider()
    options = resolve(served.map_inputs(sent, served._component_defs["TrafficMirrorAutomation"]))
    assert type(options.settings.session_number) is int and type(options.deployment.timeout_seconds) is int
    assert type(options.settings.cache_ttl_seconds) is float
    run = _construct(sent)
    functions = {f.region: f for f in run.of_type("aws:lambda/function:Function")}
    env = functions["us-east-1"].inputs["environment"]["variables"]
    assert env["MIRROR_SESSION_NUMBER"] == "3", "a whole float is an integer"
    assert env["MIRROR_CACHE_TTL_SECONDS"] == "30"
    assert env["MIRROR_TAG_KEY"] == "Sensor" and env["MIRROR_DRY_RUN"] == "true"
    assert functions["eu-west-1"].inputs["timeout"] == 120
    assert [t.region for t in run.of_type("aws:ec2/trafficMirrorTarget:TrafficMirrorTarget")] == ["eu-west-1"]
    # Outputs come back under the schema's names, keyed by region.
    assert set(run.exports) == set(RESOURCE["properties"])
    assert run.exports["functionNames"] == {r: f.outputs["name"] for r, f in functions.items()}
    filters = {f.region: f.outputs["id"] for f in run.of_type("aws:ec2/trafficMirrorFilter:TrafficMirrorFilter")}
    assert run.exports["filterIds"] == filters and set(filters) == {"us-east-1", "eu-west-1"}
    assert env["MIRROR_FILTER_ID"] == filters["us-east-1"]


def test_a_fractional_integer_and_a_missing_required_input_are_refused() -> None:
    with pytest.raises(ComponentInitError) as raised:
        _construct(_as_sent({"regions": ["us-east-1"], "sessionNumber": 1.5}))
    assert isinstance(raised.value.inner, ConfigError)
    assert "session_number must be a whole number between 1 and 32766, got 1.5" in str(raised.value.inner)
    with pytest.raises(InputPropertyError, match="Missing required input 'regions'"):
        _construct(_as_sent({"tagKey": "Mirror"}))


def test_an_input_from_another_resources_output_fails_with_a_clear_message() -> None:
    """The SDK's int() on an Output raised a bare TypeError; the provider names the input instead."""

    def fed_from_a_queue() -> dict[str, Any]:
        queue = aws.sqs.Queue("other", visibility_timeout_seconds=7)
        return {"regions": ["us-east-1"], "sessionNumber": queue.visibility_timeout_seconds}

    with pytest.raises(InputPropertyError) as raised:
        _construct(fed_from_a_queue)
    assert raised.value.property_path == "sessionNumber"
    assert "known at preview" in raised.value.reason
    # A list holding an output (a sensor's ARN from a load balancer), from Python directly.
    with pytest.raises(ConfigError, match="sensors comes from another resource's output"):
        run_program(lambda: TrafficMirrorAutomation(
            "mirror", {"regions": ["us-east-1"], "sensors": [aws.sqs.Queue("nlb").arn]}))  # fmt: skip


def _readme_block(language: str) -> str:
    text = (REPO / "docs" / "reuse.md").read_text()
    section = text.split("## Other Pulumi languages", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(rf"```{language}\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"one {language} example in docs/reuse.md's Other Pulumi languages section"
    return blocks[0]


_YAML_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}


def test_readme_yaml_example_matches_the_schema() -> None:
    program = yaml.safe_load(_readme_block("yaml"))
    components = [r for r in program["resources"].values() if r["type"] == TYPE_TOKEN]
    assert len(components) == 1
    properties = components[0]["properties"]
    inputs = RESOURCE["inputProperties"]
    assert set(properties) <= set(inputs), sorted(set(properties) - set(inputs))
    assert set(RESOURCE["requiredInputs"]) <= set(properties)
    for key, value in properties.items():
        assert isinstance(value, _YAML_TYPES[inputs[key]["type"]]), key
        if isinstance(value, list):
            assert all(isinstance(item, _YAML_TYPES[inputs[key]["items"]["type"]]) for item in value), key
    outputs = set(RESOURCE["properties"])
    for reference in re.findall(r"\$\{\w+\.(\w+)", json.dumps(program.get("outputs", {}))):
        assert reference in outputs, reference
    # The same arguments construct the component (checked by the component's own rules).
    _construct(_as_sent(properties))


def test_readme_typescript_example_uses_schema_names() -> None:
    code = _readme_block("typescript")
    assert "new trafficMirror.TrafficMirrorAutomation(" in code
    used = set(re.findall(r"^\s+(\w+):", code, re.M))
    assert used <= set(RESOURCE["inputProperties"]), sorted(used - set(RESOURCE["inputProperties"]))
    for output in re.findall(r"mirror\.(\w+)", code):
        assert output in RESOURCE["properties"], output


def test_the_plugin_entry_point_serves_the_committed_schema_over_grpc() -> None:
    """What the engine does after `pulumi package add`: run provider/__main__.py, read its port, ask for the schema."""
    import subprocess
    import sys

    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    plugin = subprocess.Popen(
        [sys.executable, str(REPO / "provider" / "__main__.py"), "127.0.0.1:9"],  # the engine's address
        cwd=REPO / "provider", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        port = int(plugin.stdout.readline())  # type: ignore[union-attr]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            served = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30)
            info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=30)
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)
    assert json.loads(served.schema) == SCHEMA
    assert info.version == SCHEMA["version"]
