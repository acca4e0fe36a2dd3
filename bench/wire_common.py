"""Shared helpers for the over-the-wire benchmarks (following, scale, faults).

Each benchmark runs the real bot (`python -m bot`, through tests/wire/run_bot.py) as its own
process with `WireHarness`, against the Discord stand-in and the fake Humalike on loopback,
both served from the benchmark's own process on the real monotonic clock.

Every wire benchmark ends with `verdict()`: its targets are judged only when every job went all
the way (and no answer was refused with 10062); otherwise the run is MISSED, whatever its figures.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.humalike import FakeHumalike, Fault, Script
from tests.wire.harness import WireHarness
from tests.wire.standin import InteractionRecord, MessageVersion, StandInChannel, StandInUser

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TOKEN_EDIT = "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
# The bot's own defaults (bot/settings.py): the harness's quick test settings are undone here.
BOT_DEFAULT_SETTINGS = {
    "POLL_FIRST_DELAY_SECONDS": "2",
    "POLL_INTERVAL_SECONDS": "1",
    "POLL_MAX_BACKOFF_SECONDS": "60",
    "HUMALIKE_TIMEOUT_SECONDS": "15",
    "MAX_JOBS_PER_USER": "3",
    "LOG_LEVEL": "INFO",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# How long a burst of commands may take to be answered (or refused) before the run goes on without them.
SETTLE_WITHIN = 120.0


@asynccontextmanager
async def bench_harness(
    settings: dict[str, str] | None = None,
    *,
    humalike: Any = None,
    prepare: Callable[[WireHarness], None] | None = None,
):
    """A WireHarness in a scratch directory with the bot's default settings (plus `settings`).

    `humalike` replaces the fake Humalike; `prepare(wire)` runs before anything is served.
    """
    with tempfile.TemporaryDirectory(prefix="wire-bench-") as scratch:
        wire = WireHarness(Path(scratch), settings={**BOT_DEFAULT_SETTINGS, **(settings or {})})
        # The stand-in shares the benchmark's one event loop: checking each body against the schema
        # as it arrives (about 2 ms of CPU a body) backs that loop up during a burst, and the backlog
        # counts against the bot's 3 s answer window. Every body is checked at the end instead
        # (`wire.wire_problems()`).
        wire.standin.defer_checks = True
        if humalike is not None:
            wire.humalike = humalike
        if prepare is not None:
            prepare(wire)
        async with wire:
            yield wire


def add_users(wire: WireHarness, count: int) -> list[StandInUser]:
    """Distinct members, so the per-user limit refuses nobody. Call before the bot starts."""
    return [wire.standin.add_member(wire.guild, f"member{index}") for index in range(count)]


def members_over_shards(
    wire: WireHarness, count: int, shards: int, servers_per_shard: int
) -> list[tuple[StandInUser, StandInChannel]]:
    """`count` members, evenly over `servers_per_shard` servers on each of `shards` shards, with the
    channel each is in. Sets the stand-in's shard count; call before the bot starts."""
    wire.standin.shard_count = shards
    channels = [
        wire.standin.add_channel(wire.standin.add_guild(f"Shard {shard} server {index}", shard=shard), "general")
        for index in range(servers_per_shard)
        for shard in range(shards)
    ]
    members = []
    for index in range(count):
        channel = channels[index % len(channels)]
        members.append((wire.standin.add_member(wire.standin.guilds[channel.guild_id], f"member{index}"), channel))
    return members


def sketch_for(index: int) -> str:
    """A unique sketch per job: the fake's start record maps back to the command by it."""
    return f"Sam number {index} is a 30-year-old support main. Friendly. Plays Thresh."


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


async def send_enhances(
    wire: WireHarness,
    users: Sequence[StandInUser],
    groundings: Sequence[str],
    *,
    spread_seconds: float = 0.0,
) -> list[InteractionRecord]:
    """Send one `/enhance` per user, evenly over `spread_seconds` (0: back to back)."""
    commands = []
    started = time.monotonic()
    count = len(users)
    for index, (user, grounding) in enumerate(zip(users, groundings, strict=True)):
        if spread_seconds > 0:
            due = started + spread_seconds * index / count
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        commands.append(await wire.enhance(sketch_for(index), user=user, grounding=grounding))
    return commands


