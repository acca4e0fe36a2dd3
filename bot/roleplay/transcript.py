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

    def find(self, channel_id: int, message_id: int) -> tuple[float, ChannelLine] | None:
        """The line shown in Discord message `message_id`, with when it was said; None if not kept."""
        return next(((at, line) for at, line in self._lines.get(channel_id, ()) if line.shown_in(message_id)), None)

    def before(self, channel_id: int, message_id: int, started_at: float) -> list[ChannelLine]:
        """The lines since `started_at` that came before the one shown in `message_id`: the history it answered."""
        lines = []
        for at, line in self._lines.get(channel_id, ()):
            if line.shown_in(message_id):
                break
            if at >= started_at:
                lines.append(line)
        return lines

    def replace(self, channel_id: int, message_id: int, line: ChannelLine) -> bool:
        """Put `line` in place of the one shown in `message_id` (a regenerated, edited or cut reply)."""
        lines = self._lines.get(channel_id, ())
        for index, (at, old) in enumerate(lines):
            if old.shown_in(message_id):
                lines[index] = (at, line)
                return True
        return False

    def forget(self, channel_id: int) -> None:
        self._lines.pop(channel_id, None)

    def channels(self) -> set[int]:
        return set(self._lines)
