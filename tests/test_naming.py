"""Which name a saved persona gets, from the user's option, Humalike's fields, the sketch or the sheet."""

from __future__ import annotations

import pytest

from bot.enhance.naming import clean_name, infer_name, name_from_fields, name_from_sheet, name_from_sketch
from tests.fakes.humalike import plain_text_persona, sam_persona

SAM_SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
SAM_SHEET = sam_persona()["markdown"]
SAM_PROMPT = sam_persona()["system_prompt"]
ANONYMOUS_SKETCH = "a grumpy wizard who runs a tavern and hates adventurers"
PLACEHOLDER = "Unnamed persona"


def infer(**given: object) -> str:
    values: dict[str, object] = {"requested": None, "fields": {}, "sketch": ANONYMOUS_SKETCH, "sheet": ""}
    values.update(given)
    return infer_name(**values)  # type: ignore[arg-type]


# --- Precedence ---------------------------------------------------------------------------------


def test_the_name_option_wins_over_everything() -> None:
    name = infer(
        requested="Captain Nova",
        fields={"name": "Sam Okafor"},
        sketch=SAM_SKETCH,
        sheet=SAM_SHEET,
        system_prompt=SAM_PROMPT,
    )
    assert name == "Captain Nova"


def test_fields_name_wins_over_the_sketch_and_the_sheet() -> None:
    name = infer(fields={"age": "30", "name": "Samuel Okafor"}, sketch=SAM_SKETCH, sheet="# Someone Else\n")
    assert name == "Samuel Okafor"


@pytest.mark.parametrize(
    "key", ["full_name", "Full_Name", "fullname", "display_name", "character_name", "persona_name"]
)
def test_a_close_cousin_of_fields_name_is_used(key: str) -> None:
    assert infer(fields={"age": "30", key: "Rin Tanaka"}, sketch=SAM_SKETCH) == "Rin Tanaka"


def test_a_blank_fields_name_falls_through_to_a_cousin_then_to_the_sketch() -> None:
    assert infer(fields={"name": "   ", "display_name": "Rin"}, sketch=SAM_SKETCH) == "Rin"
    assert infer(fields={"name": "", "age": "30"}, sketch=SAM_SKETCH) == "Sam"


def test_the_sketch_wins_over_the_sheet() -> None:
    assert infer(fields={}, sketch=SAM_SKETCH, sheet="# Samantha Blake\n\nA support main.") == "Sam"


def test_the_sheet_heading_wins_over_a_name_line_and_the_system_prompt() -> None:
    sheet = "# Mira Vance\n\n- **Name:** Someone Else\n"
    assert infer(sheet=sheet, system_prompt="You are Other Person, a baker.") == "Mira Vance"


def test_a_name_line_is_used_when_the_sheet_has_no_heading() -> None:
    sheet = "Character notes\n\n- **Name:** Rin Tanaka\n- **Age:** 22\n"
    assert infer(sheet=sheet, system_prompt="You are Other Person, a baker.") == "Rin Tanaka"


def test_you_are_in_the_system_prompt_is_the_last_source() -> None:
    plain = plain_text_persona()["markdown"]
    assert infer(sheet=plain, system_prompt="You are Mira Vance, a night-shift nurse.") == "Mira Vance"


def test_with_nothing_to_go_on_the_placeholder_is_used() -> None:
    plain = plain_text_persona()
    assert infer(fields=plain["fields"], sheet=plain["markdown"], system_prompt=plain["system_prompt"]) == PLACEHOLDER
    assert infer(fields={}, sketch="", sheet="", system_prompt="") == PLACEHOLDER


def test_a_blank_name_option_is_ignored() -> None:
    assert infer(requested="  ** **  ", sketch=SAM_SKETCH) == "Sam"


# --- The sketch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sketch", "expected"),
    [
        (SAM_SKETCH, "Sam"),
        ("Sam Okafor, 30, support main who plays Thresh.", "Sam Okafor"),
        ("Mira Vance (she/her) is a night-shift nurse.", "Mira Vance"),
        ("name: Rin Tanaka, a 22-year-old courier.", "Rin Tanaka"),
        ("Dr. Mira Vance was a surgeon before the war.", "Dr. Mira Vance"),
    ],
)
def test_a_name_is_read_from_the_start_of_the_sketch(sketch: str, expected: str) -> None:
    assert name_from_sketch(sketch) == expected


