"""What a character card brings beyond a prompt: greetings, example dialogue, last words and a lorebook.

Pure: it reads a card's `data` object as Character Card V2 defines it (V3 keeps the same fields),
kept whole in `Persona.card_data`, and gives text. Build a `Character` once per persona
(`Character.from_card`) and reuse it: every key of the lorebook is prepared then, so choosing the
entries of a turn costs a few set lookups and `str.find`s, never a regex per entry.

Placeholders are filled as SillyTavern fills them: `{{char}}` and `<BOT>` (or `<CHAR>`) become the
character's name, `{{user}}` and `<USER>` the member's, in any case. Cards are untrusted: a field of
the wrong type is treated as absent, never as an error, since the card was accepted at import.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.cards import clean_text

# Lines of the conversation a lorebook looks at for its keys when the book does not say
# (`scan_depth`). SillyTavern's default is 2, for one user and one character; a Discord table has
# several people talking, so a key stays in view a little longer.
DEFAULT_SCAN_DEPTH = 4
MAX_SCAN_DEPTH = 100  # a book asking for more looks this far: the transcript holds 200 lines at most
# A book's `token_budget` counted in characters: about four to a token in English.
CHARS_PER_TOKEN = 4
# Entries found by other entries' text (`recursive_scanning`): this many rounds at most.
MAX_RECURSION = 3
# The example dialogue and the post-history instructions go into every turn; a card can carry
# pages of either, so each is bounded (its start kept) as the system prompt is.
MAX_EXAMPLES_CHARS = 4_000
MAX_AFTER_HISTORY_CHARS = 1_000
CUT_MARK = "…"

_PLACEHOLDER = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(bot|char|user)>", re.IGNORECASE)
# SillyTavern fills a card's `{{original}}` with its own prompt of the same kind; we have none.
_ORIGINAL = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)
# `<START>` opens each example conversation in `mes_example`.
_START = re.compile(r"<start>", re.IGNORECASE)
_WORD = re.compile(r"\w+")


def fill(text: str, *, char: str, user: str) -> str:
    """`text` with `{{char}}`/`<BOT>` as `char` and `{{user}}`/`<USER>` as `user`, in any case."""
    if "{" not in text and "<" not in text:
        return text  # most lore entries: no placeholder, no regex
    return _PLACEHOLDER.sub(lambda match: user if (match[1] or match[2]).lower() == "user" else char, text)


def keep_start(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(CUT_MARK))].rstrip() + CUT_MARK


# --- keys -----------------------------------------------------------------------------------------


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True)
class Scan:
    """The text a lorebook looks at, prepared once per turn for every key to be checked against it."""

    text: str
    lowered: str
    words: frozenset[str]
    lowered_words: frozenset[str]

    @classmethod
    def of(cls, lines: Iterable[str]) -> Scan:
        text = "\n".join(lines)
        words = frozenset(_WORD.findall(text))
        return cls(text, text.lower(), words, frozenset(map(str.lower, words)))


def _has_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as whole words (its ends not glued to letters or digits)."""
    start = text.find(phrase)
    while start != -1:
        end = start + len(phrase)
        before_ok = start == 0 or not _is_word_char(phrase[0]) or not _is_word_char(text[start - 1])
        after_ok = end == len(text) or not _is_word_char(phrase[-1]) or not _is_word_char(text[end])
        if before_ok and after_ok:
            return True
        start = text.find(phrase, start + 1)
    return False


@dataclass(frozen=True)
class Keys:
    """An entry's keys, split by how they are cheapest to find: a one-word key is a set lookup."""

    words: frozenset[str]
    phrases: tuple[str, ...]
    case_sensitive: bool

    @classmethod
    def of(cls, keys: Iterable[str], *, case_sensitive: bool) -> Keys:
        prepared = {key if case_sensitive else key.lower() for key in (k.strip() for k in keys) if key}
        words = frozenset(key for key in prepared if _WORD.fullmatch(key))
        return cls(words, tuple(sorted(prepared - words)), case_sensitive)

    def __bool__(self) -> bool:
        return bool(self.words or self.phrases)

    def found_in(self, scan: Scan) -> bool:
        words, text = (scan.words, scan.text) if self.case_sensitive else (scan.lowered_words, scan.lowered)
        if not words.isdisjoint(self.words):
            return True
        return any(_has_phrase(text, phrase) for phrase in self.phrases)


# --- the lorebook ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoreEntry:
    content: str
    keys: Keys
    secondary_keys: Keys
    selective: bool  # a secondary key must be in view too (when it has any)
    constant: bool  # always in force
    enabled: bool
    insertion_order: int  # lower is placed higher; on a full budget, higher is kept first
    priority: int  # on a full budget, higher is kept first (before insertion order)
    index: int  # its place in the card: the last tie-break

    def triggered(self, scan: Scan) -> bool:
        if not self.keys.found_in(scan):
            return False
        return not (self.selective and self.secondary_keys) or self.secondary_keys.found_in(scan)


