"""How much time the real bot adds between a member's message and a persona's first words.

Starts the wire harness (the bot as its own process, the Discord stand-in, fake Humalike and chat
model on loopback), saves a persona through `/enhance`, starts it with `/roleplay as ... mode:always`,
then sends N member messages one after another (each once the previous reply is final). The chat
model is scripted with a fixed time to first token and a fixed delay between chunks. For each
message it reports:

  (a) before the model: the MESSAGE_CREATE written to the gateway -> the chat request arriving at the model
  (b) after the first token: the model sending its first token -> the webhook POST with the first words
  (c) added: (first words at the stand-in - message dispatch) - the scripted first_token_delay
  (d) edits: the most edits in any one-second window of a message, and the shortest gap between versions

    python -m bench.roleplay_latency [--messages 20] [--first-token-delay 0.2] [--chunk-delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.wire_common import Completeness, Target, verdict
from tests.fakes.chat_model import RecordedChat
from tests.wire.harness import WireHarness

WEBHOOK_POST = "/webhooks/{webhook_id}/{webhook_token}"
PERSONA = "Sam Okafor"
SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."
TARGET_ADDED_P50_MS = 50.0
# A reply of about 2 s of streaming at the default chunk delay: long enough to be edited.
REPLY = (
    "Thresh is all about patience, friend. Hold the hook until they blink, then lantern your carry out of "
    "trouble. Most supports throw the hook the moment they see a target; wait for the flash, wait for the "
    "dash, and only then commit. Ward the river brush before you even think about it, and ping twice."
)


class StampedRequests(list[RecordedChat]):
    """The fake's request log, stamped with when each request arrived (time.monotonic())."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    def append(self, record: RecordedChat) -> None:
        self.arrived.append(time.monotonic())
        super().append(record)


class StampedSleep:
    """The fake's sleep, stamped: (seconds asked for, when it started, when it ended)."""

    def __init__(self) -> None:
        self.sleeps: list[tuple[float, float, float]] = []

    async def __call__(self, seconds: float) -> None:
        started = time.monotonic()
        await asyncio.sleep(seconds)
        self.sleeps.append((seconds, started, time.monotonic()))

    def first_after(self, at: float) -> float:
        """When the first sleep that started after `at` ended: the model's first token going out."""
        return min(ended for _, started, ended in self.sleeps if started >= at)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def max_edits_in_a_second(versions: list[float]) -> int:
    """The most edits (versions after the first) that fall within any one-second window."""
    edits = versions[1:]
    best = 0
    for index, start in enumerate(edits):
        best = max(best, sum(1 for at in edits[index:] if at - start < 1.0))
    return best


async def start_persona(wire: WireHarness) -> None:
    """Save a persona through /enhance, then start it speaking in always mode (its greeting answered)."""
    command = await wire.enhance(SKETCH)
    await wire.eventually(
        lambda: bool((reply := wire.reply(command)) and reply.embed and reply.embed.get("title") == PERSONA),
        "the persona card",
    )
    wire.chat.script_reply("Hey all, Sam here.")  # the greeting
    started = await wire.standin.send_command(
        "roleplay as", {"persona": PERSONA, "mode": "always"}, user=wire.moderator, channel=wire.channel
    )
    await wire.eventually(lambda: started.answered, "the /roleplay as callback")
    await wire.eventually(lambda: len(wire.chat.requests) == 1 and wire.chat.requests[0].status == 200, "greeting")
    await wire.eventually(lambda: persona_messages(wire) != [], "the greeting in the channel")


def persona_messages(wire: WireHarness) -> list[Any]:
    return [m for m in wire.standin.channel_messages(wire.channel) if m.webhook_id is not None and not m.interaction_id]


