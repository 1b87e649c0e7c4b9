"""Outcome batches: let record keepers write many outcomes at once.

A bulk run signals one outcome per message. A receiver that stores outcomes
(the delivery log, ``hypermail_django.log``) would pay one database round trip
per message; inside :func:`outcome_batch` it hands its records to the batch
instead, and they are written together when the batch fills up and when the
run ends. Outside a batch, :func:`current_batch` is None and receivers write
at once. The batch lives in a context variable, so it follows the bulk run's
thread and event loop (``sync_to_async`` included) and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from asgiref.sync import sync_to_async

logger = logging.getLogger("hypermail_django")

Flush = Callable[[list[Any]], None]


class OutcomeBatch:
    """Records buffered per flush function, written ``limit`` at a time."""

    def __init__(self) -> None:
        self._buffers: dict[Flush, list[Any]] = {}

    def add(self, flush: Flush, record: Any, limit: int) -> None:
        """Buffer ``record``; hand a full buffer to ``flush`` now."""
        buffer = self._buffers.setdefault(flush, [])
        buffer.append(record)
        if len(buffer) >= limit:
            self._buffers[flush] = []
            flush(buffer)

    def flush(self) -> None:
        """Write whatever is buffered. A flush that raises is logged: the
        others still run (a record keeper must never fail a send)."""
        buffers, self._buffers = self._buffers, {}
        for flush, records in buffers.items():
            if not records:
                continue
            try:
                flush(records)
            except Exception:
                logger.exception("Could not write %d buffered record(s)", len(records))


_current: ContextVar[OutcomeBatch | None] = ContextVar(
    "hypermail_outcome_batch", default=None
)


def current_batch() -> OutcomeBatch | None:
    """The batch of the bulk run this code runs in, if any."""
    return _current.get()


@contextlib.contextmanager
def outcome_batch() -> Iterator[OutcomeBatch]:
    """Buffer outcome records for the duration of a (sync) bulk run."""
    batch = OutcomeBatch()
    token = _current.set(batch)
    try:
        yield batch
    finally:
        _current.reset(token)
        batch.flush()


@contextlib.asynccontextmanager
async def aoutcome_batch() -> AsyncIterator[OutcomeBatch]:
    """:func:`outcome_batch` for an async bulk run: the final flush runs in
    Django's sync thread, where database access is allowed."""
    batch = OutcomeBatch()
    token = _current.set(batch)
    try:
        yield batch
    finally:
        _current.reset(token)
        await sync_to_async(batch.flush)()
