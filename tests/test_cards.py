"""Character cards: export to V2 and back, cards from other tools (V1, V2, V3, JSON and PNG), and every refusal."""

from __future__ import annotations

import base64
import binascii
import json
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from bot.cards import (
    CARD_EXTENSION_KEY,
    MAX_CARD_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_PNG_BYTES,
    MAX_TEXT_BYTES,
    MAX_TEXT_CHARS,
    SKETCH_LENGTH,
    CardError,
    CardPersona,
    export_card,
    export_card_json,
    import_card,
)

V2_DATA_KEYS = {
    "name",
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "alternate_greetings",
    "tags",
    "creator",
    "character_version",
    "extensions",
}

SAM = CardPersona(
    name="Sam Okafor",
    system_prompt="You are Sam Okafor, a 30-year-old support main.\nStay friendly.",
    markdown="# Sam Okafor\n\n## Overview\nA friendly support main who plays Thresh.\n",
    fields={"name": "Sam Okafor", "age": "30", "main_role": "support"},
    sketch="Sam is a 30-year-old support main. Friendly. Plays Thresh.",
    grounding="web",
    humalike_persona_id="per_123",
    creator="alice",
    tags=("gaming", "support"),
)


def make_persona(**changes: Any) -> CardPersona:
    values = {**SAM.__dict__, **changes}
    return CardPersona(**values)


# --- building files -------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", binascii.crc32(kind + body))


def png(*extra_chunks: bytes) -> bytes:
    """A 1x1 grayscale PNG with the given chunks between its header and its image data."""
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    image = chunk(b"IDAT", zlib.compress(b"\x00\x80"))  # filter byte, one grey pixel
    return PNG_SIGNATURE + header + b"".join(extra_chunks) + image + chunk(b"IEND", b"")


def b64(card: dict[str, Any]) -> bytes:
    return base64.b64encode(json.dumps(card).encode("utf-8"))


def text_chunk(keyword: str, text: bytes) -> bytes:
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text)


def ztxt_chunk(keyword: str, compressed: bytes) -> bytes:
    return chunk(b"zTXt", keyword.encode("latin-1") + b"\0\0" + compressed)


def itxt_chunk(keyword: str, text: bytes, *, compressed: bool) -> bytes:
    flag = b"\1\0" if compressed else b"\0\0"
    return chunk(b"iTXt", keyword.encode("latin-1") + b"\0" + flag + b"en\0" + b"\0" + text)


def as_json(card: dict[str, Any]) -> bytes:
    return json.dumps(card, ensure_ascii=False).encode("utf-8")


def v2_card(**data: Any) -> dict[str, Any]:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def refusal(data: bytes, filename: str = "card.json") -> str:
    with pytest.raises(CardError) as caught:
        import_card(data, filename)
    assert str(caught.value) == caught.value.message
    return caught.value.message


# --- export and round trip ------------------------------------------------------------------------


def test_exported_card_is_a_complete_character_card_v2() -> None:
    card = export_card(SAM)

    assert card["spec"] == "chara_card_v2"
    assert card["spec_version"] == "2.0"
    data = card["data"]
    assert set(data) >= V2_DATA_KEYS
    assert data["name"] == "Sam Okafor"
    assert data["description"] == SAM.markdown
    assert data["system_prompt"] == SAM.system_prompt
    assert data["personality"] == "name: Sam Okafor; age: 30; main_role: support"
    assert "Discord server" in data["scenario"]
    assert data["first_mes"] == data["mes_example"] == data["post_history_instructions"] == ""
    assert data["alternate_greetings"] == []
    assert data["tags"] == ["gaming", "support"]
    assert data["creator"] == "alice"
    assert data["character_version"] == "1"
    assert "Humalike" in data["creator_notes"] and SAM.sketch in data["creator_notes"]
    assert "web" in data["creator_notes"]
    assert data["extensions"] == {
        CARD_EXTENSION_KEY: {
            "markdown": SAM.markdown,
            "fields": SAM.fields,
            "sketch": SAM.sketch,
            "grounding": "web",
            "persona_id": "per_123",
        }
    }


