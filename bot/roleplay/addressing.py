"""Which active personas should answer a member's message, in the order they answer.

In order: a reply to a persona's message goes to that persona; else every
persona named in the text; else, when the bot is mentioned, the persona that
spoke last (or the newest one); else one `always`-mode persona, drawn by
talkativeness and recency when there are several (bot/roleplay/choosing.py);
else nobody.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.roleplay.choosing import choose_speaker
from storage.models import DEFAULT_TALKATIVENESS
from storage.roleplay import RoleplayMode

# A first name shorter than this ("Al", "Jo") is too common a fragment to call someone by.
MIN_FIRST_NAME_LETTERS = 3

_FIRST_WORD = re.compile(r"\W*([\w'’-]*\w)")
# Draws who answers an unaddressed message when the caller brings no generator of its own.
_UNSEEDED = random.Random()


@dataclass(frozen=True)
class ActivePersona:
    persona_id: int
    name: str
    mode: RoleplayMode
    started_at: float
    talkativeness: int = DEFAULT_TALKATIVENESS


def addressed(
    *,
    text: str,
    active: Sequence[ActivePersona],
    reply_to_persona: int | None,
    mentions_bot: bool,
    last_speaker: int | None,
    recent_speakers: Sequence[int] = (),
    rng: random.Random | None = None,
) -> list[int]:
    """The ids of the personas that answer this message; [] when none should.

    `recent_speakers` (persona ids of the channel's persona lines, oldest first) and `rng` serve
    the draw among several `always` personas.
    """
    active_ids = {persona.persona_id for persona in active}
    # A reply to a persona whose session has ended is an ordinary message.
    if reply_to_persona in active_ids:
        return [reply_to_persona]
    named = personas_named(text, active)
    if named:
        return named
    if mentions_bot:  # a narrator answers only to its name (or /scene narrate), not to the bot's
        return _last_speaker_or_newest([persona for persona in active if persona.mode != "narrator"], last_speaker)
    always = [persona for persona in active if persona.mode == "always"]
    if len(always) > 1:  # one answers, not the same one every time: a draw (a lone one answers all)
        talkativeness = {persona.persona_id: persona.talkativeness for persona in always}
        chosen = choose_speaker(talkativeness, recent_speakers, rng or _UNSEEDED)
        return [chosen] if chosen is not None else []
    return _last_speaker_or_newest(always, last_speaker)


def personas_named(text: str, active: Sequence[ActivePersona]) -> list[int]:
    """Personas named in `text` by full name or first name, whole words, any case, in order of first mention."""
    found = []  # (start, end, persona_id)
    for persona_id, call_name in _call_names(active):
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, call_name.split())) + r"(?!\w)"
        found += [(match.start(), match.end(), persona_id) for match in re.finditer(pattern, text, re.IGNORECASE)]
    # The longest name at a place wins: "Sam Okafor" is not also a call to a persona named "Sam".
    found.sort(key=lambda hit: (hit[0], hit[0] - hit[1]))
    answering: list[int] = []
    taken_until = 0
    for start, end, persona_id in found:
        if start < taken_until:
            continue
        taken_until = end
        if persona_id not in answering:
            answering.append(persona_id)
    return answering


def _call_names(active: Sequence[ActivePersona]) -> list[tuple[int, str]]:
    """(persona_id, name) pairs to look for: every full name, and every first name that only one persona answers to."""
    full_names = [(persona.persona_id, persona.name) for persona in active if persona.name.strip()]
    first_names = [(persona_id, first) for persona_id, name in full_names if (first := _first_name(name))]
    # A first name shared by two personas, or equal to someone's full name, calls nobody by itself.
    counts: dict[str, int] = {}
    for _, name in full_names + first_names:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    return full_names + [(persona_id, first) for persona_id, first in first_names if counts[first.casefold()] == 1]


def _first_name(name: str) -> str | None:
    """The first word of a name of several words, when it has enough letters to be called by."""
    words = name.split()
    if len(words) < 2:
        return None
    match = _FIRST_WORD.match(words[0])
    if match is None:
        return None
    first = match.group(1)
    return first if sum(char.isalpha() for char in first) >= MIN_FIRST_NAME_LETTERS else None


def _last_speaker_or_newest(candidates: Sequence[ActivePersona], last_speaker: int | None) -> list[int]:
    if not candidates:
        return []
    for persona in candidates:
        if persona.persona_id == last_speaker:
            return [persona.persona_id]
    # Reversed so that, of two started at the same moment, the later in `active` is the newer.
    newest = max(reversed(candidates), key=lambda persona: persona.started_at)
    return [newest.persona_id]
