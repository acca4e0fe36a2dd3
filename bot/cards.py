"""Character cards: our personas out as Character Card V2 JSON, and cards from other tools in.

A card is the de-facto exchange format of SillyTavern and its peers
(https://github.com/malfoyslastname/character-card-spec-v2). We write V2 JSON
and keep everything Humalike gave us under `data.extensions.humalike`, so an
exported persona comes back exactly. We read V1 (fields at the top level), V2
and V3 (`data` under a `spec`), as JSON or embedded in a PNG: base64 of the
JSON in a text chunk named `chara` (V2) or `ccv3` (V3, preferred when both are
there), in `tEXt`, `zTXt` or `iTXt`.

A card from another tool is kept whole (`CardPersona.card_data`, its `data` object): greetings,
lorebook, examples and every field we do not read (bot/character.py uses them). Its export is that
same object with our extension merged in, so a card goes out as it came in; the extension then says
`"card": true`, and importing it again keeps the card data without our extension.

Uploads are untrusted: every size is bounded before the work it would cost,
and any problem is a `CardError` whose message the member can act on. Nothing
half-read escapes: `import_card` returns a whole `CardPersona` or raises.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot import discord_limits
from bot.enhance.request import SKETCH_LIMIT
from bot.humalike.models import Grounding
from bot.names import tidy_name
from storage.models import MAX_NAME_LENGTH

CARD_EXTENSION_KEY = "humalike"
SPEC_V2 = "chara_card_v2"
SPEC_V2_VERSION = "2.0"

MIB = 1024 * 1024
MAX_CARD_BYTES = 2 * MIB  # a JSON card; real ones, lorebook and all, are a few hundred kB
MAX_PNG_BYTES = 8 * MIB  # a PNG also carries its picture
MAX_TEXT_BYTES = 1 * MIB  # a PNG's embedded card text, after decompression
MAX_TEXT_CHARS = 200_000  # across the card's fields we keep (about 50 pages)
MAX_JSON_DEPTH = 32  # cards nest 4 or 5 levels (data > character_book > entries > entry > keys)
MAX_JSON_ITEMS = 100_000  # keys and list items in all; a 2,000-entry lorebook has about 40,000
MAX_PNG_CHUNKS = 10_000  # encoders split image data into 8-64 kB chunks: about 1,000 in 8 MiB
SKETCH_LENGTH = 500  # the sketch of an imported card: the start of its description
PERSONALITY_LENGTH = 1_000  # the exported field summary stays short
# What our own extension may hold, bounded by what the bot shows of it: Humalike's ids are
# a few dozen characters, a field's key is an embed field's label, a sketch fits /enhance.
MAX_PERSONA_ID_LENGTH = 100
MAX_FIELD_KEY_LENGTH = discord_limits.EMBED_FIELD_NAME
MAX_SKETCH_LENGTH = SKETCH_LIMIT
GROUNDINGS = tuple(grounding.value for grounding in Grounding)
# Where an imported persona came from, as its card's footer says it: one short line.
MAX_ORIGIN_LENGTH = 200
MAX_ORIGIN_CREATOR_LENGTH = 60

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")  # in order of preference
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")

# V1 fields, with the names older Pygmalion/TavernAI exports gave them.
V1_ALIASES = {
    "name": ("name", "char_name"),
    "description": ("description",),
    "personality": ("personality", "char_persona"),
    "scenario": ("scenario", "world_scenario"),
    "first_mes": ("first_mes", "char_greeting"),
    "mes_example": ("mes_example", "example_dialogue"),
}

# What we read from another tool's card into the persona's prompt; the rest of the card is kept as it is.
PROMPT_KEYS = ("description", "personality", "scenario", "mes_example", "system_prompt")

# Keys under a card's `extensions` that only one tool writes, to say which tool a card came from.
TOOL_EXTENSIONS = (
    ("chub", "Chub"),
    ("risuai", "RisuAI"),
    ("depth_prompt", "SillyTavern"),
    ("talkativeness", "SillyTavern"),
)

ACCEPTED = (
    "Send a character card: a JSON file (Character Card V1, V2 or V3) or a PNG picture with a card inside, "
    "as SillyTavern and similar tools export them."
)

# Every control character but tab and newline (a sheet needs them), and lone surrogates
# (JSON can spell one as "\ud800"), which cannot be stored as UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CHAR_PLACEHOLDER = re.compile(r"\{\{\s*char\s*\}\}|<BOT>|<CHAR>", re.IGNORECASE)
_USER_PLACEHOLDER = re.compile(r"\{\{\s*user\s*\}\}|<USER>", re.IGNORECASE)
_ORIGINAL_PLACEHOLDER = re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE)


@dataclass(frozen=True)
class CardPersona:
    """What a card gives us, and what we export: a persona without its guild, ids or dates."""

    name: str
    system_prompt: str
    markdown: str
    fields: dict[str, str]
    sketch: str
    grounding: str
    humalike_persona_id: str | None
    creator: str | None
    tags: tuple[str, ...]
    # Where it came from when it was not made on Humalike: "Imported from a Character Card V2 (SillyTavern)".
    origin: str | None = None
    # A card's own `data` object, kept whole (without our extension); None when not from a card.
    card_data: dict[str, Any] | None = None


class CardError(Exception):
    """A card we refuse; `message` says what is wrong and what is accepted, for the member who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- export ---------------------------------------------------------------------------------------