def test_export_describes_with_the_system_prompt_when_the_sheet_is_empty() -> None:
    data = export_card(make_persona(markdown="  "))["data"]

    assert data["description"] == SAM.system_prompt


def test_exported_json_is_readable_utf8() -> None:
    raw = export_card_json(make_persona(name="Zoë 🐉"))

    assert "Zoë 🐉".encode() in raw  # not \u-escaped
    assert raw.startswith(b'{\n  "spec"')
    assert json.loads(raw) == export_card(make_persona(name="Zoë 🐉"))


@pytest.mark.parametrize(
    "persona",
    [
        SAM,
        make_persona(fields={}, markdown="A plain sheet without headings. " * 256, humalike_persona_id=None),
        make_persona(creator=None, tags=(), sketch="", grounding="research", markdown=""),
        make_persona(name="Zoë Ørsted 🐉", fields={"motto": "Feuer! 🔥"}, system_prompt="Tu es Zoë. 日本語も話す。"),
        make_persona(name="😀", markdown="# 😀\n\n\tindented\n", sketch="🙂 " * 100),
    ],
    ids=["normal", "empty-fields-8kB-sheet", "no-creator-no-tags", "unicode", "emoji-name"],
)
def test_export_then_import_gives_the_same_persona(persona: CardPersona) -> None:
    assert import_card(export_card_json(persona), "x.json") == persona


def test_round_trip_keeps_placeholders_in_our_own_cards() -> None:
    persona = make_persona(system_prompt="Greet {{user}} as {{char}}.")

    assert import_card(export_card_json(persona), "x.json") == persona


def test_round_trip_through_a_png() -> None:
    raw = png(text_chunk("chara", base64.b64encode(export_card_json(SAM))))

    assert import_card(raw, "sam.png") == SAM


# --- cards from other tools -----------------------------------------------------------------------


def test_v1_card_in_the_sillytavern_style() -> None:
    card = {
        "name": "Aria",
        "description": "{{char}} is a ship's navigator who teases {{user}}.",
        "personality": "curious, dry",
        "scenario": "{{user}} boards {{char}}'s ship.",
        "first_mes": "*looks up* Oh, {{user}}.",
        "mes_example": "<START>\n{{user}}: Where to?\n{{char}}: North.",
        "creatorcomment": "old field",
        "avatar": "none",
    }

    persona = import_card(as_json(card), "aria.json")

    assert persona.name == "Aria"
    assert persona.system_prompt.startswith("You are Aria.")
    assert "Aria is a ship's navigator who teases the user." in persona.system_prompt
    assert "## Personality\ncurious, dry" in persona.system_prompt
    assert "## Scenario\nthe user boards Aria's ship." in persona.system_prompt
    assert "Where to?" not in persona.system_prompt  # the examples are the card's, given at each turn
    assert persona.card_data is not None and persona.card_data["mes_example"] == card["mes_example"]
    assert "{{" not in persona.system_prompt + persona.markdown + persona.sketch
    assert persona.markdown.startswith("Aria is a ship's navigator")
    assert "## Personality" in persona.markdown and "## Scenario" in persona.markdown
    assert persona.fields == {}
    assert persona.sketch == "Aria is a ship's navigator who teases the user."
    assert persona.grounding == "off"
    assert persona.humalike_persona_id is None
    assert persona.creator is None
    assert persona.tags == ()


def test_old_pygmalion_field_names_are_read() -> None:
    card = {"char_name": "Bo", "char_persona": "grumpy", "world_scenario": "a bakery", "char_greeting": "Hm."}

    persona = import_card(as_json(card), "bo.json")

    assert persona.name == "Bo"
    assert "## Personality\ngrumpy" in persona.system_prompt
    assert "## Scenario\na bakery" in persona.system_prompt


