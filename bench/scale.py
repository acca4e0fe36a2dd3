"""Benchmark 3: 1,000 enhancements in flight at once in one bot process, over the wire.

The real bot (its own process) gets N `/enhance` commands from N members, back to back, and
follows every job to its persona card. Each job lasts `--duration` s plus up to 20 s more
(pending 2 s, then running), long enough that all N are in flight together once started.
Measured on the bot's process only: peak RSS (VmHWM in /proc/PID/status) and CPU
(utime + stime from /proc/PID/stat over wall time), per phase.

    python -m bench.scale [--jobs 1000] [--duration 100] [--database postgresql] [--record]

With `--database postgresql` the bot keeps its data in a fresh schema of the PostgreSQL on
127.0.0.1:5432 (or TEST_POSTGRES_URL) instead of its SQLite file, and the PostgreSQL server's own
CPU (every `postgres` process, from /proc) is reported beside the bot's: the cost of the shared
database. Polls are counted at the fake Humalike, for the bot's CPU per poll while following.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

from bench.wire_common import (
    BenchHumalike,
    CpuMark,
    Target,
    add_users,
    bench_harness,
    cores_between,
    cpu_mark,
    enhance_completeness,
    first_saved_at,
    in_flight_at_last_start,
    memory_kb,
    postgres_cpu_seconds,
    print_and_record,
    send_enhances,
    sketch_for,
    table,
    verdict,
    wait_for,
    wait_settled,
)
from tests.databases import postgres_schema
from tests.fakes.humalike import Script, Succeed

RSS_TARGET_MB = 150
CPU_TARGET_CORES = 0.5
# How long the bot may take to start every answered job on Humalike (each start follows its answer).
STARTS_WITHIN = 120.0


@contextlib.asynccontextmanager
async def database_settings(database: str) -> AsyncIterator[dict[str, str]]:
    if database == "sqlite":
        yield {}
        return
    async with postgres_schema() as url:
        yield {"DATABASE_URL": url}


async def scale(jobs: int, duration: float, seed: int, database: str = "sqlite") -> str:
    rng = random.Random(seed)
    humalike = BenchHumalike()
    humalike.scripts = {
        sketch_for(index): Script(pending_for=2.0, running_for=duration - 2.0 + rng.uniform(0, 20), outcome=Succeed())
        for index in range(jobs)
    }
    users = []
    rss_samples: list[int] = []
    async with (
        database_settings(database) as settings,
        bench_harness(settings, humalike=humalike, prepare=lambda wire: users.extend(add_users(wire, jobs))) as wire,
    ):
        assert wire.process is not None
        pid = wire.process.pid
        await asyncio.sleep(3)  # settle after login and sync: the idle figure
        idle = memory_kb(pid)

        async def sample() -> None:
            while True:
                rss_samples.append(memory_kb(pid)["VmRSS"])
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample())
        marks: dict[str, CpuMark] = {"start": cpu_mark(pid)}
        commands = await send_enhances(wire, users, ["off"] * jobs)
        sent_at = time.monotonic() - marks["start"].at
        # Answered or refused: a refused command is dropped by the bot and never starts.
        await wait_settled(commands)
        answered = sum(1 for command in commands if command.answered)
        await wait_for(lambda: len(humalike.starts) >= answered, STARTS_WITHIN, every=0.1)
        marks["all started"] = cpu_mark(pid)
        polls_before, server_before = sum(humalike.polls.values()), postgres_cpu_seconds()
        in_flight = in_flight_at_last_start(humalike)
        if humalike.jobs:
            first_end = min(job.ended_at for job in humalike.jobs.values())
            await asyncio.sleep(max(0.0, first_end - time.monotonic()))
        marks["first ends"] = cpu_mark(pid)
        polls_following = sum(humalike.polls.values()) - polls_before
        server_following = postgres_cpu_seconds() - server_before
        await wait_for(lambda: all(first_saved_at(wire, c) is not None for c in commands if c.answered), duration + 200)
        marks["all shown"] = cpu_mark(pid)
        sampler.cancel()
        memory = memory_kb(pid)
        completeness = await enhance_completeness(wire, commands)
        problems = wire.wire_problems()

    phases = [
        ("start all jobs (commands back to back)", "start", "all started"),
        ("all in flight, following", "all started", "first ends"),
        ("jobs end: save and show cards", "first ends", "all shown"),
        ("whole run", "start", "all shown"),
    ]
    rows = [
        [
            name,
            marks[end].at - marks[begin].at,
            marks[end].cpu - marks[begin].cpu,
            cores_between(marks[begin], marks[end]),
        ]
        for name, begin, end in phases
    ]
    follow_wall = marks["first ends"].at - marks["all started"].at
    follow_cpu = marks["first ends"].cpu - marks["all started"].cpu
    peak_mb = memory["VmHWM"] / 1024
    whole = cores_between(marks["start"], marks["all shown"])
    following = cores_between(marks["all started"], marks["first ends"])
    targets = [
        Target(f"bot peak RSS (VmHWM) < {RSS_TARGET_MB} MB", peak_mb < RSS_TARGET_MB, f"{peak_mb:.0f} MB"),
        Target(f"bot CPU < {CPU_TARGET_CORES} cores over the whole run", whole < CPU_TARGET_CORES, f"{whole:.2f}"),
    ]
    lines = [
        f"{jobs} jobs: commands sent in {sent_at:.1f} s; {in_flight} in flight when the last start arrived; "
        f"answers refused with 10062: {completeness.refused}; wire problems {len(problems)}",
        f"- bot RSS: idle after login {idle['VmRSS'] / 1024:.0f} MB; peak (VmHWM) {peak_mb:.0f} MB; "
        f"at the end {memory['VmRSS'] / 1024:.0f} MB; sampled max {max(rss_samples, default=0) / 1024:.0f} MB",
        f"- bot CPU: {whole:.2f} cores over the whole run, {following:.2f} while all {in_flight} are followed",
        f"- database: {database}; while following, {polls_following} polls, bot CPU a poll "
        f"{1000 * follow_cpu / max(1, polls_following):.2f} ms"
        + (
            f", PostgreSQL server CPU {server_following:.2f} s ({server_following / follow_wall:.3f} cores)"
            if database == "postgresql"
            else ""
        ),
        "",
        table(["phase", "wall s", "bot CPU s", "cores"], rows),
        "",
        verdict(completeness, targets),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=100.0, help="shortest job, seconds")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(scale(args.jobs, args.duration, args.seed, args.database))
    print_and_record(text, heading=f"Scale: `python -m bench.scale --jobs {args.jobs}`", record=args.record)


if __name__ == "__main__":
    main()
