"""Run a Pulumi program under the SDK's mocks and keep every registered resource's inputs.

Pitfalls this avoids:
- `preview=False`: in a preview an `apply` on unknown values never runs, so assertions on
  policy documents or event patterns would silently see nothing;
- realistic computed outputs (`arn`, `id`, `name`, `url`, `bucket`): an input built from an
  output the mock does not return is dropped without a word;
- one fresh event loop and a fresh root stack per run, so runs don't leak into each other;
- the run waits for every outstanding RPC before returning, so all resources are recorded.
"""

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func

ACCOUNT = "123456789012"
PARTITION = "aws"
PROVIDER_REGION = "us-east-1"
"""The region of the default provider: where a resource without `region=` would land."""
PROJECT = "traffic-mirror-automation"
STACK = "test"
ORGANIZATION_ID = "o-exampleorg1"
MANAGEMENT_ACCOUNT = "999999999999"
ORGANIZATION_ARN = f"arn:{PARTITION}:organizations::{MANAGEMENT_ACCOUNT}:organization/{ORGANIZATION_ID}"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    parent_urn: str
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on (inputs and depends_on): Pulumi deletes it before them."""
    retain_on_delete: bool = False
    """`pulumi destroy` leaves it in the cloud (only the stack forgets it)."""

    def depends_on(self, name: str) -> bool:
        return any(urn.endswith(f"::{name}") for urn in self.dependencies)

    @property
    def region(self) -> str | None:
        return self.inputs.get("region")

    def json_input(self, key: str) -> Any:
        """A JSON-string input (policies, event patterns) as Python data."""
        return json.loads(self.inputs[key])


def _suffix(name: str) -> str:
    """Pulumi-like auto-name suffix, stable per logical name."""
    return hashlib.sha256(name.encode()).hexdigest()[:7]


class RecordingMocks(Mocks):
    """Returns realistic ARNs and names per resource type, and records every registration."""

    def __init__(
        self,
        tagged_targets: dict[str, list[tuple[str, dict[str, str]]]] | None = None,
        existing_functions: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.tagged_targets = tagged_targets or {}
        """Region -> (ARN, tags) of traffic mirror targets the tagging API finds (organization sharing)."""
        self.existing_functions = dict(existing_functions or {})
        """Lambda functions already deployed (name -> environment), for the data sources."""
        self.resources: list[Registered] = []
        self.calls: list[MockCallArgs] = []
        self._parents: dict[tuple[str, str], str] = {}
        self._dependencies: dict[tuple[str, str], tuple[str, ...]] = {}
        self._retained: dict[tuple[str, str], bool] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region") or PROVIDER_REGION
        auto = inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
        outputs: dict[str, Any] = {**inputs, "region": region}
        resource_id = f"{args.name}-id"
        typ = args.typ
        if typ == "aws:iam/role:Role":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{auto}"}
            resource_id = auto
        elif typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{auto}"
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:sqs:{region}:{ACCOUNT}:{auto}", "url": url}
            resource_id = url
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:events:{region}:{ACCOUNT}:rule/{auto}"}
            resource_id = auto
        elif typ == "aws:lambda/function:Function":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:lambda:{region}:{ACCOUNT}:function:{auto}"}
            resource_id = auto
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:logs:{region}:{ACCOUNT}:log-group:{auto}"}
            resource_id = auto
        elif typ == "aws:s3/bucket:Bucket":
            bucket = auto.lower()
            outputs |= {"bucket": bucket, "arn": f"arn:{PARTITION}:s3:::{bucket}"}
            resource_id = bucket
        elif typ == "aws:cloudtrail/trail:Trail":
            outputs |= {"arn": f"arn:{PARTITION}:cloudtrail:{region}:{ACCOUNT}:trail/{auto}"}
            resource_id = auto
        elif typ == "aws:ec2/trafficMirrorFilter:TrafficMirrorFilter":
            resource_id = f"tmf-{_suffix(args.name)}0000000000"
            outputs |= {"arn": f"arn:{PARTITION}:ec2:{region}:{ACCOUNT}:traffic-mirror-filter/{resource_id}"}
        elif typ == "aws:ec2/trafficMirrorTarget:TrafficMirrorTarget":
            resource_id = f"tmt-{_suffix(args.name)}0000000000"
            outputs |= {"arn": f"arn:{PARTITION}:ec2:{region}:{ACCOUNT}:traffic-mirror-target/{resource_id}"}
        elif typ == "aws:cloudwatch/dashboard:Dashboard":
            outputs |= {"dashboardArn": f"arn:{PARTITION}:cloudwatch::{ACCOUNT}:dashboard/{inputs.get('dashboardName')}"}
        elif typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
            outputs |= {"uuid": _suffix(args.name)}
        # organization coverage
        elif typ == "aws:cloudwatch/eventBus:EventBus":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:events:{region}:{ACCOUNT}:event-bus/{auto}"}
            resource_id = auto
        elif typ == "aws:cloudformation/stackSet:StackSet":
            stack_set_id = f"{auto}:{_suffix(args.name)}"
            outputs |= {"name": auto, "stackSetId": stack_set_id,
                        "arn": f"arn:{PARTITION}:cloudformation:{region}:{ACCOUNT}:stackset/{stack_set_id}"}  # fmt: skip
            resource_id = auto
        elif typ == "aws:ram/resourceShare:ResourceShare":
            outputs |= {"arn": f"arn:{PARTITION}:ram:{region}:{ACCOUNT}:resource-share/{_suffix(args.name)}"}
            resource_id = outputs["arn"]
        elif typ == "aws:iam/policy:Policy":
            outputs |= {"name": auto, "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{auto}"}
            resource_id = outputs["arn"]
        self.resources.append(
            Registered(
                type=typ,
                name=args.name,
                inputs=inputs,
                outputs={**outputs, "id": resource_id},  # the id as other resources see it (`.id`)
                custom=bool(args.custom),
                parent_urn=self._parents.get((typ, args.name), ""),
                dependencies=self._dependencies.get((typ, args.name), ()),
                retain_on_delete=self._retained.get((typ, args.name), False),
            )
        )
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:{PARTITION}:iam::{ACCOUNT}:user/deployer",
                "userId": "AIDAEXAMPLE",
                "id": ACCOUNT,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": PARTITION,
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": PARTITION,
            }, []
        if args.token == "aws:lambda/getFunctions:getFunctions":
            names = sorted(self.existing_functions)
            return {"functionNames": names, "functionArns": [f"arn:{PARTITION}:lambda:x:{ACCOUNT}:function:{n}" for n in names],
                    "id": "functions"}, []  # fmt: skip
        if args.token == "aws:lambda/getFunction:getFunction":
            name = args.args["functionName"]
            return {"functionName": name, "environment": {"variables": dict(self.existing_functions[name])}}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": PROVIDER_REGION, "region": PROVIDER_REGION, "id": PROVIDER_REGION}, []
        if args.token == "aws:organizations/getOrganization:getOrganization":
            return {
                "id": ORGANIZATION_ID,
                "arn": ORGANIZATION_ARN,
                "masterAccountId": MANAGEMENT_ACCOUNT,
                "masterAccountArn": f"arn:{PARTITION}:organizations::{MANAGEMENT_ACCOUNT}:account/{ORGANIZATION_ID}/{MANAGEMENT_ACCOUNT}",
                "masterAccountEmail": "management@example.com",
                "masterAccountName": "management",
                "featureSet": "ALL",
            }, []
        if args.token == "aws:resourcegroupstaggingapi/getResources:getResources":
            region = args.args.get("region") or PROVIDER_REGION
            found = self.tagged_targets.get(region, [])
            mappings = [{"resourceArn": arn, "tags": tags, "complianceDetails": []} for arn, tags in found]
            return {"id": region, "region": region, "resourceTagMappingLists": mappings}, []
        raise NotImplementedError(f"the test mocks don't know the invoke {args.token}")


class RecordingMonitor(MockMonitor):
    """Also remembers each resource's parent, which the plain mock does not pass on."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self.recording._parents[(request.type, request.name)] = request.parent
        self.recording._dependencies[(request.type, request.name)] = tuple(request.dependencies)
        self.recording._retained[(request.type, request.name)] = bool(request.retainOnDelete)
        return super().RegisterResource(request)


