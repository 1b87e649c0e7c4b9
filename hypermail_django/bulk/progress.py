"""The bulk sender's progress bar: rate, ETA, sent and failed, on a terminal."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Messages per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "- msg/s")


class BulkProgress:
    """A rich progress bar, or nothing when ``enabled`` is false.

    ``enabled=None`` shows it only when stderr is a terminal, so logs and CI
    output stay clean.
    """

    def __init__(self, enabled: bool | None, total: int | None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.sent = 0
        self.failed = 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._bar = Progress(
                TextColumn("[bold]Sending"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TextColumn("[green]{task.fields[sent]} sent"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task("send", total=total, sent=0, failed=0)

    def __enter__(self) -> BulkProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, *, ok: bool) -> None:
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, sent=self.sent, failed=self.failed)
