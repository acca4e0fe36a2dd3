"""Shards over the wire: one bot process running two shards, each carrying only its own servers.

The stand-in routes as Discord does: `/gateway/bot` gives the shard count, each IDENTIFY carries
`[shard_id, shard_count]`, and every event of a server goes to shard `(guild_id >> 22) % count`.
"""

from __future__ import annotations

from pathlib import Path

from tests.wire.harness import WireHarness

SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."


async def test_a_process_running_two_shards_answers_enhance_in_the_servers_of_both(tmp_path: Path) -> None:
    harness = WireHarness(tmp_path, settings={"SHARD_COUNT": "2"})
    harness.standin.shard_count = 2
    other_shard = 1 - (harness.guild.id >> 22) % 2  # one server on each shard
    other_guild = harness.standin.add_guild("Other Server", shard=other_shard)
    other_channel = harness.standin.add_channel(other_guild, "general")
    other_member = harness.standin.add_member(other_guild, "carol")

    async with harness as wire:
        # discord.py identifies one shard at a time, 5 s apart, as max_concurrency 1 asks.
        await wire.eventually(lambda: wire.standin.shards_identified() == [0, 1], "both shards", within=20)
        wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
        here = await wire.enhance(SKETCH)
        there = await wire.standin.send_command("enhance", {"sketch": SKETCH}, user=other_member, channel=other_channel)

        for command in (here, there):
            await wire.eventually(
                lambda command=command: bool(
                    (reply := wire.reply(command)) and reply.embed and reply.embed.get("title") == "Sam Okafor"
                ),
                "a persona card in each server",
            )
        identified = [event.detail for event in wire.standin.gateway_events if event.kind == "identify"]

    assert sorted(detail.split(", ", 1)[1] for detail in identified) == ["shard 0 of 2", "shard 1 of 2"]
    for guild in (wire.guild, other_guild):  # each server's command reached only its own shard
        shard = (guild.id >> 22) % 2
        assert [e["guild_id"] for e in wire.standin.events_on_shard(shard, "INTERACTION_CREATE")] == [str(guild.id)]
        assert [e["id"] for e in wire.standin.events_on_shard(shard, "GUILD_CREATE")] == [str(guild.id)]
    assert wire.wire_problems() == []