def test_v2_card_from_another_tool() -> None:
    card = v2_card(
        name="Captain Vex",
        description="A space pirate with a {{CHAR}}-sized ego.",
        personality="bold",
        scenario="",
        first_mes="Ahoy.",
        mes_example="",
        creator_notes="by someone",
        system_prompt="{{original}} Never break character with {{user}}.",
        post_history_instructions="",
        alternate_greetings=["Hi"],
        character_book={"entries": [{"keys": ["ship"], "content": "The Gull", "extensions": {}}]},
        tags=["scifi", "pirate"],
        creator="bob",
        character_version="3",
        extensions={"talkativeness": "0.5", "depth_prompt": {"prompt": "x", "depth": 4}},
    )

    persona = import_card(as_json(card), "vex.json")

    assert persona.name == "Captain Vex"
    assert persona.system_prompt.startswith("You are Captain Vex. Never break character with the user.")
    assert "## Description\nA space pirate with a Captain Vex-sized ego." in persona.system_prompt
    assert "## Personality\nbold" in persona.system_prompt
    assert "Scenario" not in persona.system_prompt  # empty sections are left out
    assert persona.markdown == "A space pirate with a Captain Vex-sized ego.\n\n## Personality\nbold"
    assert persona.tags == ("scifi", "pirate")
    assert persona.creator == "bob"
    assert persona.humalike_persona_id is None


def test_v2_card_with_only_a_name_and_description() -> None:
    persona = import_card(as_json(v2_card(name="Mo", description="A quiet librarian.")), "mo.json")

    assert persona.system_prompt == "You are Mo.\n\n## Description\nA quiet librarian."
    assert persona.markdown == "A quiet librarian."


def test_v2_card_with_no_description_is_sketched_by_its_name() -> None:
    persona = import_card(as_json(v2_card(name="Mo")), "mo.json")

    assert persona.sketch == "Mo"
    assert persona.system_prompt == "You are Mo."
    assert persona.markdown == ""


def test_long_description_is_cut_for_the_sketch() -> None:
    persona = import_card(as_json(v2_card(name="Mo", description="word " * 1000)), "mo.json")

    assert len(persona.sketch) == SKETCH_LENGTH
    assert persona.sketch.endswith("…")


