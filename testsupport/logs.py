"""The handler's log records, captured instead of (or as well as) printed, and put back after."""

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

LOGGER = "traffic_mirror"
"""The handler's logger (handler/report.py); it does not propagate to the root logger."""


@contextlib.contextmanager
def routed(
    handler: logging.Handler, exclusive: bool = False, level: int | None = None, logger: str = LOGGER
) -> Iterator[logging.Handler]:
    """Send the handler's records to `handler` too, or (`exclusive`) only there; restore everything after."""
    log = logging.getLogger(logger)
    saved = (list(log.handlers), log.propagate, log.level)
    if exclusive:
        log.handlers, log.propagate = [handler], False
    else:
        log.addHandler(handler)
    if level is not None:
        log.setLevel(level)
    try:
        yield handler
    finally:
        log.handlers, log.propagate = saved[0], saved[1]
        log.setLevel(saved[2])


class Keep(logging.Handler):
    """Keeps every record it is given."""

    def __init__(self, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured(exclusive: bool = False, level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """The records the handler logs inside the block (`exclusive`: and nothing printed)."""
    keep = Keep(level)
    with routed(keep, exclusive=exclusive, level=level if exclusive else None):
        yield keep.records


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The handler still builds every record (its cost counts), but nothing is printed."""
    with routed(logging.NullHandler(), exclusive=True):
        yield


def decisions(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """The `decision` log lines' fields."""
    return [vars(r) for r in records if r.getMessage() == "decision"]
