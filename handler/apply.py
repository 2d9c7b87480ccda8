"""Writes to EC2: create, modify and delete sessions, idempotently and in parallel (bounded).

Each planned ENI is one unit of work. An API refusal that retrying cannot change is final for
that ENI; throttling (after botocore's own retries), server errors and stale-inventory answers
are `retryable`, so the invocation fails only for what is left and Lambda or SQS retries it.
"""

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from . import budget, errors, inventory
from .context import Context
from .kinds import INSTANCES
from .model import Action, Decision
from .planner import CONFIG_PROBLEMS, GONE, QUOTA
from .settings import MANAGED_TAG_KEY

Status = Literal["created", "modified", "deleted", "mirrored", "skipped", "failed", "planned", "deferred"]

# A target that answers TARGET_FULL is remembered by the container (`Container.target_full`) and
# the planner puts it last for new sessions only. (Dropping it from the inventory instead made the
# retry see the sessions it serves as stale, reload them, and pick it again.)


@dataclass
class Result:
    """What happened to one ENI: the decision, and the outcome of its writes."""

    decision: Decision
    status: Status
    reason: str
    retryable: bool = False
    session_ids: list[str] = field(default_factory=list)
    error_code: str = ""
    account: str = ""
    """The account the ENI is in, when a sweep covered several ("" = the invocation's own)."""


def problem_counts(results: Sequence["Result"]) -> dict[str, int]:
    """In-scope ENIs left unmirrored, by `Decision.problem` kind (configuration problems first)."""
    found = Counter(r.decision.problem for r in results if r.decision.problem and r.status == "skipped")
    return dict(sorted(found.items(), key=lambda kv: (kv[0] not in CONFIG_PROBLEMS, kv[0])))


def conflicted(result: "Result") -> bool:
    """Lost a race for a session number (see `errors.is_number_conflict`)."""
    return result.status == "failed" and errors.is_number_conflict(result.error_code, result.reason)


def _run(action: Action, ctx: Context) -> str | None:
    settings = ctx.settings
    ec2 = ctx.clients.ec2(ctx.place)
    if action.kind == "create":
        assert action.target_id and action.filter_id and action.session_number and action.client_token
        tags = [{"Key": MANAGED_TAG_KEY, "Value": settings.managed_by}]
        if action.name:
            tags.append({"Key": "Name", "Value": action.name[:255]})
        params: dict[str, Any] = {
            "NetworkInterfaceId": action.eni_id,
            "TrafficMirrorTargetId": action.target_id,
            "TrafficMirrorFilterId": action.filter_id,
            "SessionNumber": action.session_number,
            "Description": action.description,
            "ClientToken": action.client_token,
            "TagSpecifications": [{"ResourceType": "traffic-mirror-session", "Tags": tags}],
        }
        vni = action.vni if action.vni is not None else settings.vni
        if vni is not None:
            params["VirtualNetworkId"] = vni
        if settings.packet_length is not None:
            params["PacketLength"] = settings.packet_length
        response = ec2.create_traffic_mirror_session(**params)
        return str(response["TrafficMirrorSession"]["TrafficMirrorSessionId"])
    if action.kind == "modify":
        assert action.session_id
        modify: dict[str, Any] = {"TrafficMirrorSessionId": action.session_id}
        if action.target_id:
            modify["TrafficMirrorTargetId"] = action.target_id
        if action.filter_id:
            modify["TrafficMirrorFilterId"] = action.filter_id
        ec2.modify_traffic_mirror_session(**modify)
        return action.session_id
    assert action.session_id
    try:
        ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=action.session_id)
    except ClientError as error:
        if errors.code(error) not in errors.SESSION_GONE:  # already deleted: the goal is met
            raise
    return action.session_id


_DONE: dict[str, Status] = {"create": "created", "modify": "modified", "delete": "deleted"}


def apply_one(decision: Decision, ctx: Context) -> Result:
    """Carry out one ENI's actions in order; classify the first error."""
    if not decision.actions:
        status: Status = "mirrored" if decision.outcome == "mirrored" else "skipped"
        return Result(decision, status, decision.reason)
    if ctx.settings.dry_run:
        return Result(decision, "planned", f"dry run: would {decision.outcome}: {decision.reason}")
    ids: list[str] = []
    for action in decision.actions:
        try:
            session_id = _run(action, ctx)
        except (ClientError, BotoCoreError) as error:
            code, kind = errors.code(error), errors.classify(error)
            if code == "NetworkInterfaceNotSupported":
                if decision.kind == INSTANCES:
                    ctx.container.refuse_type(decision.instance_type)
                else:  # a service's ENI has no instance type: AWS's answer is for this ENI
                    ctx.container.refuse_eni(decision.eni_id)
            if code in errors.SOURCE_GONE and action.kind == "create":
                why = f"{decision.eni_id} no longer exists ({code}): nothing to mirror"
                gone = dataclasses.replace(decision, out_of_scope=GONE, problem=None, reason=why)
                return Result(gone, "skipped", why, session_ids=ids, error_code=code)
            if code in errors.TARGET_OR_FILTER_GONE:
                inventory.invalidate(ctx)
            if kind == "full" and action.target_id:
                ctx.container.target_full(ctx.place, action.target_id)
            if kind == "quota":
                # Known and permanent until room appears: the ENI waits, reported (not retried).
                why = f"AWS refused a session for the account's quota ({code}): waits for room, by priority"
                return Result(budget.wait(decision, QUOTA, why), "skipped", why, False, ids, code)
            retryable = kind in errors.RETRYABLE
            return Result(decision, "failed", f"{action.kind} failed: {code}: {error}", retryable, ids, code)
        if session_id:
            ids.append(session_id)
    return Result(decision, _DONE[decision.actions[0].kind], decision.reason, session_ids=ids)


def apply_all(
    decisions: Sequence[Decision], ctx: Context, on_done: Callable[[Result], None] | None = None
) -> list[Result]:
    """Run every decision, at most MIRROR_MAX_WORKERS at once; stop starting work near the deadline.

    Work not started before the time left drops under the margin (`Context.margin`: the setting,
    or 60% of a shorter budget) is `deferred` (retryable): the next sweep or the event's
    retry finishes it.
    """

    at_quota = threading.Event()

    def work(decision: Decision) -> Result:
        if decision.actions and ctx.too_late():
            return Result(decision, "deferred", "deadline near: left for the next run", retryable=True)
        if at_quota.is_set() and any(a.kind == "create" for a in decision.actions):
            # One refusal says it for every create of the place: no more calls that would be refused.
            why = "AWS's session quota for the account is reached (refused in this run): waits for room, by priority"
            result = Result(budget.wait(decision, QUOTA, why), "skipped", why)
        else:
            result = apply_one(decision, ctx)
        if result.error_code == errors.SESSION_QUOTA:
            at_quota.set()
        if on_done:
            on_done(result)
        return result

    quiet = [d for d in decisions if not d.actions]
    busy = [d for d in decisions if d.actions]
    results = [work(d) for d in quiet]
    if busy:
        # A pool per call: one account's throttled writers never hold another account's threads.
        with ThreadPoolExecutor(min(ctx.settings.max_workers, len(busy)), thread_name_prefix="mirror-write") as pool:
            results.extend(pool.map(work, busy))
    return results
