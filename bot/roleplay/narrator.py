"""The narrator: a game master persona that describes the world and speaks only when called.

It answers when named or replied to (bot/roleplay/addressing.py) and when a member runs
`/scene narrate`; never by itself. Its turns carry `Stage.narrator`, so its instructions say it
describes and never speaks for the players' characters (bot/roleplay/history.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.roleplay import Session

# Its first turn when it joins a channel that has a scene; with no scene it waits to be called.
OPENING_CUE = "Open the scene for the players in a few sentences: where they are and what they notice."
# The most a `/scene narrate` direction may say: a turn's cue, not a second scene.
MAX_CUE_CHARS = 500
# What `/scene narrate` asks for when the member gives no direction.
NEXT_CUE = "Describe what happens next."
NO_NARRATOR = (
    "No narrator is speaking here. Bring one in with `/roleplay as persona:<name> mode:narrator`, "
    "then call on it with `/scene narrate`."
)


def channel_narrator(sessions: Sequence[Session]) -> Session | None:
    """The narrator of a channel: the first to join, when several were brought in."""
    narrators = [session for session in sessions if session.mode == "narrator"]
    return min(narrators, key=lambda session: (session.started_at, session.id)) if narrators else None
