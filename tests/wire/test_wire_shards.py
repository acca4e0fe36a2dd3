"""Shards over the wire: one process running two shards, then two processes sharing one PostgreSQL.

The stand-in routes as Discord does: `/gateway/bot` gives the shard count, each IDENTIFY carries
`[shard_id, shard_count]`, and every event of a server goes to shard `(guild_id >> 22) % count`.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.databases import postgres_schema
from tests.wire.harness import WireHarness
from tests.wire.standin import InteractionRecord

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


LEASE_SECONDS = 3  # the least the bot accepts: a dead process's jobs move within about 5 s
JOBS_PER_SERVER = 6


async def test_two_processes_on_postgresql_one_killed_mid_job_the_other_finishes_all_of_its_jobs(
    tmp_path: Path,
) -> None:
    async with postgres_schema() as database_url:
        harness = WireHarness(
            tmp_path,
            settings={
                "DATABASE_URL": database_url,
                "SHARD_COUNT": "2",
                "SHARD_IDS": "0",
                "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
            },
        )
        standin = harness.standin
        standin.shard_count = 2
        first_guild = harness.guild if (harness.guild.id >> 22) % 2 == 0 else standin.add_guild("Zero", shard=0)
        second_guild = standin.add_guild("One", shard=1)
        servers = {}
        for guild in (first_guild, second_guild):
            channel = harness.channel if guild is harness.guild else standin.add_channel(guild, "general")
            members = [standin.add_member(guild, f"player-{guild.id}-{index}") for index in range(JOBS_PER_SERVER)]
            servers[guild.id] = (channel, members)
        doomed = harness.add_bot("shard-1", {"SHARD_IDS": "1"})

        async with harness as wire:
            survivor = wire.bot
            assert standin.shards_identified() == [0, 1]
            assert len([sync for sync in standin.command_syncs if sync[0] is None]) == 1  # shard 0's process only
            for _ in range(2 * JOBS_PER_SERVER):
                wire.humalike.script_enhancement(pending_for=0.5, running_for=6.0)
            commands: dict[int, list[InteractionRecord]] = {}
            for guild_id, (channel, members) in servers.items():
                commands[guild_id] = [
                    await standin.send_command(
                        "enhance",
                        {"sketch": f"Player {member.id} is a support main. Friendly."},
                        user=member,
                        channel=channel,
                    )
                    for member in members
                ]
            every_command = [command for batch in commands.values() for command in batch]
            await wire.eventually(
                lambda: len(wire.humalike.starts) == 2 * JOBS_PER_SERVER, "every job started on Humalike"
            )
            await wire.eventually(
                lambda: wire.scalar(
                    "SELECT COUNT(*) = ? FROM jobs WHERE enhancement_id IS NOT NULL", 2 * JOBS_PER_SERVER
                ),
                "every start recorded",
            )
            assert all(wire.humalike.status(start.job_id) != "succeeded" for start in wire.humalike.starts)

            await wire.kill(doomed)
            killed_at = time.monotonic()

            for command in every_command:
                await wire.eventually(
                    lambda command=command: saved_card(wire, command), f"{command.id}'s persona card", within=40
                )
            owners = dict(await wire.rows("SELECT guild_id, lease_owner FROM jobs"))
            jobs = await wire.rows("SELECT guild_id, state, lease_owner FROM jobs")
            personas = await wire.rows("SELECT sketch, enhancement_id FROM personas")

        # None lost, none started twice, none saved twice.
        assert wire.humalike.billed_starts == 2 * JOBS_PER_SERVER
        assert len({start.body["persona"] for start in wire.humalike.starts}) == 2 * JOBS_PER_SERVER
        assert len(personas) == 2 * JOBS_PER_SERVER
        assert len({enhancement for _, enhancement in personas}) == 2 * JOBS_PER_SERVER
        assert {state for _, state, _ in jobs} == {"succeeded"}
        # The dead process's jobs ended with the survivor, which edited their replies after the kill.
        assert {owner.split(":")[1] for _, _, owner in jobs} == {str(survivor.pid)}, owners
        for command in commands[second_guild.id]:
            reply = wire.reply(command)
            assert reply is not None and any(version.at > killed_at for version in reply.versions)
        assert wire.wire_problems() == []


def saved_card(wire: WireHarness, command: InteractionRecord) -> bool:
    reply = wire.reply(command)
    return reply is not None and reply.content.startswith("✅ Saved") and reply.embed is not None
