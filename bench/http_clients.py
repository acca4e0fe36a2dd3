"""aiohttp against the openai SDK's httpx client: CPU and latency per enhancement poll.

Runs the fake Humalike in its own process (so its CPU is not counted), starts
JOBS enhancements that never finish, then makes the follower's poll (GET of an
enhancement by id, bearer token, JSON body parsed) through each client and
prints the median of ROUNDS rounds:

- aiohttp: one shared `ClientSession`, as the bot's Humalike client uses it;
- httpx: one shared client exactly as the openai SDK installs it
  (`openai.DefaultAsyncHttpxClient`: the SDK's httpx package and version, its
  default transport, limits and timeout).

Three loads per round, in this order, on one client of each kind made for the round:
concurrency 1 (the pool holds one connection), concurrency 50, and concurrency 1
again with the 50 connections of a burst idle in the pool (an unmeasured burst of
50 every `--chunk` requests keeps them from expiring). The last row exists because
httpx's CPU per request grows with the idle connections in its pool.

CPU is `time.process_time()` of this process, which holds only the clients.

    python -m bench.http_clients [--requests-c1 2000] [--requests-c50 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import httpx2
import openai
from pydantic import SecretStr

from bench.poll_cost import TOKEN, fake_humalike_process, start_jobs, wait_until_up
from bot.humalike.client import ENHANCEMENT_PATH, HumalikeClient

AIOHTTP = "aiohttp"
HTTPX = "httpx"
CLIENTS = (AIOHTTP, HTTPX)
BURST = 50
# Errors shown before the rest are only counted.
SHOWN_ERRORS = 5

# One poll: GET `url`, check the status, parse the JSON body. Returns None or a description of the failure.
Poll = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class Load:
    label: str
    concurrency: int
    requests: int
    idle_burst: int = 0  # > 0: keep this many connections open in the pool, touched by unmeasured bursts


@dataclass
class Cell:
    """One measurement of one client under one load."""

    requests: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    unmeasured_errors: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.wall

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.requests

    def latency_ms(self, quantile: float) -> float:
        """Nearest-rank quantile of the per-request latencies, in ms."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]

    def add(self, other: Cell) -> None:
        self.requests += other.requests
        self.wall += other.wall
        self.cpu += other.cpu
        self.latencies += other.latencies
        self.errors.update(other.errors)
        self.unmeasured_errors.update(other.unmeasured_errors)


def aiohttp_poll(session: aiohttp.ClientSession) -> Poll:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timeout = aiohttp.ClientTimeout(total=30)

    async def poll(url: str) -> str | None:
        async with session.get(url, headers=headers, timeout=timeout) as response:
            if response.status != 200:
                return f"HTTP {response.status}"
            body = await response.json()
        return None if isinstance(body, dict) and "status" in body else f"unexpected body {body!r:.80}"

    return poll


def httpx_poll(client: httpx2.AsyncClient) -> Poll:
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def poll(url: str) -> str | None:
        response = await client.get(url, headers=headers)
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        body = response.json()
        return None if isinstance(body, dict) and "status" in body else f"unexpected body {body!r:.80}"

    return poll


