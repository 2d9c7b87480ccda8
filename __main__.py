"""The Pulumi program: read the stack's config, build the component, export its outputs."""

import pulumi

from components import TrafficMirrorAutomation
from components.config import args_from_config

automation = TrafficMirrorAutomation("mirror", args_from_config(pulumi.Config()))  # type: ignore[arg-type]

pulumi.export("functionArns", automation.function_arns)
pulumi.export("roleArn", automation.role_arn)
pulumi.export("trailArn", automation.trail_arn)
pulumi.export("bucketName", automation.bucket_name)
pulumi.export("deadLetterQueueUrls", automation.dead_letter_queue_urls)
pulumi.export("eventQueueUrls", automation.event_queue_urls)