def export_card(persona: CardPersona) -> dict[str, Any]:
    """The persona as a Character Card V2, with our own data under `extensions.humalike`.

    A persona from a card gives that card's data back as it was, our extension merged in.
    """
    if persona.card_data is not None:
        return {"spec": SPEC_V2, "spec_version": SPEC_V2_VERSION, "data": _card_data_with_ours(persona)}
    return {
        "spec": SPEC_V2,
        "spec_version": SPEC_V2_VERSION,
        "data": {
            "name": persona.name,
            # Other tools show the description as the character: the sheet reads best there.
            "description": persona.markdown if persona.markdown.strip() else persona.system_prompt,
            "personality": summarize_fields(persona.fields),
            "scenario": f"{persona.name} speaks in a Discord server, among the people there.",
            "first_mes": "",
            "mes_example": "",
            "creator_notes": creator_notes(persona),
            "system_prompt": persona.system_prompt,
            "post_history_instructions": "",
            "alternate_greetings": [],
            "tags": list(persona.tags),
            "creator": persona.creator or "",
            "character_version": "1",
            "extensions": {CARD_EXTENSION_KEY: _our_extension(persona)},
        },
    }


def _our_extension(persona: CardPersona) -> dict[str, Any]:
    return {
        "markdown": persona.markdown,
        "fields": dict(persona.fields),
        "sketch": persona.sketch,
        "grounding": persona.grounding,
        "persona_id": persona.humalike_persona_id,
        **({"origin": persona.origin} if persona.origin else {}),
    }


def _card_data_with_ours(persona: CardPersona) -> dict[str, Any]:
    """The kept card data, unchanged but for our extension, which carries what the card's fields do not.

    The persona's name and prompt go in our extension, not over the card's `name` and `system_prompt`:
    our prompt is built from the card's description, and would repeat it in the tool the card goes to.
    """
    assert persona.card_data is not None
    data = copy.deepcopy(persona.card_data)
    extensions = data.get("extensions")
    data["extensions"] = {
        **(extensions if isinstance(extensions, dict) else {}),
        CARD_EXTENSION_KEY: {
            **_our_extension(persona),
            "card": True,
            "name": persona.name,
            "system_prompt": persona.system_prompt,
            # The persona's own tags (an NSFW mark set here among them): the card's `tags` stay as they came.
            "tags": list(persona.tags),
        },
    }
    return data


