"""PNG character cards: the picture without its card, and a picture with a card written in.

SillyTavern stores a card in a PNG as a `tEXt` chunk named `chara` holding base64 of the card's
JSON (V3 tools add a `ccv3` chunk the same way), just before the image's end. Reading cards is
bot/cards.py's job; this module only takes them out of a picture (so a card's avatar does not carry
a stale copy of the card) and puts one in (export), chunk by chunk, checksums and all. Pure: no I/O,
but decoding pictures is CPU work, so callers run `card_picture` and `exported_png` in a thread.
"""

from __future__ import annotations

import base64
import binascii
import struct

from bot.avatars import AvatarError, CheckedImage, as_png, check_image, hosted_copy
from bot.cards import MAX_PNG_BYTES, PNG_SIGNATURE, CardError, card_chunk_keyword, png_chunks

CARD_CHUNK_KEYWORD = b"chara"  # what SillyTavern writes, and every card reader reads


def encode_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and the CRC-32 of type and body."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", binascii.crc32(kind + body))


def without_card(png: bytes) -> bytes:
    """The PNG with every card chunk (`chara`, `ccv3`) left out: only the picture and its own metadata.

    Raises bot.cards.CardError if the PNG's chunks are damaged.
    """
    kept = [encode_chunk(kind, body) for kind, body in png_chunks(png) if card_chunk_keyword(kind, body) is None]
    return PNG_SIGNATURE + b"".join(kept) + encode_chunk(b"IEND", b"")


def with_card(png: bytes, card_json: bytes) -> bytes:
    """The PNG carrying `card_json` as SillyTavern writes it: a `chara` tEXt chunk of base64, before IEND.

    Any card the picture already carried is replaced, so a reader never finds two that disagree.
    """
    chunk = encode_chunk(b"tEXt", CARD_CHUNK_KEYWORD + b"\0" + base64.b64encode(card_json))
    picture = without_card(png)
    end = len(picture) - len(encode_chunk(b"IEND", b""))
    return picture[:end] + chunk + picture[end:]


def card_picture(png: bytes) -> CheckedImage | None:
    """A PNG card's picture as an avatar (its card chunks left out), or None when it is not a usable picture.

    The card itself was read already; a picture we cannot use costs the persona its face, not its import.
    """
    try:
        return check_image(without_card(png))
    except (CardError, AvatarError):
        return None


def exported_png(image: bytes, card_json: bytes) -> bytes:
    """A PNG card of `image` (converted to PNG if it is not one) carrying `card_json`.

    Kept within what `/persona import` takes back: a picture too large for that goes at avatar size.
    """
    picture = as_png(image)
    card = with_card(picture, card_json)
    if len(card) > MAX_PNG_BYTES:
        card = with_card(hosted_copy(image), card_json)
    return card
