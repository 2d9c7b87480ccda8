"""`TrafficMirrorAutomation`: one `pulumi up` deploys the automation to every listed region.

Regional resources use pulumi-aws v7's per-resource `region` argument rather than one
provider per region (each provider is a process of about 170 MB), so the component takes the
same providers as any other resource: pass `opts=ResourceOptions(providers=...)` to deploy
into another account.
"""

import pulumi
import pulumi_aws as aws

from . import config, dashboard, managed_by, organization, packaging, regional, role, sensors, trail
from . import filter as mirror_filter
from .args import TrafficMirrorAutomationArgs

TYPE_TOKEN = "traffic-mirror:index:TrafficMirrorAutomation"

_instances_by_region: dict[tuple[int, str, str], str] = {}
"""(program run, region, managed_by) -> component name, to warn about two instances fighting over sessions."""


class TrafficMirrorAutomation(pulumi.ComponentResource):
    """Automated VPC Traffic Mirroring: CloudTrail, EventBridge, SQS and a Lambda in every listed region."""

    function_arns: pulumi.Output[dict[str, str]]
    """Lambda function ARN per region."""
    function_names: pulumi.Output[dict[str, str]]
    """Lambda function name per region (e.g. to invoke a sweep or read its logs)."""
    filter_ids: pulumi.Output[dict[str, str]]
    """The deployment's own traffic mirror filter id per region; empty when filter_id is given or create_filter is false."""
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
    member_stack_set_ids: pulumi.Output[dict[str, str]]
    """Organization coverage: the member stack sets' ids ("regional", "account"); empty without organization_units."""
    resource_share_arns: pulumi.Output[dict[str, str]]
    """Organization coverage: the RAM share of the hub's sensors, per region that has sensors to share."""
    member_role_name: pulumi.Output[str | None]
    """Organization coverage: the role the handler assumes in member accounts; null without organization_units."""
    read_only_role_name: pulumi.Output[str | None]
    """Organization coverage with operator_principal_arns: the read-only role operators assume in member accounts
    (traffic-mirror plan/coverage --account ID --member-role-name <this>); null otherwise."""

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
            trail_arn = pulumi.Output.from_input(options.deployment.existing_trail_arn or "")
            bucket_name = pulumi.Output.from_input(None)

        execution_role = role.create_role(name, partition, account, own, parent=self)
        role_policy = role.create_role_policy(name, execution_role, options, partition, account, own, parent=self)

        # --- organization coverage (organization.py): nothing of it without organization_units ---
        org = organization.lookup(self) if options.organization else None
        buses = organization.create_buses(name, options, org, partition, parent=self) if org else {}
        self.member_stack_set_ids = pulumi.Output.from_input({})
        self.resource_share_arns = pulumi.Output.from_input({})
        self.member_role_name = pulumi.Output.from_input(None)
        self.read_only_role_name = pulumi.Output.from_input(None)
        footprint: list[pulumi.Resource] = []
        if org is not None:
            organization.create_hub_permissions(name, options, org, partition, execution_role, parent=self)
            self.member_stack_set_ids, footprint = organization.create_member_footprint(
                name, options, org, account, partition, execution_role, parent=self
            )
            self.resource_share_arns = organization.create_shares(name, options, org, partition, parent=self)
            self.member_role_name = pulumi.Output.from_input(options.settings.member_role_name)
            self.read_only_role_name = pulumi.Output.from_input(organization.read_only_role(options))

        plumbing = {
            region: regional.create_plumbing(
                name, region, options, execution_role.arn, parent=self, member_bus=buses.get(region)
            )
            for region in options.regions
        }
        mirroring = {region: self._mirroring(name, region, options, footprint) for region in options.regions}

        code = packaging.code_archive(runtime=options.deployment.runtime)
        code_sha256 = packaging.code_hash()
        functions = {
            region: regional.create_function(
                name,
                p,
                options,
                execution_role,
                role_policy,
                code,
                code_sha256,
                account,
                mirroring[region],
                managed_by.guard(
                    regional.function_name(name, region),
                    region,
                    options.settings.managed_by,
                    options.deployment.allow_managed_by_change,
                    parent=self,
                ),
                parent=self,
            )
            for region, p in plumbing.items()
        }
        for region, f in functions.items():
            if options.deployment.dashboard:
                dashboard.create_dashboard(
                    name, region, f.function, plumbing[region].queue, plumbing[region].dead_letter_queue, parent=self
                )
            dashboard.create_coverage_alarm(name, region, options, f.function, parent=self)
            dashboard.create_unusable_targets_alarm(name, region, options, f.function, parent=self)

        self.function_arns = pulumi.Output.all(**{r: f.function.arn for r, f in functions.items()})
        self.function_names = pulumi.Output.all(**{r: f.function.name for r, f in functions.items()})
        owned_filters = {r: m.filter_id for r, m in mirroring.items() if m.filter_id is not None}
        self.filter_ids = pulumi.Output.all(**owned_filters) if owned_filters else pulumi.Output.from_input({})
        self.role_arn = execution_role.arn
        self.trail_arn = trail_arn
        self.bucket_name = bucket_name
        self.dead_letter_queue_urls = pulumi.Output.all(**{r: p.dead_letter_queue.url for r, p in plumbing.items()})
        self.event_queue_urls = pulumi.Output.all(**{r: p.queue.url for r, p in plumbing.items()})
        self.register_outputs(
            {
                "function_arns": self.function_arns,
                "function_names": self.function_names,
                "filter_ids": self.filter_ids,
                "role_arn": self.role_arn,
                "trail_arn": self.trail_arn,
                "bucket_name": self.bucket_name,
                "dead_letter_queue_urls": self.dead_letter_queue_urls,
                "event_queue_urls": self.event_queue_urls,
                "member_stack_set_ids": self.member_stack_set_ids,
                "resource_share_arns": self.resource_share_arns,
                "member_role_name": self.member_role_name,
                "read_only_role_name": self.read_only_role_name,
            }
        )

    def _mirroring(
        self, name: str, region: str, options: config.Options, footprint: list[pulumi.Resource]
    ) -> regional.RegionMirroring:
        """The region's owned filter (unless a filter is given) and its sensors' targets."""
        managed = options.settings.managed_by
        resources: list[pulumi.Resource] = list(
            sensors.create_targets(name, region, options.sensors, options.settings.tag_key, managed, parent=self)
        )
        filter_id: pulumi.Output[str] | None = None
        if options.owns_filter:
            owned, rules = mirror_filter.create_filter(
                name, region, options.filter_rules, options.deployment.filter_mirror_amazon_dns, managed, parent=self
            )
            filter_id = owned.id
            resources += [owned, *rules]
        return regional.RegionMirroring(filter_id=filter_id, resources=resources, footprint=footprint)

    @staticmethod
    def _warn_if_overlapping(name: str, options: config.Options) -> None:
        """Two instances with the same managed_by in one region would each delete the other's sessions."""
        run = id(pulumi.runtime.get_root_resource())
        for region in options.regions:
            other = _instances_by_region.setdefault((run, region, options.settings.managed_by), name)
            if other != name:
                pulumi.log.warn(
                    f"TrafficMirrorAutomation {name!r} and {other!r} both manage {region} with "
                    f"managed_by={options.settings.managed_by!r}; give each instance its own managed_by "
                    "(and session_number) or its own regions"
                )
