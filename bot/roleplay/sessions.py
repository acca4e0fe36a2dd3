"""The active roleplay sessions, by channel, with their personas: read on every message, so kept in memory.

The database is the record (storage/roleplay.py); this is the bot's working copy,
loaded at start-up and changed alongside every write. It holds nothing for a
channel once its last session ends, nor a persona once it speaks nowhere.
"""

from __future__ import annotations

from dataclasses import replace

from storage.models import Persona
from storage.roleplay import RoleplayMode, Session


class ActiveSessions:
    def __init__(self) -> None:
        self._by_channel: dict[int, list[Session]] = {}
        self._personas: dict[int, Persona] = {}
        # Persona id -> how many active sessions it has: its cached persona goes with the last one.
        self._session_count: dict[int, int] = {}
        # Channel id -> when a member last spoke there; a session idles when its channel does.
        self._last_heard: dict[int, float] = {}

    def in_channel(self, channel_id: int) -> list[Session]:
        return list(self._by_channel.get(channel_id, ()))

    def everywhere(self) -> list[Session]:
        return [session for sessions in self._by_channel.values() for session in sessions]

    def current(self, session: Session) -> Session | None:
        """`session` as it is now (a rename changes its persona's name), or None once it ended."""
        return next((s for s in self._by_channel.get(session.channel_id, ()) if s.id == session.id), None)

    def persona(self, persona_id: int) -> Persona | None:
        return self._personas.get(persona_id)

    def add(self, session: Session, persona: Persona | None) -> None:
        self._by_channel.setdefault(session.channel_id, []).append(session)
        self._session_count[session.persona_id] = self._session_count.get(session.persona_id, 0) + 1
        self.heard(session.channel_id, session.last_activity_at)
        if persona is not None:
            self._personas[persona.id] = persona

    def remove(self, session: Session) -> bool:
        """Forget `session`; True when its channel has no session left."""
        sessions = self._by_channel.get(session.channel_id, [])
        remaining = [s for s in sessions if s.id != session.id]
        if len(remaining) < len(sessions):
            self._release_persona(session.persona_id)
        if remaining:
            self._by_channel[session.channel_id] = remaining
            return False
        self._by_channel.pop(session.channel_id, None)
        self._last_heard.pop(session.channel_id, None)
        return True

    def _release_persona(self, persona_id: int) -> None:
        left = self._session_count.get(persona_id, 0) - 1
        if left > 0:
            self._session_count[persona_id] = left
            return
        self._session_count.pop(persona_id, None)
        self._personas.pop(persona_id, None)

    def update_persona(self, persona: Persona) -> list[Session]:
        """Take a renamed or edited persona at once; its sessions, under its new name."""
        if persona.id in self._personas:
            self._personas[persona.id] = persona
        updated = []
        for channel_id, sessions in self._by_channel.items():
            if any(s.persona_id == persona.id for s in sessions):
                renamed = [replace(s, persona_name=persona.name) if s.persona_id == persona.id else s for s in sessions]
                self._by_channel[channel_id] = renamed
                updated += [s for s in renamed if s.persona_id == persona.id]
        return updated

    def set_mode(self, session: Session, mode: RoleplayMode) -> Session | None:
        """`session` in another mode from now on; None if it has ended meanwhile."""
        sessions = self._by_channel.get(session.channel_id)
        if not sessions:
            return None
        changed = [replace(s, mode=mode) if s.id == session.id else s for s in sessions]
        self._by_channel[session.channel_id] = changed
        return next((s for s in changed if s.id == session.id), None)

    def heard(self, channel_id: int, at: float) -> None:
        if channel_id in self._by_channel:  # a message read after a stop must not bring the channel back
            self._last_heard[channel_id] = max(self._last_heard.get(channel_id, 0.0), at)

    def last_heard(self, channel_id: int) -> float | None:
        return self._last_heard.get(channel_id)

    def idle(self, *, now: float, idle_after: float) -> list[Session]:
        """Sessions whose channel has been silent for `idle_after` seconds or more."""
        return [
            session
            for session in self.everywhere()
            if now - self._last_heard.get(session.channel_id, session.last_activity_at) >= idle_after
        ]

    def channels(self) -> set[int]:
        """Every channel something is kept for (none but those with an active session)."""
        return set(self._by_channel) | set(self._last_heard)

    def cached_personas(self) -> set[int]:
        return set(self._personas) | set(self._session_count)
