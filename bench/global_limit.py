"""Discord's global rate limit shared by two processes: a roleplay rush over many channels.

Discord allows a bot about 50 requests a second in all, whichever process sends them, and answers
the 51st with a global 429 (too many of those and Cloudflare bans the bot's IP for an hour). Here
the stand-in enforces that limit over both processes together: at most 50 requests in any one
second, interaction and webhook-token routes exempt, as Discord documents.

Two processes (shards 0 and 1 of 2, PostgreSQL) each keep to their share, 25 a second
(bot/discord_share.py). A persona is saved in one server on each shard, then `/roleplay as` is sent
in every channel at once (each start looks up and creates the channel's webhook: bot-token REST
calls), then a member names the persona in every channel (typing: bot-token REST calls again).

Reported: the bot-token requests that reached the stand-in, the most in any one second, the
global 429s drawn, and how long the rush took. Targets: never more than 50 in a second, 0 429s.
Judged only if every channel got its greeting and its reply.

    python -m bench.global_limit [--channels 150] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.wire_common import Completeness, Target, bench_harness, print_and_record, table, verdict, wait_for
from tests.databases import postgres_schema
from tests.fakes.chat_model import ScriptedReply
from tests.wire.harness import WireHarness
from tests.wire.standin import StandInChannel, StandInUser
from tests.wire.standin.faults import GLOBAL_LIMIT_EXEMPT

SHARDS = 2
GLOBAL_LIMIT = 50
PERSONA = "Sam Okafor"
RUSH_WITHIN = 180.0


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def persona_lines(wire: WireHarness, channel: StandInChannel) -> list[str]:
    return [m.content for m in wire.standin.channel_messages(channel) if m.author.get("username") == PERSONA]


async def rush(channels_per_server: int) -> str:
    servers: list[tuple[StandInUser, list[StandInChannel]]] = []

    def prepare(wire: WireHarness) -> None:
        wire.standin.shard_count = SHARDS
        for shard in range(SHARDS):
            guild = wire.standin.add_guild(f"Shard {shard}", shard=shard)
            moderator = wire.standin.add_member(guild, f"mod{shard}", moderator=True)
            servers.append(
                (moderator, [wire.standin.add_channel(guild, f"table-{i}") for i in range(channels_per_server)])
            )
        wire.bot.settings["SHARD_IDS"] = "0"
        wire.add_bot("shard-1", {"SHARD_IDS": "1"})
        # Short replies in one piece: the stand-in shares this process, and hundreds of streamed
        # edits would delay when it stamps the requests it counts.
        wire.chat.default_reply = ScriptedReply("Ready when you are.", chunk_size=100)

    settings = {
        "SHARD_COUNT": str(SHARDS),
        "ROLEPLAY_MAX_ACTIVE_PER_GUILD": str(channels_per_server),
        "ROLEPLAY_CHANNEL_COOLDOWN_SECONDS": "0",
        "POLL_FIRST_DELAY_SECONDS": "0.5",
    }
    async with postgres_schema() as url, bench_harness({**settings, "DATABASE_URL": url}, prepare=prepare) as wire:
        for moderator, channels in servers:  # a persona in each server first
            wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
            command = await wire.standin.send_command(
                "enhance", {"sketch": "Sam is a 30-year-old support main."}, user=moderator, channel=channels[0]
            )
            await wire.eventually(
                lambda command=command: bool((r := wire.reply(command)) and r.content.startswith("✅ Saved")),
                "a persona saved",
            )
        wire.standin.enforce_global_limit(GLOBAL_LIMIT)
        every_channel = [(moderator, channel) for moderator, channels in servers for channel in channels]
        calls_before = len(wire.standin.calls)
        started = time.monotonic()
        starts = await asyncio.gather(
            *(
                wire.standin.send_command("roleplay as", {"persona": PERSONA, "mode": "mention"}, user=m, channel=c)
                for m, c in every_channel
            )
        )
        await wait_for(lambda: all(start.settled for start in starts), RUSH_WITHIN, 0.1)
        greeted = await wait_for(lambda: all(persona_lines(wire, c) for _, c in every_channel), RUSH_WITHIN, 0.1)
        for moderator, channel in every_channel:
            await wire.standin.send_member_message(f"{PERSONA}, ready?", user=moderator, channel=channel)
        await wait_for(lambda: all(len(persona_lines(wire, c)) >= 2 for _, c in every_channel), RUSH_WITHIN, 0.1)
        took = time.monotonic() - started
        calls = wire.standin.calls[calls_before:]
        refusals = wire.standin.global_limit_refusals
        problems = len(wire.wire_problems())

    bound = [call for call in calls if call.template and not call.template.startswith(GLOBAL_LIMIT_EXEMPT)]
    by_route: dict[str, int] = {}
    for call in bound:
        key = f"{call.method} {call.template}"
        by_route[key] = by_route.get(key, 0) + 1
    most = most_in_one_second([call.at for call in bound])
    completeness = Completeness(
        len(every_channel),
        {
            "greeted": sum(1 for _, c in every_channel if persona_lines(wire, c)) if greeted else 0,
            "answered": sum(1 for _, c in every_channel if len(persona_lines(wire, c)) >= 2),
        },
        wire.standin.late_callbacks_refused,
    )
    targets = [
        Target(f"at most {GLOBAL_LIMIT} bot-token requests in any second", most <= GLOBAL_LIMIT, str(most)),
        Target("0 global 429s", refusals == 0, str(refusals)),
    ]
    lines = [
        f"{len(every_channel)} channels over {SHARDS} processes (a shard each), PostgreSQL; "
        f"`/roleplay as` in all at once, then a member in each; done in {took:.1f} s; wire problems {problems}",
        f"- bot-token requests: {len(bound)}, the most in one second {most}, global 429s {refusals}; "
        f"exempt (interaction and webhook-token) requests: {len(calls) - len(bound)}",
        "",
        table(["bot-token route", "requests"], sorted(by_route.items(), key=lambda item: -item[1])),
        "",
        verdict(completeness, targets),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=150, help="channels per server (one server per shard)")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(rush(args.channels))
    print_and_record(
        text,
        heading=f"Global rate limit: `python -m bench.global_limit --channels {args.channels}`",
        record=args.record,
    )


if __name__ == "__main__":
    main()
