"""`TrafficMirrorAutomation`: one `pulumi up` deploys the automation to every listed region.

Regional resources use pulumi-aws v7's per-resource `region` argument rather than one
provider per region (each provider is a process of about 170 MB), so the component takes the
same providers as any other resource: pass `opts=ResourceOptions(providers=...)` to deploy
into another account.
"""

from collections.abc import Sequence
from typing import NotRequired, Required, TypedDict

import pulumi
import pulumi_aws as aws

from . import config, packaging, regional, role, trail

TYPE_TOKEN = "traffic-mirror:index:TrafficMirrorAutomation"

_instances_by_region: dict[tuple[int, str, str], str] = {}
"""(program run, region, managed_by) -> component name, to warn about two instances fighting over sessions."""


class TrafficMirrorAutomationArgs(TypedDict, total=False):
    """Arguments of TrafficMirrorAutomation; only `regions` is required."""

    regions: Required[Sequence[str]]
    """AWS regions to deploy to, e.g. ["us-east-1", "eu-west-1"]. Order does not matter."""
    home_region: NotRequired[str | None]
    """Region of the CloudTrail trail and its bucket. Default: the provider's `aws:region`, else the first listed region."""
    tag_key: NotRequired[str | None]
    """Instance/ENI tag key the handler reads (opt in with `scope: tagged`, opt out with value false). Default "Mirror"."""
    filter_id: NotRequired[str | None]
    """Traffic mirror filter (tmf-...) for new sessions. Default: the handler picks the region's filter."""
    scope: NotRequired[str | None]
    """"all" mirrors every ENI, "tagged" only those tagged with tag_key. Default "all"."""
    session_number: NotRequired[int | None]
    """Session number (1-32766) for new sessions; lower numbers win on an ENI. Default 1."""
    vni: NotRequired[int | None]
    """VXLAN network identifier (1-16777215) for new sessions. Default: AWS assigns one."""
    packet_length: NotRequired[int | None]
    """Bytes of each packet to mirror (1-8500). Default: the whole packet."""
    managed_by: NotRequired[str | None]
    """Value of the ManagedBy tag on sessions this instance creates; the role may only delete or modify sessions carrying it. Default "traffic-mirror-automation"."""
    release_on_stop: NotRequired[bool | None]
    """Delete an instance's sessions when it stops or an ENI is detached. Default false."""
    dry_run: NotRequired[bool | None]
    """Log what the handler would do without creating or deleting sessions. Default false."""
    existing_trail_arn: NotRequired[str | None]
    """Use this trail (e.g. an organization trail) instead of creating one with its bucket. Default: create one."""
    log_expiration_days: NotRequired[int | None]
    """Delete CloudTrail log files from the created bucket after this many days. Default: keep them."""
    force_destroy_trail_bucket: NotRequired[bool | None]
    """Let `pulumi destroy` delete the trail bucket with the logs in it. Default false."""
    runtime: NotRequired[str | None]
    """Lambda runtime: python3.12, python3.13 or python3.14. Default python3.13."""
    timeout_seconds: NotRequired[int | None]
    """Lambda timeout in seconds (30-900); the event queue's visibility timeout is this plus 30. Default 300."""
    memory_size_mb: NotRequired[int | None]
    """Lambda memory in MB (128-10240). Default 256."""
    max_concurrency: NotRequired[int | None]
    """Most concurrent Lambda invocations the event queue may drive per region (2-1000). Default 2."""
    log_retention_days: NotRequired[int | None]
    """Retention of the Lambda's log group, in days (a CloudWatch Logs value). Default 30."""
    log_level: NotRequired[str | None]
    """Lambda application log level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL). Default INFO."""
    sweep_schedule: NotRequired[str | None]
    """EventBridge schedule of the periodic sweep. Default "rate(5 minutes)"."""
    sweep_grace_seconds: NotRequired[int | None]
    """The scheduled sweep leaves ENIs attached less than this many seconds ago to their own events (0-3600). Default 60."""
    initial_sweep: NotRequired[bool | None]
    """Invoke a sweep right after deploy (and after code or setting changes), so existing instances are covered. Default true."""
    alarm_topic_arns: NotRequired[Sequence[str] | None]
    """SNS topics notified by the alarms; each region's alarms use the topics in that region. Default: none."""


