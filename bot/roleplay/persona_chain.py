"""Personas answering each other: whom a persona's line calls on, and the bound on how long that goes.

A persona named in another persona's line gets a turn, as if a member had named it. The count of
such turns in a channel is checked before each one is asked for, and only a member resets it, so
at most ROLEPLAY_MAX_PERSONA_CHAIN of them follow any member's message: a loop is impossible by
construction, whatever the personas say. It is the brake kept on answers to other bots
(`BotTurns`), with a count of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.roleplay.addressing import ActivePersona, personas_named
from bot.roleplay.bot_turns import BotTurns


class PersonaChain(BotTurns):
    """Persona-to-persona turns in a row per channel, since a member last spoke or acted."""


def called_by_persona(text: str, speaker_id: int, active: Sequence[ActivePersona]) -> list[int]:
    """The personas a persona's line names, in order of first mention: never the speaker itself.

    Nor a natural persona: its conductor hears every persona line and keeps its own rule there
    (a persona's line never starts its turns). Names are read among all of `active`, so a first
    name the speaker shares still calls nobody.
    """
    natural = {persona.persona_id for persona in active if persona.mode == "natural"}
    return [
        persona_id
        for persona_id in personas_named(text, active)
        if persona_id != speaker_id and persona_id not in natural
    ]
