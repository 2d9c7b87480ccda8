"""The Pulumi program: read the stack's config, build the component, export its outputs."""

from typing import cast

import pulumi
from traffic_mirror.components import TrafficMirrorAutomation, TrafficMirrorAutomationArgs
from traffic_mirror.components.config import args_from_config

args = cast(TrafficMirrorAutomationArgs, args_from_config(pulumi.Config()))
automation = TrafficMirrorAutomation("mirror", args)

pulumi.export("functionArns", automation.function_arns)
pulumi.export("functionNames", automation.function_names)
pulumi.export("filterIds", automation.filter_ids)
pulumi.export("roleArn", automation.role_arn)
pulumi.export("trailArn", automation.trail_arn)
pulumi.export("bucketName", automation.bucket_name)
pulumi.export("deadLetterQueueUrls", automation.dead_letter_queue_urls)
pulumi.export("eventQueueUrls", automation.event_queue_urls)
if args.get("organization_units"):
    pulumi.export("memberStackSetIds", automation.member_stack_set_ids)
    pulumi.export("resourceShareArns", automation.resource_share_arns)
    pulumi.export("memberRoleName", automation.member_role_name)
    if args.get("operator_principal_arns"):
        pulumi.export("readOnlyRoleName", automation.read_only_role_name)
