"""The CLI's side of AWS: its own session and fail-fast retries, the retry shown, one-line errors.

The Lambda's clients are patient (10 adaptive attempts, 15 s reads: it must ride out
throttling). A person at a terminal needs the opposite: a refused port, a wrong region or a
server that never answers must fail in seconds with one line that says what to fix. So the CLI
hands `handler.clients` its own session (for `--profile`) and botocore configuration.
"""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)
from botocore.parsers import ResponseParserError
from rich.console import Console
from rich.status import Status

MAX_ATTEMPTS = 3
"""One try and two retries: enough for a throttle or a blip, short enough to fail fast."""
CONNECT_TIMEOUT = 2.0
DEFAULT_TIMEOUT = 10.0
"""`--timeout`: seconds to wait for an answer, per attempt."""
CREDENTIAL_ERRORS = frozenset(
    {"AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
)
AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, ResponseParserError)
"""What AWS (or an endpoint pretending to be it) can raise: each becomes one line, never a traceback."""


def config(timeout: float = DEFAULT_TIMEOUT) -> Config:
    """Few attempts, short timeouts; adaptive mode still slows down when EC2 throttles a big sweep."""
    return Config(
        retries={
            "mode": "adaptive",
            "total_max_attempts": MAX_ATTEMPTS,
        },  # max_attempts would exclude the first
        connect_timeout=min(CONNECT_TIMEOUT, timeout),
        read_timeout=timeout,
        max_pool_connections=32,
        user_agent_extra="traffic-mirror-automation-cli",
    )


def endpoint_url(raw: str) -> str:
    """`--endpoint-url` must be a full URL (botocore's 'Invalid endpoint' otherwise comes much later)."""
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"must be a URL with a scheme, such as http://127.0.0.1:5000, got {raw!r}")
    return raw.rstrip("/")


@dataclass
class Activity:
    """The spinner: what the CLI is waiting for, and the retry botocore is making, if any."""

    console: Console
    quiet: bool = False
    """`--quiet`: no spinner (the retries are still noted)."""
    label: str = ""
    text: str = ""
    """What the spinner says now."""
    _status: Status | None = None
    _problem: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def show(self, label: str) -> Iterator[None]:
        """A spinner with `label` while the block runs (nothing at all when output is piped)."""
        self.label = self.text = label
        if self.quiet:
            yield
            return
        with self.console.status(label) as status:
            self._status = status
            try:
                yield
            finally:
                self._status = None

    def watch(self, session: boto3.session.Session) -> None:
        """Hook botocore's events (before any client exists, so every client inherits them)."""
        session.events.register("needs-retry", self._needs_retry)
        session.events.register("before-send", self._before_send)

    def _needs_retry(
        self, attempts: int, caught_exception: Exception | None = None, response: Any = None, **_: Any
    ) -> None:
        """Only notes why an attempt failed; botocore's own handler decides the retry."""
        if caught_exception is not None:
            problem = type(caught_exception).__name__
        elif response is not None and response[0].status_code >= 429:
            code = (response[1] or {}).get("Error", {}).get("Code") or f"HTTP {response[0].status_code}"
            problem = str(code)
        else:
            return
        with self._lock:
            self._problem = problem

    def _before_send(self, request: Any, **_: Any) -> None:
        attempt = int((getattr(request, "context", None) or {}).get("retries", {}).get("attempt", 1))
        if attempt <= 1:
            return
        with self._lock:
            self.text = f"{self.label} (retry {attempt - 1} of {MAX_ATTEMPTS - 1} after {self._problem or 'an error'})"
            if self._status is not None:
                self._status.update(self.text)


def session(profile: str | None) -> boto3.session.Session:
    """A boto3 session for `--profile` (or AWS_PROFILE / the default chain); ProfileNotFound if unknown."""
    return boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()


def account_id(aws: boto3.session.Session, region: str, endpoint: str | None, cfg: Config) -> str:
    """Who the report is about (STS GetCallerIdentity): also the quickest check that credentials work."""
    sts: Any = aws.client("sts", region_name=region, endpoint_url=endpoint, config=cfg)
    return str(sts.get_caller_identity()["Account"])


def describe(error: Exception, region: str, endpoint: str | None, timeout: float) -> str:
    """One line: what went wrong, where, and what to do about it."""
    where = f"{endpoint} ({region})" if endpoint else region
    if isinstance(error, ProfileNotFound):
        return (
            f"{error}: check --profile or AWS_PROFILE against `aws configure list-profiles` "
            "(or unset it to use the default credential chain)"
        )
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"no usable AWS credentials for {where}: configure the default credential chain "
            "(--profile, AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance role)"
        )
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        code, message = err.get("Code", "ClientError"), err.get("Message", "")
        if code in CREDENTIAL_ERRORS:
            return f"AWS did not accept the credentials in {where}: {code}: {message}"
        return f"AWS refused a request in {where}: {code}: {message}"
    gave_up = f"gave up after {MAX_ATTEMPTS} attempts"
    if isinstance(error, SSLError):
        return f"TLS failed talking to {where} ({gave_up}): is the endpoint http:// rather than https://? {error}"
    if isinstance(error, (ConnectTimeoutError, EndpointConnectionError)):
        return f"cannot reach {where} ({gave_up}): {error}"
    if isinstance(error, ReadTimeoutError):
        return f"{where} did not answer within --timeout {timeout:g} s ({gave_up}): {error}"
    if isinstance(error, ResponseParserError):
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return (
            f"the answer from {where} is not an AWS API response: wrong --endpoint-url, or a region "
            f"it does not serve? ({first[:120]})"
        )
    return f"cannot talk to AWS in {where}: {error}"
