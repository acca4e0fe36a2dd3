"""Benchmark 2: following jobs. Polls per job, lag to the user, Discord edits, over the wire.

The real bot follows N enhancements started through `/enhance` (one member each) against the
fake Humalike, whose job durations are log-normal: median 37 s for `off`, 60 s for `web`.
It runs on the real clock: the bot's schedule (bot/enhance/schedule.py) models durations in
absolute seconds (a log-normal around 37 s for `off`), which no setting scales, so time cannot be
compressed without changing the bot. Commands arrive evenly over `--spread` seconds.

Side by side, over the very same job durations, two fixed pollers are simulated: the API's own
example (poll at once, then every 3 s) and the same every 2 s. The bot's lag is measured end to
end, from the job's end on the fake's clock to the stand-in storing the edit that shows the
persona card. It has two parts: "detect", from the end to the first poll that answered it, and
"show", from that poll to the edit (the request, the save, the Discord edit). A fixed poller
would pay the same "show" after its own poll, so its lag is its simulated detect plus the bot's
measured show for that very job.

    python -m bench.following [--jobs 1000] [--web-share 0.2] [--spread 60] [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import random
import time

from bench.wire_common import (
    TOKEN_EDIT,
    BenchHumalike,
    Completeness,
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
    shown_state,
    sketch_for,
    summary,
    table,
    verdict,
    wait_for,
)
from tests.fakes.humalike import Script, Succeed
from tests.wire.harness import WireHarness

MEDIAN = {"off": 37.0, "web": 60.0}
SIGMA = {"off": 0.3, "web": 0.35}
FIXED_PERIODS = (3.0, 2.0)
# The status changes a member can see of a job that succeeds: queued -> pending -> running -> saved.
STATUS_CHANGES = 3
# The targets: at most two thirds of a 2 s poller's polls, no more lag, one edit per status change.
POLLS_TARGET = 0.67
EDITS_PER_CHANGE_TARGET = 1.0


def fixed_poller(duration: float, period: float) -> tuple[int, float]:
    """(polls, lag) of a poller that polls at once, then every `period` s, until the job has ended."""
    intervals = math.ceil(duration / period - 1e-9)
    return intervals + 1, intervals * period - duration


def scripts(rng: random.Random, groundings: list[str]) -> list[Script]:
    drawn = []
    for grounding in groundings:
        total = lognormal(rng, MEDIAN[grounding], SIGMA[grounding])
        pending = min(rng.uniform(0.5, 3.0), total / 4)
        drawn.append(Script(pending_for=pending, running_for=total - pending, outcome=Succeed()))
    return drawn


async def follow(jobs: int, web_share: float, spread: float, seed: int) -> str:
    rng = random.Random(seed)
    groundings = ["web" if rng.random() < web_share else "off" for _ in range(jobs)]
    humalike = BenchHumalike()
    humalike.scripts = {sketch_for(index): script for index, script in enumerate(scripts(rng, groundings))}
    users = []
    started = time.monotonic()
    async with bench_harness(humalike=humalike, prepare=lambda wire: users.extend(add_users(wire, jobs))) as wire:
        commands = await send_enhances(wire, users, groundings, spread_seconds=spread)
        longest = max(MEDIAN.values()) * 6
        # A command refused with 10062 never starts: waiting for its card would wait for nothing.
        done = await wait_for(lambda: done_or_refused(wire, commands), spread + longest)
        wall = time.monotonic() - started
        completeness = await enhance_completeness(wire, commands)
        return report(wire, commands, groundings, done, wall, completeness)


def report(
    wire: WireHarness, commands: list, groundings: list[str], done: bool, wall: float, completeness: Completeness
) -> str:
    by_sketch = job_for_sketch(wire)
    rows: dict[str, dict[str, list[float]]] = {}
    edits_per_job: list[int] = []
    repeats = 0  # edits that showed the same state as the version before
    unfinished = 0
    for index, (command, grounding) in enumerate(zip(commands, groundings, strict=True)):
        job_ids = by_sketch.get(sketch_for(index), [])
        saved_at = first_saved_at(wire, command)
        if not job_ids or saved_at is None:
            unfinished += 1
            continue
        job = wire.humalike.jobs[job_ids[0]]
        duration = job.ended_at - job.accepted_at
        reply = wire.reply(command)
        assert reply is not None
        edits_per_job.append(reply.edits)
        states = [shown_state(version) for version in reply.versions]
        repeats += sum(1 for before, after in itertools.pairwise(states) if before == after)
        for key in (grounding, "all"):
            figures = rows.setdefault(key, {})
            figures.setdefault("duration", []).append(duration)
            seen_at = wire.humalike.seen_ended_at[job.id]
            show = saved_at - seen_at
            figures.setdefault("bot polls", []).append(wire.humalike.polls[job.id])
            figures.setdefault("bot detect", []).append(seen_at - job.ended_at)
            figures.setdefault("bot lag", []).append(saved_at - job.ended_at)
            figures.setdefault("show", []).append(show)
            for period in FIXED_PERIODS:
                polls, detect = fixed_poller(duration, period)
                figures.setdefault(f"{period:g}s polls", []).append(polls)
                figures.setdefault(f"{period:g}s detect", []).append(detect)
                figures.setdefault(f"{period:g}s lag", []).append(detect + show)
    lines = [
        f"{len(commands)} jobs ({groundings.count('off')} off, {groundings.count('web')} web), "
        f"{len(commands) - unfinished} shown finished{'' if done else ' (timed out waiting)'}, wall {wall:.0f} s",
        "",
    ]
    header = [
        "grounding",
        "poller",
        "polls/job mean",
        "p50",
        "p99",
        "detect mean s",
        "lag mean s",
        "lag p50",
        "lag p90",
        "lag p99",
        "max",
    ]
    out = []
    for key in ("off", "web", "all"):
        figures = rows.get(key)
        if not figures:
            continue
        duration = summary(figures["duration"])
        show = summary(figures["show"])
        lines.append(
            f"- {key}: duration median {duration['p50']:.1f} s, p90 {duration['p90']:.1f} s, "
            f"max {duration['max']:.1f} s; show (poll answered -> edit stored) "
            f"p50 {show['p50'] * 1000:.0f} ms, p99 {show['p99'] * 1000:.0f} ms"
        )
        for poller, prefix in (
            ("bot (schedule)", "bot"),
            *((f"fixed {p:g} s (simulated + bot's show)", f"{p:g}s") for p in FIXED_PERIODS),
        ):
            polls, lag = summary(figures[f"{prefix} polls"]), summary(figures[f"{prefix} lag"])
            detect = summary(figures[f"{prefix} detect"])
            out.append(
                [
                    key,
                    poller,
                    polls["mean"],
                    polls["p50"],
                    polls["p99"],
                    detect["mean"],
                    lag["mean"],
                    lag["p50"],
                    lag["p90"],
                    lag["p99"],
                    lag["max"],
                ]
            )
    all_figures = rows.get("all", {})
    targets = []
    if all_figures:
        bot_polls = sum(all_figures["bot polls"])
        two_polls = sum(all_figures["2s polls"])
        bot_lag = summary(all_figures["bot lag"])
        two_lag = summary(all_figures["2s lag"])
        lines.append(
            f"- bot polls / 2 s poller polls: {bot_polls / two_polls:.2f} (target <= {POLLS_TARGET}); "
            f"lag mean {bot_lag['mean']:.2f} s vs {two_lag['mean']:.2f} s, "
            f"p50 {bot_lag['p50']:.2f} vs {two_lag['p50']:.2f}, p99 {bot_lag['p99']:.2f} vs {two_lag['p99']:.2f}"
        )
        targets += [
            Target(
                f"bot polls <= {POLLS_TARGET} of a 2 s poller's",
                bot_polls / two_polls <= POLLS_TARGET,
                f"{bot_polls / two_polls:.2f}",
            ),
            Target(
                "bot lag mean <= a 2 s poller's",
                bot_lag["mean"] <= two_lag["mean"],
                f"{bot_lag['mean']:.2f} s vs {two_lag['mean']:.2f} s",
            ),
        ]
    if edits_per_job:
        edits = summary(edits_per_job)
        token_edits = wire.standin.calls_to("PATCH", TOKEN_EDIT)
        per_change = edits["mean"] / STATUS_CHANGES
        lines.append(
            f"- Discord edits per job: mean {edits['mean']:.2f}, max {edits['max']:.0f} "
            f"(status changes per job: {STATUS_CHANGES}); edits per status change: "
            f"{per_change:.2f}; edits repeating the state shown before: {repeats}; "
            f"PATCH calls {len(token_edits)} ({sum(1 for call in token_edits if call.status != 200)} not 200)"
        )
        targets.append(
            Target(
                f"edits per status change <= {EDITS_PER_CHANGE_TARGET:g}",
                per_change <= EDITS_PER_CHANGE_TARGET,
                f"{per_change:.2f}",
            )
        )
    problems = wire.wire_problems()
    lines.append(f"- answers refused with 10062: {completeness.refused}")
    lines.append(f"- wire problems: {len(problems)}" + (f" (first: {problems[0]})" if problems else ""))
    return "\n".join(lines) + "\n\n" + table(header, out) + "\n\n" + verdict(completeness, targets) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--web-share", type=float, default=0.2)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the commands arrive")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(follow(args.jobs, args.web_share, args.spread, args.seed))
    print_and_record(
        text, heading=f"Following jobs: `python -m bench.following --jobs {args.jobs}`", record=args.record
    )


if __name__ == "__main__":
    main()