async def run(messages: int, first_token_delay: float, chunk_delay: float, workdir: Path) -> dict[str, Any]:
    settings = {"POLL_FIRST_DELAY_SECONDS": "0.5", "POLL_INTERVAL_SECONDS": "0.5"}
    harness = WireHarness(workdir, settings=settings)
    # The stand-in shares this process's event loop: checking each body (about 2 ms of CPU) as it
    # arrives would delay the very stamps measured here. Every body is checked between messages.
    harness.standin.defer_checks = True
    async with harness as wire:
        wire.humalike.script_enhancement(pending_for=0.1, running_for=0.2)
        requests = StampedRequests()
        wire.chat.requests = requests
        sleeper = StampedSleep()
        wire.chat.sleep = sleeper
        await start_persona(wire)
        before, after, added, totals, bursts, gaps = [], [], [], [], [], []
        asked_total = answered = 0
        for index in range(messages):
            wire.chat.script_reply(REPLY, chunk_size=8, first_token_delay=first_token_delay, chunk_delay=chunk_delay)
            seen = len(persona_messages(wire))
            posts_before = len(wire.standin.calls_to("POST", WEBHOOK_POST))
            asked = len(wire.chat.requests)
            await wire.standin.send_member_message(
                f"Sam, tip number {index + 1}?", user=wire.alice, channel=wire.channel
            )
            dispatched = time.monotonic()  # the MESSAGE_CREATE frame has been written to the bot's socket
            try:
                await wire.eventually(
                    lambda seen=seen: (
                        len(persona_messages(wire)) > seen and persona_messages(wire)[-1].content == REPLY
                    ),
                    f"reply {index + 1}",
                )
                await wire.eventually(
                    lambda asked=asked: wire.chat.requests[asked].status == 200, "the stream to end", within=5
                )
            except AssertionError as error:  # no whole reply: the run is incomplete, and says so
                print(f"reply {index + 1} never completed: {str(error).splitlines()[0]}")
                if len(wire.chat.requests) > asked:
                    asked_total += 1
                break
            asked_total += 1
            answered += 1
            request_at = requests.arrived[asked]
            first_token_at = sleeper.first_after(request_at)
            first_post = wire.standin.calls_to("POST", WEBHOOK_POST)[posts_before]
            message = persona_messages(wire)[-1]
            before.append(1000 * (request_at - dispatched))
            after.append(1000 * (first_post.at - first_token_at))
            totals.append(1000 * (first_post.at - dispatched))
            added.append(1000 * (first_post.at - dispatched - first_token_delay))
            versions = [version.at for version in message.versions]
            bursts.append(max_edits_in_a_second(versions))
            gaps.extend(later - earlier for earlier, later in itertools.pairwise(versions))
            wire.standin.run_deferred_checks()  # while nothing is measured
            await asyncio.sleep(0.3)  # a member reads, then types the next message
        problems = wire.wire_problems()
        refused = wire.standin.late_callbacks_refused
        typing = len(wire.standin.typing)
        versions_per_message = [len(m.versions) for m in persona_messages(wire)[1:]]
    return {
        "before": before,
        "after": after,
        "added": added,
        "totals": totals,
        "bursts": bursts,
        "gaps": gaps,
        "problems": problems,
        "typing": typing,
        "versions": versions_per_message,
        "completeness": Completeness(messages, {"sent to the model": asked_total, "answered": answered}, refused),
    }


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:<44} | {statistics.median(values):8.1f} | {percentile(values, 0.99):8.1f} | "
        f"{min(values):8.1f} | {max(values):8.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.roleplay_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--first-token-delay", type=float, default=0.2)
    parser.add_argument("--chunk-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-roleplay-") as scratch:
        result = asyncio.run(run(args.messages, args.first_token_delay, args.chunk_delay, Path(scratch)))
    print(
        f"\nRoleplay, {args.messages} member messages one after another; model: first token after "
        f"{args.first_token_delay * 1000:.0f} ms, then 8-character chunks every {args.chunk_delay * 1000:.0f} ms "
        f"({len(REPLY)} characters)"
    )
    completeness = result["completeness"]
    if not result["added"]:
        print(verdict(completeness, []))
        return
    print(f"{'ms':<44} | {'p50':>8} | {'p99':>8} | {'min':>8} | {'max':>8}")
    print("-" * 90)
    print(line("(a) message dispatched -> request at model", result["before"]))
    print(line("(b) model's first token -> first webhook POST", result["after"]))
    print(line("(c) added = first words - dispatch - TTFT", result["added"]))
    print(line("    first words - dispatch (incl. TTFT)", result["totals"]))
    gaps = result["gaps"] or [float("inf")]
    print(
        f"\n(d) edits: at most {max(result['bursts'])} edit(s) in any one-second window of a message; "
        f"shortest gap between versions {min(gaps) * 1000:.0f} ms; versions per message "
        f"{min(result['versions'])}-{max(result['versions'])}"
    )
    print(
        f"typing indicators sent: {result['typing']}; answers refused with 10062: {completeness.refused}; "
        f"wire problems: {len(result['problems'])}"
    )
    for problem in result["problems"][:10]:
        print("  ", problem)
    p50 = statistics.median(result["added"])
    targets = [
        Target(f"added p50 < {TARGET_ADDED_P50_MS:.0f} ms", p50 < TARGET_ADDED_P50_MS, f"p50 {p50:.1f} ms"),
        Target(
            "<= 1 edit a second",
            max(result["bursts"]) <= 1 and min(gaps) >= 1.0,
            f"at most {max(result['bursts'])} in a second, shortest gap {min(gaps) * 1000:.0f} ms",
        ),
    ]
    print("\n" + verdict(completeness, targets))


if __name__ == "__main__":
    main()
