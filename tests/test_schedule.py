"""When the bot polls a job next: soon at first, sparse early, dense when a result is likely, patient after."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.enhance.schedule import EXPECTED, TAIL_FROM, PollSettings, next_poll_delay
from bot.humalike.models import Grounding

DEFAULTS = PollSettings()
# What the live service took for an `off` enhancement, as Humalike's operators observed it.
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


def test_before_jobs_usually_end_polls_are_sparse_but_at_most_a_fifth_of_the_usual_duration_apart() -> None:
    early = [step / 10 for step in range(int(DEFAULTS.first_delay * 10), 150)]  # 2 s to 15 s: few `off` jobs end
    gaps = [delay(elapsed) for elapsed in early]

    assert min(gaps) > 2 * DEFAULTS.interval, "early on the bot should poll far less often than later"
    assert max(gaps) == pytest.approx(OBSERVED_OFF_SECONDS / 5)


@pytest.mark.parametrize("grounding", list(Grounding))
def test_polls_are_densest_where_jobs_of_that_kind_usually_end(grounding: Grounding) -> None:
    durations = EXPECTED[grounding]
    at_median = delay(durations.median, grounding)

    assert at_median < delay(durations.quantile(0.02), grounding)
    assert at_median < delay(durations.quantile(0.999), grounding)
    if grounding is not Grounding.RESEARCH:
        # Where most jobs end, closer together than a 2 s poller.
        assert at_median < 2.0
        assert all(delay(durations.quantile(share), grounding) < 2.0 for share in (0.5, 0.75, 0.9, 0.99))


@pytest.mark.parametrize("grounding", list(Grounding))
def test_a_job_that_ends_long_before_its_kind_usually_does_is_still_seen_soon(grounding: Grounding) -> None:
    durations = EXPECTED[grounding]
    for tenth in range(int(DEFAULTS.first_delay * 10), int(durations.quantile(TAIL_FROM) * 10)):
        assert delay(tenth / 10, grounding) <= durations.median / 5


@pytest.mark.parametrize("grounding", list(Grounding))
def test_gaps_past_the_usual_durations_grow_but_stay_capped(grounding: Grounding) -> None:
    tail_from = EXPECTED[grounding].quantile(TAIL_FROM)
    tail = [tail_from + step for step in range(5, 4000, 5)]
    gaps = [delay(t, grounding) for t in tail]

    assert gaps == sorted(gaps), "gaps in the tail never shrink"
    assert gaps[-1] > gaps[0] > delay(EXPECTED[grounding].median, grounding) / 2
    assert max(gaps) == DEFAULTS.max_backoff


def test_web_and_research_stay_dense_longer_than_off() -> None:
    assert EXPECTED[Grounding.OFF].median < EXPECTED[Grounding.WEB].median < EXPECTED[Grounding.RESEARCH].median

    # Two minutes in, an `off` job is a straggler while a `web` job is still watched closely.
    assert delay(120.0, Grounding.OFF) > 2 * delay(120.0, Grounding.WEB)
    # Ten minutes in, only `research` is still expected to finish any moment.
    assert delay(600.0, Grounding.WEB) > 2 * delay(600.0, Grounding.RESEARCH)


def test_the_interval_is_the_shortest_gap() -> None:
    patient = PollSettings(first_delay=2.0, interval=3.0, max_backoff=60.0)
    for tenth in range(20, 20_000, 7):
        for grounding in Grounding:
            assert delay(tenth / 10, grounding, patient) >= 3.0


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


def schedule_polls(grounding: Grounding) -> Iterator[float]:
    elapsed = 0.0
    while True:
        elapsed += delay(elapsed, grounding)
        yield elapsed


def simulate(durations: list[float], polls_of: Callable[[], Iterator[float]]) -> tuple[int, float]:
    """Total polls and mean lag (the first poll at or after the end, minus the end) over `durations`."""
    polls, lag = 0, 0.0
    for duration in durations:
        for polled_at in polls_of():
            polls += 1
            if polled_at >= duration:
                lag += polled_at - duration
                break
    return polls, lag / len(durations)


@pytest.mark.parametrize(("grounding", "median", "spread"), [(Grounding.OFF, 37.0, 0.3), (Grounding.WEB, 60.0, 0.35)])
def test_over_typical_durations_two_thirds_of_a_2_second_pollers_polls_see_results_sooner(
    grounding: Grounding, median: float, spread: float
) -> None:
    rng = random.Random(11)
    durations = [rng.lognormvariate(math.log(median), spread) for _ in range(2000)]

    polls, lag = simulate(durations, lambda: schedule_polls(grounding))
    # The API's example, every 2 s: poll at once, then at 2, 4, 6 s...
    fixed_polls, fixed_lag = simulate(durations, lambda: itertools.count(0.0, 2.0))

    assert polls <= fixed_polls * 2 / 3
    assert lag <= fixed_lag
