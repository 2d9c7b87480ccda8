"""boto3's clients per place (account, region, endpoint), created once and reused across invocations.

They are made by botocore's session directly (what `boto3.client` calls): a boto3 session adds
nothing an EC2, ELBv2, STS or Organizations client uses, and importing boto3 itself (resources,
s3transfer) costs about 25 ms of CPU, 5% of a cold start. A boto3 session passed in (the CLI's, with
its profile) is used through the botocore session under it.

Retries are botocore's own (adaptive mode: client-side rate limiting that backs off when EC2
throttles), never a hand-written loop. Timeouts are short because EC2 answers in well under a
second; a hung connection should fail over to a retry, not eat the invocation.

Two things botocore does not know about a Lambda container are added to its standard retry
handler, built from botocore's own parts (`_install_retries`):
- its retry quota (500 units; a retried error costs 5-14, a success gives 1 back) is per
  client, so in a container that lives for hours it drains under a bad spell and then nothing
  is retried any more. Each client gets a quota the container owns, and `new_invocation`
  refills it: every invocation starts with botocore's full budget, the clients (and their
  connections) stay;
- the invocation's deadline: no request is sent, and no retry waits, past `deadline_reserve`
  seconds before the end; the call raises `DeadlinePassed` (retryable) instead.

Another account is reached through its member role: botocore's assume-role credential fetcher
with deferred refreshable credentials, so one AssumeRole per account and container, refreshed
by botocore before the credentials expire. Each account has its own clients, and so its own
adaptive rate limiter: EC2 throttles per account and region, and a burst in one account must
not slow another.
"""

import contextlib
import functools
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, DataNotFoundError
from botocore.loaders import ExtrasProcessor
from botocore.paginate import Paginator
from botocore.retries import quota, standard

if TYPE_CHECKING:
    import boto3
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
SERVICE_CONFIG: dict[str, Config] = {
    "cloudwatch": Config(retries={"mode": "adaptive", "total_max_attempts": 3}),
}
"""Per service, over the container's configuration. CloudWatch's mirror-loss read is evidence, not
work: a sweep never spends its time retrying it ten times (the loss is unknown this time, and the
next sweep reads again)."""


class DeadlinePassed(BotoCoreError):
    """Too close to the invocation's deadline to send a request or wait for a retry."""

    fmt = "{reason}"


TimeLeft = Callable[[], float | None]
"""Seconds the request may still use (None: no deadline)."""


class DeadlineBackoff(standard.ExponentialBackoff):
    """botocore's exponential backoff, refusing a wait that would end past the deadline."""

    def __init__(self, time_left: TimeLeft, service_name: str, detector: Any) -> None:
        super().__init__(service_name=service_name, throttling_detector=detector)
        self._time_left = time_left

    def delay_amount(self, context: Any) -> float:
        delay = float(super().delay_amount(context))
        left = self._time_left()
        if left is not None and delay >= left:
            raise DeadlinePassed(reason=f"a retry in {delay:.2f} s would pass the deadline ({left:.2f} s left)")
        return delay


def _install_retries(client: Any, time_left: TimeLeft) -> quota.RetryQuota:
    """botocore's standard retry handler with a quota we own and a deadline-aware backoff.

    The same parts as `botocore.retries.standard.register_retry_handler`, in place of the one the
    client was made with (same unique id); adaptive mode's rate limiter is untouched.
    """
    service = client.meta.service_model.service_id.hyphenize()
    adapter = standard.RetryEventAdapter()
    detector = standard.ThrottlingErrorDetector(adapter)
    budget = quota.RetryQuota()
    checker = standard.RetryQuotaChecker(budget, detector)
    max_attempts = client.meta.config.retries.get("total_max_attempts")
    conditions = (
        standard.StandardRetryConditions(max_attempts=max_attempts)
        if max_attempts is not None
        else standard.StandardRetryConditions()
    )
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=conditions, retry_backoff=DeadlineBackoff(time_left, service, detector)
        ),
        retry_event_adapter=adapter,
        retry_quota=checker,  # type: ignore[arg-type]  # botocore passes the checker too (the stubs say quota)
        service_name=service,
    )
    unique_id = f"retry-config-{service}"
    client.meta.events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    client.meta.events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    # botocore's own quota keeps getting its refunds; nothing reads it any more.
    client.meta.events.register(f"after-call.{service}", checker.release_retry_quota)

    def refuse_late(**_: Any) -> None:
        left = time_left()
        if left is not None and left <= 0:
            raise DeadlinePassed(reason="the invocation's deadline is too near to send a request")

    client.meta.events.register(f"before-send.{service}", refuse_late)
    # Adaptive mode's client-side rate limiter may wait (on 'before-send', registered when the
    # client was made): look again once it has, so nothing is sent past the deadline.
    client.meta.events.register("before-send", refuse_late)
    return budget


def make_paginator(client: Any, operation: str, loader: Any) -> Paginator:
    """What `client.get_paginator(operation)` returns, without its cold-start costs.

    botocore's own first checks that the service has paginators by listing every service that has
    any (a walk through some 400 model directories: about 10 ms, once per session) and documents
    the paginator's class. Here the service's pagination model is read directly by the session's
    loader (`loader`), with its extras merged as the loader merges them, and the same `Paginator`
    is made from it.
    """
    model = client.meta.service_model
    name = f"{model.service_name}/{model.api_version}/paginators-1"
    config = loader.load_data(name)
    extras = []
    for kind in loader.extras_types:
        with contextlib.suppress(DataNotFoundError):  # most models have none
            extras.append(loader.load_data(f"{name}.{kind}-extras"))
    ExtrasProcessor().process(config, extras)
    api_name = client.meta.method_to_api_mapping[operation]
    return Paginator(getattr(client, operation), config["pagination"][api_name], model.operation_model(api_name))


