"""Failover: 1,000 jobs in flight over 2 bot processes on PostgreSQL; `kill -9` one at the midpoint.

Two processes run shards 0 and 1 of 2 and share one PostgreSQL schema, with the bot's default
settings (JOB_LEASE_SECONDS 15). N members spread over servers on both shards send `/enhance`
(over `--spread` seconds, so every answer is inside Discord's 3 s); each job lasts `--duration`
s plus up to 10 s more. Once every job is started, at the middle of the shortest job, the process
running shard 1 is killed with SIGKILL. The survivor must take its jobs over and finish them.

Measured:
- completeness: every job started once, its card shown, its persona saved once;
- the takeover time of each orphaned job (held by the killed process at the kill): from the kill
  to the survivor's first poll of it at the fake Humalike. Target p99 <= lease + 2 s;
- the peak RSS of each process.

    python -m bench.failover [--jobs 1000] [--duration 60] [--spread 20] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from typing import Any

from bench.wire_common import (
    BenchHumalike,
    Completeness,
    Target,
    bench_harness,
    first_saved_at,
    job_for_sketch,
    members_over_shards,
    memory_kb,
    print_and_record,
    sketch_for,
    summary,
    table,
    verdict,
    wait_for,
    wait_settled,
)
from tests.databases import postgres_schema
from tests.fakes.humalike import Script, Succeed
from tests.wire.harness import WireHarness
from tests.wire.standin import InteractionRecord, StandInChannel, StandInUser

SHARDS = 2
SERVERS_PER_SHARD = 2
LEASE_SECONDS = 15.0  # the bot's default JOB_LEASE_SECONDS
TAKEOVER_MARGIN_SECONDS = 2.0
STARTS_WITHIN = 180.0


class PollTimesHumalike(BenchHumalike):
    """Also remembers when each job was polled (the fake's clock: the real monotonic one)."""

    def __init__(self) -> None:
        super().__init__()
        self.poll_times: dict[str, list[float]] = {}

    def _poll_body(self, job: Any) -> dict[str, Any]:
        self.poll_times.setdefault(job.id, []).append(self.clock())
        return super()._poll_body(job)


async def send_spread(
    wire: WireHarness, members: list[tuple[StandInUser, StandInChannel]], spread: float
) -> list[InteractionRecord]:
    """One `/enhance` per member, evenly over `spread` seconds; sketch i is `sketch_for(i)`."""
    commands = []
    started = time.monotonic()
    for index, (user, channel) in enumerate(members):
        delay = started + spread * index / len(members) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        commands.append(
            await wire.standin.send_command("enhance", {"sketch": sketch_for(index)}, user=user, channel=channel)
        )
    return commands


async def failover(jobs: int, duration: float, spread: float, seed: int) -> str:
    rng = random.Random(seed)
    humalike = PollTimesHumalike()
    humalike.scripts = {
        sketch_for(index): Script(pending_for=2.0, running_for=duration - 2.0 + rng.uniform(0, 10), outcome=Succeed())
        for index in range(jobs)
    }
    members: list[tuple[StandInUser, StandInChannel]] = []

    def prepare(wire: WireHarness) -> None:
        members.extend(members_over_shards(wire, jobs, SHARDS, SERVERS_PER_SHARD))
        wire.bot.settings["SHARD_IDS"] = "0"
        wire.add_bot("shard-1", {"SHARD_IDS": "1"})

    settings = {"SHARD_COUNT": str(SHARDS), "JOB_LEASE_SECONDS": str(LEASE_SECONDS)}
    async with (
        postgres_schema() as url,
        bench_harness({**settings, "DATABASE_URL": url}, humalike=humalike, prepare=prepare) as wire,
    ):
        survivor, doomed = wire.bots
        commands = await send_spread(wire, members, spread)
        await wait_settled(commands)
        answered = sum(1 for command in commands if command.answered)
        await wait_for(
            lambda: wire.scalar("SELECT COUNT(*) >= ? FROM jobs WHERE enhancement_id IS NOT NULL", answered),
            STARTS_WITHIN,
        )
        # The middle of the shortest job: every job is in flight, none has ended.
        first_end = min(job.ended_at for job in humalike.jobs.values())
        last_start = max(job.accepted_at for job in humalike.jobs.values())
        kill_at = max(last_start + 1.0, first_end - duration / 2)
        await asyncio.sleep(max(0.0, kill_at - time.monotonic()))
        doomed_rss = memory_kb(doomed.pid)["VmHWM"] / 1024
        await wire.kill(doomed)
        killed_at = time.monotonic()
        in_flight_at_kill = sum(1 for job in humalike.jobs.values() if job.accepted_at <= killed_at < job.ended_at)
        owner = f":{doomed.pid}:"
        orphans = [
            enhancement_id
            for enhancement_id, lease_owner in await wire.rows(
                "SELECT enhancement_id, lease_owner FROM jobs WHERE state NOT IN ('succeeded', 'failed')"
            )
            if lease_owner and owner in lease_owner
        ]
        await wait_for(lambda: all(first_saved_at(wire, c) is not None for c in commands if c.answered), duration + 120)
        survivor_rss = memory_kb(survivor.pid)["VmHWM"] / 1024
        started = job_for_sketch(wire)
        personas = Counter(sketch for (sketch,) in await wire.rows("SELECT sketch FROM personas"))
        sketches = [sketch_for(index) for index in range(jobs)]
        completeness = Completeness(
            jobs,
            {
                "started": sum(1 for sketch in sketches if sketch in started),
                "finished": sum(1 for command in commands if first_saved_at(wire, command) is not None),
                "saved": sum(1 for sketch in sketches if sketch in personas),
            },
            wire.standin.late_callbacks_refused,
        )
        problems = wire.wire_problems()

    takeovers = [
        next((at for at in humalike.poll_times.get(job_id, []) if at > killed_at), float("inf")) - killed_at
        for job_id in orphans
    ]
    never = sum(1 for value in takeovers if value == float("inf"))
    figures = summary([value for value in takeovers if value != float("inf")])
    started_twice = sum(len(ids) - 1 for ids in started.values())
    saved_twice = sum(count - 1 for count in personas.values())
    limit = LEASE_SECONDS + TAKEOVER_MARGIN_SECONDS
    targets = [
        Target("0 started twice", started_twice == 0, str(started_twice)),
        Target("0 saved twice", saved_twice == 0, str(saved_twice)),
        Target("every orphaned job polled again by the survivor", never == 0 and bool(orphans), f"{never} never"),
        Target(f"takeover p99 <= lease + 2 s = {limit:.0f} s", figures["p99"] <= limit, f"{figures['p99']:.2f} s"),
    ]
    lines = [
        f"{jobs} jobs over {SHARDS} processes (a shard each), PostgreSQL, lease {LEASE_SECONDS:.0f} s; "
        f"{in_flight_at_kill} in flight at the kill; {len(orphans)} held by the killed process; "
        f"wire problems {len(problems)}",
        f"- peak RSS (VmHWM): survivor {survivor_rss:.0f} MB, killed process {doomed_rss:.0f} MB (at the kill)",
        "",
        table(
            ["takeover: kill -> survivor's first poll", "mean s", "p50 s", "p90 s", "p99 s", "max s"],
            [["orphaned jobs", *(figures[key] for key in ("mean", "p50", "p90", "p99", "max"))]],
        ),
        "",
        verdict(completeness, targets),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=60.0, help="shortest job, seconds")
    parser.add_argument("--spread", type=float, default=20.0, help="send the commands over this many seconds")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(failover(args.jobs, args.duration, args.spread, args.seed))
    print_and_record(text, heading=f"Failover: `python -m bench.failover --jobs {args.jobs}`", record=args.record)


if __name__ == "__main__":
    main()
