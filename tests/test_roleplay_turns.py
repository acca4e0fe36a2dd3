"""One reply at a time per persona per channel; what arrives meanwhile is answered together next."""

from __future__ import annotations

import asyncio

from bot.roleplay.turns import TurnQueue


async def test_requests_during_a_turn_make_exactly_one_more_turn() -> None:
    queue = TurnQueue(cooldown_seconds=0)
    release = asyncio.Event()
    runs: list[str] = []

    async def turn() -> None:
        runs.append("start")
        await release.wait()
        runs.append("end")

    queue.request(1, 7, turn)
    await asyncio.sleep(0)
    for _ in range(5):  # five messages arrive while the first reply is being written
        queue.request(1, 7, turn)
    assert runs == ["start"]

    release.set()
    for _ in range(10):
        await asyncio.sleep(0)

    assert runs == ["start", "end", "start", "end"]
    assert not queue.busy(1, 7)


async def test_two_personas_reply_side_by_side() -> None:
    queue = TurnQueue(cooldown_seconds=0)
    release = asyncio.Event()
    started: list[int] = []

    def turn_of(persona_id: int):  # type: ignore[no-untyped-def]
        async def turn() -> None:
            started.append(persona_id)
            await release.wait()

        return turn

    queue.request(1, 7, turn_of(7))
    queue.request(1, 8, turn_of(8))
    await asyncio.sleep(0)

    assert started == [7, 8]
    release.set()
    await queue.stop()


async def test_a_failing_turn_does_not_stop_the_next() -> None:
    queue = TurnQueue(cooldown_seconds=0)
    runs: list[int] = []

    async def failing() -> None:
        runs.append(1)
        raise RuntimeError("model exploded")

    queue.request(1, 7, failing)
    for _ in range(5):
        await asyncio.sleep(0)
    queue.request(1, 7, failing)
    for _ in range(5):
        await asyncio.sleep(0)

    assert runs == [1, 1]


async def test_a_special_turn_asked_for_during_a_turn_is_not_replaced_by_a_plain_one() -> None:
    queue = TurnQueue(cooldown_seconds=0)
    release = asyncio.Event()
    runs: list[str] = []

    def turn_with(cue: str):  # type: ignore[no-untyped-def]
        async def turn() -> None:
            runs.append(cue)
            await release.wait()

        return turn

    queue.request(1, 7, turn_with("plain"))
    await asyncio.sleep(0)
    queue.request(1, 7, turn_with("the ring is stolen"), special=True)  # /roleplay next while it speaks
    queue.request(1, 7, turn_with("plain again"))  # a member's message right after
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)

    assert runs == ["plain", "the ring is stolen"]


async def test_the_latest_of_two_cues_is_the_one_kept() -> None:
    queue = TurnQueue(cooldown_seconds=0)
    release = asyncio.Event()
    runs: list[str] = []

    def turn_with(cue: str):  # type: ignore[no-untyped-def]
        async def turn() -> None:
            runs.append(cue)
            await release.wait()

        return turn

    queue.request(1, 7, turn_with("plain"))
    await asyncio.sleep(0)
    queue.request(1, 7, turn_with("first cue"), special=True)
    queue.request(1, 7, turn_with("second cue"), special=True)
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)

    assert runs == ["plain", "second cue"]
