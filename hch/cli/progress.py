"""Live progress of a run on stderr, while it goes: only on a terminal, gone when it ends."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.text import Text

from hch.record.summary import count
from hch.run.progress import Progress


class ProgressLine:
    """One line: nodes, calls in flight, calls made and cached, retries and a wait, elapsed time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.began = time.monotonic()

    def __rich__(self) -> Text:
        p = self.progress
        parts = [
            f"{count(p.nodes, 'node')} ({p.finished} done)",
            f"{count(p.in_flight, 'call')} in flight",
            f"{count(p.calls, 'call')} made" + (f", {p.cache_hits} cached" if p.cache_hits else ""),
        ]
        if p.retries:
            parts.append(count(p.retries, "retry", "retries"))
        wait = p.waiting()
        if wait > 0:
            parts.append(f"waiting {wait:.0f}s")
        parts.append(f"{time.monotonic() - self.began:.1f}s")
        return Text(" · ".join(parts), style="dim")


class LiveProgress:
    """Shows `progress` on stderr between `start` and `stop`, if stderr is a terminal and `enabled`."""

    def __init__(self, progress: Progress, enabled: bool = True) -> None:
        console = Console(stderr=True, highlight=False)
        self._live = None
        if enabled and console.is_terminal:
            self._live = Live(ProgressLine(progress), console=console, transient=True, refresh_per_second=8,
                              redirect_stdout=False, redirect_stderr=False)

    def start(self) -> None:
        if self._live is not None:
            self._live.start()

    def stop(self) -> None:
        """Erase the line (and stop refreshing it); idempotent."""
        if self._live is not None:
            self._live.stop()