def _rank(entry: LoreEntry) -> tuple[int, int, int]:
    """Which entries a full budget keeps first."""
    return (-entry.priority, -entry.insertion_order, entry.index)


def _placement(entry: LoreEntry) -> tuple[int, int]:
    return (entry.insertion_order, entry.index)


@dataclass(frozen=True)
class KeyIndex:
    """Which keyed entries each key points to, so a turn looks up the words it has, not every entry."""

    by_word: dict[str, tuple[int, ...]]  # one-word keys, lowercased -> positions in `Lorebook.keyed`
    by_cased_word: dict[str, tuple[int, ...]]  # one-word keys of case-sensitive entries, as written
    phrases: tuple[tuple[str, bool, int], ...]  # (phrase, case-sensitive, position) for the other keys

    @classmethod
    def of(cls, keyed: Sequence[LoreEntry]) -> KeyIndex:
        by_word: dict[str, list[int]] = {}
        by_cased_word: dict[str, list[int]] = {}
        phrases = []
        for position, entry in enumerate(keyed):
            keys = entry.keys
            for word in keys.words:
                (by_cased_word if keys.case_sensitive else by_word).setdefault(word, []).append(position)
            phrases += [(phrase, keys.case_sensitive, position) for phrase in keys.phrases]
        return cls(
            {word: tuple(positions) for word, positions in by_word.items()},
            {word: tuple(positions) for word, positions in by_cased_word.items()},
            tuple(phrases),
        )

    def candidates(self, scan: Scan) -> set[int]:
        """Positions of the entries one of whose keys is in `scan`."""
        found: set[int] = set()
        for word in self.by_word.keys() & scan.lowered_words:
            found.update(self.by_word[word])
        if self.by_cased_word:
            for word in self.by_cased_word.keys() & scan.words:
                found.update(self.by_cased_word[word])
        for phrase, case_sensitive, position in self.phrases:
            if position not in found and _has_phrase(scan.text if case_sensitive else scan.lowered, phrase):
                found.add(position)
        return found


EMPTY_INDEX = KeyIndex({}, {}, ())


@dataclass(frozen=True)
class Lorebook:
    """A card's `character_book`, its entries sorted once by rank, split into constant and keyed."""

    constant: tuple[LoreEntry, ...]  # enabled and constant, by rank
    keyed: tuple[LoreEntry, ...]  # enabled, with keys, not constant, by rank
    index: KeyIndex  # of `keyed`
    scan_depth: int
    budget_chars: int | None  # the book's own token_budget, in characters
    recursive: bool
    entry_count: int  # every entry with content, in force or not
    disabled_count: int

    @classmethod
    def from_book(cls, book: object) -> Lorebook:
        if not isinstance(book, dict):
            return EMPTY_LOREBOOK
        raw_entries = book.get("entries")
        entries = [
            entry
            for index, raw in enumerate(raw_entries if isinstance(raw_entries, list) else ())
            if (entry := _entry(raw, index)) is not None
        ]
        enabled = [entry for entry in entries if entry.enabled]
        keyed = tuple(sorted((e for e in enabled if not e.constant and e.keys), key=_rank))
        depth = _integer(book.get("scan_depth"))
        budget = _integer(book.get("token_budget"))
        return cls(
            constant=tuple(sorted((e for e in enabled if e.constant), key=_rank)),
            keyed=keyed,
            index=KeyIndex.of(keyed),
            scan_depth=min(depth, MAX_SCAN_DEPTH) if depth is not None and depth > 0 else DEFAULT_SCAN_DEPTH,
            budget_chars=budget * CHARS_PER_TOKEN if budget is not None and budget > 0 else None,
            recursive=book.get("recursive_scanning") is True,
            entry_count=len(entries),
            disabled_count=len(entries) - len(enabled),
        )

    def select(self, lines: Sequence[str], *, budget_chars: int) -> list[LoreEntry]:
        """The entries in force after `lines` (the conversation, oldest first), within the budget.

        Constant entries first, then those whose keys are in the last `scan_depth` lines, each kept
        while it fits (by priority, then insertion order); the result is in insertion order.
        """
        if not self.constant and not self.keyed:
            return []
        triggered = self._triggered(lines[-self.scan_depth :]) if self.keyed else []
        budget = budget_chars if self.budget_chars is None else min(budget_chars, self.budget_chars)
        chosen: list[LoreEntry] = []
        used = 0
        for entry in (*self.constant, *triggered):
            cost = len(entry.content) + 1  # and the line break joining it
            if used + cost <= budget:
                chosen.append(entry)
                used += cost
        chosen.sort(key=_placement)
        return chosen

    def _triggered(self, lines: Sequence[str]) -> list[LoreEntry]:
        """Keyed entries whose keys are in view, by rank; with recursion, also those named by these."""
        found = self._found_in(Scan.of(lines), set())
        if self.recursive:
            texts = [entry.content for entry in self.constant] + [self.keyed[position].content for position in found]
            for _ in range(MAX_RECURSION):
                if not texts:
                    break
                new = self._found_in(Scan.of(texts), found)
                found |= new
                texts = [self.keyed[position].content for position in new]
        return [self.keyed[position] for position in sorted(found)]

    def _found_in(self, scan: Scan, known: set[int]) -> set[int]:
        """Positions of the entries `scan` triggers, but those `known` already."""
        return {
            position
            for position in self.index.candidates(scan) - known
            if not (entry := self.keyed[position]).selective
            or not entry.secondary_keys
            or entry.secondary_keys.found_in(scan)
        }


