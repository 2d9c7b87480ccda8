"""boto3 clients: one per region and endpoint, created once and reused across invocations.

Retries are botocore's own (adaptive mode: client-side rate limiting that backs off when EC2
throttles), never a hand-written loop. Timeouts are short because EC2 answers in well under a
second; a hung connection should fail over to a retry, not eat the invocation.
"""

import functools
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_elbv2 import ElasticLoadBalancingv2Client
else:
    EC2Client = ElasticLoadBalancingv2Client = Any

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=3,
    read_timeout=15,
    max_pool_connections=32,
    user_agent_extra="traffic-mirror-automation",
)

_session = boto3.session.Session()
_lock = threading.Lock()
CALLS: Counter[str] = Counter()
"""API calls made by this container, by operation (reported in each summary line)."""


def _count(model: Any, **_: Any) -> None:
    with _lock:
        CALLS[model.name] += 1


def calls_snapshot() -> Counter[str]:
    with _lock:
        return Counter(CALLS)


def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    client = _session.client(service, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG)  # type: ignore[call-overload]
    client.meta.events.register("before-call", _count)
    return client


@functools.cache
def ec2(region: str, endpoint_url: str | None = None) -> "EC2Client":
    return _client("ec2", region, endpoint_url)


@functools.cache
def elbv2(region: str, endpoint_url: str | None = None) -> "ElasticLoadBalancingv2Client":
    return _client("elbv2", region, endpoint_url)


@functools.cache
def paginator(region: str, endpoint_url: str | None, operation: str) -> Any:
    """EC2 paginators, built once per client (loading the paginator model is not free)."""
    client: Any = ec2(region, endpoint_url)
    return client.get_paginator(operation)


def reset() -> None:
    """Forget every client and paginator (tests and the CLI switch endpoints or mocks)."""
    ec2.cache_clear()
    elbv2.cache_clear()
    paginator.cache_clear()


def warm(region: str) -> None:
    """Create the function's own region's clients at import time (cold start, not per event)."""
    if region:
        ec2(region, None)  # the ELBv2 client is made only when an NLB target exists
        for operation in ("describe_traffic_mirror_sessions", "describe_tags", "describe_instances"):
            paginator(region, None, operation)
