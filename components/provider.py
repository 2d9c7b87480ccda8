"""The component served to other Pulumi languages (`pulumi package add`): provider/__main__.py runs `serve`.

The schema is inferred from `TrafficMirrorAutomation`'s type hints and docstrings by Pulumi's
`pulumi.provider.experimental`; provider/schema.json is its committed copy (`make generate`), so
a change that would break a TypeScript, Go, C#, Java or YAML program shows up in review and CI.
"""

import json
import sys
from importlib.metadata import version
from typing import Any

from pulumi.errors import InputPropertyError
from pulumi.output import Inputs
from pulumi.provider import main
from pulumi.provider.experimental.analyzer import ComponentDefinition
from pulumi.provider.experimental.component import ComponentProvider

from .automation import TrafficMirrorAutomation
from .config import OUTPUT_ARGUMENT, is_output

PACKAGE = "traffic-mirror"
"""The package name other languages import (the first part of TYPE_TOKEN)."""


class TrafficMirrorProvider(ComponentProvider):
    """Pulumi's component provider, refusing Output-valued inputs with a message naming the input.

    The SDK converts integer inputs with `int(value)`, which raises a bare TypeError when the
    value is an Output (an input fed from another resource); and the component needs every
    argument as a plain value anyway (see `config.OUTPUT_ARGUMENT`). Whole floats, which is how
    other languages send integers, are taken by the settings' `Spec.coerce`.
    """

    def __init__(self) -> None:
        super().__init__([TrafficMirrorAutomation], PACKAGE, version=version("traffic-mirror-automation"))

    def map_inputs(self, inputs: Inputs, component_def: ComponentDefinition) -> Inputs:
        for key, value in (inputs if isinstance(inputs, dict) else {}).items():
            if is_output(value):
                raise InputPropertyError(key, f"{key} {OUTPUT_ARGUMENT}")
        return super().map_inputs(inputs, component_def)


def schema() -> dict[str, Any]:
    """The package schema the provider serves (GetSchema)."""
    served = TrafficMirrorProvider().schema
    assert served is not None
    return json.loads(served)


def serve(args: list[str] | None = None) -> None:
    """Run the provider (what `component_provider_host` does, with our provider class)."""
    main(TrafficMirrorProvider(), sys.argv[1:] if args is None else args)