def test_v3_card() -> None:
    card = {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Nyx",
            "nickname": "Nyxie",
            "description": "A night-shift nurse.",
            "personality": "",
            "scenario": "",
            "first_mes": "",
            "mes_example": "",
            "creator_notes": "",
            "creator_notes_multilingual": {"fr": "Une infirmière."},
            "system_prompt": "",
            "post_history_instructions": "",
            "alternate_greetings": [],
            "group_only_greetings": [],
            "tags": ["medical"],
            "creator": "cara",
            "character_version": "1.0",
            "assets": [{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
            "source": ["https://example.com"],
            "creation_date": 1700000000,
            "modification_date": 1700000001,
            "extensions": {},
        },
    }

    persona = import_card(as_json(card), "nyx.json")

    assert persona.name == "Nyx"
    assert persona.markdown == "A night-shift nurse."
    assert persona.tags == ("medical",)
    assert persona.creator == "cara"


def test_png_with_a_v2_card() -> None:
    raw = png(text_chunk("chara", b64(v2_card(name="Aria", description="A navigator."))))

    assert import_card(raw, "aria.png").name == "Aria"


def test_png_with_a_v3_card_prefers_it_to_the_v2_copy() -> None:
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Aria", "description": "V3 text."}}
    v2 = v2_card(name="Aria", description="V2 text.")
    raw = png(text_chunk("chara", b64(v2)), text_chunk("ccv3", b64(v3)))

    assert import_card(raw, "aria.png").markdown == "V3 text."


def test_png_other_text_chunks_are_ignored() -> None:
    raw = png(text_chunk("Software", b"paint"), text_chunk("chara", b64(v2_card(name="Aria"))))

    assert import_card(raw, "aria.png").name == "Aria"


def test_png_with_the_card_in_a_ztxt_chunk() -> None:
    raw = png(ztxt_chunk("chara", zlib.compress(b64(v2_card(name="Zed", description="Compressed.")))))

    assert import_card(raw, "zed.png").markdown == "Compressed."


@pytest.mark.parametrize("compressed", [False, True])
def test_png_with_the_card_in_an_itxt_chunk(compressed: bool) -> None:
    text = b64(v2_card(name="Ivy 🌿", description="International."))
    raw = png(itxt_chunk("ccv3", zlib.compress(text) if compressed else text, compressed=compressed))

    assert import_card(raw, "ivy.png").name == "Ivy 🌿"


def test_png_with_plain_json_instead_of_base64_is_read() -> None:
    raw = png(itxt_chunk("chara", as_json(v2_card(name="Ivy 🌿")), compressed=False))

    assert import_card(raw, "ivy.png").name == "Ivy 🌿"


def test_the_content_decides_not_the_file_name() -> None:
    json_card = as_json(v2_card(name="Aria"))
    png_card = png(text_chunk("chara", b64(v2_card(name="Aria"))))

    assert import_card(json_card, "aria.png").name == "Aria"
    assert import_card(png_card, "aria.json").name == "Aria"


def test_a_byte_order_mark_is_accepted() -> None:
    assert import_card(b"\xef\xbb\xbf" + as_json(v2_card(name="Aria")), "aria.json").name == "Aria"


def test_numbers_become_text_and_unknown_extensions_are_ignored() -> None:
    card = v2_card(name=42, description=3.5, tags=["a", 7], extensions={"other": {"deep": [1, {"x": None}]}})

    persona = import_card(as_json(card), "n.json")

    assert persona.name == "42"
    assert persona.markdown == "3.5"
    assert persona.tags == ("a", "7")


def test_tags_written_as_one_text_are_split() -> None:
    assert import_card(as_json(v2_card(name="A", tags="x, y,,z")), "a.json").tags == ("x", "y", "z")


def test_control_characters_are_stripped_from_every_text() -> None:
    card = v2_card(
        name="Ar\x00ia\u200b",
        description="Line one\r\nLine\x07 two\rthree\tfour\x1b[31m\u0085",
        creator="b\x7fob",
        tags=["t\x01ag"],
    )

    persona = import_card(as_json(card), "aria.json")

    assert persona.name == "Aria"  # a name loses invisible characters too (bot/names.py)
    assert persona.markdown == "Line one\nLine two\nthree\tfour[31m"
    assert persona.creator == "bob"
    assert persona.tags == ("tag",)


def test_control_characters_are_stripped_from_our_own_extension_too() -> None:
    card = export_card(SAM)
    card["data"]["extensions"][CARD_EXTENSION_KEY]["markdown"] = "# Sam\x00\x1b\n"
    card["data"]["extensions"][CARD_EXTENSION_KEY]["fields"] = {"a\x00ge": "3\x000"}

    persona = import_card(as_json(card), "sam.json")

    assert persona.markdown == "# Sam\n"
    assert persona.fields == {"age": "30"}


def test_lone_surrogates_are_dropped() -> None:
    persona = import_card(b'{"name": "Ar\\ud800ia", "description": "x\\udfffy"}', "a.json")

    assert persona.name == "Aria"
    assert persona.markdown == "xy"


def test_names_are_one_line() -> None:
    assert import_card(as_json(v2_card(name="  Sam \n  Okafor ")), "s.json").name == "Sam Okafor"


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"hello there", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b'"a string"', b"42"],
    ids=["empty", "text", "jpeg", "webp", "json-string", "json-number"],
)
def test_files_that_are_neither_json_nor_png_are_refused(raw: bytes) -> None:
    message = refusal(raw, "picture.jpg")

    assert "“picture.jpg” is not a character card" in message
    assert "JSON" in message and "PNG" in message


