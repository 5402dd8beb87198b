"""Progress on stderr: candidates done, probes running, elapsed time and ETA (rich; terminals only unless
forced)."""

from __future__ import annotations

import sys
import time


class PlanProgress:
    def __init__(self, total: int, enabled, backend: str) -> None:
        self.enabled = bool(sys.stderr.isatty()) if enabled is None else bool(enabled)
        self.total = total
        self.done = 0
        self.running = 0
        self.start = time.monotonic()
        self.bar = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn(f"planning ({backend})"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("candidates, {task.fields[running]} probes running"),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("plan", total=total, running=0)
            self.bar.start()

    def probes(self, running: int) -> None:
        self.running = running
        if self.bar is not None:
            self.bar.update(self.task, running=running)

    def candidate_done(self, _outcome=None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
