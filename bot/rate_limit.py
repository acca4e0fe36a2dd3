"""At most so many uses a minute per member: a sliding window, kept in memory.

For work that is cheap to ask for and dear to do (reading an uploaded card costs
up to about half a second of CPU), so one member cannot keep the bot busy.
Forgotten at a restart, which costs at most one more window's worth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
FIRST_PRUNE_AT = 1024  # members remembered before idle ones are dropped


class PerMinuteLimit:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._uses: dict[int, deque[float]] = {}
        self._prune_at = FIRST_PRUNE_AT

    def take(self, key: int) -> float | None:
        """Count one use by `key` and return None; or, when `key` is at the limit, when it may next use it."""
        now = self._clock()
        uses = self._uses.setdefault(key, deque())
        while uses and uses[0] <= now - WINDOW_SECONDS:
            uses.popleft()
        if len(uses) >= self.per_minute:
            return uses[0] + WINDOW_SECONDS
        uses.append(now)
        self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop members whose every use is older than the window, so the table does not grow for ever.

        Only when it has doubled since the last time, so the sweep costs O(1) a use on average.
        """
        if len(self._uses) <= self._prune_at:
            return
        for key in [key for key, uses in self._uses.items() if not uses or uses[-1] <= now - WINDOW_SECONDS]:
            del self._uses[key]
        self._prune_at = max(FIRST_PRUNE_AT, 2 * len(self._uses))