def test_invalid_utf8_is_refused() -> None:
    assert "not valid UTF-8" in refusal(b'{"name": "\xff\xfe"}')


@pytest.mark.parametrize("raw", [b'{"name": ', b"{'name': 'x'}", b'{"name": NaN}', b'{"n": 1' + b"1" * 5000 + b"}"])
def test_broken_json_is_refused(raw: bytes) -> None:
    assert "not valid JSON" in refusal(raw)


def test_json_that_is_not_an_object_is_refused() -> None:
    message = refusal(b'[{"name": "Aria"}]')

    assert "not a character card" in message and "JSON object" in message


def test_json_without_card_fields_is_refused() -> None:
    assert "not a character card" in refusal(b'{"version": 1, "dependencies": {}}')


def test_v2_card_whose_data_is_not_an_object_is_refused() -> None:
    assert "“data” should be an object" in refusal(as_json({"spec": "chara_card_v2", "data": "Aria"}))


@pytest.mark.parametrize(
    "card",
    [
        v2_card(description="No name here."),
        v2_card(name="", description="Empty name."),
        v2_card(name=" \n\t ", description="Blank name."),
        v2_card(name="\x00\x01"),
        {"description": "A V1 card without a name."},
        {"name": None, "description": "null"},
    ],
    ids=["missing", "empty", "blank", "control-only", "v1-missing", "null"],
)
def test_a_card_without_a_name_is_refused(card: dict[str, Any]) -> None:
    assert "no name" in refusal(as_json(card))


def test_a_name_over_80_characters_is_refused_with_the_limit() -> None:
    message = refusal(as_json(v2_card(name="N" * 200)))

    assert "200 characters" in message and "at most 80" in message


def test_a_name_of_80_characters_after_collapsing_spaces_is_accepted() -> None:
    name = "a" * 39 + "     " + "b" * 40

    assert len(import_card(as_json(v2_card(name=name)), "a.json").name) == 80


def test_a_json_file_over_the_limit_is_refused_before_parsing() -> None:
    raw = b"{" + b" " * MAX_CARD_BYTES + b"}"  # would parse, if it were read

    message = refusal(raw)

    assert "too large" in message and "2 MB" in message


def test_a_png_over_the_limit_is_refused_before_parsing() -> None:
    raw = PNG_SIGNATURE + bytes(MAX_PNG_BYTES)

    message = refusal(raw, "big.png")

    assert "too large" in message and "8 MB" in message


def test_a_png_can_be_larger_than_a_json_card() -> None:
    picture = chunk(b"IDAT", bytes(3 * 1024 * 1024))
    raw = png(picture, text_chunk("chara", b64(v2_card(name="Aria"))))

    assert import_card(raw, "aria.png").name == "Aria"


def test_a_png_without_a_card_is_refused() -> None:
    message = refusal(png(text_chunk("Software", b"paint")), "photo.png")

    assert "no character card inside" in message


def test_bad_base64_is_refused() -> None:
    message = refusal(png(text_chunk("chara", b"this is not base64!!")), "aria.png")

    assert "damaged" in message and "base64" in message


def test_a_png_with_a_corrupted_checksum_is_refused() -> None:
    raw = bytearray(png(text_chunk("chara", b64(v2_card(name="Aria")))))
    raw[raw.index(b"tEXt") + 10] ^= 0xFF  # a byte of the keyword's text, after the CRC was computed

    message = refusal(bytes(raw), "aria.png")

    assert "damaged" in message and "checksum" in message


def test_a_truncated_png_is_refused() -> None:
    raw = png(text_chunk("chara", b64(v2_card(name="Aria"))))
    cut = raw[: raw.index(b"tEXt") + 20]

    assert "damaged" in refusal(cut, "aria.png")


