"""boto3 clients per place (account, region, endpoint), created once and reused across invocations.

Retries are botocore's own (adaptive mode: client-side rate limiting that backs off when EC2
throttles), never a hand-written loop. Timeouts are short because EC2 answers in well under a
second; a hung connection should fail over to a retry, not eat the invocation.

Another account is reached through its member role: botocore's assume-role credential fetcher
with deferred refreshable credentials, so one AssumeRole per account and container, refreshed
by botocore before the credentials expire. Each account has its own clients, and so its own
adaptive rate limiter: EC2 throttles per account and region, and a burst in one account must
not slow another.
"""

import threading
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from .model import MEMBER_SESSION_NAME

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
else:
    EC2Client = ElasticLoadBalancingv2Client = Any

USER_AGENT = "traffic-mirror-automation"

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=3,
    read_timeout=15,
    max_pool_connections=32,
    user_agent_extra=USER_AGENT,
)


@dataclass(frozen=True)
class Place:
    """Where work happens: one region of one account, through one endpoint."""

    region: str
    account: str | None = None
    """None: the caller's own account, with its own credentials (no role assumed)."""
    endpoint: str | None = None
    role: str | None = None
    """The role assumed in `account` (arn:<partition>:iam::<account>:role/<role>)."""


class Clients:
    """Every client and paginator of a container, and the API calls they made (by operation)."""

    def __init__(
        self, config: Config = RETRY_CONFIG, partition: str = "aws", session: boto3.session.Session | None = None
    ) -> None:
        self.config = config
        self.partition = partition
        self._session = session
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, Place], Any] = {}
        self._paginators: dict[tuple[Place, str], Any] = {}
        self._sessions: dict[tuple[str, str], boto3.session.Session] = {}
        self.calls: Counter[str] = Counter()

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def calls_snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    def base_session(self) -> boto3.session.Session:
        """The container's own credentials (made on first use: never at import)."""
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session

    def session_for(self, place: Place) -> boto3.session.Session:
        """The session that acts in `place.account`: our own, or the member role's there."""
        base = self.base_session()
        if place.account is None:
            return base
        if not place.role:
            raise ValueError(f"account {place.account} needs a member role, and none is configured")
        key = (place.account, place.role)
        with self._lock:
            found = self._sessions.get(key)
        if found is not None:
            return found
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=base._session.create_client,
            source_credentials=base._session.get_credentials(),
            role_arn=f"arn:{self.partition}:iam::{place.account}:role/{place.role}",
            extra_args={"RoleSessionName": MEMBER_SESSION_NAME},
        )
        credentials = DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )
        core = botocore.session.Session()
        # botocore has no public setter for refreshable credentials; this is the documented idiom.
        core._credentials = credentials  # type: ignore[attr-defined]
        session = boto3.session.Session(botocore_session=core, region_name=place.region)
        with self._lock:
            return self._sessions.setdefault(key, session)

    def client(self, service: str, place: Place) -> Any:
        key = (service, place)
        with self._lock:
            found = self._clients.get(key)
        if found is not None:
            return found
        client = self.session_for(place).client(  # type: ignore[call-overload]
            service, region_name=place.region, endpoint_url=place.endpoint, config=self.config
        )
        client.meta.events.register("before-call", self._count)
        with self._lock:
            return self._clients.setdefault(key, client)

    def ec2(self, place: Place) -> "EC2Client":
        return self.client("ec2", place)

    def elbv2(self, place: Place) -> "ElasticLoadBalancingv2Client":
        return self.client("elbv2", place)

    def paginator(self, place: Place, operation: str) -> Any:
        """EC2 paginators, built once per client (loading the paginator model is not free)."""
        key = (place, operation)
        with self._lock:
            found = self._paginators.get(key)
        if found is not None:
            return found
        made = self.ec2(place).get_paginator(operation)  # type: ignore[call-overload]
        with self._lock:
            return self._paginators.setdefault(key, made)

    def reset(self) -> None:
        """Forget every client, paginator and session (tests and the demo switch mocks or endpoints)."""
        with self._lock:
            self._clients.clear()
            self._paginators.clear()
            self._sessions.clear()
            self._session = None

    def warm(self, place: Place) -> None:
        """Create the function's own region's client and paginators during init (cold start)."""
        self.ec2(place)  # the ELBv2 client is made only when an NLB target exists
        for operation in ("describe_traffic_mirror_sessions", "describe_tags", "describe_instances"):
            self.paginator(place, operation)
