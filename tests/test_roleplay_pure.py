"""The pure parts of /roleplay: webhook names, message splitting, the model's history, who answers, streaming."""

from __future__ import annotations

import itertools
import random
import unicodedata
from dataclasses import replace

import pytest

from bot.discord_limits import MESSAGE_CONTENT as MESSAGE_LIMIT
from bot.discord_limits import WEBHOOK_USERNAME as WEBHOOK_USERNAME_LIMIT
from bot.roleplay.addressing import ActivePersona, addressed, personas_named
from bot.roleplay.history import ChannelLine, SettingNote, Stage, build_messages, system_message
from bot.roleplay.names import FALLBACK_USERNAME, webhook_username
from bot.roleplay.splitting import cut_point, split_message
from bot.roleplay.streaming import StreamPublisher
from storage.models import MAX_NAME_LENGTH


def non_whitespace(text: str) -> str:
    return "".join(text.split())


# --- names: webhook usernames -------------------------------------------------------------------


def folded(text: str) -> str:
    """How a strict check might read a name: compatibility-normalised, any case."""
    return unicodedata.normalize("NFKC", text).casefold()


TRICKY_NAMES = [
    "ClydeDiscordclyde",
    "dis cord",
    "discordiscord",
    "clydeclyde",
    "DISCORD CLYDE discord clyde",
    "ＤＩＳＣＯＲＤ and ｃｌｙｄｅ",
    "Zoë Ørsted 🐉 of Discord",
    "Disc\x00ord",
    "x" * 200,
    "word " * 40,
    "a" * 79 + " discord",
    "discord" * 30,
    "     ",
    "",
    "\n\t \u3000",
    "everyone",
    "HERE",
    "   here   ",
]


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_a_webhook_username_is_1_to_80_characters_without_a_forbidden_word(name: str) -> None:
    username = webhook_username(name)
    assert 1 <= len(username) <= WEBHOOK_USERNAME_LIMIT
    assert "discord" not in folded(username)
    assert "clyde" not in folded(username)
    assert folded(username) not in {"everyone", "here"}
    assert username == username.strip()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Discord", "Disc0rd"),
        ("CLYDE", "CLYD3"),
        ("dIsCoRd", "dIsC0Rd"),
        ("ClydeDiscordclyde", "Clyd3Disc0rdclyd3"),
        ("discordiscord", "disc0rdisc0rd"),
        ("Captain Discordia", "Captain Disc0rdia"),
    ],
)
def test_a_forbidden_word_gets_a_digit_for_one_letter_and_keeps_its_case(name: str, expected: str) -> None:
    assert webhook_username(name) == expected


@pytest.mark.parametrize(
    "name", ["Sam Okafor", "dis cord", "Clyd e", "Zoë Ørsted 🐉", "everyone's friend", "here we go"]
)
def test_a_name_that_is_already_allowed_is_kept_as_it_is(name: str) -> None:
    assert webhook_username(name) == name


def test_everyone_and_here_alone_get_a_digit_too() -> None:
    assert webhook_username("everyone") == "every0ne"
    assert webhook_username(" Here ") == "H3re"


def test_whitespace_is_collapsed_and_stripped() -> None:
    assert webhook_username("  Sam \n  Okafor\t") == "Sam Okafor"


@pytest.mark.parametrize("name", ["", "   ", "\n\t"])
def test_an_empty_name_falls_back_to_persona(name: str) -> None:
    assert webhook_username(name) == FALLBACK_USERNAME


def test_a_long_name_is_cut_at_a_word_boundary() -> None:
    words = [f"word{number}" for number in range(40)]
    username = webhook_username(" ".join(words))
    assert len(username) <= WEBHOOK_USERNAME_LIMIT
    assert username.split() == words[: len(username.split())]


