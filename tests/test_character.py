"""A card's character: its greetings, examples, last words and lorebook, as SillyTavern would use them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.character import (
    DEFAULT_SCAN_DEPTH,
    MAX_AFTER_HISTORY_CHARS,
    MAX_EXAMPLES_CHARS,
    Character,
    card_summary,
    fill,
)

SERAPHINA = json.loads((Path(__file__).parent / "data" / "seraphina.json").read_text(encoding="utf-8"))["data"]


def entry(content: str, *keys: str, **options: Any) -> dict[str, Any]:
    return {"keys": list(keys), "content": content, "enabled": True, "insertion_order": 0, "extensions": {}, **options}


def book(*entries: dict[str, Any], **options: Any) -> Character:
    return Character.from_card({"name": "Mo", "character_book": {"entries": list(entries), **options}})


def lore(character: Character, *lines: str, budget: int = 10_000) -> list[str]:
    return character.lore(list(lines), char="Mo", user="Alice", budget_chars=budget)


# --- placeholders and greetings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{char}} greets {{user}}.", "Seraphina greets Alice."),
        ("{{CHAR}} greets {{ User }}.", "Seraphina greets Alice."),
        ("<BOT> greets <USER>; <char> too.", "Seraphina greets Alice; Seraphina too."),
        ("no placeholders", "no placeholders"),
    ],
)
def test_placeholders_are_filled_in_any_case(text: str, expected: str) -> None:
    assert fill(text, char="Seraphina", user="Alice") == expected


def test_a_name_with_a_backslash_is_filled_as_it_is() -> None:
    assert fill("{{user}}", char="x", user=r"A\1") == r"A\1"


def test_the_first_greeting_is_first_mes_and_the_others_are_the_alternates_in_order() -> None:
    seraphina = Character.from_card(SERAPHINA)

    first = seraphina.greeting(0, char="Seraphina", user="Alice")
    second = seraphina.greeting(2, char="Seraphina", user="Alice")

    assert seraphina.greeting_count == 3
    assert first is not None and first.endswith("I am Seraphina, and the beasts that hurt you cannot follow you here.")
    assert "Easy now, Alice." in first
    assert second is not None and second.startswith("*Rain drums on the leaves. Seraphina holds")
    assert seraphina.greeting(3, char="Seraphina", user="Alice") is None
    assert seraphina.greeting(-1, char="Seraphina", user="Alice") is None


def test_a_card_without_greetings_has_none() -> None:
    character = Character.from_card({"name": "Mo", "first_mes": "", "alternate_greetings": ["", 3, None]})

    assert character.greeting_count == 0
    assert character.greeting(0, char="Mo", user="Alice") is None


# --- examples and last words ----------------------------------------------------------------------


def test_example_conversations_are_filled_and_set_apart_without_their_start_markers() -> None:
    examples = Character.from_card(SERAPHINA).example_dialogue(char="Seraphina", user="Alice")

    assert "<START>" not in examples
    assert examples.startswith("Alice: Where am I?\nSeraphina: *smiles")
    assert "your wounds are still closing.\n\nAlice: Why did you help me?" in examples


def test_post_history_instructions_are_filled_and_lose_their_original_placeholder() -> None:
    character = Character.from_card({"name": "Mo", "post_history_instructions": "{{original}} Stay {{char}}."})

    assert character.after_history(char="Mo", user="Alice") == "Stay Mo."


def test_examples_and_last_words_are_bounded() -> None:
    character = Character.from_card(
        {"name": "Mo", "mes_example": "<START>\n" + "word " * 5000, "post_history_instructions": "x" * 5000}
    )

    assert len(character.example_dialogue(char="Mo", user="Alice")) == MAX_EXAMPLES_CHARS
    assert len(character.after_history(char="Mo", user="Alice")) == MAX_AFTER_HISTORY_CHARS


# --- the lorebook ---------------------------------------------------------------------------------


def test_a_constant_entry_is_always_in_force() -> None:
    character = book(entry("The sky is green.", "sky", constant=True))

    assert lore(character) == ["The sky is green."]
    assert lore(character, "hello") == ["The sky is green."]


def test_an_entry_is_in_force_while_its_key_is_within_the_scan_depth() -> None:
    character = book(entry("Dragons sleep in winter.", "dragon", "wyrm"))
    filler = ["ok"] * (DEFAULT_SCAN_DEPTH - 1)

    assert lore(character, "is that a wyrm?", *filler) == ["Dragons sleep in winter."]
    assert lore(character, "is that a wyrm?", *filler, "ok") == []


def test_the_books_own_scan_depth_counts() -> None:
    character = book(entry("Dragons sleep in winter.", "dragon"), scan_depth=1)

    assert lore(character, "a dragon!") == ["Dragons sleep in winter."]
    assert lore(character, "a dragon!", "ok") == []


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("The Dragon wakes", True),
        ("dragon!", True),
        ("dragons everywhere", False),  # whole words, as SillyTavern matches by default
        ("snapdragon", False),
    ],
)
def test_keys_match_whole_words_in_any_case(line: str, found: bool) -> None:
    assert bool(lore(book(entry("lore", "dragon")), line)) is found


@pytest.mark.parametrize(
    ("line", "found"),
    [("we met at the Old Mill today", True), ("the old mill", True), ("the old millstone", False)],
)
def test_keys_of_several_words_match_as_phrases(line: str, found: bool) -> None:
    assert bool(lore(book(entry("lore", "old mill")), line)) is found


def test_a_case_sensitive_entry_needs_its_key_as_written() -> None:
    character = book(entry("The Veil is thinning.", "Veil", case_sensitive=True))

    assert lore(character, "what is the Veil?") == ["The Veil is thinning."]
    assert lore(character, "she wore a veil") == []


def test_a_selective_entry_needs_a_secondary_key_too() -> None:
    character = book(entry("The amulet glows near beasts.", "amulet", secondary_keys=["glow"], selective=True))

    assert lore(character, "nice amulet") == []
    assert lore(character, "your amulet, does it glow?") == ["The amulet glows near beasts."]


def test_a_selective_entry_without_secondary_keys_needs_only_its_keys() -> None:
    assert lore(book(entry("lore", "amulet", secondary_keys=[], selective=True)), "amulet") == ["lore"]


def test_a_disabled_entry_is_never_in_force() -> None:
    character = book(entry("spoiler", "wolf", enabled=False), entry("secret", "x", enabled=False, constant=True))

    assert lore(character, "wolf x") == []


def test_entries_come_in_insertion_order() -> None:
    character = book(
        entry("third", "c", insertion_order=30),
        entry("first", "a", insertion_order=1),
        entry("second", "b", insertion_order=20),
    )

    assert lore(character, "a b c") == ["first", "second", "third"]


def test_on_a_full_budget_constant_entries_come_first_then_higher_priority() -> None:
    character = book(
        entry("L" * 40, "low", priority=1, insertion_order=0),
        entry("H" * 40, "high", priority=9, insertion_order=5),
        entry("C" * 40, "anything", constant=True, insertion_order=9),
    )

    kept = lore(character, "low high", budget=90)

    assert kept == ["H" * 40, "C" * 40]  # in insertion order; the low-priority one did not fit


def test_an_entry_too_long_for_what_is_left_lets_a_shorter_one_in() -> None:
    character = book(entry("A" * 80, "a", priority=9), entry("b" * 10, "b", priority=1))

    assert lore(character, "a b", budget=50) == ["b" * 10]


def test_the_books_token_budget_bounds_it_further() -> None:
    character = book(entry("A" * 30, "a"), entry("B" * 30, "b"), token_budget=10)  # about 40 characters

    assert len(lore(character, "a b")) == 1


def test_with_recursive_scanning_an_entry_can_bring_in_another() -> None:
    first, second = entry("The tower is on the hill.", "tower"), entry("The hill is haunted.", "hill")

    assert lore(book(first, second), "the tower") == ["The tower is on the hill."]
    assert lore(book(first, second, recursive_scanning=True), "the tower") == [
        "The tower is on the hill.",
        "The hill is haunted.",
    ]


def test_lore_is_filled_with_the_names_of_the_turn() -> None:
    assert lore(book(entry("{{char}} owes {{user}} a favour.", "favour")), "a favour") == ["Mo owes Alice a favour."]


@pytest.mark.parametrize(
    "character_book",
    [
        None,
        "a book",
        {"entries": "none"},
        {"entries": [None, 3, {"keys": "dragon", "content": "a lone key"}, {"keys": ["x"], "content": 5}]},
        {"entries": [{"keys": [1, None, "dragon"], "content": "ok", "insertion_order": "first", "priority": True}]},
        {"entries": [], "scan_depth": -3, "token_budget": "lots"},
    ],
    ids=["none", "text", "entries-text", "odd-entries", "odd-fields", "odd-book"],
)
def test_odd_lorebooks_never_fail(character_book: Any) -> None:
    character = Character.from_card({"name": "Mo", "character_book": character_book})

    assert all(isinstance(text, str) for text in lore(character, "a dragon"))


def test_seraphinas_book_holds_what_her_card_says() -> None:
    seraphina = Character.from_card(SERAPHINA)
    eldoria = "Eldoria is an ancient forest of silver-barked trees; its magic answers to Seraphina."

    quiet = seraphina.lore([], char="Seraphina", user="Alice", budget_chars=3000)
    busy = seraphina.lore(
        ["the Veil and the amulet, it glows", "Shadowfang!"], char="Seraphina", user="Alice", budget_chars=3000
    )

    assert quiet == [eldoria]
    assert busy == [  # in insertion order; the switched-off Shadowfang entry never comes
        eldoria,
        "Seraphina's amulet glows red when shadow beasts come near.",
        "The Veil is the old barrier between Eldoria and the shadow realm; it is thinning.",
    ]


def test_a_card_summary_counts_greetings_and_lore_entries() -> None:
    assert card_summary(SERAPHINA) == "3 greetings · 5 lore entries (1 switched off)"
    assert card_summary({"name": "Mo", "first_mes": "Hi"}) == "1 greeting · 0 lore entries"
    assert card_summary(None) is None
