"""Benchmark 5: N jobs over the wire while Humalike and Discord misbehave.

The real bot follows N enhancements (one member each, arriving evenly over `--spread` s,
log-normal durations around 37 s) while the fake Humalike answers 10% of polls with 502,
holds 5% open until the bot's HUMALIKE_TIMEOUT_SECONDS cuts them, answers 2% with `null`,
and the Discord stand-in answers some edits of the reply with 429 (a burst of two every
second). Every fake job succeeds, so every job should end as a saved persona shown to its
member. Counted: finished (card shown and persona saved), lost (not finished), started twice
(the fake's billed starts per sketch), saved twice (personas rows vs distinct enhancement ids,
and rows per sketch, in the bot's SQLite).

    python -m bench.faults [--jobs 1000] [--spread 60] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections import Counter

from bench.wire_common import (
    TOKEN_EDIT,
    BenchHumalike,
    Target,
    add_users,
    bench_harness,
    done_or_refused,
    enhance_completeness,
    first_saved_at,
    job_for_sketch,
    lognormal,
    print_and_record,
    send_enhances,
    sketch_for,
    table,
    verdict,
    wait_for,
)
from tests.fakes.humalike import Fault, Script, Succeed

ERROR_SHARE, HANG_SHARE, NULL_SHARE = 0.10, 0.05, 0.02
TIMEOUT_SECONDS = 5.0  # the bot's HUMALIKE_TIMEOUT_SECONDS here (its default is 15)
RATE_LIMIT_BURST, RATE_LIMIT_EVERY = 2, 1.0


async def faults(jobs: int, spread: float, seed: int) -> str:
    rng = random.Random(seed)
    humalike = BenchHumalike()
    humalike.scripts = {}
    for index in range(jobs):
        total = lognormal(rng, 37.0, 0.3)
        humalike.scripts[sketch_for(index)] = Script(pending_for=1.5, running_for=total - 1.5, outcome=Succeed())

    def poll_fault() -> Fault | None:
        draw = rng.random()
        if draw < ERROR_SHARE:
            return Fault.error(502)
        if draw < ERROR_SHARE + HANG_SHARE:
            return Fault.hang(max_seconds=TIMEOUT_SECONDS * 6)  # the bot gives up long before
        if draw < ERROR_SHARE + HANG_SHARE + NULL_SHARE:
            return Fault.null()
        return None

    humalike.poll_fault = poll_fault
    users = []
    settings = {"HUMALIKE_TIMEOUT_SECONDS": f"{TIMEOUT_SECONDS:g}"}
    started = time.monotonic()
    async with bench_harness(
        settings, humalike=humalike, prepare=lambda wire: users.extend(add_users(wire, jobs))
    ) as wire:

        async def rate_limit_edits() -> None:
            while True:
                wire.standin.rate_limit("PATCH", TOKEN_EDIT, times=RATE_LIMIT_BURST, retry_after=0.5)
                await asyncio.sleep(RATE_LIMIT_EVERY)

        limiter = asyncio.create_task(rate_limit_edits())
        commands = await send_enhances(wire, users, ["off"] * jobs, spread_seconds=spread)

        async def settled() -> bool:
            unfinished = await wire.scalar(
                "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'sending', 'pending', 'running', 'stalled')"
            )
            # A command refused with 10062 is dropped by the bot: nothing more comes of it.
            return unfinished == 0 and done_or_refused(wire, commands)

        done = await wait_for(settled, spread + 600, every=1.0)
        limiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await limiter
        wall = time.monotonic() - started
        states = dict(await wire.rows("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
        error_codes = dict(await wire.rows("SELECT error_code, COUNT(*) FROM jobs WHERE state = 'failed' GROUP BY 1"))
        rows, distinct = (await wire.rows("SELECT COUNT(*), COUNT(DISTINCT enhancement_id) FROM personas"))[0]
        per_sketch = Counter(sketch for (sketch,) in await wire.rows("SELECT sketch FROM personas"))
        by_sketch = job_for_sketch(wire)
        shown = sum(1 for command in commands if first_saved_at(wire, command) is not None)
        saved_sketches = set(per_sketch)
        finished = sum(
            1
            for index, command in enumerate(commands)
            if first_saved_at(wire, command) is not None and sketch_for(index) in saved_sketches
        )
        started_twice = sum(1 for ids in by_sketch.values() if len(ids) > 1)
        never_started = sum(1 for index in range(jobs) if sketch_for(index) not in by_sketch)
        edits = wire.standin.calls_to("PATCH", TOKEN_EDIT)
        limited = sum(1 for call in edits if call.status == 429)
        polls = sum(humalike.polls.values())
        # Lost jobs are the run's completeness; started and saved twice are its targets.
        completeness = await enhance_completeness(wire, commands)
        problems = wire.wire_problems()

    saved_twice = (rows - distinct) + sum(1 for count in per_sketch.values() if count > 1)
    figures = [
        ["jobs sent", jobs, ""],
        ["finished (card shown, persona saved)", finished, f"cards shown {shown}"],
        ["lost (not finished)", jobs - finished, "target 0"],
        [
            "started twice",
            started_twice,
            f"target 0; billed starts {len(humalike.starts)}, never started {never_started}",
        ],
        ["saved twice", saved_twice, f"target 0; personas rows {rows}, distinct enhancement ids {distinct}"],
        ["jobs by state", ", ".join(f"{k} {v}" for k, v in sorted(states.items())), str(error_codes or "")],
        ["Humalike polls", polls, ", ".join(f"{k}: {v}" for k, v in sorted(humalike.injected.items()))],
        ["Discord reply edits", len(edits), f"{limited} answered 429"],
        ["answers refused with 10062", completeness.refused, "target 0"],
        ["wire problems", len(problems), problems[0] if problems else ""],
    ]
    head = f"{jobs} jobs over {spread:g} s, settled: {done}, wall {wall:.0f} s"
    head += f", HUMALIKE_TIMEOUT_SECONDS={TIMEOUT_SECONDS:g}"
    targets = [
        Target("no job started twice", started_twice == 0, f"{started_twice} started twice"),
        Target("no job saved twice", saved_twice == 0, f"{saved_twice} saved twice"),
    ]
    return head + "\n\n" + table(["", "count", "note"], figures) + "\n\n" + verdict(completeness, targets) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the commands arrive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(faults(args.jobs, args.spread, args.seed))
    print_and_record(text, heading=f"Faults: `python -m bench.faults --jobs {args.jobs}`", record=args.record)


if __name__ == "__main__":
    main()
