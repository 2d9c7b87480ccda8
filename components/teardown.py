"""Clean teardown: `pulumi destroy` deletes the sessions this deployment created, then the function.

The sessions are not Pulumi resources (the Lambda creates them), so without this they would
outlive the stack, billed per ENI-hour. Per region, an `aws.lambda_.Invocation` with lifecycle
scope CRUD invokes the function on create, update and delete, adding `{"tf": {"action": ...}}`
to its input. The handler ignores create and update; on delete it releases every session of
the region tagged `ManagedBy=<managed_by>` (the role may delete no other).

Order on destroy (Pulumi deletes dependents first): the event source mapping and the sweep's
schedule target depend on the hook, so they go first and nothing can recreate a session; then
the hook runs; then the function, which the hook depends on. If the release fails (throttled
past its retries, or its deadline), the invocation fails and so does `pulumi destroy`, naming
the error: run it again, or release by hand with the command in the README.

The hook exists whether or not `release_on_destroy` is set, and its input holds only the region
and that flag (no managed_by, no other setting): removing the hook, or replacing it, would be a
delete, which releases every session. Turning the option off is an update of the input (the
handler ignores updates), after which the hook's delete releases nothing.
"""

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from ..handler import events

LIFECYCLE_SCOPE = "CRUD"
HOOK_ID = "pulumi-teardown"


def release_event(region: str, release: bool = True) -> dict[str, Any]:
    """The hook's input; the handler reads it as a "release-region" change (handler/events.py)."""
    return {
        "version": "0",
        "id": HOOK_ID,
        "source": events.TEARDOWN_SOURCE,
        "detail-type": events.RELEASE_REGION,
        "region": region,
        "detail": {events.RELEASE_ON_DELETE: release},
    }


def release_command(function_name: str, region: str) -> str:
    """The one command that does the same by hand (while the function still exists)."""
    payload = json.dumps(release_event(region), separators=(",", ":"))
    return (
        f"aws lambda invoke --region {region} --function-name {function_name} "
        f"--cli-binary-format raw-in-base64-out --payload '{payload}' /dev/stdout"
    )


def create_release_hook(
    name: str,
    region: str,
    function: aws.lambda_.Function,
    before: Sequence[pulumi.Resource],
    release: bool,
    parent: pulumi.Resource,
) -> aws.lambda_.Invocation:
    """The hook depends on the function and on `before`, so `pulumi destroy` runs it before they go."""
    return aws.lambda_.Invocation(
        f"{name}-release-on-destroy-{region}",
        function_name=function.name,
        input=json.dumps(release_event(region, release)),
        lifecycle_scope=LIFECYCLE_SCOPE,
        terraform_key=events.LIFECYCLE_KEY,
        region=region,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[function, *before]),
    )
