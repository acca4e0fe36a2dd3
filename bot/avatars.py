"""A persona's picture: what we accept as one, and the copy Discord is shown.

An avatar arrives as bytes from a member (an upload, a link we download once, a card's PNG). It is
checked twice: its first bytes must say PNG, JPEG, GIF or WebP, and Pillow must decode it whole, so
a renamed text file or a truncated picture is refused with a reason. What Discord hosts is a copy
made here, a PNG no larger than `HOSTED_SIDE` pixels a side: small, always a format Discord takes for
a webhook's avatar, and the same whatever was sent. Decoding is CPU work: callers run these
functions in a thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import UserFacingError

MAX_AVATAR_BYTES = 8 * 1024 * 1024  # the 8 MB, and Discord's own upload limit without Nitro
# Decoding a small file can take gigabytes of memory (a "decompression bomb"): sides are read from the
# header and refused past this before a pixel is decoded. 16.7 megapixels is more than any avatar needs.
MAX_PIXELS = 4096 * 4096
HOSTED_SIDE = 1024  # Discord shows avatars at 128 px at most; 1024 stays sharp on any screen

# The formats the issue names, by the bytes they start with, and the MIME type each is stored under.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # "RIFF", a length, then "WEBP"
)
_PILLOW_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
ACCEPTED = "Send a PNG, JPEG, GIF or WebP picture of at most 8 MB."


class AvatarError(UserFacingError):
    """A picture we refuse; its message says why, for the member who sent it."""


@dataclass(frozen=True)
class CheckedImage:
    data: bytes  # as it was sent: what is stored
    content_type: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes announce, among the accepted ones; None for anything else."""
    for signature, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature and (offset == 0 or data.startswith(b"RIFF")):
            return content_type
    return None


def check_size(size: int) -> None:
    if size > MAX_AVATAR_BYTES:
        raise AvatarError(f"That picture is {size / 1_000_000:.1f} MB; an avatar can be at most 8 MB. {ACCEPTED}")


def check_image(data: bytes) -> CheckedImage:
    """`data` if it is a whole PNG, JPEG, GIF or WebP picture within the limits; AvatarError if not."""
    check_size(len(data))
    content_type = sniff(data)
    if content_type is None:
        raise AvatarError(f"That file is not a picture I can use. {ACCEPTED}")
    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[content_type]]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise AvatarError(
                    f"That picture is {width}×{height} pixels; an avatar can have at most {MAX_PIXELS:,} "
                    "(4096×4096). Send a smaller one."
                )
            image.load()  # the whole first frame: a cut-off or corrupt file fails here
    except AvatarError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AvatarError(f"That file says it is a picture, but it does not open as one. {ACCEPTED}") from None
    return CheckedImage(data=data, content_type=content_type, width=width, height=height)


def hosted_copy(data: bytes) -> bytes:
    """The PNG Discord hosts: the picture's first frame, at most HOSTED_SIDE pixels a side."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        frame = image.convert("RGBA")
    frame.thumbnail((HOSTED_SIDE, HOSTED_SIDE))
    return png_of(frame)


def as_png(data: bytes) -> bytes:
    """The picture as PNG bytes: itself when it is one, else its first frame converted (for a PNG card)."""
    if sniff(data) == "image/png":
        return data
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        frame = image.convert("RGBA")
    return png_of(frame)


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
