"""A channel's scene and recap as every turn reads them: from memory, the database only on a miss.

`/scene set`, `/scene clear` and `/scene recap` write through `SceneBoard`, which drops the
channel's cached copy, so the next turn reads the new text. The cache holds only channels where
a persona has spoken; the roleplay service forgets a channel when its last persona leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.scenes import Recap, Scene, SceneStore

# A scene is sent with every turn of every persona in the channel: long enough for where, when,
# who and what is going on, short enough not to crowd out the conversation. Also under Discord's
# 4,000 characters for a form's text box and 6,000 for a command option.
MAX_SCENE_CHARS = 2000
# A recap is posted as one message with its heading, so it stays well under Discord's 2,000.
MAX_RECAP_CHARS = 1500
# The most of a scene's first line shown in the channel's "scene set" notice.
PREVIEW_CHARS = 120
ELLIPSIS = "…"


@dataclass(frozen=True)
class Table:
    """What every persona in a channel shares: its scene and its last recap ("" when none)."""

    scene: str = ""
    recap: str = ""


NO_TABLE = Table()


class SceneBoard:
    def __init__(self, store: SceneStore | None) -> None:
        self._store = store  # None: a bot built without scenes (its turns have none)
        self._tables: dict[int, Table] = {}
        # Counts every write: a read that a write overtook does not cache what it read (the next one will).
        self._writes = 0

    async def table(self, guild_id: int, channel_id: int) -> Table:
        """The channel's scene and recap, read from the database once and then from memory."""
        cached = self._tables.get(channel_id)
        if cached is not None or self._store is None:
            return cached or NO_TABLE
        writes = self._writes
        scene = await self._store.scene(guild_id, channel_id)
        recap = await self._store.recap(guild_id, channel_id)
        table = Table(scene.text if scene else "", recap.text if recap else "")
        if self._writes == writes:
            self._tables[channel_id] = table
        return table

    async def scene(self, guild_id: int, channel_id: int) -> Scene | None:
        return await self._require().scene(guild_id, channel_id)

    async def recap(self, guild_id: int, channel_id: int) -> Recap | None:
        return await self._require().recap(guild_id, channel_id)

    async def set_scene(self, *, guild_id: int, channel_id: int, text: str, set_by: int, now: float) -> Scene:
        scene = await self._require().set_scene(
            guild_id=guild_id, channel_id=channel_id, text=text, set_by=set_by, now=now
        )
        self._changed(channel_id)
        return scene

    async def set_recap(self, *, guild_id: int, channel_id: int, text: str, written_by: int, now: float) -> Recap:
        recap = await self._require().set_recap(
            guild_id=guild_id, channel_id=channel_id, text=text, written_by=written_by, now=now
        )
        self._changed(channel_id)
        return recap

    async def clear(self, guild_id: int, channel_id: int, *, scene: bool, recap: bool) -> tuple[bool, bool]:
        """Forget the scene and/or the recap; whether each was there."""
        store = self._require()
        had_scene = await store.clear_scene(guild_id, channel_id) if scene else False
        had_recap = await store.clear_recap(guild_id, channel_id) if recap else False
        self._changed(channel_id)
        return had_scene, had_recap

    def forget(self, channel_id: int) -> None:
        self._tables.pop(channel_id, None)

    def channels(self) -> set[int]:
        return set(self._tables)

    def _changed(self, channel_id: int) -> None:
        self._tables.pop(channel_id, None)
        self._writes += 1

    def _require(self) -> SceneStore:
        if self._store is None:
            raise RuntimeError("this bot was built without a scene store")
        return self._store


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The first line of `text`, cut to `limit` characters, marked when anything was left out."""
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > limit:
        return first[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return first + (ELLIPSIS if len(lines) > 1 else "")
