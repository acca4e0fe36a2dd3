"""Natural mode over the wire: 200 natural personas in 100 channels, a member message a second in each.

The real bot (its own process, on its SQLite file) against the Discord stand-in, the fake chat
model and the fake turn-taking service, all on loopback in this process. Ten servers of ten
channels; two personas in natural mode in each channel (200 turn-taking threads, 200 sockets).
Then, for `--seconds`, every channel gets one member message a second, spread over the second.
Each persona's thread decides `speak` on one batch in `--speak-every` (staggered), otherwise
`stay_silent`; a reply is paced into two pieces a beat (0.2 s) apart.

Measured:
- member message -> its `submit_messages` request: from the MESSAGE_CREATE written to the gateway
  to the request arriving at the fake, for each persona that hears it. Target p50 < 10 ms;
- `turn_taking.message` -> its webhook post: from the event's `ts` (stamped as the fake sends it)
  to the webhook POST arriving at the stand-in. Target p50 < 10 ms;
- the bot's CPU (cores) and peak RSS over the load, and the sockets it holds. Targets < 0.5 core
  and < 200 MB.
Judged only if complete: every message reached both personas' threads, every piece the service
sent was posted once, and no interaction was refused as too late.

    python -m bench.natural [--channels 100] [--seconds 60] [--speak-every 10] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from datetime import datetime
from typing import Any

from aiohttp import web

from bench.wire_common import (
    Completeness,
    Target,
    bench_harness,
    cores_between,
    cpu_mark,
    memory_kb,
    pct,
    print_and_record,
    table,
    verdict,
    wait_for,
)
from tests.fakes.chat_model import ScriptedReply
from tests.fakes.humalike import DEFAULT_TOKEN as HUMALIKE_TOKEN
from tests.fakes.turn_taking import FakeTurnTaking
from tests.wire.harness import WireHarness
from tests.wire.standin import StandInChannel, StandInUser

SERVERS = 10
PERSONAS_PER_CHANNEL = 2
BEAT_SECONDS = 0.2
LATENCY_TARGET_MS = 10.0
CPU_TARGET_CORES = 0.5
RSS_TARGET_MB = 200
SETUP_WITHIN = 300.0


class TimedTurnTaking(FakeTurnTaking):
    """The fake, also stamping when each request arrived (by request id), and `ts` to the microsecond."""

    def __init__(self) -> None:
        super().__init__(token=HUMALIKE_TOKEN, beat=BEAT_SECONDS)
        self.arrived: dict[str, float] = {}  # request id -> time.time() on arrival

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        arrived = time.time()
        response = await super()._middleware(request, handler)
        request_id = response.headers.get("x-request-id")
        if request_id:
            self.arrived[request_id] = arrived
        return response

    def _iso(self, at: float) -> str:
        return datetime.fromtimestamp(self._wall_offset + at).astimezone().isoformat(timespec="microseconds")


def ms_summary(values: list[float]) -> list[float]:
    return [statistics.median(values), pct(values, 99), max(values)] if values else [float("nan")] * 3


async def run(channel_count: int, seconds: int, speak_every: int) -> str:
    fake = TimedTurnTaking()
    tables: list[tuple[StandInUser, StandInChannel, list[StandInUser]]] = []

    def prepare(wire: WireHarness) -> None:
        wire.turn_taking = fake
        per_server = max(1, channel_count // SERVERS)
        for server in range(SERVERS):
            guild = wire.standin.add_guild(f"Server {server}")
            moderator = wire.standin.add_member(guild, f"mod{server}", moderator=True)
            for index in range(per_server):
                channel = wire.standin.add_channel(guild, f"table-{index}")
                makers = [wire.standin.add_member(guild, f"maker{server}-{index}-{k}") for k in range(2)]
                tables.append((moderator, channel, makers))
        wire.chat.default_reply = ScriptedReply("Sure, count me in.", chunk_size=100)

    settings = {
        "ROLEPLAY_MAX_ACTIVE_PER_GUILD": str(channel_count * PERSONAS_PER_CHANNEL),
        "ROLEPLAY_CHANNEL_COOLDOWN_SECONDS": "0",
        "POLL_FIRST_DELAY_SECONDS": "0.5",
    }
    async with bench_harness(settings, prepare=prepare) as wire:
        # The personas: one /enhance each, by a member of its channel, named after its seat.
        for _ in range(len(tables) * PERSONAS_PER_CHANNEL):
            wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
        names = {}
        for number, (_, channel, makers) in enumerate(tables):
            for seat, maker in enumerate(makers):
                name = f"Voice {number:03d}{'ab'[seat]}"
                names[(channel.id, seat)] = name
                await wire.standin.send_command(
                    "enhance",
                    {"sketch": f"{name} is a friendly support main.", "name": name},
                    user=maker,
                    channel=channel,
                )
        await wait_for(lambda: wire.scalar("SELECT COUNT(*) = ? FROM personas", len(names)), SETUP_WITHIN, every=0.5)
        for moderator, channel, _ in tables:
            for seat in range(PERSONAS_PER_CHANNEL):
                await wire.standin.send_command(
                    "roleplay as",
                    {"persona": names[(channel.id, seat)], "mode": "natural"},
                    user=moderator,
                    channel=channel,
                )
        await wait_for(lambda: fake.open_sockets() >= len(names), SETUP_WITHIN, every=0.5)
        print(f"sockets open: {fake.open_sockets()} of {len(names)}", flush=True)
        threads = [thread for _, thread in fake.threads]
        for offset, thread in enumerate(threads):  # one batch in `speak_every` speaks, staggered
            fake.script_decisions(
                *("speak" if (turn + offset) % speak_every == 0 else "stay_silent" for turn in range(seconds + 5)),
                thread_id=thread,
            )
            for turn in range(seconds + 5):
                fake.script_reply(f"{thread[:8]} reply {turn}.", f"{thread[:8]} again {turn}.", thread_id=thread)
        await asyncio.sleep(2)  # settle after the greetings
        pid = wire.bot.pid
        rss_before = memory_kb(pid)["VmRSS"] / 1024
        calls_before = len(fake.calls)
        posts_before = len(wire.standin.calls)
        sent_at: dict[str, float] = {}
        start = cpu_mark(pid)
        for second in range(seconds):
            tick = time.monotonic()
            for number, (moderator, channel, _) in enumerate(tables):
                due = tick + number / len(tables)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                content = f"table {number} second {second}"
                await wire.standin.send_member_message(content, user=moderator, channel=channel)
                sent_at[content] = time.time()
        end = cpu_mark(pid)
        await fake.paced()
        await asyncio.sleep(2)
        peak_mb = memory_kb(pid)["VmHWM"] / 1024
        sockets = fake.open_sockets()
        if sockets < len(names):
            print("--- the bot's log, ending ---", wire.log_tail(40), sep="\n")
        refused = wire.standin.late_callbacks_refused
        problems = len(wire.wire_problems())
        posts = [
            call
            for call in wire.standin.calls[posts_before:]
            if call.method == "POST" and call.template == "/webhooks/{webhook_id}/{webhook_token}"
        ]

    submits = [call for call in fake.calls[calls_before:] if call.action == "submit_messages" and call.status == 200]
    heard = Counter()
    to_submit = []
    for call in submits:
        for message in call.body["messages"]:
            content = message["content"]
            if content in sent_at:
                heard[content] += 1
                to_submit.append(1000 * (fake.arrived[call.request_id] - sent_at[content]))
    pieces = {}
    for thread in threads:
        for envelope in fake.thread(thread).sent:
            if envelope["type"] == "turn_taking.message":
                pieces[envelope["data"]["content"]] = datetime.fromisoformat(envelope["ts"]).timestamp()
    posted = Counter(call.json["content"] for call in posts if call.json and call.json.get("content") in pieces)
    to_post = [
        1000 * (call.wall - pieces[call.json["content"]])
        for call in posts
        if call.json and call.json.get("content") in pieces
    ]
    pairs = len(sent_at) * PERSONAS_PER_CHANNEL  # each message, for each persona of its channel
    not_once = sum(1 for content in pieces if posted[content] != 1)
    completeness = Completeness(
        pairs,
        # The second stage falls short by one for each piece the service sent that was not posted exactly once.
        {"submitted": sum(heard.values()), "less pieces not posted once": pairs - not_once},
        refused,
    )
    cores = cores_between(start, end)
    p50_submit, p50_post = ms_summary(to_submit)[0], ms_summary(to_post)[0]
    targets = [
        Target(
            f"message -> submit p50 < {LATENCY_TARGET_MS:.0f} ms", p50_submit < LATENCY_TARGET_MS, f"{p50_submit:.1f}"
        ),
        Target(
            f"event -> webhook post p50 < {LATENCY_TARGET_MS:.0f} ms", p50_post < LATENCY_TARGET_MS, f"{p50_post:.1f}"
        ),
        Target(f"bot CPU < {CPU_TARGET_CORES} core", cores < CPU_TARGET_CORES, f"{cores:.2f}"),
        Target(f"bot peak RSS < {RSS_TARGET_MB} MB", peak_mb < RSS_TARGET_MB, f"{peak_mb:.0f} MB"),
    ]
    lines = [
        f"{len(threads)} natural personas in {len(tables)} channels ({SERVERS} servers); {seconds} s at one member "
        f"message a second per channel ({len(sent_at)} messages); one decision in {speak_every} speaks",
        f"- sockets held at the end: {sockets}; pieces the service sent: {len(pieces)}, posted: {sum(posted.values())}"
        f"; wire problems {problems}",
        f"- bot: {cores:.2f} cores over the load; RSS {rss_before:.0f} MB before it, peak (VmHWM) {peak_mb:.0f} MB",
        "",
        table(
            ["latency", "p50 ms", "p99 ms", "max ms", "samples"],
            [
                ["member message -> submit_messages", *ms_summary(to_submit), len(to_submit)],
                ["turn_taking.message -> webhook post", *ms_summary(to_post), len(to_post)],
            ],
        ),
        "",
        verdict(completeness, targets),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--speak-every", type=int, default=10)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(run(args.channels, args.seconds, args.speak_every))
    print_and_record(
        text, heading=f"Natural mode: `python -m bench.natural --channels {args.channels}`", record=args.record
    )


if __name__ == "__main__":
    main()