def _botocore_session(session: "boto3.session.Session | botocore.session.Session | None") -> Any:
    """botocore's session under a boto3 one (the CLI's, with its profile), or the session itself."""
    return getattr(session, "_session", session)


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
        self,
        config: Config = RETRY_CONFIG,
        partition: str = "aws",
        session: "boto3.session.Session | botocore.session.Session | None" = None,
    ) -> None:
        self.config = config
        self.partition = partition
        self._session: botocore.session.Session | None = _botocore_session(session)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, Place], Any] = {}
        self._paginators: dict[tuple[Place, str], Any] = {}
        self._sessions: dict[tuple[str, str, str | None], botocore.session.Session] = {}
        self._budgets: list[quota.RetryQuota] = []
        self._deadline: Callable[[], float] | None = None
        self.calls: Counter[str] = Counter()

    def new_invocation(self, remaining: Callable[[], float] | None = None, reserve: float = 0.0) -> None:
        """A new invocation: every client's retry quota back to full; requests stop `reserve`
        seconds before `remaining()` reaches 0 (None: no deadline)."""
        with self._lock:
            budgets = list(self._budgets)
            self._deadline = None if remaining is None else (lambda: remaining() - reserve)
        for budget in budgets:
            budget.release(quota.RetryQuota.INITIAL_CAPACITY)

    def time_left(self) -> float | None:
        """Seconds requests may still be sent in this invocation (None: no deadline)."""
        deadline = self._deadline
        return None if deadline is None else deadline()

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def calls_snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    def base_session(self) -> botocore.session.Session:
        """The container's own credentials (made on first use: never at import)."""
        with self._lock:
            if self._session is None:
                self._session = botocore.session.Session()
            return self._session

    def session_for(self, place: Place) -> botocore.session.Session:
        """The session that acts in `place.account`: our own, or the member role's there."""
        base = self.base_session()
        if place.account is None:
            return base
        if not place.role:
            raise ValueError(f"account {place.account} needs a member role, and none is configured")
        key = (place.account, place.role, place.endpoint)
        with self._lock:
            found = self._sessions.get(key)
        if found is not None:
            return found
        # AssumeRole goes where every other call of this place goes (an endpoint such as the
        # playground's, or AWS_ENDPOINT_URL through botocore when None), with this container's
        # retries and timeouts, in the credentials' region or else the place's: botocore's
        # fetcher would otherwise make a default STS client (AWS's, with no region at all when
        # only AWS_REGION is set, as for the CLI).
        from .model import MEMBER_SESSION_NAME  # here only: a cold start imports this module first

        region = base.get_config_variable("region") or place.region
        sts_options: dict[str, Any] = {"config": self.config, "region_name": region}
        if place.endpoint:
            sts_options["endpoint_url"] = place.endpoint
        fetcher = AssumeRoleCredentialFetcher(
            client_creator=functools.partial(base.create_client, **sts_options),
            source_credentials=base.get_credentials(),
            role_arn=f"arn:{self.partition}:iam::{place.account}:role/{place.role}",
            extra_args={"RoleSessionName": MEMBER_SESSION_NAME},
        )
        credentials = DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method="assume-role"
        )
        session = botocore.session.Session()
        # The models this container already read (EC2's alone is ~2 MB of JSON) are read once, not
        # once more for every account.
        session.register_component("data_loader", base.get_component("data_loader"))
        # botocore has no public setter for refreshable credentials; this is the documented idiom.
        session._credentials = credentials  # type: ignore[attr-defined]
        with self._lock:
            return self._sessions.setdefault(key, session)

    def client(self, service: str, place: Place) -> Any:
        key = (service, place)
        with self._lock:
            found = self._clients.get(key)
        if found is not None:
            return found
        config = self.config.merge(SERVICE_CONFIG[service]) if service in SERVICE_CONFIG else self.config
        client = self.session_for(place).create_client(
            service, region_name=place.region, endpoint_url=place.endpoint, config=config
        )
        client.meta.events.register("before-call", self._count)
        budget = _install_retries(client, self.time_left)
        with self._lock:
            found = self._clients.get(key)
            if found is not None:
                return found
            self._budgets.append(budget)
            self._clients[key] = client
            return client

    def ec2(self, place: Place) -> "EC2Client":
        return self.client("ec2", place)

    def elbv2(self, place: Place) -> "ElasticLoadBalancingv2Client":
        return self.client("elbv2", place)

    def elb(self, place: Place) -> Any:
        """Classic Load Balancers (their tags, when MIRROR_SOURCES includes load-balancers)."""
        return self.client("elb", place)

    def paginator(self, place: Place, operation: str) -> Any:
        """EC2 paginators, built once per client (loading the paginator model is not free)."""
        key = (place, operation)
        with self._lock:
            found = self._paginators.get(key)
        if found is not None:
            return found
        loader = self.session_for(place).get_component("data_loader")
        made = make_paginator(self.ec2(place), operation, loader)
        with self._lock:
            return self._paginators.setdefault(key, made)

    def reset(self) -> None:
        """Forget every client, paginator and session, and the calls they made (tests and the demo
        switch mocks or endpoints: what the next one counts is its own)."""
        with self._lock:
            self.calls.clear()
            self._clients.clear()
            self._paginators.clear()
            self._sessions.clear()
            self._budgets.clear()
            self._session = None