EMPTY_LOREBOOK = Lorebook((), (), EMPTY_INDEX, DEFAULT_SCAN_DEPTH, None, False, 0, 0)


def _entry(raw: object, index: int) -> LoreEntry | None:
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    case_sensitive = raw.get("case_sensitive") is True
    return LoreEntry(
        content=clean_text(content).strip(),
        keys=Keys.of(_texts(raw.get("keys")), case_sensitive=case_sensitive),
        secondary_keys=Keys.of(_texts(raw.get("secondary_keys")), case_sensitive=case_sensitive),
        selective=raw.get("selective") is True,
        constant=raw.get("constant") is True,
        enabled=raw.get("enabled") is not False,  # required by the spec; a card without it meant it on
        insertion_order=_integer(raw.get("insertion_order")) or 0,
        priority=_integer(raw.get("priority")) or 0,
        index=index,
    )


def _integer(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if abs(value) < 2**53 else None


def _texts(value: object) -> list[str]:
    """A list of texts; a lone text (some tools write one) is a list of one."""
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _text(value: object) -> str:
    return clean_text(value).strip() if isinstance(value, str) else ""


# --- the character --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Character:
    """A card's character, its placeholders still in (the names are known only at each turn)."""

    first_message: str
    alternate_greetings: tuple[str, ...]
    examples: str  # mes_example
    post_history: str  # post_history_instructions
    lorebook: Lorebook

    @classmethod
    def from_card(cls, data: dict[str, Any]) -> Character:
        alternates = data.get("alternate_greetings")
        return cls(
            first_message=_text(data.get("first_mes")),
            alternate_greetings=tuple(
                text for text in (_text(item) for item in (alternates if isinstance(alternates, list) else ())) if text
            ),
            examples=_text(data.get("mes_example")),
            post_history=_text(data.get("post_history_instructions")),
            lorebook=Lorebook.from_book(data.get("character_book")),
        )

    @property
    def greeting_count(self) -> int:
        return (1 if self.first_message else 0) + len(self.alternate_greetings)

    def greeting(self, number: int, *, char: str, user: str) -> str | None:
        """Greeting `number`, filled: 0 is `first_mes`, n the n-th alternate greeting; None if there is none."""
        if number == 0:
            text = self.first_message
        elif 1 <= number <= len(self.alternate_greetings):
            text = self.alternate_greetings[number - 1]
        else:
            return None
        return fill(text, char=char, user=user) or None

    def example_dialogue(self, *, char: str, user: str) -> str:
        """`mes_example` filled, its `<START>`-separated conversations apart by a blank line, bounded."""
        return _example_dialogue(self.examples, char, user) if self.examples else ""

    def after_history(self, *, char: str, user: str) -> str:
        """`post_history_instructions` filled (its `{{original}}` is empty here), bounded."""
        return _after_history(self.post_history, char, user) if self.post_history else ""

    def lore(self, lines: Sequence[str], *, char: str, user: str, budget_chars: int) -> list[str]:
        """The lorebook entries in force after `lines`, filled, in insertion order."""
        entries = self.lorebook.select(lines, budget_chars=budget_chars)
        return [fill(entry.content, char=char, user=user) for entry in entries]


# Every turn asks again with the same names: the filled text is remembered (a few kB each at most).
@functools.lru_cache(maxsize=256)
def _example_dialogue(examples: str, char: str, user: str) -> str:
    blocks = [block.strip() for block in _START.split(fill(examples, char=char, user=user))]
    return keep_start("\n\n".join(block for block in blocks if block), MAX_EXAMPLES_CHARS)


@functools.lru_cache(maxsize=256)
def _after_history(post_history: str, char: str, user: str) -> str:
    text = _ORIGINAL.sub("", post_history).strip()
    return keep_start(fill(text, char=char, user=user), MAX_AFTER_HISTORY_CHARS)


def card_summary(data: dict[str, Any] | None) -> str | None:
    """'3 greetings · 4 lore entries (1 switched off)' for a persona from a card; None otherwise."""
    if data is None:
        return None
    character = Character.from_card(data)
    greetings = character.greeting_count
    book = character.lorebook
    summary = f"{greetings} greeting{'' if greetings == 1 else 's'} · {book.entry_count} lore "
    summary += "entry" if book.entry_count == 1 else "entries"
    if book.disabled_count:
        summary += f" ({book.disabled_count} switched off)"
    return summary
