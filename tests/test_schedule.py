"""When the bot polls a job next: soon at first, sparse early, dense when a result is likely, patient after."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bot.enhance.schedule import LIKELY_END, PollSettings, next_poll_delay
from bot.humalike.models import Grounding

DEFAULTS = PollSettings()
# What the live service took for an `off` enhancement (shared/humalike/README.md).
OBSERVED_OFF_SECONDS = 37.0


def delay(
    elapsed: float, grounding: Grounding = Grounding.OFF, settings: PollSettings = DEFAULTS, **kwargs: Any
) -> float:
    return next_poll_delay(elapsed=elapsed, grounding=grounding, settings=settings, **kwargs)


def poll_times(grounding: Grounding, until: float, settings: PollSettings = DEFAULTS) -> list[float]:
    """Every poll of a job that keeps running, from its start up to the first poll at or after `until`."""
    times: list[float] = []
    elapsed = 0.0
    while not times or times[-1] < until:
        elapsed += delay(elapsed, grounding, settings)
        times.append(elapsed)
    return times


@pytest.mark.parametrize("grounding", list(Grounding))
def test_the_first_poll_comes_after_first_delay(grounding: Grounding) -> None:
    assert delay(0.0, grounding) == DEFAULTS.first_delay
    custom = PollSettings(first_delay=5.0, interval=3.0, max_backoff=30.0)
    assert delay(0.0, grounding, custom) == 5.0


def test_a_job_resumed_before_its_first_poll_waits_only_the_rest_of_first_delay() -> None:
    custom = PollSettings(first_delay=5.0)
    assert delay(2.0, settings=custom) == pytest.approx(3.0)


@pytest.mark.parametrize("grounding", list(Grounding))
def test_polls_before_the_likely_window_are_sparse_and_never_overshoot_its_start(grounding: Grounding) -> None:
    window_start, _ = LIKELY_END[grounding]
    early = [t for t in poll_times(grounding, window_start) if t < window_start]
    gaps = [delay(t, grounding) for t in early]

    assert max(gaps) > DEFAULTS.interval, "before the window the bot should poll less often than inside it"
    assert all(gap >= DEFAULTS.interval for gap in gaps)
    # Checked for every elapsed time before the window, not only the ones this schedule visits.
    for tenth in range(int(DEFAULTS.first_delay * 10), int(window_start * 10)):
        elapsed = tenth / 10
        assert elapsed + delay(elapsed, grounding) <= window_start + DEFAULTS.interval


@pytest.mark.parametrize("grounding", list(Grounding))
def test_inside_the_likely_window_polls_come_every_interval(grounding: Grounding) -> None:
    settings = PollSettings(first_delay=1.0, interval=3.0, max_backoff=45.0)
    start, end = LIKELY_END[grounding]
    for tenth in range(int(start * 10), int(end * 10) + 1):
        assert delay(tenth / 10, grounding, settings) == settings.interval
    # The polls a running job actually gets in the window are one interval apart.
    in_window = [t for t in poll_times(grounding, end, settings) if start <= t <= end]
    assert len(in_window) >= 2
    assert all(later - earlier == pytest.approx(3.0) for earlier, later in itertools.pairwise(in_window))


@pytest.mark.parametrize("grounding", list(Grounding))
def test_gaps_in_the_long_tail_grow_but_stay_capped(grounding: Grounding) -> None:
    _, window_end = LIKELY_END[grounding]
    tail = [window_end + step for step in range(5, 4000, 5)]
    gaps = [delay(t, grounding) for t in tail]

    assert gaps == sorted(gaps), "gaps in the tail never shrink"
    assert gaps[0] > DEFAULTS.interval
    assert gaps[-1] > gaps[0]
    assert max(gaps) == DEFAULTS.max_backoff


def test_web_and_research_stay_dense_longer_than_off() -> None:
    assert LIKELY_END[Grounding.OFF][1] < LIKELY_END[Grounding.WEB][1] < LIKELY_END[Grounding.RESEARCH][1]

    # Two minutes in, an `off` job is in its tail while `web` and `research` are still watched closely.
    assert delay(120.0, Grounding.OFF) > DEFAULTS.interval
    assert delay(120.0, Grounding.WEB) == DEFAULTS.interval
    # Ten minutes in, only `research` is still expected to finish any moment.
    assert delay(600.0, Grounding.WEB) > DEFAULTS.interval
    assert delay(600.0, Grounding.RESEARCH) == DEFAULTS.interval


def test_consecutive_errors_back_off_exponentially_up_to_max_backoff() -> None:
    settings = PollSettings(first_delay=2.0, interval=2.0, max_backoff=60.0)
    gaps = [delay(40.0, settings=settings, consecutive_errors=n) for n in range(1, 12)]

    assert gaps[:4] == [4.0, 8.0, 16.0, 32.0]
    assert gaps[4:] == [60.0] * 7
    # Even absurd counts stay capped and finite.
    assert delay(40.0, settings=settings, consecutive_errors=10_000) == 60.0


@pytest.mark.parametrize("errors", [0, 1, 3, 20])
@pytest.mark.parametrize("past_deadline", [False, True])
@pytest.mark.parametrize("retry_after", [0.0, 0.5, 3.0, 45.0, 59.9, 61.0])
def test_retry_after_is_always_honoured(errors: int, past_deadline: bool, retry_after: float) -> None:
    for elapsed in (0.0, 1.0, 5.0, 25.0, 60.0, 200.0, 5000.0):
        for grounding in Grounding:
            gap = delay(
                elapsed, grounding, consecutive_errors=errors, retry_after=retry_after, past_deadline=past_deadline
            )
            assert gap >= retry_after


def test_a_retry_after_longer_than_max_backoff_is_still_honoured() -> None:
    assert delay(40.0, retry_after=300.0) == 300.0
    assert delay(40.0, consecutive_errors=8, retry_after=300.0) == 300.0


def test_a_job_past_its_deadline_is_polled_once_a_minute() -> None:
    for elapsed in (1800.0, 2400.0, 10_000.0):
        for grounding in Grounding:
            assert delay(elapsed, grounding, past_deadline=True) == 60.0


def test_the_delay_is_always_positive() -> None:
    settings_variants = [DEFAULTS, PollSettings(first_delay=0.5, interval=0.5, max_backoff=5.0)]
    elapsed_values = [step / 4 for step in range(-8, 4000)] + [10_000.0, 1e6]
    for settings, grounding, elapsed in itertools.product(settings_variants, Grounding, elapsed_values):
        for errors, retry_after, past_deadline in itertools.product((0, 1, 7), (None, 0.0), (False, True)):
            gap = delay(
                elapsed,
                grounding,
                settings,
                consecutive_errors=errors,
                retry_after=retry_after,
                past_deadline=past_deadline,
            )
            assert gap > 0, (elapsed, grounding, errors, retry_after, past_deadline)


def test_a_37_second_off_job_costs_at_most_two_thirds_of_a_fixed_poller() -> None:
    polls = poll_times(Grounding.OFF, OBSERVED_OFF_SECONDS)
    fixed_polls = len(range(2, int(OBSERVED_OFF_SECONDS) + 2, 2))  # 2, 4, ..., 38: the first at or after 37 s
    lag = polls[-1] - OBSERVED_OFF_SECONDS

    assert lag <= 2.0
    assert len(polls) <= fixed_polls * 2 / 3


def test_a_37_second_off_job_is_seen_within_two_seconds_of_finishing() -> None:
    polls = poll_times(Grounding.OFF, OBSERVED_OFF_SECONDS)
    assert 0.0 <= polls[-1] - OBSERVED_OFF_SECONDS <= 2.0
