"""The handler's setting declarations (`handler.settings.Spec`) as the component, CLI and generator
use them: stack-config keys, CLI flags, component arguments from any Pulumi language, and the
function's environment text. The Lambda only parses its environment (`Spec.parse`), so none of
this ships in its archive.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from traffic_mirror.handler.settings import SAME, SPEC_OF, Settings, SettingsError, Spec


def flag(spec: Spec) -> str:
    """The CLI flag that overrides the setting (`tag_key` -> `--tag-key`)."""
    return "--" + spec.name.replace("_", "-")


def config_key(spec: Spec) -> str:
    """Stack-config key: the argument in camelCase (`tag_key` -> `tagKey`)."""
    head, *rest = spec.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def deployed_default(spec: Spec) -> Any:
    """The component's default: the handler's own unless the declaration says otherwise."""
    return spec.default if spec.deployed is SAME else spec.deployed


def coerce(spec: Spec, value: Any, label: str | None = None) -> Any:
    """A component argument (as any Pulumi language sends it) -> the typed, checked value.

    Other languages send integers as floats (`1.0`): whole floats are taken as integers.
    """
    label = label or spec.name
    if value is None:
        return deployed_default(spec)
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{label} must be true or false, got {value!r}")
        return value
    if spec.kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(f"{label} must be a number {spec.describe_range()}, got {value!r}")
        if spec.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise SettingsError(f"{label} must be a whole number {spec.describe_range()}, got {value!r}")
            value = int(value)
        return spec.check(value if spec.kind is int else float(value), label)
    if not isinstance(value, str):
        raise SettingsError(f"{label} must be a string, got {value!r}")
    text = value.strip()
    if not text:
        return deployed_default(spec)
    return spec.check(text.lower() if spec.lower else text, label)


def to_env(value: Any) -> str | None:
    """The variable's text for a typed value (None = leave the variable out)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def override(settings: Settings, values: Mapping[str, str], label: Callable[[Spec], str] = flag) -> Settings:
    """`settings` with some fields replaced by text values, each checked like its variable."""
    changed = {name: SPEC_OF[name].parse(raw, label(SPEC_OF[name])) for name, raw in values.items()}
    return dataclasses.replace(settings, **changed)
