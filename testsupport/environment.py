"""Environment isolation: fake credentials, no profile or metadata, a small AMI catalogue.

Nothing run by the tests, the demo or the benchmarks may reach a real account, and none of them
may leave the caller's environment changed.
"""

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
DROPPED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION", "AWS_EXECUTION_ENV")
"""A profile or session token would point at a real account; AWS_EXECUTION_ENV (with AWS_REGION)
makes the handler warm clients and prefetch the inventory at import, as in Lambda (set them
explicitly where wanted)."""

SMALL_AMIS = Path(__file__).resolve().parent / "data" / "amis.json"
"""One Amazon Linux image. moto otherwise builds ~1,300 images (each with a volume and a
snapshot) for every account and region it touches, 0.3-2.6 s apiece, and listing them costs
another second: most of a moto test's time. Nothing here depends on which images exist."""


TEST_EXTRA = {"MOTO_AMIS_PATH": str(SMALL_AMIS)}
"""What the test session sets on top of the fake credentials. moto reads MOTO_AMIS_PATH when
`moto.ec2` is imported: set it before."""


def isolate(extra: Mapping[str, str] | None = None) -> None:
    """For a whole process (the test session): fake credentials, nothing that names a real account."""
    os.environ.update({**FAKE_CREDENTIALS, **(extra or {})})
    for name in DROPPED:
        if name not in (extra or {}):
            os.environ.pop(name, None)


@contextlib.contextmanager
def isolated(extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """`isolate()` for the length of a block, then the caller's environment exactly as it was."""
    names = {*FAKE_CREDENTIALS, *DROPPED, *(extra or {})}
    saved = {name: os.environ.get(name) for name in names}
    isolate(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
