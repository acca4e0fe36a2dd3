"""The brake on bots talking to personas: at most so many answers to bots in a row in a channel.

Another bot that answers every persona line (or a second copy of this bot) would
otherwise ping-pong with a persona forever, one model call a line. Any member's
message releases the brake. Only channels in the middle of a run are kept.
"""

from __future__ import annotations


class BotTurns:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_a_row: dict[int, int] = {}  # channel id -> answers to bots since a member last spoke

    def member_spoke(self, channel_id: int) -> None:
        self._in_a_row.pop(channel_id, None)

    def may_answer(self, channel_id: int) -> bool:
        return self._in_a_row.get(channel_id, 0) < self._limit

    def answered(self, channel_id: int) -> None:
        self._in_a_row[channel_id] = self._in_a_row.get(channel_id, 0) + 1

    def forget(self, channel_id: int) -> None:
        self._in_a_row.pop(channel_id, None)

    def channels(self) -> set[int]:
        return set(self._in_a_row)
