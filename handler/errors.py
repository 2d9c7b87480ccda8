"""What an AWS answer means for the automation: one classification for reads and writes.

Every failure is one `Kind`, decided here and nowhere else:
- `final`: the ENI cannot be mirrored (its type, AWS's per-ENI quota, the ENI gone): retrying
  cannot change it, so that ENI's work ends there.
- `permission`: an operator fixes it (the role's policy, an SCP, a tag condition). Retryable, so a
  queued event lands in the dead-letter queue and the alarms show it; logged at ERROR.
- `stale`: our picture of targets, filters or sessions is old (a target, filter or session that
  another writer deleted): drop the cache and plan again.
- `full`: a target refused one more source (TrafficMirrorSourcesPerTargetLimitExceeded).
- `quota`: the account's session quota is reached (known, permanent until room appears).
- `conflict`: another writer took the session number between our read and our write.
- `transient`: throttling, server errors, timeouts, the deadline: the same request may succeed later.
- `bug`: anything else (one change's data breaking the code): never retried as a batch.

A read failure that every change of a batch shares (`shared`) fails them all at once; any other is
tried change by change, so a poison change fails alone.
"""

from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

Kind = Literal["final", "permission", "stale", "full", "quota", "conflict", "transient", "bug"]


class ReadFailure(RuntimeError):
    """EC2's answers cannot all be true (every target, filter or ENI gone at once while our
    sessions use them; the deadline too near to read): never acted on, the events are retried."""


FINAL = frozenset(
    {
        "NetworkInterfaceNotSupported",
        "TrafficMirrorSessionsPerInterfaceLimitExceeded",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidNetworkInterfaceId.NotFound",
        "InvalidNetworkInterfaceID.Malformed",
        "DryRunOperation",
    }
)
SOURCE_GONE = frozenset({"InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterfaceId.NotFound"})
"""The source ENI no longer exists (a load balancer node scaled in, an instance terminated): final,
and AWS removed its sessions with it, so there is nothing left to mirror or to count."""
PERMISSION = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"})
TARGET_OR_FILTER_GONE = frozenset(
    {
        "InvalidTrafficMirrorTargetId.NotFound",
        "InvalidTrafficMirrorFilterId.NotFound",
        "InvalidTrafficMirrorTargetID.NotFound",
        "InvalidTrafficMirrorFilterID.NotFound",
    }
)
SESSION_GONE = frozenset({"InvalidTrafficMirrorSessionId.NotFound", "InvalidTrafficMirrorSessionID.NotFound"})
TARGET_FULL = "TrafficMirrorSourcesPerTargetLimitExceeded"
SESSION_QUOTA = "TrafficMirrorSessionLimitExceeded"
LOAD_BALANCER_GONE = "LoadBalancerNotFound"
"""A load balancer (an NLB sensor, the ALB or Classic Load Balancer of a source ENI) was deleted."""
NLB_GONE = LOAD_BALANCER_GONE
THROTTLING = frozenset({"RequestLimitExceeded", "TooManyRequestsException", "ThrottlingException", "Throttling"})


def code(error: BaseException) -> str:
    """AWS's error code, or the exception's class name for anything that is not an AWS answer."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "") or "ClientError")
    return type(error).__name__


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)


def is_number_conflict(error_code: str, message: str) -> bool:
    """Another writer took this ENI's session number between our read and our write.

    Usually that writer is us (a state-change event or the sweep racing the launch event): the
    caller reads the ENI's sessions again and plans once more in the same invocation.
    """
    return error_code == "InvalidParameterValue" and "session number" in message.lower()


def classify(error: BaseException) -> Kind:
    """The one verdict on a failure (see the module's docstring)."""
    if isinstance(error, ReadFailure | BotoCoreError):  # timeouts, connections, the deadline
        return "transient"
    if not isinstance(error, ClientError):
        return "bug"
    name = code(error)
    if name in FINAL:
        return "final"
    if name == SESSION_QUOTA:
        return "quota"
    if name in PERMISSION:
        return "permission"
    if name in TARGET_OR_FILTER_GONE or name in SESSION_GONE:
        return "stale"
    if name == TARGET_FULL:
        return "full"
    message = str(error.response.get("Error", {}).get("Message", ""))
    if is_number_conflict(name, message):
        return "conflict"
    status = _status(error)
    if status >= 500 or status == 429 or name in THROTTLING or "throttl" in name.lower():
        return "transient"
    if "limitexceeded" in name.lower():
        return "transient"
    return "final"


RETRYABLE: frozenset[Kind] = frozenset({"permission", "stale", "full", "conflict", "transient"})
"""Kinds for which the same work may succeed later (the event is retried, the sweep comes back)."""


def retryable(error: BaseException) -> bool:
    return classify(error) in RETRYABLE


def shared(error: BaseException) -> bool:
    """A read failure every change of a batch shares (AWS unwell, a refused role, an implausible
    read, the deadline): retry them all. Anything else is tried change by change."""
    return classify(error) in ("transient", "permission")
