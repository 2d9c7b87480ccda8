"""AWS region names per partition, and "did you mean" for a mistyped one.

Shared by the component's option checks (`components/config.py`) and the operator CLI, with one
`suggest` for both (they used to disagree). It lives in `common/`, not in `handler/`, because the
Lambda never needs it (the archive ships `handler/` only); it imports neither pulumi nor rich.
"""

import difflib
from collections.abc import Iterable, Mapping

# Region names per partition, as data. A stack can only span one partition (one set of
# credentials), so mixing them is rejected. Extend this table when AWS opens a region.
REGIONS_BY_PARTITION: Mapping[str, tuple[str, ...]] = {
    "aws": (
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-central-1",
        "ca-west-1",
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ),
    "aws-cn": ("cn-north-1", "cn-northwest-1"),
    "aws-us-gov": ("us-gov-east-1", "us-gov-west-1"),
    "aws-eusc": ("eusc-de-east-1",),
}
PARTITION_OF_REGION: Mapping[str, str] = {
    region: partition for partition, regions in REGIONS_BY_PARTITION.items() for region in regions
}
KNOWN_REGIONS: frozenset[str] = frozenset(PARTITION_OF_REGION)


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    options = sorted(choices)
    # Swapped letters ("us-esat-1") first: difflib alone would rather say "us-west-1".
    close = [c for c in options if sorted(c) == sorted(word)] or difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def region_error(name: str, also_known: Iterable[str] = ()) -> str | None:
    """None for a known region name; else why not, with the closest known name.

    `also_known` adds names the caller knows from elsewhere (botocore's endpoint data), so a
    region newer than this table is not refused.
    """
    known = KNOWN_REGIONS | frozenset(also_known)
    if name in known:
        return None
    return f"{name!r} is not a known AWS region name{suggest(name, known)}"