def shown_state(version: MessageVersion) -> str:
    """What a member reads in one version of the reply, as a one-word state (plus any warning)."""
    if version.content.startswith("✅ Saved"):
        return "saved"
    text = version.text()
    extra = " (trouble)" if "isn't answering" in text else ""
    extra += " (late)" if "taking longer" in text else ""
    for word, state in (("**Queued**", "queued"), ("**Pending**", "pending"), ("**Running**", "running")):
        if word in text:
            return state + extra
    return "paused" if "**Paused**" in text else "failed"


def first_saved_at(wire: WireHarness, command: InteractionRecord) -> float | None:
    reply = wire.reply(command)
    if reply is None:
        return None
    return next((version.at for version in reply.versions if shown_state(version) == "saved"), None)


def job_for_sketch(wire: WireHarness) -> dict[str, list[str]]:
    """Sketch -> the fake's job ids started for it (more than one would be a double start)."""
    found: dict[str, list[str]] = {}
    for start in wire.humalike.starts:
        found.setdefault(start.body.get("persona", ""), []).append(start.job_id)
    return found


async def wait_for(condition: Callable[[], bool | Awaitable[bool]], within: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(every)
    return False


async def wait_settled(commands: Sequence[InteractionRecord], within: float = SETTLE_WITHIN) -> bool:
    """Wait until the bot has answered every command, or had its answer refused (10062) as too late."""
    return await wait_for(lambda: all(command.settled for command in commands), within, every=0.1)


def done_or_refused(wire: WireHarness, commands: Sequence[InteractionRecord]) -> bool:
    """Every command shows its saved persona, or was refused: nothing more will come of it."""
    return all(command.refused_at is not None or first_saved_at(wire, command) is not None for command in commands)


def in_flight_at_last_start(humalike: FakeHumalike) -> int:
    """Jobs running on the fake when its last start arrived (at most every job, if none ended before)."""
    if not humalike.jobs:
        return 0
    last = max(job.accepted_at for job in humalike.jobs.values())
    return sum(1 for job in humalike.jobs.values() if job.accepted_at <= last < job.ended_at)


class BenchHumalike(FakeHumalike):
    """The fake Humalike with a script per sketch, and optionally a random fault on some polls.

    `scripts[sketch]` decides how that job unfolds, whatever order the starts arrive in.
    `poll_fault()`, if set, is asked on every poll (after any queued fault) and may return one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[str, Script] = {}
        self.poll_fault: Callable[[], Fault | None] | None = None
        self.injected: dict[str, int] = {}
        # Job id -> when a poll first answered it ended (the fake's clock).
        self.seen_ended_at: dict[str, float] = {}

    def _poll_body(self, job: Any) -> dict[str, Any]:
        body = super()._poll_body(job)
        if body["status"] in ("succeeded", "failed"):
            self.seen_ended_at.setdefault(job.id, self.clock())
        return body

    def _accept(self, kind: Any, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        script = self.scripts.get(body.get("persona", ""))
        if script is not None:
            self._scripts[kind].appendleft(script)
        return super()._accept(kind, body, request_id)

    def _take_fault(self, where: str, target: str | None) -> Fault | None:
        fault = super()._take_fault(where, target)
        if fault is None and where == "poll" and self.poll_fault is not None:
            fault = self.poll_fault()
            if fault is not None:
                label = fault.kind if fault.kind != "status" else str(fault.status)
                self.injected[label] = self.injected.get(label, 0) + 1
        return fault


# The verdict -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One figure a benchmark is held to: the promise, whether this run kept it, and the figure."""

    promise: str  # "peak RSS < 150 MB"
    met: bool
    figure: str  # "113 MB"


@dataclass(frozen=True)
class Completeness:
    """How many of a run's `jobs` reached each stage (in order: "started", "finished", "saved"),
    and how many interactions the stand-in refused with 10062 because the answer came too late."""

    jobs: int
    reached: dict[str, int]
    refused: int

    @property
    def complete(self) -> bool:
        return self.refused == 0 and all(count == self.jobs for count in self.reached.values())

    def describe(self) -> str:
        """As "N of M started, K finished, S saved, R refused with 10062"."""
        stages = [
            f"{count} of {self.jobs} {stage}" if index == 0 else f"{count} {stage}"
            for index, (stage, count) in enumerate(self.reached.items())
        ]
        return ", ".join([*stages, f"{self.refused} refused with 10062"])


def verdict(completeness: Completeness, targets: Sequence[Target]) -> str:
    """The one verdict rule of every wire benchmark: targets are judged only on a complete run.

    A run where a job did not start, finish or get saved, or an answer was refused as too late,
    measured less work than it claims: its figures are shown, but it is MISSED, whatever they say.
    """
    if not completeness.complete:
        lines = [f"Verdict: MISSED (incomplete run: {completeness.describe()})"]
        lines += [f"- {target.promise}: not judged ({target.figure})" for target in targets]
        return "\n".join(lines)
    missed = [target for target in targets if not target.met]
    overall = "met" if not missed else f"missed ({len(missed)} of {len(targets)} targets)"
    lines = [f"Verdict: {overall} (complete run: {completeness.describe()})"]
    lines += [f"- {target.promise}: {'met' if target.met else 'missed'} ({target.figure})" for target in targets]
    return "\n".join(lines)


async def enhance_completeness(wire: WireHarness, commands: Sequence[InteractionRecord]) -> Completeness:
    """For N `/enhance` commands of `send_enhances`: started on Humalike, card shown, persona saved."""
    started = job_for_sketch(wire)
    saved = {sketch for (sketch,) in await wire.rows("SELECT DISTINCT sketch FROM personas")}
    sketches = [sketch_for(index) for index in range(len(commands))]
    return Completeness(
        jobs=len(commands),
        reached={
            "started": sum(1 for sketch in sketches if sketch in started),
            "finished": sum(1 for command in commands if first_saved_at(wire, command) is not None),
            "saved": sum(1 for sketch in sketches if sketch in saved),
        },
        refused=wire.standin.late_callbacks_refused,
    )


# Figures ---------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values) if values else float("nan"),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values) if values else float("nan"),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (prints readably in a terminal too)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


# The bot's process -----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu_seconds() -> float:
    """CPU (user + system) used so far by every PostgreSQL server process on this machine."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)
            if "(postgres" not in fields[0]:
                continue
            values = fields[1].split()
            ticks += int(values[11]) + int(values[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in kB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0])
    return found


@dataclass
class CpuMark:
    at: float
    cpu: float


def cpu_mark(pid: int) -> CpuMark:
    return CpuMark(time.monotonic(), cpu_seconds(pid))


def cores_between(start: CpuMark, end: CpuMark) -> float:
    """Average cores used between two marks (1.0 = one core busy the whole time)."""
    return (end.cpu - start.cpu) / max(1e-9, end.at - start.at)


# RESULTS.md ------------------------------------------------------------------------------------


def machine() -> str:
    def run(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"- `nproc`: {run(['nproc'])}\n- CPU: {cpu}\n- `python3 --version`: {run(['python3', '--version'])}\n"
        f"- `free -h`:\n\n```text\n{run(['free', '-h'])}\n```\n"
    )


def print_and_record(text: str, *, heading: str, record: bool) -> None:
    """Print a run's figures; with `--record`, also append them to bench/RESULTS.md under `heading`."""
    print(text)
    if record:
        append_results(f"### {heading}\n\n{text}")


def append_results(section: str) -> None:
    """Append a section to bench/RESULTS.md, creating it (heading and machine) if absent."""
    if not RESULTS.exists():
        RESULTS.write_text(f"# Benchmark results\n\nMachine:\n\n{machine()}\n", encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as results:
        results.write("\n" + section.rstrip() + "\n")
