"""When to poll a job next: a small pure function of what is known about it.

Polling is free but not without cost (a request each, a thousand jobs at
once), and a user waits on each result. So the schedule polls soon after the
start (to show "running" and catch an early failure), sparsely while a job is
unlikely to be done, densely while it probably is, and ever more patiently in
the long tail. Errors back off exponentially, and a `Retry-After` always wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.humalike.models import Grounding

# (start, end) in seconds of the window in which a job of this grounding usually
# ends. Observed: about 37 s for `off`; `web` adds a lookup; `research` takes minutes.
LIKELY_END = {
    Grounding.OFF: (25.0, 75.0),
    Grounding.WEB: (30.0, 150.0),
    Grounding.RESEARCH: (60.0, 900.0),
}
# Before the window, at most this many seconds between polls.
SPARSE_GAP = 8.0
# After the window, the gap grows by this share of the time past it.
TAIL_GROWTH = 0.1
# A job past its deadline has been reported; it is still followed, gently.
AFTER_DEADLINE_GAP = 60.0


@dataclass(frozen=True)
class PollSettings:
    first_delay: float = 2.0
    interval: float = 2.0
    max_backoff: float = 60.0


def next_poll_delay(
    *,
    elapsed: float,
    grounding: Grounding,
    settings: PollSettings,
    consecutive_errors: int = 0,
    retry_after: float | None = None,
    past_deadline: bool = False,
) -> float:
    """Seconds to wait before the next poll of a job started `elapsed` seconds ago."""
    if consecutive_errors > 0:
        backoff = min(settings.max_backoff, settings.interval * 2 ** min(consecutive_errors, 16))
        return max(backoff, retry_after or 0.0)
    if retry_after is not None:
        return max(retry_after, settings.interval)
    if past_deadline:
        return max(AFTER_DEADLINE_GAP, settings.interval)
    if elapsed < settings.first_delay:
        return settings.first_delay - elapsed
    window_start, window_end = LIKELY_END[grounding]
    if elapsed < window_start:
        # Sparse, but never overshooting the start of the window by more than one interval.
        return max(settings.interval, min(SPARSE_GAP, window_start - elapsed))
    if elapsed <= window_end:
        return settings.interval
    tail_gap = settings.interval + (elapsed - window_end) * TAIL_GROWTH
    return min(settings.max_backoff, tail_gap)