def export_card_json(persona: CardPersona) -> bytes:
    """The card as a UTF-8 file, indented so people can read and edit it."""
    return (json.dumps(export_card(persona), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def summarize_fields(fields: Mapping[str, str]) -> str:
    """'age: 30; main_role: support', cut to PERSONALITY_LENGTH characters."""
    parts = [f"{key}: {' '.join(value.split())}" for key, value in fields.items() if value.strip()]
    return _truncate("; ".join(parts), PERSONALITY_LENGTH)


def creator_notes(persona: CardPersona) -> str:
    notes = "Made with Humalike (https://humalike.com)"
    if persona.sketch.strip():
        notes += f" from the sketch:\n\n{persona.sketch.strip()}\n\n"
    else:
        notes += ". "
    return notes + f"Grounding: {persona.grounding}."


# --- import ---------------------------------------------------------------------------------------


def import_card(data: bytes, filename: str) -> CardPersona:
    """The persona in a card file, read by its content (the name only helps the refusal say which file)."""
    card = read_card_object(data, filename)
    fields = card_fields(card)
    extension = fields.get("extensions")
    ours = extension.get(CARD_EXTENSION_KEY) if isinstance(extension, dict) else None
    if ours is not None:
        restored = _restore_exported(fields, ours)
        # Only a card we exported from a card carries one; a persona made on Humalike has none.
        return replace(restored, card_data=kept_card_data(fields)) if ours.get("card") is True else restored
    return replace(_from_other_tool(fields, card_format(card)), card_data=kept_card_data(fields))


def kept_card_data(fields: dict[str, Any]) -> dict[str, Any]:
    """The card's data as it came, less our own extension; `extensions` is always there, as V2 requires."""
    data = dict(fields)
    extensions = data.get("extensions")
    if isinstance(extensions, dict):
        data["extensions"] = {key: value for key, value in extensions.items() if key != CARD_EXTENSION_KEY}
    elif extensions is None:
        data["extensions"] = {}
    return data


def read_card_object(data: bytes, filename: str) -> dict[str, Any]:
    """The card's JSON object, from a JSON file or a PNG's text chunk; sizes checked before parsing."""
    is_png = data.startswith(PNG_SIGNATURE)
    limit = MAX_PNG_BYTES if is_png else MAX_CARD_BYTES
    if len(data) > limit:
        raise CardError(
            f"This file is too large ({_size(len(data))}): a card can be at most {_size(MAX_CARD_BYTES)} "
            f"as JSON, or {_size(MAX_PNG_BYTES)} as a PNG."
        )
    if is_png:
        return parse_card_json(png_card_json(data))
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
        raise CardError(f"“{_short(filename)}” is not a character card. {ACCEPTED}")
    return parse_card_json(data)


def parse_card_json(raw: bytes) -> dict[str, Any]:
    """A JSON object, refused when it is not UTF-8, not JSON, not an object, too deep or too big."""
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")  # Windows tools start files with a byte-order mark
    except UnicodeDecodeError:
        raise CardError(f"This card is not valid UTF-8 text, so it cannot be read. {ACCEPTED}") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:  # also numbers too long for Python to convert
        raise CardError(f"This is not valid JSON, so it is not a character card we can read. {ACCEPTED}") from None
    if not isinstance(value, dict):
        raise CardError(f"This file is JSON, but not a character card: a card is a JSON object. {ACCEPTED}")
    check_json_size(value)
    return value


def check_json_size(value: object) -> None:
    """Refuse deep or sprawling JSON, walked without recursion so no input can exhaust the stack."""
    stack: list[tuple[object, int]] = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        items += len(children)
        if items > MAX_JSON_ITEMS:
            raise CardError(
                f"This card has too many entries (over {MAX_JSON_ITEMS:,} keys and list items), "
                "more than any real card needs."
            )
        stack.extend((child, depth + 1) for child in children)


def _too_deep() -> CardError:
    return CardError(
        f"This card is nested too deeply (more than {MAX_JSON_DEPTH} levels), more than any real card needs."
    )


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# --- PNG ------------------------------------------------------------------------------------------


def png_card_json(png: bytes) -> bytes:
    """The card JSON embedded in a PNG: `ccv3` if there is one, else `chara`."""
    found: dict[str, tuple[bytes, bytes]] = {}
    for kind, body in png_chunks(png):
        keyword = card_chunk_keyword(kind, body)
        if keyword is not None:
            found.setdefault(keyword, (kind, body))
    for keyword in CARD_KEYWORDS:
        if keyword in found:
            return decode_card_payload(chunk_text(*found[keyword]))
    raise CardError(
        "This PNG has no character card inside: it is only a picture. "
        "Export the card from its tool as a PNG with the card data, or as a JSON file."
    )


def card_chunk_keyword(kind: bytes, body: bytes) -> str | None:
    """`ccv3` or `chara` when a PNG chunk carries a card (a text chunk of that name, any case); else None."""
    if kind not in TEXT_CHUNKS:
        return None
    keyword = body.split(b"\0", 1)[0].decode("latin-1").lower()
    return keyword if keyword in CARD_KEYWORDS else None


def png_chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk's type and body up to IEND, checksums verified."""
    offset = len(PNG_SIGNATURE)
    for _ in range(MAX_PNG_CHUNKS):
        if offset == len(png):
            return  # no IEND: a sloppy writer, but nothing is missing
        if offset + 12 > len(png):
            raise _damaged_png("it ends in the middle of a chunk")
        length, kind = struct.unpack_from(">I4s", png, offset)
        end = offset + 8 + length
        if end + 4 > len(png):
            raise _damaged_png("it ends in the middle of a chunk")
        body = png[offset + 8 : end]
        (crc,) = struct.unpack_from(">I", png, end)
        if binascii.crc32(kind + body) != crc:
            raise _damaged_png("a checksum does not match")
        if kind == b"IEND":
            return
        yield kind, body
        offset = end + 4
    raise _damaged_png(f"it has more than {MAX_PNG_CHUNKS:,} chunks")


def chunk_text(kind: bytes, body: bytes) -> bytes:
    """The text of a tEXt, zTXt or iTXt chunk, inflated within MAX_TEXT_BYTES."""
    _, _, rest = body.partition(b"\0")
    if kind == b"tEXt":
        text = rest
    elif kind == b"zTXt":
        if not rest or rest[0] != 0:
            raise _damaged_png("its card chunk uses an unknown compression")
        text = inflate(rest[1:])
    else:  # iTXt: compression flag and method, language tag, translated keyword, then the text
        header, parts = rest[:2], rest[2:].split(b"\0", 2)
        if len(header) < 2 or len(parts) < 3 or header[0] not in (0, 1) or (header[0] == 1 and header[1] != 0):
            raise _damaged_png("its card chunk is malformed")
        text = inflate(parts[2]) if header[0] == 1 else parts[2]
    if len(text) > MAX_TEXT_BYTES:
        raise _text_too_large()
    return text


def inflate(compressed: bytes) -> bytes:
    """zlib data, never expanded past MAX_TEXT_BYTES (a few kB can inflate to gigabytes)."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_TEXT_BYTES + 1)
    except zlib.error:
        raise _damaged_png("its card data does not decompress") from None
    if len(text) > MAX_TEXT_BYTES or inflater.unconsumed_tail:
        raise _text_too_large()
    if not inflater.eof:
        raise _damaged_png("its card data is cut short")
    return text


def decode_card_payload(text: bytes) -> bytes:
    """Base64 of the JSON, as the specs say; some tools write the JSON itself, which we take too."""
    stripped = text.strip()
    if stripped.startswith(b"{"):
        return stripped
    compact = re.sub(rb"\s+", b"", stripped)
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except binascii.Error:
        raise CardError(
            "The card inside this PNG is damaged: its data is not valid base64. "
            "Export the card again and send the new file."
        ) from None


def _damaged_png(why: str) -> CardError:
    return CardError(
        f"This PNG is damaged ({why}), so its card cannot be trusted. Export the card again and send the new file."
    )


def _text_too_large() -> CardError:
    return CardError(
        f"The card inside this PNG is too large: its text is over {_size(MAX_TEXT_BYTES)} "
        "(the most a card can hold here)."
    )


# --- from card fields to a persona ----------------------------------------------------------------


def card_fields(card: dict[str, Any]) -> dict[str, Any]:
    """The object holding the card's fields: `data` for V2 and V3, the card itself for V1."""
    data = card.get("data")
    spec = card.get("spec")
    if isinstance(spec, str) and spec.startswith("chara_card_") and "data" in card:
        if not isinstance(data, dict):
            raise CardError("This card is damaged: its “data” should be an object with the character's fields.")
        return data
    if isinstance(data, dict) and any(key in data for key in V1_ALIASES):
        return data  # a V2-shaped card whose `spec` was lost
    fields = {key: next((card[a] for a in aliases if a in card), None) for key, aliases in V1_ALIASES.items()}
    if all(value is None for value in fields.values()):
        raise CardError(f"This file is JSON, but not a character card: it has none of a card's fields. {ACCEPTED}")
    return {**card, **{key: value for key, value in fields.items() if value is not None}}


def _restore_exported(fields: dict[str, Any], ours: object) -> CardPersona:
    """A card we exported: everything comes back as it was."""
    if not isinstance(ours, dict):
        raise _damaged_extension("it should be an object")
    persona_fields = ours.get("fields") or {}
    if not isinstance(persona_fields, dict):
        raise _damaged_extension("its “fields” should be an object of texts")
    persona_id = ours.get("persona_id")
    # A card kept whole has the persona's own name and prompt in our extension (see export_card).
    where = ours if ours.get("card") is True else fields
    texts = {
        "name": card_text(where.get("name"), "name"),
        "system_prompt": card_text(where.get("system_prompt"), "system_prompt"),
        "markdown": card_text(ours.get("markdown"), "markdown"),
        "sketch": card_text(ours.get("sketch"), "sketch"),
        "grounding": card_text(ours.get("grounding"), "grounding").strip() or "off",
        "creator": card_text(fields.get("creator"), "creator"),
        "origin": card_text(ours.get("origin"), "origin"),
    }
    kept_fields = {card_text(key, "fields"): card_text(value, f"fields.{key}") for key, value in persona_fields.items()}
    tags = card_tags(where.get("tags") if "tags" in where else fields.get("tags"))
    persona_id_text = None if persona_id is None else card_text(persona_id, "persona_id").strip() or None
    check_total_text([*texts.values(), *kept_fields, *kept_fields.values(), *tags, persona_id_text or ""])
    check_extension_bounds(texts["grounding"], persona_id_text, kept_fields)
    return CardPersona(
        name=card_name(texts["name"]),
        system_prompt=texts["system_prompt"],
        markdown=texts["markdown"],
        fields=kept_fields,
        sketch=_truncate(texts["sketch"], MAX_SKETCH_LENGTH),
        grounding=texts["grounding"],
        humalike_persona_id=persona_id_text,
        creator=texts["creator"] or None,
        tags=tags,
        origin=_truncate(" ".join(texts["origin"].split()), MAX_ORIGIN_LENGTH) or None,
    )


def check_extension_bounds(grounding: str, persona_id: str | None, fields: Mapping[str, str]) -> None:
    """Refuse what our own exports never hold and the persona card could not show."""
    if grounding not in GROUNDINGS:
        raise _damaged_extension(f"its “grounding” should be one of {', '.join(GROUNDINGS)}, not “{_short(grounding)}”")
    if persona_id is not None and (len(persona_id) > MAX_PERSONA_ID_LENGTH or len(persona_id.split()) > 1):
        raise _damaged_extension(
            f"its “persona_id” should be one Humalike id of at most {MAX_PERSONA_ID_LENGTH} characters"
        )
    long_key = next((key for key in fields if len(key) > MAX_FIELD_KEY_LENGTH), None)
    if long_key is not None:
        raise _damaged_extension(
            f"the field “{_short(long_key)}” has a name of {len(long_key):,} characters "
            f"(at most {MAX_FIELD_KEY_LENGTH})"
        )


def _from_other_tool(fields: dict[str, Any], format_name: str) -> CardPersona:
    """A card from another tool: its description, personality and scenario become our prompt and sheet."""
    name_text = card_text(fields.get("name"), "name")
    creator = card_text(fields.get("creator"), "creator").strip()
    parts = {key: card_text(fields.get(key), key) for key in PROMPT_KEYS}
    tags = card_tags(fields.get("tags"))
    check_total_text([name_text, creator, *parts.values(), *tags])
    name = card_name(name_text)
    parts = fill_placeholders(parts, name)
    description = parts["description"].strip()
    return CardPersona(
        name=name,
        system_prompt=system_prompt_for(name, parts),
        markdown=sheet_for(parts),
        fields={},
        sketch=_truncate(description, SKETCH_LENGTH) if description else name,
        grounding="off",
        humalike_persona_id=None,
        creator=creator or None,
        tags=tags,
        origin=origin_of(format_name, fields.get("extensions"), creator),
    )


def card_format(card: Mapping[str, Any]) -> str:
    """'Character Card V3', 'V2' or 'V1', by the card's `spec` (V1 cards have none)."""
    spec = card.get("spec")
    if spec == "chara_card_v3":
        return "Character Card V3"
    if spec == "chara_card_v2" or isinstance(card.get("data"), dict):
        return "Character Card V2"
    return "Character Card V1"


def origin_of(format_name: str, extensions: object, creator: str) -> str:
    """'Imported from a Character Card V2 (SillyTavern) by Mira', for the persona card's footer."""
    origin = f"Imported from a {format_name}"
    keys = extensions.keys() if isinstance(extensions, dict) else ()
    tool = next((name for key, name in TOOL_EXTENSIONS if key in keys), None)
    if tool:
        origin += f" ({tool})"
    author = tidy_name(creator, limit=MAX_ORIGIN_CREATOR_LENGTH)
    if author:
        origin += f" by {author}"
    return origin


def system_prompt_for(name: str, parts: Mapping[str, str]) -> str:
    """The card's own system prompt (its `{{original}}` already filled in), then who the character is.

    The example dialogue is not in it: it is kept with the card and given at each turn, with the
    names of that turn (bot/character.py), as SillyTavern gives it apart from the description.
    In SillyTavern a card's `system_prompt` replaces the frontend's main prompt,
    and the description still follows it; here the system prompt is all the chat
    model sees, so the character's sections always follow.
    """
    own = parts.get("system_prompt", "").strip()
    head = own or opening_for(name)
    sections = [
        f"## {title}\n{parts.get(key, '').strip()}"
        for key, title in (
            ("description", "Description"),
            ("personality", "Personality"),
            ("scenario", "Scenario"),
        )
        if parts.get(key, "").strip()
    ]
    return "\n\n".join([head, *sections])


def sheet_for(parts: Mapping[str, str]) -> str:
    """The description as the sheet; with a personality or scenario, each under its own heading."""
    description = parts.get("description", "").strip()
    extra = [
        f"## {title}\n{parts.get(key, '').strip()}"
        for key, title in (("personality", "Personality"), ("scenario", "Scenario"))
        if parts.get(key, "").strip()
    ]
    return "\n\n".join([description, *extra] if description else extra)


def card_name(raw: str) -> str:
    """The card's name by the rule every name follows (bot/names.py), or a refusal saying why."""
    if not raw.strip():
        raise CardError("This card has no name. Give the character a name in its card and send it again.")
    name = tidy_name(raw, limit=None)
    if not name:
        raise CardError(
            "This card's name has nothing printable in it once formatting, links and invisible characters "
            "are left out. Give the character a name people can read in its card and send it again."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise CardError(
            f"This card's name is {len(name)} characters long; a persona's name can be at most "
            f"{MAX_NAME_LENGTH}. Shorten it in the card and send it again."
        )
    return name


def card_text(value: object, field: str) -> str:
    """A card field as clean text: numbers become text, anything else that is not text is refused."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise CardError(
            f"This card's “{_short(field)}” should be text, but it is {_kind(value)}. "
            "Fix the card in its tool and export it again."
        )
    return clean_text(value)


def card_tags(value: object) -> tuple[str, ...]:
    """Tags are a list of texts; some tools write one comma-separated text instead."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(tag.strip() for tag in clean_text(value).split(",") if tag.strip())
    if not isinstance(value, list):
        raise CardError(f"This card's “tags” should be a list of texts, but it is {_kind(value)}.")
    return tuple(card_text(tag, "tags") for tag in value)


def check_total_text(texts: list[str]) -> None:
    total = sum(len(text) for text in texts)
    if total > MAX_TEXT_CHARS:
        raise CardError(
            f"This card has too much text ({total:,} characters); a persona can hold at most {MAX_TEXT_CHARS:,}. "
            "Shorten its description or prompt and send it again."
        )


def clean_text(text: str) -> str:
    """Line breaks made `\\n`, and no control characters but tab and newline."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def opening_for(name: str) -> str:
    """Our default opening of a system prompt, and what a card's `{{original}}` stands for."""
    return f"You are {name}."


def fill_placeholders(parts: Mapping[str, str], name: str) -> dict[str, str]:
    """`{{char}}` becomes the name, `{{user}}` 'the user' and the system prompt's `{{original}}` our opening.

    As card frontends do before prompting. Each kind of placeholder can make the text
    many times longer ("{{original}}" is 12 characters, its opening up to 89), so the
    total is checked after each one is filled in, before the next can multiply it further.
    """
    filled = dict(parts)
    replacements = (
        (_CHAR_PLACEHOLDER, name, tuple(filled)),
        (_USER_PLACEHOLDER, "the user", tuple(filled)),
        (_ORIGINAL_PLACEHOLDER, opening_for(name), ("system_prompt",)),
    )
    for pattern, replacement, keys in replacements:
        for key in keys:
            if key in filled:
                # A function, so a backslash in the name is not read as a group reference.
                filled[key] = pattern.sub(lambda _, text=replacement: text, filled[key])
        check_total_text(list(filled.values()))
    return filled


def _damaged_extension(why: str) -> CardError:
    return CardError(f"This card's Humalike data is damaged: {why}. Export the persona again and send the new file.")


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _short(text: str, limit: int = 60) -> str:
    return _truncate(" ".join(clean_text(text).split()), limit)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _size(count: int) -> str:
    """'2 MB', '2.1 MB': rounded up, so a file just over a limit never reads as equal to it."""
    tenths = math.ceil(count * 10 / MIB)
    return f"{tenths // 10} MB" if tenths % 10 == 0 else f"{tenths / 10:.1f} MB"
