"""The card side of a persona's turn: its greeting when it joins, and its lore, examples and last words.

Each persona's `Character` (bot/character.py) is built once from its card and kept while the persona
speaks somewhere; an edit (a newer `updated_at`) builds it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.character import Character
from bot.errors import UserFacingError
from bot.roleplay.history import ChannelLine
from storage.models import Persona

# Who `{{user}}` is when no member has spoken yet and the starter is unknown.
SOMEONE = "you"


@dataclass(frozen=True)
class CardStage:
    """What a card adds to a turn's Stage."""

    lore: tuple[str, ...] = ()
    examples: str = ""
    after_history: str = ""


NO_CARD = CardStage()


def last_member_name(lines: Sequence[ChannelLine], fallback: str) -> str:
    """Who `{{user}}` is in a turn: the member who spoke last (the one the persona answers)."""
    return next((line.author_name for line in reversed(lines) if line.persona_id is None), fallback)


class Characters:
    def __init__(self, *, lore_chars: int) -> None:
        self._lore_chars = lore_chars
        self._built: dict[int, tuple[float, Character]] = {}  # persona id -> (its updated_at, its character)

    def of(self, persona: Persona, *, keep: bool = True) -> Character | None:
        """The persona's character, None when it did not come from a card; kept for its next turns if `keep`."""
        if persona.card_data is None:
            return None
        built = self._built.get(persona.id)
        if built is not None and built[0] == persona.updated_at:
            return built[1]
        character = Character.from_card(persona.card_data)
        if keep:
            self._built[persona.id] = (persona.updated_at, character)
        return character

    def opening(self, persona: Persona, number: int | None, *, user: str) -> str:
        """The greeting the persona enters with ('' for one the chat model writes), or a refusal.

        `number` None: the card's first message if it has one. 0 is `first_mes`, n its n-th alternate.
        """
        character = self.of(persona, keep=False)  # asked before the persona speaks: it may never
        if number is None:
            return (character.greeting(0, char=persona.name, user=user) or "") if character is not None else ""
        if character is None or character.greeting_count == 0:
            raise UserFacingError(
                f"{persona.name} has no greetings of its own (only personas imported from a character card with "
                "greetings do). Leave out `greeting` and it greets in its own words."
            )
        text = character.greeting(number, char=persona.name, user=user)
        if text is None:
            raise UserFacingError(f"{persona.name} has no greeting {number}. {_greetings_available(character)}")
        return text

    def stage(self, persona: Persona, lines: Sequence[ChannelLine], *, starter: str) -> CardStage:
        """The lore in force after `lines` (the session's conversation), the examples and the last words."""
        character = self.of(persona)
        if character is None:
            return NO_CARD
        char, user = persona.name, last_member_name(lines, starter or SOMEONE)
        recent = [line.content for line in lines[-character.lorebook.scan_depth :]]
        return CardStage(
            lore=tuple(character.lore(recent, char=char, user=user, budget_chars=self._lore_chars)),
            examples=character.example_dialogue(char=char, user=user),
            after_history=character.after_history(char=char, user=user),
        )

    def keep_only(self, persona_ids: Iterable[int]) -> None:
        """Let go of the characters of personas that speak nowhere any more."""
        keep = set(persona_ids)
        for persona_id in set(self._built) - keep:
            del self._built[persona_id]

    def personas(self) -> set[int]:
        return set(self._built)


def _greetings_available(character: Character) -> str:
    alternates = len(character.alternate_greetings)
    first = "`greeting:0` (or none) is its first message" if character.first_message else ""
    others = (
        f"`greeting:1` to `greeting:{alternates}` are its alternates"
        if alternates > 1
        else "`greeting:1` is its alternate"
        if alternates == 1
        else ""
    )
    return " and ".join(part for part in (first, others) if part) + "."