async def run(poll: Poll, urls: list[str], requests: int, concurrency: int, *, collect: bool = True) -> Cell:
    """`requests` polls, `concurrency` in flight at once (worker tasks sharing one counter)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests:
            url = urls[next_index % len(urls)]
            next_index += 1
            started = time.perf_counter()
            try:
                problem = await poll(url)
            except (aiohttp.ClientError, httpx2.HTTPError, OSError, TimeoutError, ValueError) as error:
                problem = f"{type(error).__name__}: {error}"[:120]
            latencies.append(time.perf_counter() - started)
            if problem is not None:
                errors[problem] += 1

    if collect:
        gc.collect()
    wall_start = time.perf_counter()
    cpu_start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return Cell(requests, wall, cpu, latencies, errors)


async def run_load(poll: Poll, urls: list[str], load: Load, requests: int, chunk: int) -> Cell:
    """One load; with `idle_burst`, measured chunks of `chunk` requests, each after an unmeasured burst."""
    if not load.idle_burst:
        return await run(poll, urls, requests, load.concurrency)
    total = Cell()
    gc.collect()
    while total.requests < requests:
        burst = await run(poll, urls, load.idle_burst, load.idle_burst, collect=False)
        total.unmeasured_errors.update(burst.errors)
        total.add(await run(poll, urls, min(chunk, requests - total.requests), load.concurrency, collect=False))
    return total


async def measure(
    base_url: str, jobs: int, loads: list[Load], rounds: int, warmup: int, chunk: int
) -> dict[tuple[str, str], list[Cell]]:
    await wait_until_up(base_url)
    async with aiohttp.ClientSession() as setup:
        humalike = HumalikeClient(setup, base_url=base_url, token=SecretStr(TOKEN), timeout=30)
        ids = await start_jobs(humalike, jobs, at_once=BURST)
    urls = [base_url + ENHANCEMENT_PATH.format(id=job_id) for job_id in ids]

    cells: dict[tuple[str, str], list[Cell]] = {(name, load.label): [] for name in CLIENTS for load in loads}
    for round_index in range(rounds):
        # A fresh client of each kind per round, shared by every request of the round; the two
        # alternate which goes first, so a slow spell of the machine hits both alike.
        async with aiohttp.ClientSession() as session, openai.DefaultAsyncHttpxClient() as httpx_client:
            polls = {AIOHTTP: aiohttp_poll(session), HTTPX: httpx_poll(httpx_client)}
            order = CLIENTS if round_index % 2 == 0 else CLIENTS[::-1]
            for load in loads:
                for name in order:
                    warm = await run_load(polls[name], urls, load, warmup, chunk)
                    cell = await run_load(polls[name], urls, load, load.requests, chunk)
                    cell.unmeasured_errors.update(warm.errors + warm.unmeasured_errors)
                    cells[name, load.label].append(cell)
                    print(
                        f"  round {round_index + 1}/{rounds}  {name:<8} c={load.label:<11} "
                        f"{cell.cpu_ms:.3f} ms CPU/request  {cell.rps:,.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return cells


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-c1", type=int, default=2000, help="measured requests a round at concurrency 1")
    parser.add_argument("--requests-c50", type=int, default=5000, help="measured requests a round at concurrency 50")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median of the rounds is reported")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each measurement")
    parser.add_argument("--chunk", type=int, default=200, help="c=1 requests between bursts, in the idle-pool load")
    parser.add_argument("--jobs", type=int, default=100, help="enhancements started and polled round-robin")
    args = parser.parse_args()
    loads = [
        Load("1", 1, args.requests_c1),
        Load(str(BURST), BURST, args.requests_c50),
        Load(f"1, {BURST} idle", 1, args.requests_c1, idle_burst=BURST),
    ]

    started = time.perf_counter()
    with fake_humalike_process() as base_url:
        cells = asyncio.run(measure(base_url, args.jobs, loads, args.rounds, args.warmup, args.chunk))
    elapsed = time.perf_counter() - started

    httpx_dist = httpx2.__name__  # the httpx package the openai SDK depends on
    names = {AIOHTTP: "aiohttp ClientSession", HTTPX: f"{httpx_dist} (openai default)"}
    print(
        f"aiohttp {version('aiohttp')}; {httpx_dist} {version(httpx_dist)} with its default transport "
        f"(httpcore2 {version('httpcore2')}), as installed by openai {version('openai')}; "
        f"package 'httpx': {version('httpx')}; Python {sys.version.split()[0]}"
    )
    print(
        f"{args.rounds} rounds, median shown; {args.warmup} warm-up requests before each measurement; "
        f"{args.jobs} jobs polled round-robin; server: fake Humalike in its own process; {elapsed:.0f} s in all"
    )
    print()
    header = (
        f"{'client':<25} {'concurrency':<12} {'requests':>8} {'wall s':>7} {'req/s':>7} "
        f"{'CPU ms/req':>10} {'p50 ms':>7} {'p99 ms':>7} {'failed':>6}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[tuple[str, str], float] = {}
    for load in loads:
        for name in CLIENTS:
            runs = cells[name, load.label]
            medians[name, load.label] = statistics.median(cell.cpu_ms for cell in runs)
            print(
                f"{names[name]:<25} {load.label:<12} {load.requests:>8,} "
                f"{statistics.median(cell.wall for cell in runs):>7.2f} "
                f"{statistics.median(cell.rps for cell in runs):>7,.0f} "
                f"{medians[name, load.label]:>10.3f} "
                f"{statistics.median(cell.latency_ms(0.50) for cell in runs):>7.2f} "
                f"{statistics.median(cell.latency_ms(0.99) for cell in runs):>7.2f} "
                f"{sum(cell.failed for cell in runs):>6}"
            )
    print()
    print("CPU ms/req of each round:")
    for load in loads:
        for name in CLIENTS:
            rounds = ", ".join(f"{cell.cpu_ms:.3f}" for cell in cells[name, load.label])
            print(f"  {names[name]:<25} c={load.label:<12} {rounds}")

    measured = Counter[str]()
    unmeasured = Counter[str]()
    for runs in cells.values():
        for cell in runs:
            measured.update(cell.errors)
            unmeasured.update(cell.unmeasured_errors)
    if measured or unmeasured:
        failed = sum(measured.values()) + sum(unmeasured.values())
        print(
            f"FAILED requests: {sum(measured.values())} measured ('failed' column, all rounds), "
            f"{sum(unmeasured.values())} in warm-ups and bursts"
        )
        for problem, count in (measured + unmeasured).most_common(SHOWN_ERRORS):
            print(f"  {count:>6} x {problem}")
        print(f"verdict: MISSED / incomplete: {failed} requests failed, no ratio claimed")
        sys.exit(1)
    ratios = "; ".join(
        f"c={load.label}: {medians[HTTPX, load.label] / medians[AIOHTTP, load.label]:.2f}x" for load in loads
    )
    print(f"verdict: {httpx_dist}/aiohttp CPU per request: {ratios}")


if __name__ == "__main__":
    main()
