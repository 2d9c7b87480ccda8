"""The naive baseline: a Python port of the blog post's RunInstances Lambda (the benchmark's yardstick).

Source: "Automated Traffic Mirroring in AWS" (ExtraHop, part 1 of the series; the text is kept
at /work/shared/seed/automated-traffic-mirroring-in-aws.txt). Its algorithm, per instance of the
event and with the instances handled concurrently (`Promise.all`):

1. DescribeTrafficMirrorTargets, no filter, one page;
2. DescribeNetworkInterfaces of those targets' ENIs; drop targets outside the instance's AZ;
3. per ENI of the instance pick a target: same subnet (first wins) > same VPC (last wins) >
   the first target left;
4. DescribeTrafficMirrorFilters, no filter, and take the first one returned;
5. CreateTrafficMirrorSession per ENI, concurrently: SessionNumber 1, Description
   'Automated Mirror Session', a Name tag when the instance has one.

Its flaws are kept on purpose, because it is the baseline: the same three reads are repeated
for every instance of the event; the filter is "the first one"; the instance-type test is the
post's 2019 list; there is no idempotency (no ClientToken, no look at existing sessions), so a
redelivered event fails on the session number already in use; one failed instance fails the
whole invocation (the JS `Promise.all(...).catch`), which Lambda then retries in full.

Client: `make_client` uses botocore's *standard* retry mode with 4 attempts in all, the
closest match to the post's aws-sdk-js v2 default (`maxRetries: 3`, exponential backoff). The
benchmark never throttles, so the retry mode only matters on real AWS.
"""

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

NAIVE_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 4})
"""aws-sdk-js v2's default for EC2: 3 retries after the first try."""

NITRO_FAMILIES = ("a1", "t3", "t3a", "m6g", "m5", "m5a", "m5n")
"""The post's `isNitro` list, as published (stale: most Nitro families are missing)."""
DESCRIPTION = "Automated Mirror Session"


class NaiveError(RuntimeError):
    """The JS `stop(...)`: a rejected promise for one instance."""


def make_client(region: str = "us-east-1", endpoint_url: str | None = None) -> Any:
    """`new AWS.EC2()` at the top of the post's module: boto3's default session, standard retries."""
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint_url, config=NAIVE_CONFIG)


def is_nitro(instance: Mapping[str, Any]) -> bool:
    """The post's `isNitro`: hypervisor 'nitro', or a family in its short list."""
    if instance.get("hypervisor") == "nitro":
        return True
    family = str(instance.get("instanceType", "")).split(".")[0]
    return family in NITRO_FAMILIES


def _items(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.get("items") or [])
    return []


def get_tags(tag_set: Any) -> dict[str, str]:
    """The post's `getTags` (it returns `false` for no tags; an empty dict here)."""
    return {tag["key"]: tag.get("value", "") for tag in tag_set or []}


def get_nics(network_interface_set: Any) -> list[dict[str, Any]]:
    """The post's `getNics`: id, subnet and VPC of each ENI named in the event."""
    return [
        {
            "id": nic.get("networkInterfaceId") or nic.get("NetworkInterfaceId"),
            "subnet": nic.get("subnetId") or nic.get("SubnetId"),
            "vpc": nic.get("vpcId") or nic.get("VpcId"),
            "target": None,
        }
        for nic in network_interface_set or []
    ]


