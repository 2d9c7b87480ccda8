"""Events as AWS delivers them: real CloudTrail records with moto's ids swapped in, and the
EventBridge envelopes (CloudTrail, EC2 state change, the sweep's schedule) around them."""

import copy
import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "tests" / "events"
"""Real CloudTrail and EventBridge records, kept in the repository (provenance in its SOURCES.md)."""
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
TIME = "2026-11-27T12:00:00Z"
SWEEP_RULE = "traffic-mirror-sweep"


def load_record(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS_DIR / name).read_text()))


DEFAULT_ACCOUNT = ACCOUNT_ID
"""moto's account: the one a test's own credentials (and the handler's) act in."""


def wrap(
    record: Mapping[str, Any],
    region: str | None = None,
    event_id: str | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """What EventBridge delivers for a CloudTrail record, which happened in `account`.

    Real records come from other people's accounts: like their ids, the account is swapped for
    the test's, else the handler rightly rejects them as another account's events.
    """
    if "detail" in record:
        return dict(record)
    return {
        "version": "0",
        "id": event_id or str(record.get("eventID", "00000000-0000-0000-0000-000000000000")),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": account,
        "time": TIME,
        "region": region or str(record.get("awsRegion", REGION)),
        "resources": [],
        "detail": {**record, "recipientAccountId": account},
    }


def run_instances_record(
    instances: Sequence[Mapping[str, Any]],
    template: str = "RunInstances__elastic-integrations__1.json",
    event_id: str = "launch-1",
) -> dict[str, Any]:
    """A real RunInstances record's shape with moto's instances swapped in (all ENIs of each)."""
    record = load_record(template)
    item_template = record["responseElements"]["instancesSet"]["items"][0]
    eni_template = item_template["networkInterfaceSet"]["items"][0]
    items = []
    for inst in instances:
        item = copy.deepcopy(item_template)
        item.update(
            instanceId=inst["InstanceId"],
            instanceType=inst["InstanceType"],
            subnetId=inst["SubnetId"],
            vpcId=inst["VpcId"],
        )
        item["placement"]["availabilityZone"] = inst["Placement"]["AvailabilityZone"]
        tags = inst.get("Tags") or []
        item["tagSet"] = {"items": [{"key": t["Key"], "value": t["Value"]} for t in tags]} if tags else {}
        enis = []
        for eni in inst["NetworkInterfaces"]:
            entry = copy.deepcopy(eni_template)
            entry.update(
                networkInterfaceId=eni["NetworkInterfaceId"], subnetId=eni["SubnetId"], vpcId=eni["VpcId"]
            )
            enis.append(entry)
        item["networkInterfaceSet"] = {"items": enis}
        items.append(item)
    record["responseElements"]["instancesSet"]["items"] = items
    record["eventID"] = event_id
    record["awsRegion"] = instances[0]["Placement"]["AvailabilityZone"][:-1] if instances else "us-east-1"
    return record


def scheduled(event_id: str | None = None, region: str = REGION, rule: str | None = SWEEP_RULE) -> dict[str, Any]:
    """The sweep's schedule firing; `rule=None`: the same event sent by hand (no rule in `resources`)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": TIME,
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule}"] if rule else [],
        "detail": {},
    }


def state_change(
    instance_id: str, state: str = "running", event_id: str | None = None, region: str = REGION, time: str = TIME
) -> dict[str, Any]:
    """EC2's own instance state-change notification (no trail needed), as EventBridge delivers it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": ACCOUNT_ID,
        "time": time,
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:{ACCOUNT_ID}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


def api_call(
    name: str,
    request: Mapping[str, Any],
    service: str = "ec2",
    event_id: str | None = None,
    region: str = REGION,
    account: str = DEFAULT_ACCOUNT,
) -> dict[str, Any]:
    """A successful API call as CloudTrail records it and EventBridge delivers it (`source` is
    `aws.<service>`): for the calls no real record of is kept in tests/events (ELB's, and EC2's
    traffic-mirror calls, whose parameters CloudTrail nests in `<Action>Request`, as the kept
    CreateTrafficMirrorSession records show)."""
    record_id = event_id or str(uuid.uuid4())
    return {
        "version": "0",
        "id": record_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": f"aws.{service}",
        "account": account,
        "time": TIME,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/operator", "accountId": account},
            "eventTime": TIME,
            "eventSource": f"{service}.amazonaws.com",
            "eventName": name,
            "awsRegion": region,
            "requestParameters": dict(request),
            "responseElements": None,
            "eventID": record_id,
            "eventType": "AwsApiCall",
            "recipientAccountId": account,
        },
    }


SERVICE_ENI_TEMPLATE = "CreateNetworkInterface__awsdocs-amazon-efs-user-guide__1.json"
"""A real CreateNetworkInterface made by a service (EFS, from AWS's documentation)."""


def create_network_interface_record(
    eni: Mapping[str, Any],
    caller: str = "elasticloadbalancing.amazonaws.com",
    event_id: str = "eni-created-1",
    account: str = ACCOUNT_ID,
) -> dict[str, Any]:
    """The EFS record's shape, made by `caller` (a service's host name, or an IP for a person), for
    an ENI as DescribeNetworkInterfaces shows it: its ids, subnet, VPC, AZ and description swapped in."""
    record = load_record(SERVICE_ENI_TEMPLATE)
    record["sourceIPAddress"] = record["userAgent"] = caller
    record["recipientAccountId"] = account
    record["userIdentity"]["accountId"] = account
    record["requestParameters"].update(subnetId=eni["SubnetId"], description=eni.get("Description", ""))
    created = record["responseElements"]["networkInterface"]
    created.update(
        networkInterfaceId=eni["NetworkInterfaceId"],
        subnetId=eni["SubnetId"],
        vpcId=eni["VpcId"],
        availabilityZone=eni["AvailabilityZone"],
        description=eni.get("Description", ""),
        ownerId=account,
        requesterId=eni.get("RequesterId", account),
        requesterManaged=bool(eni.get("RequesterManaged")),
    )
    record["eventID"] = event_id
    record["awsRegion"] = eni["AvailabilityZone"][:-1]
    return record