def test_a_png_whose_card_is_not_json_is_refused() -> None:
    raw = png(text_chunk("chara", base64.b64encode(b"\x89 not json")))

    assert "not valid" in refusal(raw, "aria.png")


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """50 MB of zeros in about 50 kB."""
    deflater = zlib.compressobj(9)
    block = bytes(64 * 1024)
    return b"".join(deflater.compress(block) for _ in range(800)) + deflater.flush()


def test_a_ztxt_zip_bomb_is_not_inflated(zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 100_000

    message = refusal(png(ztxt_chunk("chara", zip_bomb)), "bomb.png")

    assert "too large" in message and "1 MB" in message


def test_an_itxt_zip_bomb_is_not_inflated(zip_bomb: bytes) -> None:
    assert "too large" in refusal(png(itxt_chunk("ccv3", zip_bomb, compressed=True)), "bomb.png")


def test_a_zip_bomb_in_an_unrelated_chunk_is_never_inflated(zip_bomb: bytes) -> None:
    raw = png(ztxt_chunk("Comment", zip_bomb), text_chunk("chara", b64(v2_card(name="Aria"))))

    assert import_card(raw, "aria.png").name == "Aria"


def test_an_uncompressed_card_text_over_the_limit_is_refused() -> None:
    raw = png(text_chunk("chara", b"A" * (MAX_TEXT_BYTES + 4)))

    assert "too large" in refusal(raw, "big.png")


def test_broken_compressed_data_is_refused() -> None:
    whole = zlib.compress(b64(v2_card(name="Aria")))

    assert "damaged" in refusal(png(ztxt_chunk("chara", b"not zlib at all")), "a.png")
    assert "cut short" in refusal(png(ztxt_chunk("chara", whole[: len(whole) // 2])), "a.png")


def test_too_much_text_is_refused() -> None:
    card = v2_card(name="Aria", description="x" * (MAX_TEXT_CHARS // 2), personality="y" * (MAX_TEXT_CHARS // 2 + 1))

    message = refusal(as_json(card))

    assert "too much text" in message and f"{MAX_TEXT_CHARS:,}" in message


def test_placeholders_cannot_grow_past_the_text_limit() -> None:
    card = v2_card(name="N" * 80, description="{{char}}" * (MAX_TEXT_CHARS // 10))

    assert "too much text" in refusal(as_json(card))


def test_json_nested_100000_levels_is_refused() -> None:
    raw = b'{"name": "Aria", "extensions": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}"

    assert "nested too deeply" in refusal(raw)


def test_json_nested_past_the_bound_is_refused() -> None:
    deep: Any = "bottom"
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    raw = as_json(v2_card(name="Aria", extensions={"other": deep}))

    assert f"more than {MAX_JSON_DEPTH} levels" in refusal(raw)


def test_json_with_too_many_entries_is_refused() -> None:
    raw = as_json(v2_card(name="Aria", extensions={"other": [0] * (MAX_JSON_ITEMS + 1)}))

    assert "too many entries" in refusal(raw)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("description", {"text": "Aria"}, "an object"),
        ("system_prompt", ["a", "b"], "a list"),
        ("name", True, "true/false"),
        ("creator", {"name": "bob"}, "an object"),
    ],
)
def test_objects_where_text_is_expected_are_refused(field: str, value: Any, kind: str) -> None:
    card = v2_card(name="Aria", description="Text.")
    card["data"][field] = value

    message = refusal(as_json(card))

    assert f"“{field}” should be text, but it is {kind}" in message


def test_tags_that_are_not_a_list_are_refused() -> None:
    assert "“tags” should be a list" in refusal(as_json(v2_card(name="Aria", tags={"a": 1})))


@pytest.mark.parametrize(
    ("extension", "expected"),
    [
        ("not an object", "should be an object"),
        ({"fields": ["age", "30"]}, "“fields” should be an object"),
        ({"fields": {"age": {"years": 30}}}, "“fields.age” should be text"),
        ({"markdown": ["# Sam"]}, "“markdown” should be text"),
        ({"persona_id": {"id": 1}}, "“persona_id” should be text"),
    ],
)
def test_a_damaged_humalike_extension_is_refused(extension: Any, expected: str) -> None:
    card = export_card(SAM)
    card["data"]["extensions"][CARD_EXTENSION_KEY] = extension

    assert expected in refusal(as_json(card))


def test_unchecked_fields_of_other_tools_are_not_refused() -> None:
    card = v2_card(name="Aria", first_mes={"odd": True}, alternate_greetings="hi", character_book=[1, 2])

    assert import_card(as_json(card), "aria.json").name == "Aria"


def mutate(original: bytes, rng: random.Random, alphabet: bytes) -> bytes:
    damaged = bytearray(original)
    for _ in range(rng.randint(1, 4)):
        damaged[rng.randrange(len(damaged))] = rng.choice(alphabet)
    if rng.random() < 0.2:
        del damaged[rng.randrange(len(damaged)) :]
    return bytes(damaged)


def test_damaged_files_give_a_card_error_or_a_card_never_anything_else() -> None:
    rng = random.Random(4)
    payload = zlib.compress(b64(v2_card(name="Aria", description="{{char}}", tags=["x"])))
    damaged_files = [
        *(mutate(png(ztxt_chunk("chara", payload)), rng, bytes(range(256))) for _ in range(200)),
        # Checksums recomputed, so the damage reaches decompression, base64 and JSON.
        *(png(ztxt_chunk("chara", mutate(payload, rng, bytes(range(256))))) for _ in range(200)),
        *(png(text_chunk("chara", mutate(b64(export_card(SAM)), rng, b"AZaz09+/= "))) for _ in range(200)),
        *(mutate(export_card_json(SAM), rng, b'{}[]",:0ae \\n\x00\xc3') for _ in range(400)),
    ]
    outcomes = {"card": 0, "refused": 0}
    for damaged in damaged_files:
        try:
            persona = import_card(damaged, "fuzz")
        except CardError as error:
            assert error.message
            outcomes["refused"] += 1
        else:
            assert isinstance(persona, CardPersona) and persona.name
            outcomes["card"] += 1
    assert outcomes["card"] and outcomes["refused"]


# --- only what the bot can show ---------------------------------------------------------------------


def test_original_placeholders_cannot_grow_the_system_prompt_past_the_text_limit() -> None:
    card = {"name": "N" * 80, "system_prompt": "{{original}}" * 16_660}  # 1.48 million characters, filled in

    assert "too much text" in refusal(as_json(card))


def test_original_placeholders_within_the_text_limit_become_the_opening() -> None:
    persona = import_card(as_json(v2_card(name="Mira", system_prompt="{{original}} Stay warm. {{ORIGINAL}}")), "m.json")

    assert persona.system_prompt.startswith("You are Mira. Stay warm. You are Mira.")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"grounding": "g" * 5000}, "“grounding” should be one of off, web, research"),
        ({"grounding": "deep"}, "“grounding” should be one of off, web, research"),
        ({"persona_id": "p" * 5000}, "“persona_id” should be one Humalike id of at most 100 characters"),
        ({"fields": {"k" * 300: "v"}}, "has a name of 300 characters (at most 256)"),
    ],
    ids=["5000-character-grounding", "unknown-grounding", "5000-character-persona-id", "300-character-field-name"],
)
def test_an_exported_card_holding_what_no_card_of_ours_holds_is_refused(change: dict[str, Any], expected: str) -> None:
    card = export_card(SAM)
    card["data"]["extensions"][CARD_EXTENSION_KEY].update(change)

    message = refusal(as_json(card))

    assert "Humalike data is damaged" in message and expected in message


def test_an_exported_cards_sketch_is_cut_to_what_enhance_accepts() -> None:
    card = export_card(SAM)
    card["data"]["extensions"][CARD_EXTENSION_KEY]["sketch"] = "s" * 10_000

    assert len(import_card(as_json(card), "sam.json").sketch) == 4000


@pytest.mark.parametrize(
    ("card", "origin"),
    [
        ({"name": "Mira", "description": "A tavern keeper."}, "Imported from a Character Card V1"),
        (
            v2_card(name="Mira", creator="**Rook**\u200b", extensions={"talkativeness": "0.5", "fav": False}),
            "Imported from a Character Card V2 (SillyTavern) by Rook",
        ),
        (
            {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Mira", "extensions": {"chub": {}}}},
            "Imported from a Character Card V3 (Chub)",
        ),
    ],
    ids=["v1", "v2-sillytavern-with-creator", "v3-chub"],
)
def test_a_card_from_another_tool_says_where_it_came_from(card: dict[str, Any], origin: str) -> None:
    assert import_card(as_json(card), "mira.json").origin == origin


def test_where_an_imported_persona_came_from_survives_export_and_import() -> None:
    persona = make_persona(origin="Imported from a Character Card V2 (SillyTavern) by Rook")

    assert import_card(export_card_json(persona), "x.json") == persona


# --- a card kept whole ----------------------------------------------------------------------------

SERAPHINA_FILE = Path(__file__).parent / "data" / "seraphina.json"


@pytest.mark.parametrize("kind", ["json", "png"])
def test_a_card_from_another_tool_is_kept_whole(kind: str) -> None:
    raw = SERAPHINA_FILE.read_bytes()
    data = png(text_chunk("chara", base64.b64encode(raw))) if kind == "png" else raw

    persona = import_card(data, f"seraphina.{kind}")

    assert persona.card_data == json.loads(raw)["data"]


def test_a_kept_card_is_exported_unchanged_but_for_our_extension_and_comes_back_the_same() -> None:
    original = json.loads(SERAPHINA_FILE.read_bytes())["data"]
    persona = import_card(SERAPHINA_FILE.read_bytes(), "seraphina.json")

    card = export_card(persona)
    again = import_card(export_card_json(persona), "seraphina.card.json")

    assert card["spec"] == "chara_card_v2"
    ours = card["data"]["extensions"].pop(CARD_EXTENSION_KEY)
    assert card["data"] == original
    assert ours["card"] is True and ours["name"] == "Seraphina" and ours["system_prompt"] == persona.system_prompt
    assert again == persona
    assert json.dumps(again.card_data) == json.dumps(persona.card_data)


def test_a_renamed_card_persona_keeps_its_new_name_and_prompt_in_our_extension() -> None:
    persona = import_card(SERAPHINA_FILE.read_bytes(), "seraphina.json")
    changed = make_persona(**{**persona.__dict__, "name": "Sera", "system_prompt": "You are Sera."})

    again = import_card(export_card_json(changed), "sera.json")

    assert (again.name, again.system_prompt) == ("Sera", "You are Sera.")
    assert again.card_data == persona.card_data and again.card_data is not None
    assert again.card_data["name"] == "Seraphina"


def test_a_card_without_extensions_is_kept_with_empty_ones_so_it_comes_back_the_same() -> None:
    persona = import_card(as_json(v2_card(name="Mo", description="A librarian.", first_mes="Shh.")), "mo.json")

    again = import_card(export_card_json(persona), "mo.json")

    assert persona.card_data == {"name": "Mo", "description": "A librarian.", "first_mes": "Shh.", "extensions": {}}
    assert again.card_data == persona.card_data


def test_a_persona_made_on_humalike_has_no_card_data_after_a_round_trip() -> None:
    assert import_card(export_card_json(SAM), "sam.json").card_data is None
