"""`python -m bot` when Discord turns it away: one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.__main__ import TOKEN_REJECTED, main
from bot.core import PersonaBot


async def refuse_the_token(self: PersonaBot, token: str) -> None:
    raise discord.LoginFailure("Improper token has been passed.")


def test_a_rejected_token_is_told_in_one_line_and_the_bot_closes_cleanly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env: the environment alone
    monkeypatch.setenv("DISCORD_TOKEN", "not-a-real-token")
    monkeypatch.setenv("HUMALIKE_TOKEN", "h")
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "bot.sqlite3"))
    monkeypatch.setattr(PersonaBot, "login", refuse_the_token)

    code = main([])

    assert code == 2
    err = capsys.readouterr().err
    assert TOKEN_REJECTED in err
    assert "Traceback" not in err and "not-a-real-token" not in err


async def test_a_bot_that_never_connected_closes_without_error(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    bot = PersonaBot(make_settings(tmp_path / "bot.sqlite3", "http://unused"))

    await bot.close()  # as after a failed start-up, before any shard connected

    assert bot.is_closed()