@pytest.mark.parametrize(
    "sketch",
    [
        "The old knight is tired of war.",
        "A retired sailor, 60, who collects maps.",
        "This is a grumpy wizard who runs a tavern.",
        "She is a 30-year-old support main.",
        "a grumpy wizard, lowercase throughout",
        "",
    ],
)
def test_a_sketch_that_does_not_start_with_a_name_gives_none(sketch: str) -> None:
    assert name_from_sketch(sketch) is None
    assert infer(sketch=sketch) == PLACEHOLDER


@pytest.mark.parametrize(
    "sketch",
    ["Name: Rin Tanaka, a 22-year-old courier.", "Name: Rin Tanaka\nAge: 22\nA courier who never stops."],
)
def test_a_capitalised_name_label_in_the_sketch_is_not_the_name(sketch: str) -> None:
    assert name_from_sketch(sketch) == "Rin Tanaka"
    assert infer(sketch=sketch) == "Rin Tanaka"


def test_a_name_stops_at_the_end_of_its_sentence() -> None:
    assert name_from_sheet("You are Mira. Speak softly, and never swear.") == "Mira"
    assert infer(system_prompt="You are Mira. Speak softly, and never swear.") == "Mira"
    # Reading no name from this sketch is fine; reading one that runs into the next sentence is not.
    assert name_from_sketch("Sam Okafor. Plays Thresh, friendly and loud.") in (None, "Sam Okafor")


# --- The sheet ----------------------------------------------------------------------------------


def test_the_sheet_heading_gives_the_name() -> None:
    assert name_from_sheet(SAM_SHEET) == "Sam Okafor"
    assert name_from_sheet("# **Sam** _Okafor_ #\n\nText") == "Sam Okafor"


def test_a_section_heading_is_not_taken_for_a_name() -> None:
    assert name_from_sheet("## Overview\n\nA quiet support main.") is None


def test_a_long_heading_is_not_taken_for_a_name() -> None:
    sheet = "# A warm but sharp support main who runs the map from the shadows\n\nName: Sam Okafor\n"
    assert name_from_sheet(sheet) == "Sam Okafor"


def test_a_plain_text_sheet_without_a_name_gives_none() -> None:
    assert name_from_sheet(plain_text_persona()["markdown"]) is None


def test_you_are_gives_the_name_in_a_system_prompt() -> None:
    assert name_from_sheet(SAM_PROMPT) == "Sam Okafor"
    assert name_from_sheet("You are a quiet librarian.") is None


# --- Cleaning -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("**Sam Okafor**", "Sam Okafor"),
        ("_Sam_ `Okafor`", "Sam Okafor"),
        ("~~Sam~~ [Okafor]", "Sam Okafor"),
        ("  Sam\n  Okafor. ", "Sam Okafor"),
        ('"Sam Okafor",', "Sam Okafor"),
        ("# > Sam | Okafor", "Sam Okafor"),
    ],
)
def test_markdown_and_stray_punctuation_are_stripped(raw: str, expected: str) -> None:
    assert clean_name(raw) == expected


def test_markdown_is_stripped_from_every_source() -> None:
    assert infer(requested="**Captain Nova**") == "Captain Nova"
    assert infer(fields={"name": "*Sam* __Okafor__"}) == "Sam Okafor"
    assert infer(sheet="- **Name:** `Rin Tanaka`\n") == "Rin Tanaka"


def test_names_are_capped_at_80_characters() -> None:
    long_name = "Bartholomew " * 12
    assert len(clean_name(long_name)) <= 80
    assert clean_name(long_name).startswith("Bartholomew Bartholomew")
    assert not clean_name(long_name).endswith(" ")
    assert len(infer(requested="x" * 200)) == 80
    assert len(infer(fields={"name": "y" * 500})) == 80


def test_empty_fields_are_handled() -> None:
    assert name_from_fields({}) is None
    assert infer(fields={}, sketch=SAM_SKETCH) == "Sam"
    assert infer(fields={}) == PLACEHOLDER
