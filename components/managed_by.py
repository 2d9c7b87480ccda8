"""Guard against changing `managed_by` on a deployment that already runs.

Sessions are owned by their `ManagedBy` tag, and the role may delete or modify only sessions
carrying the current value. Changing the value on a live stack would leave every existing
session orphaned (still billed, and no longer changeable by the tool) while the next sweep
creates a second session beside each one: every ENI mirrored twice.

So the component reads, at preview, the value the deployed function runs with (its
`MIRROR_MANAGED_BY`; nothing when the function does not exist yet) and refuses a change
unless `allow_managed_by_change` is set. The safe way to change it: release first
(`pulumi destroy`, or the release command in the README, with the old value), then deploy.
"""

import pulumi
import pulumi_aws as aws

from ..handler.settings import SPEC_OF
from .config import ConfigError


def check(
    previous: str | None, wanted: str, allowed: bool, function_name: str, region: str
) -> str:
    """`wanted`, unless it would silently change a running deployment's managed_by."""
    if previous is None or previous == wanted:
        return wanted
    message = (
        f"managed_by would change from {previous!r} to {wanted!r} for the running function {function_name} "
        f"in {region}: its {previous!r} sessions would stay (billed, no longer changed by the tool) and every "
        "ENI would get a second session. Release them first (pulumi destroy, or `traffic-mirror release "
        f"--region {region} --apply` with the old managed_by), or set allow_managed_by_change to accept this."
    )
    if not allowed:
        raise ConfigError(message)
    pulumi.log.warn(message)
    return wanted


def guard(
    function_name: str, region: str, wanted: str, allowed: bool, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The managed_by value to deploy, resolved only after the running function was checked."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    listed = aws.lambda_.get_functions_output(region=region, opts=invoke)

    def previous(names: list[str] | None) -> pulumi.Output[str]:
        if function_name not in (names or []):
            return pulumi.Output.from_input(check(None, wanted, allowed, function_name, region))
        found = aws.lambda_.get_function_output(function_name=function_name, region=region, opts=invoke)
        return found.environment.apply(
            lambda env: check(
                (dict(env.variables or {}) if env else {}).get(SPEC_OF["managed_by"].env), wanted, allowed, function_name, region
            )
        )

    return listed.function_names.apply(previous)