def test_a_long_single_word_is_cut_at_80_characters() -> None:
    assert webhook_username("x" * 200) == "x" * 80


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Disc\u200bord", "Disc0rd"),
        ("Cly\u2060de", "Clyd3"),
        ("\u202eDiscord\u202c", "Disc0rd"),
        ("Disc\u0301ord", "Disc\u03010rd"),
        ("every\u200bone", "every0ne"),
        ("\u3164here\u3164", "h3re"),
    ],
    ids=["zero-width-space", "word-joiner", "bidi-override", "combining-mark", "zero-width-everyone", "filled-here"],
)
def test_invisible_characters_cannot_hide_a_forbidden_word(name: str, expected: str) -> None:
    assert webhook_username(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dis\u0441ord", "Dis\u04410rd"),  # Cyrillic es
        ("Disc\u043erd", "Disc0rd"),  # Cyrillic o: it is the letter swapped
        ("D\u0406SCORD", "D\u0406SC0RD"),  # Cyrillic capital i
        ("\u0421\u04c0\u04ae\u0500\u0415", "\u0421\u04c0\u04ae\u05003"),  # Cyrillic CLYDE
        ("\u0395veryone", "\u0395very0ne"),  # Greek capital epsilon
        ("\u0397\u0435re", "\u03973re"),  # Greek capital eta, Cyrillic e
    ],
    ids=["cyrillic-es", "cyrillic-o", "cyrillic-capital-i", "cyrillic-clyde", "greek-everyone", "greek-here"],
)
def test_a_look_alike_of_a_forbidden_word_from_another_script_is_altered_visibly(name: str, expected: str) -> None:
    assert webhook_username(name) == expected


@pytest.mark.parametrize("name", ["Дмитрий Соколов", "Σοφία Οικονόμου", "Ηλίας", "Cyrano"])
def test_names_in_other_scripts_that_spell_no_forbidden_word_are_kept(name: str) -> None:
    assert webhook_username(name) == name


@pytest.mark.parametrize("name", ["\u3164", "\u200b\u200b", "\u202e", "\u2800"])
def test_a_name_with_nothing_visible_speaks_as_persona(name: str) -> None:
    assert webhook_username(name) == FALLBACK_USERNAME


# --- splitting: Discord's 2000 characters ------------------------------------------------------


def test_a_text_within_the_limit_is_one_stripped_part() -> None:
    assert split_message("  Hello there.  \n") == ["Hello there."]
    assert split_message("x" * MESSAGE_LIMIT) == ["x" * MESSAGE_LIMIT]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t "])
def test_a_blank_text_gives_no_parts(text: str) -> None:
    assert split_message(text) == []


def test_a_paragraph_break_wins_over_a_later_line_break() -> None:
    text = "a" * 60 + "\n\n" + "b" * 20 + "\n" + "c" * 10 + ". " + "d" * 50
    assert cut_point(text, 100) == 60


def test_a_line_break_wins_over_a_later_sentence_end() -> None:
    text = "a" * 60 + "\n" + "b" * 20 + ". " + "c" * 50
    assert cut_point(text, 100) == 60


def test_a_sentence_end_wins_over_a_later_space_and_keeps_its_punctuation() -> None:
    text = "a" * 60 + "! " + "b" * 20 + " " + "c" * 50
    assert text[: cut_point(text, 100)] == "a" * 60 + "!"


@pytest.mark.parametrize("ending", ["?", "…", '."', "!)", "...", "。"])
def test_other_sentence_ends_count_too(ending: str) -> None:
    text = "a" * 60 + ending + " " + "b" * 20 + " " + "c" * 50
    assert text[: cut_point(text, 100)] == "a" * 60 + ending


def test_a_space_wins_over_a_hard_cut() -> None:
    text = "a" * 60 + " " + "b" * 60
    assert cut_point(text, 100) == 60


