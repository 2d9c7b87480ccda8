"""The EventBridge event patterns for the events this handler understands.

Kept beside `events.py` so the handler and the component (and the demo, which matches events
against them locally) share one definition: the component builds its rules from these.
"""

from typing import Any

API_CALLS = ("RunInstances", "StartInstances", "AttachNetworkInterface", "DeleteTrafficMirrorSession")
RELEASE_CALLS = ("StopInstances", "DetachNetworkInterface")
TAG_CALLS = ("CreateTags", "DeleteTags")


def _cloudtrail(event_names: list[str], **detail: Any) -> dict[str, Any]:
    return {
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["ec2.amazonaws.com"],
            "eventName": event_names,
            "errorCode": [{"exists": False}],
            **detail,
        },
    }


def api_calls(release_on_stop: bool = False) -> dict[str, Any]:
    """Successful launches, starts, attaches and session deletions (plus stops/detaches to release)."""
    return _cloudtrail([*API_CALLS, *(RELEASE_CALLS if release_on_stop else ())])


def tag_changes(tag_key: str) -> dict[str, Any]:
    """CreateTags/DeleteTags that name our key (matched inside the tagSet array).

    A DeleteTags that lists no keys (it removes every tag) is not matched: the sweep catches it.
    """
    return _cloudtrail(list(TAG_CALLS), requestParameters={"tagSet": {"items": {"key": [tag_key]}}})


def state_changes(release_on_stop: bool = False) -> dict[str, Any]:
    """EC2's own state-change events: no trail needed."""
    return {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["running", *(["stopped"] if release_on_stop else [])]},
    }


def all_patterns(tag_key: str = "Mirror", release_on_stop: bool = False) -> dict[str, dict[str, Any]]:
    """Rule name suffix -> pattern, as the component deploys them."""
    return {
        "api-calls": api_calls(release_on_stop),
        "tag-changes": tag_changes(tag_key),
        "state-changes": state_changes(release_on_stop),
    }
