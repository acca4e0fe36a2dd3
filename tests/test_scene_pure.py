"""The pure parts of scenes: where a session began, previews, recap bounds, the Markdown export, the narrator."""

from __future__ import annotations

import datetime

from bot.roleplay.addressing import ActivePersona, addressed
from bot.roleplay.export import export_filename, session_markdown
from bot.roleplay.narrator import channel_narrator
from bot.roleplay.recaps import bounded_recap, recap_messages, transcript_text
from bot.roleplay.scenes import MAX_RECAP_CHARS, preview
from bot.roleplay.session_log import LoggedLine, SessionLog, session_start
from storage.roleplay import Session
from storage.scenes import SessionSpan

AT = datetime.datetime(2026, 12, 4, 20, 15, tzinfo=datetime.UTC)


def line(author: str, content: str, *, persona: bool = False) -> LoggedLine:
    return LoggedLine(AT, author, content, persona)


def test_a_channel_that_never_had_a_session_has_no_session_start() -> None:
    assert session_start([]) is None


def test_the_session_is_the_last_stretch_in_which_some_persona_was_present() -> None:
    spans = [
        SessionSpan(500.0, None),  # still speaking
        SessionSpan(300.0, 520.0),  # overlapped it: same table
        SessionSpan(250.0, 310.0),  # overlapped that one in turn
        SessionSpan(100.0, 200.0),  # last week's: over before the table sat down
    ]

    assert session_start(spans) == 250.0


def test_with_every_persona_gone_the_last_session_is_the_one_that_ended_last() -> None:
    assert session_start([SessionSpan(400.0, 450.0), SessionSpan(100.0, 900.0), SessionSpan(950.0, 990.0)]) == 950.0
    assert session_start([SessionSpan(400.0, 450.0), SessionSpan(100.0, 900.0)]) == 100.0


def test_a_preview_is_the_scenes_first_line_marked_when_more_follows() -> None:
    assert preview("A tavern.") == "A tavern."
    assert preview("A tavern.\nRain.") == "A tavern.…"
    assert preview("x" * 300) == "x" * 119 + "…"
    assert preview("  \n") == ""


def test_a_long_recap_is_cut_at_a_sentence_within_its_bound() -> None:
    recap = bounded_recap("They sailed at dawn. " * 200)

    assert len(recap) <= MAX_RECAP_CHARS
    assert recap.endswith("dawn.")


def test_a_recap_without_sentences_is_cut_at_a_word_and_marked() -> None:
    recap = bounded_recap("word " * 1000)

    assert len(recap) <= MAX_RECAP_CHARS
    assert recap.endswith("word…")


def test_the_recap_source_keeps_the_newest_lines_that_fit_personas_marked() -> None:
    lines = [line("alice", "a" * 50), line("Sam", "b" * 50, persona=True), line("bob", "c" * 50)]

    assert transcript_text(lines, 130).splitlines() == ["Sam (character): " + "b" * 50, "bob: " + "c" * 50]


def test_the_recap_request_carries_the_scene_and_the_last_recap() -> None:
    [system, user] = recap_messages([line("alice", "hi")], scene="A tavern.", previous="Week one.")

    assert "The recap before this session: Week one." in system["content"]
    assert "The scene: A tavern." in system["content"]
    assert user == {"role": "user", "content": "The session:\nalice: hi"}


def test_the_export_quotes_every_line_under_who_said_it_and_when() -> None:
    log = SessionLog(
        [line("Sam", "# not a heading\n\nsecond paragraph", persona=True), line("alice", "")],
        started_at=AT.timestamp(),
        cut=True,
    )

    markdown = session_markdown(log, guild_name="Game Night", channel_name="tavern", scene="", recap="Week one.")

    assert markdown.splitlines() == [
        "# #tavern · Game Night",
        "",
        "Session from 2026-12-04 20:15 UTC, 2 messages.",
        "Only the last 1,000 messages are included.",
        "",
        "**Previously:** Week one.",
        "",
        "**Sam** *(persona)* · 2026-12-04 20:15 UTC",
        "> # not a heading",
        ">",
        "> second paragraph",
        "",
        "**alice** · 2026-12-04 20:15 UTC",
        "> *(no text)*",
    ]
    assert export_filename("🎲 game night!", AT.timestamp()) == "game-night-2026-12-04.md"


def test_a_bot_mention_does_not_call_on_the_narrator() -> None:
    narrator = ActivePersona(1, "Moira", "narrator", 10.0)
    sam = ActivePersona(2, "Sam", "mention", 5.0)

    assert addressed(
        text="hey bot", active=[narrator, sam], reply_to_persona=None, mentions_bot=True, last_speaker=1
    ) == [2]
    assert addressed(text="hey bot", active=[narrator], reply_to_persona=None, mentions_bot=True, last_speaker=1) == []
    assert addressed(
        text="Moira?", active=[narrator], reply_to_persona=None, mentions_bot=False, last_speaker=None
    ) == [1]
    assert addressed(text="...", active=[narrator], reply_to_persona=1, mentions_bot=False, last_speaker=None) == [1]


def test_of_several_narrators_the_first_to_join_is_the_channels() -> None:
    def session(id_: int, mode: str, started_at: float) -> Session:
        return Session(id_, 1, 2, id_, f"P{id_}", mode, 3, started_at, started_at)  # type: ignore[arg-type]

    assert (
        channel_narrator([session(1, "mention", 1.0), session(2, "narrator", 9.0), session(3, "narrator", 4.0)]).id == 3
    )
    assert channel_narrator([session(1, "always", 1.0)]) is None