@dataclass
class Run:
    resources: list[Registered]
    result: Any
    exports: dict[str, Any]
    invokes: list[str] = field(default_factory=list)
    """The tokens of every invoke (data source) the program made, in order."""

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Registered:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name!r}"
        return matches[0]

    def custom(self) -> Iterator[Registered]:
        return (r for r in self.resources if r.custom)


def run_program(
    build: Callable[[], Any],
    config: dict[str, Any] | None = None,
    aws_config: dict[str, Any] | None = None,
    tagged_targets: dict[str, list[tuple[str, dict[str, str]]]] | None = None,
    existing_functions: Mapping[str, Mapping[str, str]] | None = None,
) -> Run:
    """Run `build` as a Pulumi program with mocks; config keys are the project's (no namespace).

    `existing_functions` (name -> environment) are what the Lambda data sources find deployed.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_quiet_about_unretrieved)
    mocks = RecordingMocks(tagged_targets, existing_functions)
    exports: dict[str, Any] = {}
    holder: dict[str, Any] = {}
    try:
        runtime_settings.ROOT.set(None)
        all_config = {f"{PROJECT}:{key}": _config_value(value) for key, value in (config or {}).items()}
        all_config |= {f"aws:{key}": _config_value(value) for key, value in (aws_config or {}).items()}
        pulumi.runtime.set_all_config(all_config)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=STACK, preview=False, monitor=RecordingMonitor(mocks)
        )

        real_export = pulumi.export

        def program() -> None:
            pulumi.export = lambda name, value: exports.__setitem__(name, value)
            try:
                holder["result"] = build()
            finally:
                pulumi.export = real_export

        loop.run_until_complete(run_pulumi_func(program))
        resolved = {key: _resolve(loop, value) for key, value in exports.items()}
    finally:
        pulumi.runtime.set_all_config({})
        # A program that failed half-way leaves tasks behind: cancel them, so the next run's
        # wait for outstanding outputs does not meet tasks of a closed loop.
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        runtime_settings.SETTINGS.outputs.clear()
        loop.close()
        asyncio.set_event_loop(None)
    return Run(resources=mocks.resources, result=holder.get("result"), exports=resolved, invokes=[c.token for c in mocks.calls])


def _quiet_about_unretrieved(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A program that fails raises once from `run_program`; the SDK's many futures that carried the
    same error would each print it again when collected."""
    if "never retrieved" not in str(context.get("message", "")):
        loop.default_exception_handler(context)


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _resolve(loop: asyncio.AbstractEventLoop, value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        return loop.run_until_complete(value.future())
    return value

