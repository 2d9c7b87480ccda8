"""Which instance types can be a traffic mirror source.

No API field says "mirroring supported", so this is data copied from AWS's documentation
(Traffic Mirroring limitations, "Instance types"), kept in `instance_support.json` beside
this file: update its three lists when AWS changes the documentation. Families in none of them
are *tried*: the API's own refusal (`NetworkInterfaceNotSupported`) is then the final answer for
that ENI, and the container remembers the type (`Container.refuse_type`) and passes it back here
as `refused`.
"""

import json
import re
from pathlib import Path

_DATA = json.loads((Path(__file__).parent / "instance_support.json").read_text())
EXCLUDED_NITRO: frozenset[str] = frozenset(_DATA["excluded_nitro"])
"""Virtualized Nitro families on which Traffic Mirroring is NOT available."""
SUPPORTED_XEN: frozenset[str] = frozenset(_DATA["supported_xen"])
"""The only non-Nitro (Xen) families on which Traffic Mirroring IS available."""
UNSUPPORTED_XEN: frozenset[str] = frozenset(_DATA["unsupported_xen"])
"""Other Xen families (previous generations, T2 included): not available."""

_TYPE = re.compile(r"^(?P<family>[a-z][a-z0-9-]*)\.(?P<size>[a-z0-9-]+)$")


def unsupported_reason(instance_type: str, refused: frozenset[str] = frozenset()) -> str | None:
    """None when the type may be mirrored, else why not (for the log line)."""
    itype = instance_type.strip().lower()
    match = _TYPE.match(itype)
    if not match:
        return f"instance type {instance_type!r} is not recognised"
    family, size = match["family"], match["size"]
    if size.startswith("metal"):
        return f"{itype}: bare metal instances do not support traffic mirroring"
    if family in EXCLUDED_NITRO:
        return f"{itype}: AWS does not support traffic mirroring on the {family} family"
    if family in UNSUPPORTED_XEN:
        return f"{itype}: previous-generation (Xen) {family} does not support traffic mirroring"
    if itype in refused or family in refused:
        return f"{itype}: refused earlier by the API (NetworkInterfaceNotSupported)"
    return None
