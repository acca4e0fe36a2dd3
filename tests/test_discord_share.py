"""Several processes, one bot: each keeps to its share of Discord's global rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core import PersonaBot
from bot.discord_share import WINDOW_SECONDS, RequestPacer, share_of_global_limit
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("count", "ids", "share"),
    [
        (None, None, None),
        (4, [0], 10.0),
        (4, [0, 1], 20.0),
        (8, [4, 5, 6, 7], 20.0),
        (3, [0], 40 / 3),
        (2, [0, 1], 40.0),
    ],
)
def test_a_process_takes_the_share_of_its_shards(count: int | None, ids: list[int] | None, share: float) -> None:
    assert share_of_global_limit(count, ids) == share


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_requests_beyond_the_share_wait_their_turn_and_no_second_holds_more_than_the_share() -> None:
    time = FakeTime()
    pacer = RequestPacer(12.5, clock=time.clock, sleep=time.sleep)
    granted: list[float] = []

    async def request() -> None:
        await pacer.wait_turn()
        granted.append(time.now)

    await asyncio.gather(*(request() for _ in range(100)))

    assert len(granted) == 100
    assert granted[:12] == [0.0] * 12  # a burst of up to the share (in whole requests) goes at once
    # Then 12 more each time a window has passed: the 100th goes in the ninth window.
    assert granted[-1] == pytest.approx(8 * WINDOW_SECONDS)
    # In any second whatever (not only from whole seconds), at most 12.
    assert max(sum(1 for at in granted if start <= at < start + 1) for start in granted) == 12


async def test_after_a_quiet_spell_a_share_is_not_spent_twice_in_one_second() -> None:
    time = FakeTime()
    pacer = RequestPacer(25, clock=time.clock, sleep=time.sleep)
    granted: list[float] = []

    async def request() -> None:
        await pacer.wait_turn()
        granted.append(time.now)

    time.now = 0.9
    await asyncio.gather(*(request() for _ in range(25)))  # the whole share, late in a second
    time.now = 1.2  # a bucket refilled by then would let 25 more through at once
    await asyncio.gather(*(request() for _ in range(25)))

    assert max(sum(1 for at in granted if start <= at < start + 1) for start in granted) == 25
    assert granted[25] == pytest.approx(0.9 + WINDOW_SECONDS)


async def test_a_process_running_one_of_four_shards_paces_its_requests_to_a_quarter(tmp_path: Path) -> None:
    alone = PersonaBot(make_settings(tmp_path / "a.sqlite3", "http://unused"))
    shared = PersonaBot(make_settings(tmp_path / "b.sqlite3", "http://unused", shard_count=4, shard_ids="3"))
    try:
        assert alone.discord_pacer is None  # every shard here: discord.py's own limiter is enough
        assert shared.discord_pacer is not None and shared.discord_pacer.rate == 10.0
        assert getattr(shared.http.request, "__wrapped__", None) is not None
    finally:
        await alone.close()
        await shared.close()
