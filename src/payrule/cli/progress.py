"""A progress line on stderr for long runs, and the end-of-run summary. Plain text, no dependency."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`reading  42% [#########           ] 420,000/1,000,000` redrawn in place at most 5 times a second.
    Silent unless `enabled` (the CLI enables it when stderr is a terminal and --quiet is not given)."""

    WIDTH = 30

    def __init__(self, enabled: bool, stream: TextIO | None = None, interval: float = 0.2):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = 0.0
        self._drawn = False

    def update(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.WIDTH)
        self.stream.write(f"\r{phase:<9}{frac:>4.0%} [{bar:<{self.WIDTH}}] {done:,}/{total:,}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * (self.WIDTH + 40) + "\r")
            self.stream.flush()
            self._drawn = False


def summary(counts: dict[str, int], claims: int, lines: int, elapsed: float) -> str:
    """`12 claims (18 lines) in 0.41 s, 29 claims/s: 4 approve, 1 review, 5 deny, 2 error`."""
    rate = claims / elapsed if elapsed > 0 else 0.0
    parts = ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("approve", "review", "deny", "error"))
    return f"{claims:,} claims ({lines:,} lines) in {elapsed:.2f} s, {rate:,.0f} claims/s: {parts}"