def test_a_single_giant_word_is_cut_hard_at_the_limit() -> None:
    assert cut_point("x" * 250, 100) == 100
    assert split_message("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_an_early_paragraph_break_gives_way_to_a_fuller_first_part() -> None:
    # Cutting after "Hi!" would make a tiny message and the reply one message longer.
    text = "Hi!\n\n" + "Some sentence here. " * 8
    cut = cut_point(text, 100)
    assert 50 <= cut <= 100
    assert text[:cut].endswith(".")


def test_an_early_space_still_beats_splitting_a_long_word() -> None:
    text = "See https://example.com/" + "x" * 200
    assert text[: cut_point(text, 100)] == "See"


def test_leading_whitespace_never_makes_an_empty_first_part() -> None:
    text = "\n\n" + "word " * 40
    cut = cut_point(text, 100)
    assert 0 < cut <= 100
    assert text[:cut].strip()


def random_text(rng: random.Random, length: int) -> str:
    pieces = ["word", "sentence.", "Why?", "Wow!", "\n", "\n\n", "x" * 150, "…", "é", "🐉", "  "]
    text = ""
    while len(text) < length:
        text += rng.choice(pieces) + rng.choice([" ", "", " ", "\n"])
    return text


@pytest.mark.parametrize("seed", range(40))
def test_every_part_fits_and_together_they_keep_all_the_text_in_order(seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([20, 100, 500, MESSAGE_LIMIT])
    text = random_text(rng, rng.randint(0, 6000))
    parts = split_message(text, limit)
    assert all(1 <= len(part) <= limit and part == part.strip() for part in parts)
    assert non_whitespace("".join(parts)) == non_whitespace(text)
    cut = cut_point(text, limit)
    assert (0 < cut <= limit) if len(text) > limit else cut == len(text)


# --- history: what the model sees --------------------------------------------------------------

SAM, MIRA = 1, 2
SETTING = SettingNote(guild_name="Game Night", channel_name="tavern", other_personas=["Mira Chen"])


def member(name: str, content: str, author_id: int = 100) -> ChannelLine:
    return ChannelLine(author_name=name, content=content, persona_id=None, author_id=author_id)


def persona_line(persona_id: int, name: str, content: str) -> ChannelLine:
    return ChannelLine(author_name=name, content=content, persona_id=persona_id, author_id=999)


def history(lines: list[ChannelLine], *, max_messages: int = 50, max_chars: int = 10_000) -> list[dict[str, str]]:
    return build_messages(
        persona_id=SAM,
        persona_name="Sam Okafor",
        system_prompt="You are Sam Okafor, a cheerful support main.",
        setting=SETTING,
        lines=lines,
        max_messages=max_messages,
        max_chars=max_chars,
    )


def test_the_system_message_is_the_prompt_then_a_note_on_the_setting() -> None:
    system = history([member("Alex", "hi")])[0]
    assert system["role"] == "system"
    content = system["content"]
    assert content.startswith("You are Sam Okafor, a cheerful support main.\n\n")
    for needed in ("Discord", "#tavern", "Game Night", "Mira Chen", "Reply as Sam Okafor", "@"):
        assert needed in content


def test_the_note_names_no_other_characters_when_there_are_none() -> None:
    alone = SettingNote(guild_name="G", channel_name="c", other_personas=[])
    assert "Other characters" not in system_message("Sam", "You are Sam.", alone)


def test_a_long_system_prompt_is_cut_to_its_start_and_the_note_still_follows() -> None:
    prompt = "You are Sam Okafor. " + "Lore. " * 10_000

    [system] = build_messages(
        persona_id=SAM,
        persona_name="Sam Okafor",
        system_prompt=prompt,
        setting=SETTING,
        lines=[],
        max_messages=50,
        max_chars=10_000,
        max_prompt_chars=24_000,
    )

    shown, note = system["content"].split("\n\n", 1)
    assert len(shown) == 24_000
    assert shown.startswith("You are Sam Okafor. Lore.") and shown.endswith("…")
    assert "Reply as Sam Okafor" in note


def test_a_system_prompt_within_the_bound_is_sent_whole() -> None:
    content = system_message("Sam", "You are Sam.", SETTING, max_prompt_chars=12)

    assert content.startswith("You are Sam.\n\n")


def test_own_lines_are_assistant_turns_and_everyone_elses_are_labelled_user_turns() -> None:
    messages = history(
        [
            member("Alex", "Sam, who do you main?"),
            persona_line(SAM, "Sam Okafor", "Thresh, always."),
            persona_line(MIRA, "Mira Chen", "Lantern enjoyer."),
            member("Bea", "lol"),
        ]
    )
    assert messages[1:] == [
        {"role": "user", "content": "Alex: Sam, who do you main?"},
        {"role": "assistant", "content": "Thresh, always."},
        {"role": "user", "content": "Mira Chen: Lantern enjoyer.\nBea: lol"},
    ]


def test_roles_alternate_and_end_with_the_user_when_a_member_spoke_last() -> None:
    lines = [
        member("Alex", "one"),
        member("Bea", "two"),
        persona_line(SAM, "Sam Okafor", "three"),
        persona_line(MIRA, "Mira Chen", "four"),
        member("Alex", "five"),
        member("Alex", "six"),
    ]
    roles = [message["role"] for message in history(lines)[1:]]
    assert roles == ["user", "assistant", "user"]
    assert history(lines)[-1]["content"] == "Mira Chen: four\nAlex: five\nAlex: six"


def test_a_history_opening_with_the_persona_gets_a_user_turn_first() -> None:
    messages = history([persona_line(SAM, "Sam Okafor", "Hey all!"), member("Alex", "hi Sam")])
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]


def test_contents_are_used_verbatim() -> None:
    raw = "<@123> @everyone **bold** `code` {braces}"
    assert history([member("Alex", raw)])[-1]["content"] == f"Alex: {raw}"


def test_only_the_newest_max_messages_lines_are_kept() -> None:
    lines = [member("Alex", f"line {number}") for number in range(10)]
    assert history(lines, max_messages=3)[-1]["content"] == "Alex: line 7\nAlex: line 8\nAlex: line 9"


def test_only_the_newest_lines_within_max_chars_are_kept() -> None:
    lines = [member("Alex", "x" * 20) for _ in range(10)]  # 26 characters each with "Alex: "
    kept = history(lines, max_chars=80)[-1]["content"].split("\n")
    assert len(kept) == 3


def test_a_single_newest_line_longer_than_max_chars_keeps_its_end() -> None:
    messages = history([member("Alex", "old"), member("Alex", "a" * 500 + "THE END")], max_chars=100)
    content = messages[-1]["content"]
    assert len(messages) == 2
    assert len(content) <= 100
    assert content.startswith("Alex: ")
    assert content.endswith("THE END")


# --- addressing: who answers -------------------------------------------------------------------

SAM_P = ActivePersona(persona_id=1, name="Sam Okafor", mode="mention", started_at=100.0)
MIRA_P = ActivePersona(persona_id=2, name="Mira Chen", mode="mention", started_at=200.0)
BO_P = ActivePersona(persona_id=3, name="Bo", mode="mention", started_at=300.0)


def who(
    text: str,
    active: list[ActivePersona],
    *,
    reply_to: int | None = None,
    mentions_bot: bool = False,
    last_speaker: int | None = None,
) -> list[int]:
    return addressed(
        text=text, active=active, reply_to_persona=reply_to, mentions_bot=mentions_bot, last_speaker=last_speaker
    )


def always(persona: ActivePersona) -> ActivePersona:
    return ActivePersona(persona.persona_id, persona.name, "always", persona.started_at)


def test_a_reply_goes_to_that_persona_only_even_when_another_is_named() -> None:
    assert who("Mira, what do you think?", [SAM_P, MIRA_P], reply_to=1) == [1]
    assert who("Mira and Bo?", [SAM_P, MIRA_P, BO_P], reply_to=3, mentions_bot=True) == [3]


def test_a_reply_to_a_persona_no_longer_active_is_an_ordinary_message() -> None:
    assert who("Mira?", [SAM_P, MIRA_P], reply_to=42) == [2]


def test_a_persona_is_called_by_its_first_name_in_any_case() -> None:
    assert who("sam, what do you think?", [SAM_P, MIRA_P]) == [1]
    assert who("What about you, SAM OKAFOR?", [SAM_P, MIRA_P]) == [1]


def test_a_name_inside_another_word_calls_nobody() -> None:
    assert who("the samurai and the admiral", [SAM_P, MIRA_P]) == []


def test_a_first_name_shorter_than_three_letters_calls_nobody_but_a_full_name_does() -> None:
    jo = ActivePersona(persona_id=4, name="Jo Park", mode="mention", started_at=1.0)
    assert who("jo, hi", [jo, SAM_P]) == []
    assert who("jo park, hi", [jo, SAM_P]) == [4]
    assert who("bo, hi", [SAM_P, BO_P]) == [3]


def test_everyone_named_answers_in_order_of_first_mention() -> None:
    assert who("Mira then sam, then mira again", [SAM_P, MIRA_P]) == [2, 1]
    assert who("Bo? Sam? Mira?", [SAM_P, MIRA_P, BO_P]) == [3, 1, 2]


def test_the_longest_name_at_a_place_wins() -> None:
    plain_sam = ActivePersona(persona_id=5, name="Sam", mode="mention", started_at=1.0)
    assert personas_named("Sam Okafor, hi", [SAM_P, plain_sam]) == [1]
    assert personas_named("Sam, hi", [SAM_P, plain_sam]) == [5]


def test_a_first_name_two_personas_share_calls_neither() -> None:
    sam_lee = ActivePersona(persona_id=6, name="Sam Lee", mode="mention", started_at=1.0)
    assert personas_named("sam?", [SAM_P, sam_lee]) == []
    assert personas_named("sam lee?", [SAM_P, sam_lee]) == [6]


def test_a_mention_of_the_bot_goes_to_the_last_speaker_when_active() -> None:
    assert who("<@bot> thoughts?", [SAM_P, MIRA_P], mentions_bot=True, last_speaker=1) == [1]
    assert who("<@bot> thoughts?", [SAM_P, MIRA_P, BO_P], mentions_bot=True, last_speaker=2) == [2]


def test_a_mention_of_the_bot_otherwise_goes_to_the_newest_persona() -> None:
    assert who("<@bot> thoughts?", [SAM_P, MIRA_P], mentions_bot=True) == [2]
    assert who("<@bot> thoughts?", [BO_P, SAM_P, MIRA_P], mentions_bot=True, last_speaker=42) == [3]


def test_an_unaddressed_message_with_several_always_personas_goes_to_one_drawn_among_them() -> None:
    rng = random.Random(3)
    answers = [
        addressed(
            text="anyone?",
            active=[always(SAM_P), always(MIRA_P), BO_P],
            reply_to_persona=None,
            mentions_bot=False,
            last_speaker=1,
            recent_speakers=[1],
            rng=rng,
        )
        for _ in range(40)
    ]

    assert all(len(answer) == 1 for answer in answers)
    assert {answer[0] for answer in answers} == {1, 2}  # never Bo, who is in mention mode; not only Sam


def test_a_lone_always_persona_answers_every_unaddressed_message() -> None:
    assert who("anyone?", [always(SAM_P), MIRA_P]) == [1]
    quiet = replace(always(SAM_P), talkativeness=0)  # always mode was asked for: it still answers
    assert who("anyone?", [quiet, MIRA_P], last_speaker=2) == [1]


def test_always_personas_of_talkativeness_zero_answer_only_when_named() -> None:
    quiet = [replace(always(SAM_P), talkativeness=0), replace(always(MIRA_P), talkativeness=0)]

    assert who("anyone?", quiet, last_speaker=1) == []
    assert who("mira?", quiet, last_speaker=1) == [2]


def test_an_unaddressed_message_with_nobody_in_always_mode_gets_no_answer() -> None:
    assert who("anyone?", [SAM_P, MIRA_P], last_speaker=1) == []
    assert who("anyone?", [SAM_P, MIRA_P, BO_P]) == []
    assert who("anyone?", []) == []


# --- streaming: editing a reply as it arrives --------------------------------------------------


class FakeChannel:
    """Records every send and edit as (time, message number, text)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sends: list[tuple[float, int, str]] = []
        self.edits: list[tuple[float, int, str]] = []
        self.shown: dict[int, str] = {}

    def clock(self) -> float:
        return self.now

    async def send(self, text: str) -> int:
        handle = len(self.sends)
        self.sends.append((self.now, handle, text))
        self.shown[handle] = text
        return handle

    async def edit(self, handle: int, text: str) -> None:
        self.edits.append((self.now, handle, text))
        self.shown[handle] = text

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    def publisher(self, **options: float) -> StreamPublisher[int]:
        return StreamPublisher(
            send=self.send,
            edit=self.edit,
            clock=self.clock,
            sleep=self.sleep,
            **options,  # type: ignore[arg-type]
        )


def assert_at_most_one_edit_per_second(channel: FakeChannel) -> None:
    touches = sorted(channel.sends + channel.edits)
    for handle in channel.shown:
        times = [time for time, touched, _ in touches if touched == handle]
        assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))


def sentences(count: int) -> str:
    text = ""
    for number in range(count):
        text += f"This is sentence number {number} of the reply."
        text += "\n" if number % 7 == 6 else " "
    return text


async def test_fifty_deltas_over_ten_seconds_edit_each_message_at_most_once_a_second() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    for number in range(50):
        channel.now = number * 0.2
        await publisher.feed(f"word{number} ")
    assert_at_most_one_edit_per_second(channel)
    assert 5 <= len(channel.edits) <= 10
    channel.now = 11.0
    await publisher.finish()
    assert_at_most_one_edit_per_second(channel)


async def test_the_first_words_are_sent_at_the_first_non_whitespace_delta() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed("")
    await publisher.feed("  \n")
    assert channel.sends == []
    assert not publisher.started
    channel.now = 0.3
    await publisher.feed("Hello")
    assert channel.sends == [(0.3, 0, "Hello")]
    assert publisher.started
    assert publisher.messages == [0]


async def test_a_4500_character_reply_ends_as_three_messages_cut_at_sentences_or_lines() -> None:
    reply = sentences(110)
    assert 4500 <= len(reply) < 6000
    reply = reply[: reply.rindex(".", 0, 4500) + 1]
    channel = FakeChannel()
    publisher = channel.publisher()
    for start in range(0, len(reply), 37):
        channel.now += 0.1
        await publisher.feed(reply[start : start + 37])
    channel.now += 0.1
    parts = await publisher.finish()
    assert len(parts) == 3
    assert all(0 < len(part) <= MESSAGE_LIMIT for part in parts)
    assert all(part.endswith(".") for part in parts)
    assert non_whitespace("".join(parts)) == non_whitespace(reply)
    assert publisher.text == reply
    assert [channel.shown[handle] for handle in publisher.messages] == parts
    assert_edits_never_repeat_or_empty(channel)


def assert_edits_never_repeat_or_empty(channel: FakeChannel) -> None:
    last_text = {handle: text for _, handle, text in channel.sends}
    for _, handle, text in channel.edits:
        assert text
        assert text != last_text[handle]
        last_text[handle] = text


async def test_a_cut_off_message_gets_its_final_text_at_its_next_allowed_edit() -> None:
    channel = FakeChannel()
    publisher = channel.publisher(limit=100)
    first_part = ("First sentence here. " * 4).strip()  # 83 characters
    await publisher.feed(first_part + " ")
    channel.now = 1.0
    await publisher.feed("Second part goes")  # exactly 100 characters shown in message 0
    channel.now = 1.5
    await publisher.feed(" on and on.")
    assert channel.sends[-1] == (1.5, 1, "Second part goes on and on.")  # the rest starts at once
    assert channel.shown[0] == first_part + " Second part goes"  # message 0 was edited half a second ago
    channel.now = 2.0
    await publisher.feed(" More.")
    assert channel.edits[-1] == (2.0, 0, first_part)
    assert_at_most_one_edit_per_second(channel)
    assert await publisher.finish() == [first_part, "Second part goes on and on. More."]


async def test_finish_after_a_pause_shows_the_final_text() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed("Hello")
    channel.now = 0.4
    await publisher.feed(" there, friend.")
    assert channel.shown[0] == "Hello"
    channel.now = 5.0
    assert await publisher.finish() == ["Hello there, friend."]
    assert channel.shown[0] == "Hello there, friend."


async def test_nothing_is_edited_after_finish() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed("Hello")
    channel.now = 2.0
    await publisher.feed(" there")
    parts = await publisher.finish()
    touched = (list(channel.sends), list(channel.edits))
    channel.now = 10.0
    assert await publisher.finish() == parts
    with pytest.raises(RuntimeError):
        await publisher.feed(" more")
    assert (channel.sends, channel.edits) == touched


async def test_finish_skips_a_message_that_already_shows_its_final_text() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed("Done.")
    assert await publisher.finish() == ["Done."]
    assert channel.edits == []


async def test_a_blank_reply_posts_nothing() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed(" \n ")
    assert await publisher.finish() == []
    assert channel.sends == [] and channel.edits == []


async def test_one_huge_delta_is_sent_as_several_messages_at_once() -> None:
    channel = FakeChannel()
    publisher = channel.publisher(limit=100)
    text = sentences(12)
    await publisher.feed(text)
    parts = await publisher.finish()
    assert parts == split_message(text, 100)
    assert channel.edits == []


async def test_even_the_final_edit_waits_out_the_second() -> None:
    channel = FakeChannel()
    publisher = channel.publisher()
    await publisher.feed("Hello")
    channel.now = 1.0
    await publisher.feed(" there")  # edited at 1.0
    channel.now = 1.3
    await publisher.feed(", friend.")  # too soon to edit

    assert await publisher.finish() == ["Hello there, friend."]
    assert channel.edits[-1] == (2.0, 0, "Hello there, friend.")
    assert_at_most_one_edit_per_second(channel)


def test_a_persona_with_the_longest_name_allowed_speaks_under_all_of_it() -> None:
    longest = "Bartholomew " * (MAX_NAME_LENGTH // 12) + "O" * (MAX_NAME_LENGTH % 12)
    assert len(longest) == MAX_NAME_LENGTH
    assert webhook_username(longest) == longest


def test_the_stage_comes_after_the_character_and_its_cues_after_the_conversation() -> None:
    stage = Stage(
        scene="The Salty Gull, a stormy night.",
        recap="The party found a map.",
        lore=["Thresh: a warden of souls."],
        examples="Sam: Hey hey!",
        after_history="[Stay in character.]",
        cue="A stranger walks in.",
    )

    messages = build_messages(
        persona_id=SAM,
        persona_name="Sam Okafor",
        system_prompt="You are Sam Okafor.",
        setting=SETTING,
        lines=[member("Alex", "hi")],
        max_messages=50,
        max_chars=10_000,
        stage=stage,
    )

    system = messages[0]["content"]
    order = ["You are Sam Okafor.", "Thresh: a warden", "Sam: Hey hey!", "The party found a map.", "The Salty Gull"]
    assert [system.index(part) for part in order] == sorted(system.index(part) for part in order)
    assert system.index("The Salty Gull") < system.index("#tavern")
    # Roles still alternate: the cues join the member's last turn, after it.
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "Alex: hi\n[Stay in character.]\n(What should happen now: A stranger walks in.)"


def test_a_narrator_is_told_to_describe_and_never_to_play_the_players() -> None:
    content = system_message("The Keeper", "You narrate.", SETTING, stage=Stage(narrator=True))

    assert "narrator and game master" in content and "never speak or act for the players' characters" in content
    assert "Reply as The Keeper only" not in content
