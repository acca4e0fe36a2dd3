"""When to poll a job next: a small pure function of what is known about it.

Polling is free but not without cost (a request each, a thousand jobs at
once), and a user waits on each result. A poll is worth making when the job
has a fair chance of having just ended, so the gap between polls follows the
job's hazard rate h(t): the chance that a job still running at t ends in the
next second. Spacing polls 1/sqrt(h) apart is what minimises the mean time to
see the result for a given number of polls (Lagrange on lag = ∫f·gap/2 against
polls = ∫S/gap), so: sparse while a job is unlikely to be done, dense while it
probably is, and ever more patient past the durations Humalike usually takes.
Errors back off exponentially, and a `Retry-After` always wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

from bot.humalike.models import Grounding


@dataclass(frozen=True)
class Durations:
    """How long jobs of one grounding take (log-normal: median, spread = σ of the log), and the
    mean lag between such a job ending and the bot seeing it that the schedule aims for."""

    median: float
    spread: float
    lag_aim: float

    def hazard(self, elapsed: float) -> float:
        """Per second: the chance a job still running after `elapsed` seconds ends in the next one."""
        density, surviving = self._density_and_surviving(elapsed)
        return density / surviving if surviving > 0.0 else math.inf

    def quantile(self, share: float) -> float:
        return self.median * math.exp(self.spread * NormalDist().inv_cdf(share))

    @cached_property
    def tail_from(self) -> float:
        """Past this many seconds a job is a straggler (see TAIL_FROM)."""
        return self.quantile(TAIL_FROM)

    @cached_property
    def patience(self) -> float:
        """The c of gap = c / sqrt(hazard) that meets `lag_aim`.

        A job ending inside a gap waits half of it on average, so the mean lag is about
        ∫ f·gap/2 dt = (c/2)·∫ sqrt(f·S) dt (f the density, S the share still running).
        """
        steps = 2000  # plenty for a smooth integrand; computed once per grounding
        step, integral = self.tail_from / steps, 0.0
        for index in range(1, steps):
            density, surviving = self._density_and_surviving(index * step)
            integral += math.sqrt(density * surviving) * step
        return 2.0 * self.lag_aim / integral

    @cached_property
    def _log_time(self) -> NormalDist:
        return NormalDist(math.log(self.median), self.spread)

    def _density_and_surviving(self, elapsed: float) -> tuple[float, float]:
        """f(t) and S(t): the density of durations at `elapsed`, and the share of jobs still running."""
        log_elapsed = math.log(elapsed)
        return self._log_time.pdf(log_elapsed) / elapsed, 1.0 - self._log_time.cdf(log_elapsed)

    @property
    def longest_gap(self) -> float:
        """However unlikely the job is to be done, it is polled at least this often."""
        return self.median * LONGEST_GAP_SHARE


# Past this share of the usual durations, the job is a straggler: the gap grows by
# TAIL_GROWTH of the time past that point, up to max_backoff.
TAIL_FROM = 0.995
TAIL_GROWTH = 0.1
# Before a job is likely to be done, it is polled at least every fifth of its usual
# duration: one that ends far sooner than usual is still seen soon.
LONGEST_GAP_SHARE = 0.2
# Observed on the live service: an `off` enhancement took about 37 s; `web` adds a lookup;
# `research` is documented to take minutes, where a few seconds more matter less.
# The spreads are a little wider than the variation we expect, so a job that runs
# long or short is still seen soon.
EXPECTED = {
    Grounding.OFF: Durations(median=37.0, spread=0.35, lag_aim=0.95),
    Grounding.WEB: Durations(median=60.0, spread=0.4, lag_aim=0.95),
    Grounding.RESEARCH: Durations(median=240.0, spread=0.6, lag_aim=3.0),
}
# A job past its deadline has been reported; it is still followed, gently.
AFTER_DEADLINE_GAP = 60.0


@dataclass(frozen=True)
class PollSettings:
    first_delay: float = 2.0
    interval: float = 1.0  # the shortest gap between polls of a job; the base of the error backoff
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
    durations = EXPECTED[grounding]
    if elapsed <= durations.tail_from:
        return _likely_gap(durations, elapsed, settings)
    tail_gap = _likely_gap(durations, durations.tail_from, settings) + (elapsed - durations.tail_from) * TAIL_GROWTH
    return min(max(settings.max_backoff, settings.interval), tail_gap)


def _likely_gap(durations: Durations, elapsed: float, settings: PollSettings) -> float:
    hazard = durations.hazard(elapsed)
    gap = durations.patience / math.sqrt(hazard) if hazard > 0.0 else durations.longest_gap
    return max(settings.interval, min(durations.longest_gap, gap))