class TrafficMirrorAutomation(pulumi.ComponentResource):
    """Automated VPC Traffic Mirroring: CloudTrail, EventBridge, SQS and a Lambda in every listed region."""

    function_arns: pulumi.Output[dict[str, str]]
    """Lambda function ARN per region."""
    role_arn: pulumi.Output[str]
    """ARN of the Lambda's execution role (shared by all regions)."""
    trail_arn: pulumi.Output[str]
    """ARN of the CloudTrail trail: the created one, or existing_trail_arn."""
    bucket_name: pulumi.Output[str | None]
    """Name of the trail's S3 bucket; null when an existing trail is used."""
    dead_letter_queue_urls: pulumi.Output[dict[str, str]]
    """Dead-letter queue URL per region: failed events end up here."""
    event_queue_urls: pulumi.Output[dict[str, str]]
    """Event queue URL per region: what EventBridge sends and the Lambda consumes."""

    def __init__(
        self,
        name: str,
        args: TrafficMirrorAutomationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        options = config.resolve(dict(args), default_home_region=pulumi.Config("aws").get("region"))
        own = regional.own_names(name)
        role.check_policy_fits(options, own)
        self._warn_if_overlapping(name, options)

        super().__init__(TYPE_TOKEN, name, {}, opts)

        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        if options.create_trail:
            created = trail.create_trail(name, options, partition, account, parent=self)
            trail_arn: pulumi.Output[str] = created.trail_arn
            bucket_name: pulumi.Output[str | None] = created.bucket.bucket.apply(lambda b: b)
        else:
            trail_arn = pulumi.Output.from_input(options.existing_trail_arn or "")
            bucket_name = pulumi.Output.from_input(None)

        execution_role = role.create_role(name, account, parent=self)
        role_policy = role.create_role_policy(name, execution_role, options, partition, account, own, parent=self)
        plumbing = {region: regional.create_plumbing(name, region, options, parent=self) for region in options.regions}

        code = packaging.code_archive()
        code_sha256 = packaging.code_hash()
        functions = {
            region: regional.create_function(
                name, p, options, execution_role, role_policy, code, code_sha256, account, parent=self
            )
            for region, p in plumbing.items()
        }

        self.function_arns = pulumi.Output.all(**{r: f.function.arn for r, f in functions.items()})
        self.role_arn = execution_role.arn
        self.trail_arn = trail_arn
        self.bucket_name = bucket_name
        self.dead_letter_queue_urls = pulumi.Output.all(**{r: p.dead_letter_queue.url for r, p in plumbing.items()})
        self.event_queue_urls = pulumi.Output.all(**{r: p.queue.url for r, p in plumbing.items()})
        self.register_outputs(
            {
                "function_arns": self.function_arns,
                "role_arn": self.role_arn,
                "trail_arn": self.trail_arn,
                "bucket_name": self.bucket_name,
                "dead_letter_queue_urls": self.dead_letter_queue_urls,
                "event_queue_urls": self.event_queue_urls,
            }
        )

    @staticmethod
    def _warn_if_overlapping(name: str, options: config.Options) -> None:
        """Two instances with the same managed_by in one region would each delete the other's sessions."""
        run = id(pulumi.runtime.get_root_resource())
        for region in options.regions:
            other = _instances_by_region.setdefault((run, region, options.managed_by), name)
            if other != name:
                pulumi.log.warn(
                    f"TrafficMirrorAutomation {name!r} and {other!r} both manage {region} with "
                    f"managed_by={options.managed_by!r}; give each instance its own managed_by "
                    "(and session_number) or its own regions"
                )
