"""Per-run context: where the time goes (stages) and whether to stop (cancel).

Passed down the scan so that benchmarks get a per-stage breakdown without a profiler
and the daemon can stop a scan at the next safe point (between batches and drafts,
where every write is already committed).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import InboxFilterError


class Cancelled(InboxFilterError):
    """The run was asked to stop; everything written so far is consistent."""

    exit_code = 0


@dataclass(slots=True)
class RunContext:
    stages: dict[str, float] = field(default_factory=dict)
    cancel: threading.Event | None = None
    # Called (from another thread) to cut blocked network I/O when stopping for good.
    closers: list[Callable[[], object]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t0

    def check(self) -> None:
        """Raise Cancelled when asked to stop (call only between committed steps)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("stopped on request")

    def close_all(self) -> None:
        for close in list(self.closers):
            with contextlib.suppress(Exception):
                close()

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in sorted(self.stages.items())}
