"""What a game-night turn costs before the model is called: choosing who speaks, then building the prompt.

One channel in `always` mode with four personas (talkativeness 20 to 80). Each measured turn is
what `RoleplayService` does for a member's message addressed to nobody, with the bot's own code:
- choose: `addressed` draws one persona by talkativeness and recent lines (bot/roleplay/choosing.py);
- build: the card's lore in force for the last lines of the conversation (a 200-entry lorebook,
  bot/roleplay/characters.py, compiled once per persona as the service keeps it), then
  `build_messages` with the scene, the recap, the lore, the examples and the post-history
  instructions over 30 messages of history.

The conversation moves on by one line each turn, its words drawn from the lorebook's keys and
filler, so the lore selected changes from turn to turn as it does at a table. A turn counts as
complete only when a persona was chosen and its prompt holds the scene, the recap and the
history; otherwise the run is MISSED, whatever the timings say.

    python -m bench.prompt [--turns 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass

from bot.roleplay.addressing import ActivePersona, addressed
from bot.roleplay.characters import Characters
from bot.roleplay.history import ChannelLine, SettingNote, Stage, build_messages
from bot.roleplay.transcript import Transcripts
from bot.settings import Settings
from storage.models import Persona

TARGET_P99_MS = 2.0
HISTORY_MESSAGES = 30
LORE_ENTRIES = 200
CHANNEL = 1
WARM_UP_TURNS = 200
NAMES = ("Seraphina", "Borin Ironhand", "Mira Vance", "Kai Tanaka")
TALKATIVENESS = (80, 50, 35, 20)
MEMBERS = ("alice", "bob", "carol", "dave", "erin")
FILLER = (
    "we should", "head north", "before dark", "the road", "looks quiet", "I think", "someone is", "watching us",
    "pass the", "bread", "did you hear", "that noise", "keep moving", "my feet hurt", "how far", "is it now",
)  # fmt: skip
SCENE = (
    "The Rusty Anchor, a smoky harbour tavern at midnight. Rain hammers the shutters; the night ferry has just "
    "come in. Present: the party (Alice the ranger, Bob the bard, Carol the cleric), Seraphina behind the bar, "
    "Borin at the dice table, Mira by the door and Kai asleep in the corner. A hooded stranger has asked for a map "
    "of the old mine, and three of the harbour watch are drinking without paying. "
) * 3
RECAP = (
    "Previously: the party crossed the Glassfen marsh, lost a mule to the bog, and found a torn map fragment "
    "pointing at the old Ironhand mine. Borin recognised his grandfather's mark on it and swore to come along; "
    "Mira warned them the harbour watch is looking for whoever robbed the customs house. "
) * 4


def lorebook(rng: random.Random) -> dict[str, object]:
    """A 200-entry character_book as the V2 spec writes one: 5 constant, 20 selective, 5 disabled."""
    entries = []
    for index in range(LORE_ENTRIES):
        keys = [f"lorekey{index}", f"place {index}"]
        entry: dict[str, object] = {
            "keys": keys,
            "content": f"Lore {index}: " + " ".join(rng.choice(FILLER) for _ in range(rng.randint(12, 40))) + ".",
            "extensions": {},
            "enabled": index % 40 != 39,
            "insertion_order": rng.randint(0, 100),
            "constant": index < 5,
            "case_sensitive": index % 17 == 0,
            "selective": 5 <= index < 25,
            "secondary_keys": ["tonight", "the mine"] if 5 <= index < 25 else [],
            "priority": rng.randint(0, 10),
            "id": index,
        }
        entries.append(entry)
    return {"name": "Harbour lore", "scan_depth": 4, "token_budget": 2048, "recursive_scanning": False,
            "extensions": {}, "entries": entries}  # fmt: skip


def card(rng: random.Random, name: str) -> dict[str, object]:
    return {
        "name": name,
        "description": "{{char}} is a regular of the Rusty Anchor. " * 10,
        "personality": "warm, wary",
        "scenario": "A harbour tavern.",
        "first_mes": "*{{char}} looks up.* Evening, {{user}}.",
        "mes_example": "<START>\n{{user}}: Hello.\n{{char}}: *nods* Evening.\n<START>\n{{user}}: Ale?\n{{char}}: Aye.",
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "Stay in character as {{char}}; never speak for {{user}}.",
        "alternate_greetings": [],
        "character_book": lorebook(rng),
        "tags": [],
        "creator": "bench",
        "character_version": "1",
        "extensions": {},
    }


def persona(rng: random.Random, index: int) -> Persona:
    name = NAMES[index]
    return Persona(
        id=index + 1,
        guild_id=1,
        name=name,
        creator_id=1,
        enhancement_id=None,
        humalike_persona_id=None,
        fields={},
        system_prompt=f"You are {name}, a regular of the Rusty Anchor. " * 40,
        markdown="",
        sketch="",
        grounding="off",
        created_at=0.0,
        updated_at=0.0,
        talkativeness=TALKATIVENESS[index],
        card_data=card(rng, name),
    )


def member_line(rng: random.Random) -> ChannelLine:
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
    if rng.random() < 0.5:  # a lorebook key said now and then: entries come into view and leave it
        words.insert(rng.randrange(len(words)), f"lorekey{rng.randrange(LORE_ENTRIES)}")
    if rng.random() < 0.2:
        words.append("tonight")
    return ChannelLine(author_name=rng.choice(MEMBERS), content=" ".join(words), persona_id=None, author_id=1)


@dataclass
class Turns:
    asked: int = 0
    chosen: int = 0
    built: int = 0  # chosen, and the prompt holds the scene, the recap, lore and the history


def run(turns: int, seed: int) -> tuple[list[float], list[float], list[float], Turns, float]:
    rng = random.Random(seed)
    draw = random.Random(seed + 1)
    defaults = {name: field.default for name, field in Settings.model_fields.items()}  # what a server runs with
    personas = {p.id: p for p in (persona(rng, index) for index in range(len(NAMES)))}
    active = [ActivePersona(p.id, p.name, "always", 0.0, p.talkativeness) for p in personas.values()]
    characters = Characters(lore_chars=defaults["roleplay_lore_chars"])
    started = time.perf_counter()
    for each in personas.values():
        characters.of(each)  # compiled once per persona when it joins, as the service keeps it
    compile_ms = 1000 * (time.perf_counter() - started) / len(personas)
    transcripts = Transcripts()
    for at in range(HISTORY_MESSAGES):
        transcripts.add(CHANNEL, member_line(rng), at=float(at))
    setting = SettingNote(guild_name="Game night", channel_name="tavern", other_personas=list(NAMES[1:]))
    choose_ms, build_ms, total_ms = [], [], []
    counted = Turns()
    for turn in range(WARM_UP_TURNS + turns):
        message = member_line(rng)
        transcripts.add(CHANNEL, message, at=float(HISTORY_MESSAGES + turn))
        started = time.perf_counter()
        chosen = addressed(
            text=message.content,
            active=active,
            reply_to_persona=None,
            mentions_bot=False,
            last_speaker=None,
            recent_speakers=transcripts.recent_speakers(CHANNEL, 6),
            rng=draw,
        )
        picked = time.perf_counter()
        prompt: list[dict[str, str]] = []
        if chosen:
            speaker = personas[chosen[0]]
            lines = transcripts.since(CHANNEL, 0.0)
            card_stage = characters.stage(speaker, lines, starter="alice")
            stage = Stage(
                scene=SCENE,
                recap=RECAP,
                lore=card_stage.lore,
                examples=card_stage.examples,
                after_history=card_stage.after_history,
            )
            prompt = build_messages(
                persona_id=speaker.id,
                persona_name=speaker.name,
                system_prompt=speaker.system_prompt,
                setting=setting,
                lines=lines,
                max_messages=defaults["roleplay_history_messages"],
                max_chars=defaults["roleplay_history_chars"],
                max_prompt_chars=defaults["roleplay_system_prompt_chars"],
                stage=stage,
            )
        done = time.perf_counter()
        # The persona's line goes into the channel, so recent speakers (and the draw) move on.
        if chosen:
            spoken = ChannelLine(
                author_name=personas[chosen[0]].name, content="Aye.", persona_id=chosen[0], author_id=0
            )
            transcripts.add(CHANNEL, spoken, at=HISTORY_MESSAGES + turn + 0.5)
        if turn < WARM_UP_TURNS:
            continue
        counted.asked += 1
        counted.chosen += bool(chosen)
        system = prompt[0]["content"] if prompt else ""
        answered = bool(prompt) and message.content in prompt[-1]["content"]  # the line it answers is the last
        if chosen and SCENE.strip() in system and RECAP.strip() in system and "Lore 0:" in system and answered:
            counted.built += 1
        choose_ms.append(1000 * (picked - started))
        build_ms.append(1000 * (done - picked))
        total_ms.append(1000 * (done - started))
    return choose_ms, build_ms, total_ms, counted, compile_ms


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    choose_ms, build_ms, total_ms, counted, compile_ms = run(args.turns, args.seed)
    print(
        f"{len(NAMES)} always personas, {LORE_ENTRIES}-entry lorebook, {HISTORY_MESSAGES} messages of history, "
        f"scene {len(SCENE):,} and recap {len(RECAP):,} characters; {args.turns:,} turns after {WARM_UP_TURNS} warm-up"
    )
    print(f"compiling one persona's card (once, when it joins): {compile_ms:.2f} ms")
    print(f"{'step':<28}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, values in (("choose the speaker", choose_ms), ("build the prompt", build_ms), ("both", total_ms)):
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"{label:<28}{p50:>10.3f}{p99:>10.3f}{max(values):>10.3f}")
    complete = counted.chosen == counted.asked and counted.built == counted.asked
    p99 = percentile(total_ms, 0.99)
    run_line = f"{counted.asked} turns asked, {counted.chosen} chose a speaker, {counted.built} built a whole prompt"
    if not complete:
        print(f"Verdict: MISSED (incomplete run: {run_line})")
    elif p99 < TARGET_P99_MS:
        print(f"Verdict: met (complete run: {run_line}); p99 {p99:.3f} ms < {TARGET_P99_MS} ms")
    else:
        print(f"Verdict: missed (complete run: {run_line}); p99 {p99:.3f} ms >= {TARGET_P99_MS} ms")


if __name__ == "__main__":
    main()
