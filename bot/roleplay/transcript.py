"""What was said in each roleplay channel, kept in memory for the model's history.

Reading it costs nothing on the reply path. After a restart a channel's
transcript is rebuilt once from Discord's history (see `backfill`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from bot.roleplay.history import ChannelLine

# More than any history bound a server would set; older lines are of no use to the model.
MAX_LINES_PER_CHANNEL = 200


class Transcripts:
    def __init__(self, max_lines: int = MAX_LINES_PER_CHANNEL) -> None:
        self._max_lines = max_lines
        self._lines: dict[int, deque[tuple[float, ChannelLine]]] = {}

    def add(self, channel_id: int, line: ChannelLine, *, at: float) -> None:
        self._lines.setdefault(channel_id, deque(maxlen=self._max_lines)).append((at, line))

    def extend(self, channel_id: int, lines: Iterable[tuple[float, ChannelLine]]) -> None:
        for at, line in lines:
            self.add(channel_id, line, at=at)

    def since(self, channel_id: int, started_at: float) -> list[ChannelLine]:
        return [line for at, line in self._lines.get(channel_id, ()) if at >= started_at]

    def recent_speakers(self, channel_id: int, count: int) -> list[int]:
        """The persona ids of the channel's last `count` persona lines, oldest first."""
        found: list[int] = []
        for _, line in reversed(self._lines.get(channel_id, ())):
            if line.persona_id is not None:
                found.append(line.persona_id)
                if len(found) == count:
                    break
        found.reverse()
        return found

    def forget(self, channel_id: int) -> None:
        self._lines.pop(channel_id, None)

    def channels(self) -> set[int]:
        return set(self._lines)
