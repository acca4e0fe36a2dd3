"""What following a thousand jobs costs the bot's CPU, per poll and per second.

Runs the fake Humalike in its own process (so its CPU is not counted), starts
JOBS enhancements that never finish, then polls all of them ROUNDS times with
the bot's own client at the follower's concurrency. Prints a table.

    python -m bench.poll_cost [--jobs 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
from pydantic import SecretStr

from bot.enhance.follower import MAX_CONCURRENT_POLLS
from bot.humalike.client import HumalikeClient
from bot.humalike.models import Grounding

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fake_humalike_process() -> Iterator[str]:
    """The fake Humalike in a process of its own (its CPU is not counted), its jobs never ending; its URL."""
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.humalike", "--port", str(port), "--token", TOKEN, "--running-for", "1e6"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        fake.terminate()
        fake.wait(timeout=10)


async def wait_until_up(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.post(
                    base_url + "/v1/turn-taking/actions/whoami", json={}, headers={"Authorization": f"Bearer {TOKEN}"}
                ):
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the fake Humalike did not start")


async def start_jobs(client: HumalikeClient, jobs: int, *, at_once: int) -> list[str]:
    """Start `jobs` enhancements, `at_once` at a time; their ids."""
    slots = asyncio.Semaphore(at_once)

    async def start() -> str:
        async with slots:
            return (await client.start_enhancement("Sam is a support main.", Grounding.OFF)).id

    return list(await asyncio.gather(*(start() for _ in range(jobs))))


async def measure(base_url: str, jobs: int, rounds: int) -> dict[str, float]:
    await wait_until_up(base_url)
    async with aiohttp.ClientSession() as session:
        client = HumalikeClient(session, base_url=base_url, token=SecretStr(TOKEN), timeout=30)
        ids = await start_jobs(client, jobs, at_once=MAX_CONCURRENT_POLLS)
        slots = asyncio.Semaphore(MAX_CONCURRENT_POLLS)  # the follower's own bound on polls in flight

        async def poll(job_id: str) -> None:
            async with slots:
                await client.get_enhancement(job_id)

        per_round_cpu = []
        wall_start = time.perf_counter()
        cpu_start = time.process_time()
        for _ in range(rounds):
            round_cpu = time.process_time()
            await asyncio.gather(*(poll(job_id) for job_id in ids))
            per_round_cpu.append(time.process_time() - round_cpu)
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
    requests = jobs * rounds
    return {
        "requests": requests,
        "cpu_ms_per_poll": 1000 * cpu / requests,
        "cpu_ms_per_poll_median_round": 1000 * statistics.median(per_round_cpu) / jobs,
        "polls_per_second_achieved": requests / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=float, default=2.0, help="the follower's densest poll interval")
    args = parser.parse_args()

    with fake_humalike_process() as base_url:
        figures = asyncio.run(measure(base_url, args.jobs, args.rounds))

    # Every job in its densest phase at once is the worst case the follower can meet.
    worst_rate = args.jobs / args.interval
    core_share = figures["cpu_ms_per_poll"] / 1000 * worst_rate
    rows = [
        ("jobs in flight", f"{args.jobs}"),
        ("polls measured", f"{figures['requests']:.0f}"),
        ("CPU per poll (client side)", f"{figures['cpu_ms_per_poll']:.3f} ms"),
        ("CPU per poll, median round", f"{figures['cpu_ms_per_poll_median_round']:.3f} ms"),
        ("polls per second achieved", f"{figures['polls_per_second_achieved']:.0f}"),
        (f"worst case: every job polled each {args.interval:g} s", f"{worst_rate:.0f} polls/s"),
        ("share of one core at that rate", f"{100 * core_share:.1f} %"),
        ("peak RSS of this process", f"{figures['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
