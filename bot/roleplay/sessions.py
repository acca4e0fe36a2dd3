"""The active roleplay sessions, by channel, with their personas: read on every message, so kept in memory.

The database is the record (storage/roleplay.py); this is the bot's working copy,
loaded at start-up and changed alongside every write.
"""

from __future__ import annotations

from storage.models import Persona
from storage.roleplay import Session


class ActiveSessions:
    def __init__(self) -> None:
        self._by_channel: dict[int, list[Session]] = {}
        self._personas: dict[int, Persona] = {}
        # Channel id -> when someone last spoke there; a session idles when its channel does.
        self._last_heard: dict[int, float] = {}

    def in_channel(self, channel_id: int) -> list[Session]:
        return list(self._by_channel.get(channel_id, ()))

    def everywhere(self) -> list[Session]:
        return [session for sessions in self._by_channel.values() for session in sessions]

    def is_active(self, session: Session) -> bool:
        return any(s.id == session.id for s in self._by_channel.get(session.channel_id, ()))

    def persona(self, persona_id: int) -> Persona | None:
        return self._personas.get(persona_id)

    def add(self, session: Session, persona: Persona | None) -> None:
        self._by_channel.setdefault(session.channel_id, []).append(session)
        self.heard(session.channel_id, session.last_activity_at)
        if persona is not None:
            self._personas[persona.id] = persona

    def remove(self, session: Session) -> bool:
        """Forget `session`; True when its channel has no session left."""
        remaining = [s for s in self._by_channel.get(session.channel_id, ()) if s.id != session.id]
        if remaining:
            self._by_channel[session.channel_id] = remaining
            return False
        self._by_channel.pop(session.channel_id, None)
        return True

    def forget_persona(self, persona_id: int) -> None:
        self._personas.pop(persona_id, None)

    def heard(self, channel_id: int, at: float) -> None:
        self._last_heard[channel_id] = max(self._last_heard.get(channel_id, 0.0), at)

    def idle(self, *, now: float, idle_after: float) -> list[Session]:
        """Sessions whose channel has been silent for `idle_after` seconds or more."""
        return [
            session
            for session in self.everywhere()
            if now - self._last_heard.get(session.channel_id, session.last_activity_at) >= idle_after
        ]
