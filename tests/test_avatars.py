"""Persona avatars: a face that still shows weeks later and across restarts, and stays in its server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from PIL import Image

from bot.card_png import with_card, without_card
from bot.cards import png_card_json
from tests.conftest import World
from tests.fakes.image_host import ImageHost, client_session, serve_images
from tests.fakes.webhook_avatars import DISCORD_CDN, webhook_avatars_kept
from tests.test_cards import PNG_SIGNATURE, b64, chunk, text_chunk, v2_card


@pytest.fixture(autouse=True)
def discord_keeps_webhook_avatars() -> Iterator[None]:
    with webhook_avatars_kept():
        yield


@pytest.fixture
async def images(world: World) -> AsyncIterator[ImageHost]:
    """A website with pictures on it; the bot fetches links through a session that trusts it."""
    async with serve_images(ImageHost()) as host:
        session = client_session()
        await world.bot.avatar_downloads.close()
        world.bot.avatar_downloads = session
        try:
            yield host
        finally:
            await session.close()


def picture(fmt: str = "PNG", colour: str = "teal", size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def holders(world: World) -> list[Any]:
    return [w for w in world.env.backend.webhooks.values() if w.name.startswith("Avatar · ")]


def persona_messages(world: World, channel: Any = None) -> list[Any]:
    return [m for m in (channel or world.channel).history() if m.webhook_id is not None]


def avatar_shown_with(world: World, message: Any) -> str | None:
    """The avatar_url a webhook message was posted with, as Discord stored it."""
    return world.env.backend.messages[message.channel.id][message.id].author_avatar


async def stored(world: World) -> list[dict[str, Any]]:
    return await world.rows("SELECT * FROM persona_avatars ORDER BY persona_id")


async def set_avatar(world: World, member: Any = None, channel: Any = None, **options: Any) -> Any:
    options.setdefault("name", "Sam")
    return await (member or world.alice).slash(channel or world.channel, "persona avatar", **options)


async def speak(world: World, line: str = "Hi, it's Sam.") -> Any:
    world.chat.script_reply(line)
    if not world.bot.roleplay.in_channel(world.channel.id):
        await world.admin.slash(world.channel, "roleplay as", persona="Sam")
    else:
        await world.alice.send(world.channel, "sam?")
    return persona_messages(world)[-1]


async def test_an_uploaded_picture_is_the_avatar_every_persona_message_carries(world: World) -> None:
    await world.make_persona("Sam")
    face = picture()

    result = await set_avatar(world, image=("sam.png", face))

    [holder] = holders(world)
    hosted = result.response.embeds[0].thumbnail.url
    assert hosted.startswith(f"{DISCORD_CDN}/avatars/{holder.id}/")
    assert "has a new avatar" in result.response.content
    assert holder.name == "Avatar · Sam"
    [row] = await stored(world)
    assert (bytes(row["image"]), row["content_type"], row["source"]) == (face, "image/png", "upload")
    assert (row["hosted_url"], row["holder_webhook_id"]) == (hosted, holder.id)
    spoken = await speak(world)
    assert avatar_shown_with(world, spoken) == hosted  # the holder's URL, never the expiring attachment's
    assert "attachments" not in hosted


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "WEBP"])
async def test_jpeg_gif_and_webp_pictures_are_taken_too(world: World, fmt: str) -> None:
    await world.make_persona("Sam")

    result = await set_avatar(world, image=(f"sam.{fmt.lower()}", picture(fmt)))

    assert "has a new avatar" in result.response.content
    [row] = await stored(world)
    assert row["content_type"] == f"image/{fmt.lower()}"
    # What Discord hosts is always a PNG, whatever was sent.
    hosted = world.env.backend.cdn.get(row["hosted_url"])
    assert hosted is not None and hosted.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("notes.txt", b"just some notes, not a picture", "not a picture I can use"),
        ("sam.bmp", b"BM" + b"\x00" * 100, "not a picture I can use"),
        ("cut.png", picture()[:60], "does not open as one"),
        ("fake.jpg", b"\xff\xd8\xff\xe0" + b"garbage" * 20, "does not open as one"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (8 * 1024 * 1024 + 1), "at most 8 MB"),
    ],
    ids=["text", "bmp", "truncated-png", "not-really-a-jpeg", "too-big"],
)
async def test_what_is_not_a_usable_picture_is_refused_and_nothing_is_kept(
    world: World, filename: str, data: bytes, expected: str
) -> None:
    await world.make_persona("Sam")

    result = await set_avatar(world, image=(filename, data))

    assert result.ephemeral or "avatar" not in (result.response.content or "")
    assert expected in result.response.content
    assert await stored(world) == []
    assert holders(world) == []
    assert len(world.refusals()) == 1


async def test_a_linked_picture_is_downloaded_once_and_still_shows_after_the_link_dies_and_a_restart(
    world: World, images: ImageHost
) -> None:
    await world.make_persona("Sam")
    face = picture("JPEG", "orange")
    link = images.put("faces/sam.jpg", face, content_type="image/jpeg")

    result = await set_avatar(world, url=link)

    hosted = result.response.embeds[0].thumbnail.url
    assert images.requests["faces/sam.jpg"] == 1
    [row] = await stored(world)
    assert (bytes(row["image"]), row["source"], row["link"]) == (face, "link", link)
    images.remove("faces/sam.jpg")  # weeks later: the link is dead
    await world.restart()

    spoken = await speak(world)

    assert avatar_shown_with(world, spoken) == hosted
    assert images.requests["faces/sam.jpg"] == 1
    assert len(holders(world)) == 1


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://images.test/sam.png", "secure connection"),
        ("not a link", "not a link I can read"),
        ("https://127.0.0.1/sam.png", "private network"),
        ("https://images.test:{port}/missing.png", "answered 404"),
        ("https://images.test:{port}/page.html", "not a picture I can use"),
        ("https://images.test:{port}/elsewhere", "secure connection"),
    ],
    ids=["plain-http", "not-a-link", "private-address", "dead-link", "a-web-page", "redirect-to-http"],
)
async def test_links_that_are_not_https_pictures_are_refused(
    world: World, images: ImageHost, link: str, expected: str
) -> None:
    await world.make_persona("Sam")
    images.put("page.html", b"<html>a page about Sam</html>", content_type="text/html")
    images.redirects["elsewhere"] = "http://images.test/sam.png"

    result = await set_avatar(world, url=link.format(port=images.port))

    assert expected in result.response.content
    assert await stored(world) == []
    assert holders(world) == []
    assert len(world.refusals()) == 1


async def test_a_holder_webhook_an_admin_deleted_is_made_again_at_the_next_start(world: World) -> None:
    await world.make_persona("Sam")
    first = (await set_avatar(world, image=("sam.png", picture()))).response.embeds[0].thumbnail.url
    [old] = holders(world)
    world.env.backend.delete_webhook(old.id)
    await world.restart()

    spoken = await speak(world)

    [new] = holders(world)
    assert new.id != old.id
    [row] = await stored(world)
    assert row["holder_webhook_id"] == new.id
    assert row["hosted_url"] != first and row["hosted_url"].startswith(f"{DISCORD_CDN}/avatars/{new.id}/")
    assert avatar_shown_with(world, spoken) == row["hosted_url"]


async def test_a_holder_is_checked_once_per_process_not_at_every_message(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture()))
    await world.restart()
    await speak(world, "First.")
    await speak(world, "Second.")

    fetched = [r for r in world.env.backend.http_requests if r.method == "GET" and r.path.startswith("/webhooks/")]
    assert len(fetched) == 1


async def test_a_persona_with_a_face_that_stops_speaking_leaves_nothing_in_memory(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture()))
    await world.restart()
    spoken = await speak(world, "First.")
    assert world.bot.roleplay.held_personas() != set()

    await world.admin.slash(world.channel, "roleplay stop")

    assert world.bot.roleplay.held_personas() == set()
    again = await speak(world, "Back again.")  # checked afresh, and still the same face
    assert avatar_shown_with(world, again) == avatar_shown_with(world, spoken) is not None


async def test_a_channel_with_fifteen_webhooks_sends_the_holder_to_another_channel(world: World) -> None:
    await world.make_persona("Sam")
    art = world.guild.create_text_channel("art")
    world.env.inject_error(
        "POST",
        f"/channels/{world.channel.id}/webhooks",
        status=400,
        code=30007,
        message="Maximum number of webhooks reached (15)",
        times=None,
    )

    result = await set_avatar(world, image=("sam.png", picture()))

    assert "has a new avatar" in result.response.content
    [holder] = holders(world)
    assert holder.channel_id == art.id


async def test_replacing_an_avatar_deletes_the_old_holder(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture(colour="red")))
    [old] = holders(world)

    result = await set_avatar(world, image=("sam.png", picture(colour="blue")))

    [new] = holders(world)
    assert new.id != old.id
    assert result.response.embeds[0].thumbnail.url.startswith(f"{DISCORD_CDN}/avatars/{new.id}/")


async def test_clear_removes_the_avatar_and_its_holder(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture()))

    result = await set_avatar(world, clear=True)

    assert "has no avatar now" in result.response.content
    assert await stored(world) == []
    assert holders(world) == []
    spoken = await speak(world)
    assert avatar_shown_with(world, spoken) is None


async def test_deleting_a_persona_deletes_its_holder(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture()))
    asked = await world.alice.slash(world.channel, "persona delete", name="Sam")

    await world.alice.click(asked.response, label="Delete")

    assert holders(world) == []
    assert await stored(world) == []


async def test_only_the_creator_or_manage_server_may_change_an_avatar(world: World) -> None:
    await world.make_persona("Sam")

    refused = await set_avatar(world, member=world.bob, image=("sam.png", picture()))
    allowed = await set_avatar(world, member=world.admin, image=("sam.png", picture()))

    assert refused.ephemeral and "can change its avatar" in refused.response.content
    assert "has a new avatar" in allowed.response.content
    assert len(await stored(world)) == 1
    assert len(world.refusals()) == 1


async def test_exactly_one_of_image_url_or_clear_is_asked_for(world: World) -> None:
    await world.make_persona("Sam")

    result = await set_avatar(world, image=("sam.png", picture()), clear=True)

    assert result.ephemeral and "Give one of" in result.response.content
    assert await stored(world) == []
    assert len(world.refusals()) == 1


async def test_show_and_the_list_show_the_avatar(world: World) -> None:
    await world.make_persona("Sam")
    hosted = (await set_avatar(world, image=("sam.png", picture()))).response.embeds[0].thumbnail.url

    shown = await world.bob.slash(world.channel, "persona show", name="Sam")
    listed = await world.bob.slash(world.channel, "persona list")

    assert shown.response.embeds[0].thumbnail.url == hosted
    assert listed.response.embeds[0].thumbnail.url == hosted
    assert f"[🖼️]({hosted})" in listed.response.embeds[0].description


def card_png(name: str = "Rin", colour: str = "purple") -> tuple[bytes, bytes]:
    """A SillyTavern-style PNG card, and the picture it carries without its card."""
    face = picture(colour=colour)
    card = v2_card(name=name, description="A courier who never stops running.")
    return with_card(face, json.dumps(card).encode()), face


async def test_a_png_cards_picture_becomes_the_avatar_and_export_puts_it_back(world: World) -> None:
    card, face = card_png()

    imported = await world.alice.slash(world.channel, "persona import", card=("rin.png", card))

    [row] = await stored(world)
    assert (bytes(row["image"]), row["source"]) == (face, "card")
    [holder] = holders(world)
    assert imported.response.embeds[0].thumbnail.url.startswith(f"{DISCORD_CDN}/avatars/{holder.id}/")
    exported = await world.alice.slash(world.channel, "persona export", name="Rin")
    [file] = exported.response.attachments
    assert file.filename.endswith(".card.png")
    again = await file.read()
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    await carol.slash(lobby, "persona import", card=(file.filename, again))

    first, copy = await world.personas()
    for key in ("name", "system_prompt", "markdown", "fields", "sketch", "grounding", "origin"):
        assert copy[key] == first[key], key
    rows = await stored(world)
    assert [bytes(r["image"]) for r in rows] == [face, face]
    assert json.loads(png_card_json(again))["data"]["name"] == "Rin"


async def test_export_writes_json_without_an_avatar_and_when_asked(world: World) -> None:
    await world.make_persona("Sam")
    plain = await world.alice.slash(world.channel, "persona export", name="Sam")
    refused = await world.alice.slash(world.channel, "persona export", name="Sam", format="png")
    await set_avatar(world, image=("sam.jpg", picture("JPEG")))
    as_png = await world.alice.slash(world.channel, "persona export", name="Sam")
    as_json = await world.alice.slash(world.channel, "persona export", name="Sam", format="json")

    assert plain.response.attachments[0].filename.endswith(".card.json")
    assert refused.ephemeral and "has no avatar" in refused.response.content
    png_file = await as_png.response.attachments[0].read()
    assert png_file.startswith(b"\x89PNG")  # the JPEG, converted
    assert json.loads(png_card_json(png_file))["data"]["name"] == "Sam"
    assert as_json.response.attachments[0].filename.endswith(".card.json")
    assert len(world.refusals()) == 1


async def test_a_png_card_whose_picture_is_damaged_is_imported_without_an_avatar(world: World) -> None:
    import struct

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    card = text_chunk("chara", b64(v2_card(name="Rin")))
    # Every chunk whole, so the card reads; the image data is not zlib, so the picture never decodes.
    broken_picture = PNG_SIGNATURE + header + card + chunk(b"IDAT", b"not a picture") + chunk(b"IEND", b"")

    result = await world.alice.slash(world.channel, "persona import", card=("rin.png", broken_picture))

    assert "Imported **Rin**" in result.response.content
    assert await stored(world) == []
    assert holders(world) == []


@pytest.mark.parametrize(
    "options",
    [{"clear": True}, {"image": ("evil.png", picture("PNG", "black"))}, {"url": "https://images.test/evil.png"}],
    ids=["clear", "upload", "link"],
)
async def test_another_servers_persona_avatar_cannot_be_reached(world: World, options: dict[str, Any]) -> None:
    import discord

    await world.make_persona("Sam")
    hosted = (await set_avatar(world, image=("sam.png", picture()))).response.embeds[0].thumbnail.url
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    owners = other.create_role("Owners", permissions=discord.Permissions(manage_guild=True))
    intruder = other.add_member(world.env.create_user("mallory"), roles=[owners])

    result = await set_avatar(world, member=intruder, channel=lobby, **options)

    assert result.ephemeral and "no persona called “Sam”" in result.response.content
    [row] = await stored(world)
    assert row["hosted_url"] == hosted
    assert len(holders(world)) == 1
    world.refusals()


async def test_another_servers_export_never_carries_this_servers_avatar(world: World) -> None:
    await world.make_persona("Sam")
    await set_avatar(world, image=("sam.png", picture()))
    other = world.env.create_guild(name="Elsewhere")
    lobby = other.create_text_channel("lobby")
    carol = other.add_member(world.env.create_user("carol"))

    result = await carol.slash(lobby, "persona export", name="Sam", format="png")

    assert result.ephemeral and "no persona called “Sam”" in result.response.content
    world.refusals()


# --- the pieces on their own ----------------------------------------------------------------------


def test_a_card_written_into_a_png_reads_back_and_leaves_the_picture_as_it_was() -> None:
    face = picture()
    card = json.dumps(v2_card(name="Rin")).encode()

    carded = with_card(with_card(face, b'{"stale": true}'), card)  # a second card replaces the first

    assert json.loads(png_card_json(carded)) == json.loads(card)
    assert without_card(carded) == without_card(face)
    assert Image.open(io.BytesIO(carded)).size == (64, 64)


async def test_a_link_resolving_to_a_private_address_is_refused() -> None:
    import aiohttp

    from bot.image_download import PublicOnlyResolver

    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="not a public address"):
            await resolver.resolve("localhost", 443)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver())) as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get("https://localhost:9/sam.png")
    finally:
        await resolver.close()