def create_traffic_mirror_session(instance: Mapping[str, Any], ec2: Any) -> list[str]:
    """One instance, exactly as the post does it: three reads, then one create per ENI."""
    az = (instance.get("placement") or {}).get("availabilityZone")
    nics = get_nics(_items(instance.get("networkInterfaceSet")))
    if not nics:
        return []
    tags = get_tags(_items(instance.get("tagSet")))

    # Every traffic mirror target of the region (one page, no filter), keyed by ENI. A load
    # balancer target has no ENI: JS keys it "undefined", and the next call then fails.
    data = ec2.describe_traffic_mirror_targets()
    targets: dict[str, dict[str, Any]] = {
        t.get("NetworkInterfaceId") or "undefined": {"id": t["TrafficMirrorTargetId"]}
        for t in data["TrafficMirrorTargets"]
    }

    # Full detail of each target ENI; targets in another AZ are dropped.
    data = ec2.describe_network_interfaces(NetworkInterfaceIds=list(targets))
    for eni in data["NetworkInterfaces"]:
        if eni["AvailabilityZone"] != az:
            targets.pop(eni["NetworkInterfaceId"], None)
            continue
        targets[eni["NetworkInterfaceId"]] = {
            "id": targets[eni["NetworkInterfaceId"]]["id"],
            "subnet": eni.get("SubnetId"),
            "vpc": eni.get("VpcId"),
        }
    candidates = list(targets.values())
    if not candidates:
        raise NaiveError(f"No Traffic Mirror Targets Available [availabilityZone]: {az}")
    for nic in nics:
        for target in candidates:
            if target.get("subnet") == nic["subnet"]:  # a local target is always ideal
                nic["target"] = target["id"]
                break
            if target.get("vpc") == nic["vpc"]:  # by VPC until something better is found
                nic["target"] = target["id"]
        if not nic["target"]:
            nic["target"] = candidates[0]["id"]

    # Every filter of the region; the first one wins.
    data = ec2.describe_traffic_mirror_filters()
    if not data.get("TrafficMirrorFilters"):
        raise NaiveError(f"No Traffic Mirror Filters Available [availabilityZone]: {az}")
    filter_id = data["TrafficMirrorFilters"][0]["TrafficMirrorFilterId"]

    def create(nic: Mapping[str, Any]) -> str:
        params: dict[str, Any] = {
            "NetworkInterfaceId": nic["id"],
            "TrafficMirrorTargetId": nic["target"],
            "TrafficMirrorFilterId": filter_id,
            "SessionNumber": 1,
            "Description": DESCRIPTION,
        }
        if tags.get("Name"):
            params["TagSpecifications"] = [
                {"ResourceType": "traffic-mirror-session", "Tags": [{"Key": "Name", "Value": tags["Name"]}]}
            ]
        response = ec2.create_traffic_mirror_session(**params)
        return str(response["TrafficMirrorSession"]["TrafficMirrorSessionId"])

    # Promise.all over the ENIs: every create starts at once.
    with ThreadPoolExecutor(max_workers=len(nics)) as pool:
        futures = [pool.submit(create, nic) for nic in nics]
    return _settle(futures)


def _settle(futures: list[Any]) -> list[str]:
    """Promise.all: every promise runs to its end; the first rejection (in order) is the answer."""
    done: list[Any] = []
    error: BaseException | None = None
    for future in futures:
        failure = future.exception()
        if failure is None:
            result = future.result()
            done.extend(result if isinstance(result, list) else [result])
        elif error is None:
            error = failure
    if error is not None:
        raise error
    return done


def naive_handler(event: Mapping[str, Any], ec2: Any) -> dict[str, Any]:
    """The post's `exports.handler` for an EventBridge event; `ec2` is its module-level client.

    Returns `{"ok", "message", "sessions", "errors"}`: `ok` False is the JS `context.fail`
    (an invocation error Lambda retries). `sessions` holds every session created, including
    those of instances that succeeded before another one failed.
    """
    detail = event.get("detail") or {}
    if detail.get("eventName") != "RunInstances":
        return _answer(False, f"Unsupported Event [eventName]: {detail.get('eventName')}")
    if not detail.get("responseElements"):
        return _answer(False, "API Request Only [responseElements]")
    instances = [i for i in _items(detail["responseElements"].get("instancesSet")) if is_nitro(i)]
    if not instances:
        return _answer(False, "No instances to work on [isNitro]")

    created: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(instance: Mapping[str, Any]) -> list[str]:
        try:
            ids = create_traffic_mirror_session(instance, ec2)
        except Exception as error:  # the promise rejects; the others keep running
            with lock:
                errors.append(f"{instance.get('instanceId')}: {error}")
            raise
        with lock:
            created.extend(ids)
        return ids

    with ThreadPoolExecutor(max_workers=len(instances)) as pool:
        futures = [pool.submit(one, instance) for instance in instances]
    try:
        _settle(futures)
    except Exception as error:
        return _answer(False, f"Unexpected Error: {error}", created, errors)
    return _answer(True, f"VPC Traffic Mirror Sessions Enabled for ({len(instances)}) instance(s)", created)


def _answer(
    ok: bool, message: str, sessions: list[str] | None = None, errors: list[str] | None = None
) -> dict[str, Any]:
    return {"ok": ok, "message": message, "sessions": sorted(sessions or []), "errors": errors or []}
