"""One rule for every name a persona or a cast gets: no masked links or formatting, nothing invisible."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.enhance.naming import infer_name
from bot.names import tidy_name
from tests.conftest import World

INVISIBLE_NAMES = {
    "hangul-filler": "\u3164",
    "zero-width-space": "\u200b",
    "bidi-override": "\u202e\u202d",
    "hangul-fillers-and-spaces": "\u3164 \uffa0\u115f\u1160",
    "braille-blank": "\u2800",
    "word-joiners": "\u2060\ufeff\u034f",
    "combining-marks-alone": "\u0301\u0308",
    "masked-link-to-nothing": "[](https://phish.example/login)",
    "markdown-only": "**__~~||",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[Sam](https://phish.example/login)", "Sam"),
        ("[**Sam**](<https://phish.example/login>) Okafor", "Sam Okafor"),
        ("[Sam]\u200b(https://phish.example/login)", "Sam"),
        ("Sa\u200bm\u2060 Oka\u00adfor", "Sam Okafor"),
        ("\u202eSam\u202c", "Sam"),
        ("\u3164Sam\u3164", "Sam"),
        ("Sam\u3000\u2003Okafor\u2028", "Sam Okafor"),
        ("  Sam\n\tOkafor ", "Sam Okafor"),
        ("Zoë Ørsted 🐉", "Zoë Ørsted 🐉"),
    ],
)
def test_a_name_keeps_only_what_people_can_see_as_plain_text(raw: str, expected: str) -> None:
    assert tidy_name(raw) == expected


@pytest.mark.parametrize("raw", INVISIBLE_NAMES.values(), ids=INVISIBLE_NAMES.keys())
def test_a_name_with_nothing_visible_tidies_to_nothing(raw: str) -> None:
    assert tidy_name(raw) == ""


def test_an_inferred_name_with_nothing_visible_falls_back_to_the_placeholder() -> None:
    assert infer_name(requested=None, fields={"name": "\u3164"}, sketch="", sheet="") == "Unnamed persona"


# --- every way a persona gets its name ---------------------------------------------------------


async def make_sam(world: World) -> None:
    await world.enhance(sketch="Sam is a support main.", name="Sam")
    await world.env.advance_time(15)


async def by_enhance(world: World, name: str) -> Any:
    return await world.enhance(name=name)


async def by_cast(world: World, name: str) -> Any:
    return await world.alice.slash(world.channel, "cast generate", prompt="A tavern crew.", count=2, name=name)


async def by_rename(world: World, name: str) -> Any:
    await make_sam(world)
    return await world.alice.slash(world.channel, "persona rename", name="Sam", new_name=name)


async def by_edit(world: World, name: str) -> Any:
    await make_sam(world)
    form = await world.alice.slash(world.channel, "persona edit", name="Sam")
    return await world.alice.submit_modal(form, {"name": name, "prompt": ""})


async def by_import(world: World, name: str) -> Any:
    card = json.dumps({"name": name, "description": "A tavern keeper."}).encode()
    return await world.alice.slash(world.channel, "persona import", card=("card.json", card))


WAYS = {"enhance": by_enhance, "cast": by_cast, "rename": by_rename, "edit": by_edit, "import": by_import}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", ["\u3164", "\u200b", "\u202e"], ids=["hangul-filler", "zero-width", "bidi"])
async def test_an_invisible_name_is_refused_however_it_is_given(world: World, way: str, name: str) -> None:
    before = [p["name"] for p in await world.personas()] if way in ("rename", "edit") else None

    result = await WAYS[way](world, name)

    assert result.ephemeral
    assert "nothing printable" in result.response.content
    assert len(world.refusals()) == 1
    if before is not None:
        assert [p["name"] for p in await world.personas()] == ["Sam"]
    else:
        assert await world.personas() == []
        assert world.fake.billed_starts == 0


@pytest.mark.parametrize("way", ["rename", "edit", "import"])
async def test_a_masked_link_name_is_saved_as_its_text_however_it_is_given(world: World, way: str) -> None:
    result = await WAYS[way](world, "[Mira](https://phish.example/login)")

    assert not result.ephemeral
    assert "phish.example" not in result.response.content
    assert [p["name"] for p in await world.personas()] == ["Mira"]
