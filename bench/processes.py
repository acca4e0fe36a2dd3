"""One process or two: 500 `/enhance` at once over the servers of 2 shards, on PostgreSQL.

The same burst is answered twice, each time by a fresh bot on a fresh PostgreSQL schema:
  1 process   SHARD_COUNT=2, no SHARD_IDS: one process runs both shards
  2 processes SHARD_COUNT=2, SHARD_IDS=0 and SHARD_IDS=1: each runs one shard
The members are spread evenly over servers on both shards. For each run: the answer time of
every command (INTERACTION_CREATE written to the gateway -> its callback arriving), p50/p99/max,
and the ratio p99(2 processes) / p99(1 process). Each run is judged only if complete: every
command answered within Discord's 3 s and its job recorded and started on Humalike.

    python -m bench.processes [--commands 500] [--record]

Jobs are followed with the first poll an hour away, so only the answers and starts are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.wire_common import (
    Completeness,
    Target,
    bench_harness,
    cpu_seconds,
    members_over_shards,
    pct,
    postgres_cpu_seconds,
    print_and_record,
    table,
    verdict,
    wait_for,
    wait_settled,
)
from tests.databases import postgres_schema
from tests.wire.harness import WireHarness
from tests.wire.standin import InteractionRecord, StandInChannel, StandInUser

SHARDS = 2
SERVERS_PER_SHARD = 2
TARGET_RATIO = 0.6
STARTS_WITHIN = 120.0
# Where the machine's CPU went during a burst: the bot processes, the benchmark's own process
# (the Discord stand-in and fake Humalike), and the PostgreSQL server.
CORES_BY = ("bots", "stand-in and fakes", "PostgreSQL")
HEADER = ["bot", "answer p50 ms", "p99 ms", "max ms", "bot CPU a command ms", "cores: " + " / ".join(CORES_BY)]
HEADER.append("completeness")


@dataclass
class Run:
    label: str
    answers_ms: list[float]
    completeness: Completeness
    cpu_per_command_ms: float
    cores: dict[str, float]  # average cores used over the burst, by who used them
    problems: int

    @property
    def p99(self) -> float:
        return pct(self.answers_ms, 99)

    def row(self) -> list[object]:
        return [
            self.label,
            statistics.median(self.answers_ms) if self.answers_ms else float("nan"),
            self.p99,
            max(self.answers_ms, default=float("nan")),
            self.cpu_per_command_ms,
            " / ".join(f"{self.cores[who]:.2f}" for who in CORES_BY),
            self.completeness.describe(),
        ]


async def burst(wire: WireHarness, members: Sequence[tuple[StandInUser, StandInChannel]]) -> list[InteractionRecord]:
    return await asyncio.gather(
        *(
            wire.standin.send_command(
                "enhance",
                {"sketch": f"Member {index} is a support main. Friendly. Plays Thresh."},
                user=user,
                channel=channel,
            )
            for index, (user, channel) in enumerate(members)
        )
    )


async def run(label: str, processes: int, commands: int) -> Run:
    settings = {"SHARD_COUNT": str(SHARDS), "POLL_FIRST_DELAY_SECONDS": "3600"}
    members: list[tuple[StandInUser, StandInChannel]] = []

    def prepare(wire: WireHarness) -> None:
        members.extend(members_over_shards(wire, commands, SHARDS, SERVERS_PER_SHARD))
        if processes == 2:
            wire.bot.settings["SHARD_IDS"] = "0"
            wire.add_bot("shard-1", {"SHARD_IDS": "1"})

    async with postgres_schema() as url, bench_harness({**settings, "DATABASE_URL": url}, prepare=prepare) as wire:
        await asyncio.sleep(2)  # settle after login and sync
        cpu_before = sum(cpu_seconds(bot.pid) for bot in wire.bots)
        ours_before, server_before, wall_before = time.process_time(), postgres_cpu_seconds(), time.monotonic()
        records = await burst(wire, members)
        await wait_settled(records)
        answered = [record for record in records if record.answered]
        await wait_for(lambda: len(wire.humalike.starts) >= len(answered), STARTS_WITHIN, every=0.1)
        cpu = sum(cpu_seconds(bot.pid) for bot in wire.bots) - cpu_before
        wall = time.monotonic() - wall_before
        cores = {
            "bots": cpu / wall,
            "stand-in and fakes": (time.process_time() - ours_before) / wall,
            "PostgreSQL": (postgres_cpu_seconds() - server_before) / wall,
        }
        answers = [1000 * (r.callback_at - r.dispatched_at) for r in answered]  # type: ignore[operator]
        completeness = Completeness(
            commands,
            {
                "answered": len(answered),
                "answered within 3 s": sum(1 for value in answers if value <= 3000),
                "recorded": await wire.scalar("SELECT COUNT(*) FROM jobs"),
                "started": len({start.body.get("persona") for start in wire.humalike.starts}),
            },
            wire.standin.late_callbacks_refused,
        )
        problems = len(wire.wire_problems())
    return Run(label, answers, completeness, 1000 * cpu / commands, cores, problems)


async def compare(commands: int) -> str:
    started = time.monotonic()
    one = await run("1 process, shards 0-1", 1, commands)
    two = await run("2 processes, a shard each", 2, commands)
    ratio = two.p99 / one.p99 if one.p99 else float("nan")
    complete = Completeness(
        2 * commands,
        {
            stage: one.completeness.reached[stage] + two.completeness.reached[stage]
            for stage in one.completeness.reached
        },
        one.completeness.refused + two.completeness.refused,
    )
    target = Target(f"p99(2 processes) / p99(1 process) <= {TARGET_RATIO}", ratio <= TARGET_RATIO, f"{ratio:.2f}")
    lines = [
        f"{commands} `/enhance` at once over {SHARDS * SERVERS_PER_SHARD} servers on {SHARDS} shards, PostgreSQL; "
        f"wire problems {one.problems} and {two.problems}; whole run {time.monotonic() - started:.0f} s",
        "",
        table(HEADER, [one.row(), two.row()]),
        "",
        f"Ratio p99(2 processes) / p99(1 process): {ratio:.2f}",
        "",
        verdict(complete, [target]),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(compare(args.commands))
    print_and_record(
        text, heading=f"One process or two: `python -m bench.processes --commands {args.commands}`", record=args.record
    )


if __name__ == "__main__":
    main()
