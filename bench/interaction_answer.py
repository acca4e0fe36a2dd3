"""How fast the real bot answers `/enhance`: INTERACTION_CREATE on the wire -> the callback arriving.

Starts the wire harness once (the bot as its own process, the Discord stand-in, fake Humalike and
chat model on loopback), then sends batches of `/enhance` commands at once, each from a distinct
member (so the per-member job limit refuses none), and reports for each batch p50/p95/p99/max of
(callback arrival - dispatch), how many were answered within Discord's 3 s, and the bot process's
CPU per command (utime + stime over the batch: the answer, the Humalike start, the "pending" edit).

It also splits each answer, to show where the time goes:
  gateway->job row   dispatch -> the job's `created_at` (wall clock taken just before the DB transaction)
  job row->callback  that -> the callback arriving (DB transaction, waiting for the write lock, render, HTTP)
  callback->start    the callback -> Humalike's start arriving (it comes after the answer, by design)

    python -m bench.interaction_answer [--batches 1 100 500] [--realistic-polls]

Jobs are followed as usual but with the first poll an hour away, so earlier batches' polling does
not load the later ones (`--realistic-polls` keeps the harness's 2.5 s / 1 s polling instead).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.wire_common import Completeness, Target, cpu_seconds, verdict, wait_for, wait_settled
from tests.wire.harness import WireHarness

ANSWER_WINDOW_MS = 3000.0
TARGET_P99_MS = 100.0
# How long the Humalike starts, and the "pending" edits after them, may take to follow the answers.
FOLLOW_UP_WITHIN = 120.0


class ProfiledHarness(WireHarness):
    """The same harness, with the bot process run under cProfile (written when it stops)."""

    def __init__(self, workdir: Path, *, settings: dict[str, str], profile: Path) -> None:
        super().__init__(workdir, settings=settings)
        self.profile = profile
        self.bot_module = f"cProfile -o {profile} -m {self.bot_module}"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> tuple[float, float, float, float]:
    return (
        statistics.median(values),
        percentile(values, 0.95),
        percentile(values, 0.99),
        max(values),
    )


async def run(
    batches: list[int], realistic_polls: bool, workdir: Path, profile: Path | None = None, inline_checks: bool = False
) -> tuple[list[dict[str, object]], Completeness]:
    settings = {} if realistic_polls else {"POLL_FIRST_DELAY_SECONDS": "3600"}
    rows: list[dict[str, object]] = []
    harness = (
        WireHarness(workdir, settings=settings)
        if profile is None
        else ProfiledHarness(workdir, settings=settings, profile=profile)
    )
    # The stand-in shares the benchmark's process: checking each body (~2 ms of CPU) as it
    # arrives would make it stamp later callbacks late. Every body is checked after each batch.
    harness.standin.defer_checks = not inline_checks
    async with harness as wire:
        # Offset from monotonic to wall clock (the bot stamps jobs with the wall clock).
        wall_minus_mono = time.time() - time.monotonic()
        members = [wire.standin.add_member(wire.guild, f"member-{index}") for index in range(sum(batches))]
        used = 0
        every_record = []
        for size in batches:
            users = members[used : used + size]
            used += size
            sketches = [f"Bench{used}x{index} is a support main. Friendly. Plays Thresh." for index in range(size)]
            assert wire.process is not None
            cpu_before = cpu_seconds(wire.process.pid)
            sent_at = time.monotonic()
            records = await asyncio.gather(
                *(wire.enhance(sketch, user=user) for sketch, user in zip(sketches, users, strict=True))
            )
            sending_took = time.monotonic() - sent_at
            every_record += records
            # Answered, or refused with 10062 as too late: a refused command is dropped by the bot.
            await wait_settled(records)
            answered = [record for record in records if record.answered]
            # Let the Humalike starts (after the answers) arrive too, for the split, and the
            # "pending" edits that follow them.
            expected_starts = sum(1 for record in every_record if record.answered)
            await wait_for(
                lambda expected_starts=expected_starts: len(wire.humalike.starts) >= expected_starts,
                FOLLOW_UP_WITHIN,
                every=0.05,
            )
            await wait_for(
                lambda answered=answered: all(
                    (reply := wire.reply(record)) is not None and reply.edits >= 1 for record in answered
                ),
                FOLLOW_UP_WITHIN,
                every=0.05,
            )
            cpu_per_command = 1000 * (cpu_seconds(wire.process.pid) - cpu_before) / size
            answers = [1000 * (record.callback_at - record.dispatched_at) for record in answered]  # type: ignore[operator]
            created = dict(
                await wire.rows(
                    f"SELECT sketch, created_at FROM jobs WHERE sketch IN ({','.join('?' * size)})", *sketches
                )
            )
            accepted = {
                start.body.get("persona"): wire.humalike.jobs[start.job_id].accepted_at
                for start in wire.humalike.starts
            }
            before_db, db_to_callback, callback_to_start = [], [], []
            for sketch, record in zip(sketches, records, strict=True):
                if not record.answered:
                    continue
                assert record.dispatched_at is not None and record.callback_at is not None
                row_mono = created[sketch] - wall_minus_mono
                before_db.append(1000 * (row_mono - record.dispatched_at))
                db_to_callback.append(1000 * (record.callback_at - row_mono))
                if sketch in accepted:
                    callback_to_start.append(1000 * (accepted[sketch] - record.callback_at))
            rows.append(
                {
                    "size": size,
                    "answer": summary(answers) if answers else None,
                    "refused": sum(1 for record in records if record.refused_at is not None),
                    "within": sum(1 for value in answers if value <= ANSWER_WINDOW_MS),
                    "before_db": summary(before_db) if before_db else None,
                    "db_to_callback": summary(db_to_callback) if db_to_callback else None,
                    "callback_to_start": summary(callback_to_start) if callback_to_start else None,
                    "spread": 1000 * (max(r.dispatched_at for r in records) - min(r.dispatched_at for r in records)),  # type: ignore[type-var, operator]
                    "sending": 1000 * sending_took,
                    "cpu_per_command": cpu_per_command,
                    "types": sorted({record.callback_type for record in records}),  # type: ignore[type-var]
                }
            )
            wire.standin.run_deferred_checks()
            await asyncio.sleep(1.0)  # let the bot settle between batches
        completeness = Completeness(
            len(every_record),
            {
                "answered": sum(1 for record in every_record if record.answered),
                "started": len(wire.humalike.starts),
                "recorded": await wire.scalar("SELECT COUNT(*) FROM jobs"),
            },
            wire.standin.late_callbacks_refused,
        )
        problems = wire.wire_problems()
    print(f"wire problems (schema failures, unserved routes): {len(problems)}", *problems[:10], sep="\n  ")
    return rows, completeness


def fmt(values: tuple[float, float, float, float] | None) -> str:
    if values is None:
        return "-"
    return " / ".join(f"{value:7.1f}" for value in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.interaction_answer", description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 500])
    parser.add_argument("--realistic-polls", action="store_true", help="poll jobs as the harness does (2.5 s, 1 s)")
    parser.add_argument("--profile", type=Path, help="run the bot under cProfile, writing its stats here")
    parser.add_argument(
        "--inline-checks",
        action="store_true",
        help="check each body against Discord's schema as it arrives (the stand-in's CPU then delays its stamps)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-interaction-") as scratch:
        profile = args.profile.absolute() if args.profile else None
        rows, completeness = asyncio.run(
            run(args.batches, args.realistic_polls, Path(scratch), profile, args.inline_checks)
        )
    checks = "as each arrives (--inline-checks)" if args.inline_checks else "after each batch"
    print(f"\nStand-in: every body checked against Discord's schema, {checks}")
    print("\n/enhance: INTERACTION_CREATE written to the gateway -> callback arriving at the stand-in (ms)")
    print(
        f"{'batch':>6} | {'p50 / p95 / p99 / max':^37} | {'<= 3 s':>8} | {'10062':>6} | {'dispatch spread':>15} | "
        "bot CPU a command | callback type"
    )
    print("-" * 119)
    for row in rows:
        within = f"{row['within']}/{row['size']}"
        print(
            f"{row['size']:>6} | {fmt(row['answer'])} | {within:>8} | {row['refused']:>6} | "  # type: ignore[arg-type]
            f"{row['spread']:>12.1f} ms | {row['cpu_per_command']:>12.2f} ms | {row['types']}"
        )
    print("\nWhere the time goes, p50 / p95 / p99 / max (ms)")
    print(
        f"{'batch':>6} | {'gateway -> job row':^37} | {'job row -> callback':^37} | {'callback -> Humalike start':^37}"
    )
    print("-" * 126)
    for row in rows:
        print(
            f"{row['size']:>6} | {fmt(row['before_db'])} | {fmt(row['db_to_callback'])} | "  # type: ignore[arg-type]
            f"{fmt(row['callback_to_start'])}"  # type: ignore[arg-type]
        )
    last = rows[-1]
    p99 = last["answer"][2] if last["answer"] is not None else float("nan")  # type: ignore[index]
    figure = f"p99 {p99:.1f} ms" + (f", {p99 - TARGET_P99_MS:.0f} ms over" if p99 >= TARGET_P99_MS else "")
    target = Target(f"answer p99 < {TARGET_P99_MS:.0f} ms at {last['size']}", p99 < TARGET_P99_MS, figure)
    print("\n" + verdict(completeness, [target]))


if __name__ == "__main__":
    main()
