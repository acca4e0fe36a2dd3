"""`python -m bot check` and `python -m bot`: one readable line per problem, never a secret, never a traceback."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import discord
import pytest

from bot.__main__ import check
from bot.check import CheckResult, check_chat_model, check_database, check_discord, check_humalike, run_checks
from bot.settings import Settings, SettingsError, load_settings
from storage.database import migrations
from tests.databases import postgres_schema
from tests.fakes.chat_model import DEFAULT_MODEL as CHAT_MODEL
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.chat_model import serve as serve_chat
from tests.fakes.humalike import FakeHumalike, serve

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.discord-secret.abcdefghijklmnop"
HUMALIKE_TOKEN = "hl_live_secret_4f9a2c7e1b3d"
CHAT_MODEL_KEY = "sk-chat-secret-9d8c7b6a"
SECRETS = (DISCORD_TOKEN, HUMALIKE_TOKEN, CHAT_MODEL_KEY)
# What a base URL may carry: credentials for a proxy, a key in the query.
URL_PASSWORD = "hunter2-url-password-3b9e"
URL_QUERY_KEY = "url-query-key-8f1a"


def with_url_secrets(base_url: str, *, credentials: bool = True) -> str:
    if credentials:
        base_url = base_url.replace("http://", f"http://bot:{URL_PASSWORD}@")
    return f"{base_url}?key={URL_QUERY_KEY}"


def assert_no_url_secret(text: str) -> None:
    assert URL_PASSWORD not in text
    assert URL_QUERY_KEY not in text


def make_settings(tmp_path: Path, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": DISCORD_TOKEN,
        "humalike_token": HUMALIKE_TOKEN,
        "humalike_base_url": base_url,
        "humalike_timeout_seconds": 2.0,
        "database_path": tmp_path / "x.sqlite3",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def unused_loopback_url() -> str:
    """A loopback URL on a port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_no_secret(*lines: str) -> None:
    for line in lines:
        for secret in SECRETS:
            assert secret not in line


async def logged_in(token: str) -> str:
    assert token == DISCORD_TOKEN
    return "logged in as Persona Bot#0001 (id 42)"


async def rejected(token: str) -> str:
    raise discord.LoginFailure(f"Improper token has been passed: {token}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeHumalike]:
    fake = FakeHumalike(token=HUMALIKE_TOKEN)
    fake.user_id = "user_persona_bot_7"
    async with serve(fake):
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- Humalike -----------------------------------------------------------------------------------


async def test_a_good_humalike_token_is_ok_and_names_the_account(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    result = await check_humalike(make_settings(tmp_path, fake.base_url or ""), session)

    assert result.ok is True
    assert result.line().startswith("[ok  ] Humalike token:")
    assert "user_persona_bot_7" in result.line()
    assert_no_secret(result.line())


async def test_a_wrong_humalike_token_fails_saying_it_was_rejected(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    wrong = "hl_live_wrong_token_0000"
    result = await check_humalike(make_settings(tmp_path, fake.base_url or "", humalike_token=wrong), session)

    assert result.ok is False
    assert result.line().startswith("[FAIL] Humalike token:")
    assert "rejected" in result.line()
    assert "HUMALIKE_TOKEN" in result.line()
    assert wrong not in result.line()
    assert_no_secret(result.line())


async def test_a_token_that_may_not_call_whoami_fails(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fake.fail_next_whoami(403)
    result = await check_humalike(make_settings(tmp_path, fake.base_url or ""), session)

    assert result.ok is False
    assert "403" in result.line()
    assert_no_secret(result.line())


async def test_a_humalike_outage_fails_with_the_status(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    fake.fail_next_whoami(502)
    result = await check_humalike(make_settings(tmp_path, fake.base_url or ""), session)

    assert result.ok is False
    assert "502" in result.line()
    assert_no_secret(result.line())


async def test_an_unreachable_humalike_fails_saying_it_could_not_be_reached(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = unused_loopback_url()
    result = await check_humalike(make_settings(tmp_path, url), session)

    assert result.ok is False
    assert result.line().startswith("[FAIL] Humalike token:")
    assert "could not reach" in result.line()
    assert url in result.line()
    assert "HUMALIKE_BASE_URL" in result.line()
    assert_no_secret(result.line())


# --- Database -----------------------------------------------------------------------------------


async def test_the_database_check_creates_the_file_and_reports_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "x.sqlite3"
    result = await check_database(make_settings(tmp_path, "http://unused", database_path=path))

    assert result.ok is True
    assert path.exists()
    latest = max(version for version, _ in migrations())
    assert f"schema {latest}," in result.line()
    assert "0 personas" in result.line()


async def test_the_database_check_names_the_sqlite_backend_and_a_current_schema(tmp_path: Path) -> None:
    result = await check_database(make_settings(tmp_path, "http://unused", database_path=tmp_path / "x.sqlite3"))

    assert f"SQLite file {tmp_path / 'x.sqlite3'}" in result.line()
    assert "current" in result.line()


async def test_the_database_check_names_postgresql_without_its_password(tmp_path: Path) -> None:
    async with postgres_schema() as url:
        with_password = url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
        result = await check_database(make_settings(tmp_path, "http://unused", database_url=with_password))

    assert result.ok is True
    latest = max(version for version, _ in migrations("postgresql"))
    assert result.line().startswith("[ok  ] Database: PostgreSQL at 127.0.0.1:5432/test (")
    assert f"schema {latest}, current" in result.line()
    assert "hunter2" not in result.line() and "search_path" not in result.line()


async def test_an_unreachable_postgresql_fails_the_check_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://bot:hunter2@127.0.0.1:1/bot"  # nothing listens on port 1
    result = await check_database(make_settings(tmp_path, "http://unused", database_url=url))

    assert result.ok is False
    assert result.line().startswith("[FAIL] Database:")
    assert "hunter2" not in result.line()


async def test_a_database_under_a_regular_file_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file")
    path = blocker / "x.sqlite3"

    result = await check_database(make_settings(tmp_path, "http://unused", database_path=path))

    assert result.ok is False
    assert result.line().startswith("[FAIL] Database:")
    assert str(path) in result.line()
    assert blocker.read_text() == "a regular file"


# --- Chat model ---------------------------------------------------------------------------------


async def test_an_unconfigured_chat_model_is_skipped(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    result = await check_chat_model(make_settings(tmp_path, "http://unused"), session)

    assert result.ok is None
    assert result.line().startswith("[skip] Chat model:")
    assert "CHAT_MODEL_BASE_URL" in result.line()


async def test_an_unreachable_chat_model_fails_without_showing_its_key(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        "http://unused",
        chat_model_base_url=unused_loopback_url() + "/v1",
        chat_model_name="llama-3-8b",
        chat_model_api_key=CHAT_MODEL_KEY,
    )
    result = await check_chat_model(settings, session)

    assert result.ok is False
    assert "could not reach" in result.line()
    assert_no_secret(result.line())


async def test_the_check_report_names_the_chat_model_without_the_password_or_query_of_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeChatModel(api_key=None)  # behind a proxy, the credentials are the URL's own
    async with serve_chat(fake) as base_url, serve(FakeHumalike(token=HUMALIKE_TOKEN)) as humalike_url:
        settings = make_settings(
            tmp_path,
            humalike_url,
            chat_model_base_url=with_url_secrets(base_url),
            chat_model_name=CHAT_MODEL,
        )
        status = await check(settings, login=logged_in)

    report = capsys.readouterr().out
    port = base_url.rsplit(":", 1)[1].split("/")[0]
    assert f"[ok  ] Chat model: {CHAT_MODEL} at http://***@127.0.0.1:{port}/v1?***" in report.splitlines()
    assert status == 0, report
    assert_no_url_secret(report)


async def test_a_failed_check_names_each_url_without_its_password_or_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        tmp_path,
        with_url_secrets(unused_loopback_url(), credentials=False),  # Humalike takes its token as a header
        chat_model_base_url=with_url_secrets(unused_loopback_url() + "/v1"),
        chat_model_name=CHAT_MODEL,
    )

    status = await check(settings, login=logged_in)

    report = capsys.readouterr().out
    assert status == 1
    assert "[FAIL] Humalike token: could not reach http://127.0.0.1:" in report
    assert "?*** (HUMALIKE_BASE_URL)" in report
    assert "[FAIL] Chat model: could not reach http://***@127.0.0.1:" in report
    assert_no_url_secret(report)


# --- Discord ------------------------------------------------------------------------------------


async def test_a_discord_login_is_ok(tmp_path: Path) -> None:
    result = await check_discord(make_settings(tmp_path, "http://unused"), logged_in)

    assert result.ok is True
    assert result.line() == "[ok  ] Discord token: logged in as Persona Bot#0001 (id 42)"


async def test_a_rejected_discord_token_fails_without_showing_it(tmp_path: Path) -> None:
    result = await check_discord(make_settings(tmp_path, "http://unused"), rejected)

    assert result.ok is False
    assert result.line().startswith("[FAIL] Discord token:")
    assert "DISCORD_TOKEN" in result.line()
    assert_no_secret(result.line())


async def test_an_unreachable_discord_fails(tmp_path: Path) -> None:
    async def offline(token: str) -> str:
        raise aiohttp.ClientConnectionError(f"cannot connect (token {token})")

    result = await check_discord(make_settings(tmp_path, "http://unused"), offline)

    assert result.ok is False
    assert "could not reach Discord" in result.line()
    assert_no_secret(result.line())


# --- All checks together ------------------------------------------------------------------------


async def test_run_checks_reports_every_check_without_a_secret(fake: FakeHumalike, tmp_path: Path) -> None:
    results = await run_checks(make_settings(tmp_path, fake.base_url or ""), login=logged_in)

    assert [(result.name, result.ok) for result in results] == [
        ("Discord token", True),
        ("Humalike token", True),
        ("Database", True),
        ("Chat model", None),
    ]
    assert_no_secret(*(result.line() for result in results))


async def test_run_checks_with_everything_wrong_still_shows_no_secret(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = make_settings(
        tmp_path,
        unused_loopback_url(),
        database_path=blocker / "x.sqlite3",
        chat_model_base_url=unused_loopback_url(),
        chat_model_name="llama-3-8b",
        chat_model_api_key=CHAT_MODEL_KEY,
    )

    results = await run_checks(settings, login=rejected)

    assert [result.ok for result in results] == [False, False, False, False]
    lines = [result.line() for result in results]
    assert all(line.startswith("[FAIL] ") for line in lines)
    assert all("\n" not in line for line in lines)
    assert_no_secret(*lines)


def open_connections() -> list[aiosqlite.Connection]:
    gc.collect()
    return [
        item for item in gc.get_objects() if isinstance(item, aiosqlite.Connection) and item._connection is not None
    ]


@pytest.fixture
async def close_leaked_connections() -> AsyncIterator[None]:
    """Close the database connections a test leaves open: their threads would keep pytest from exiting."""
    before = {id(connection) for connection in open_connections()}
    yield
    for connection in open_connections():
        if id(connection) not in before:
            await connection.close()


@pytest.mark.usefixtures("close_leaked_connections")
async def test_a_file_that_is_not_a_database_fails(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("These are my notes, not a database. " * 20)

    result = await check_database(make_settings(tmp_path, "http://unused", database_path=path))

    assert result.ok is False
    assert result.line().startswith("[FAIL] Database:")
    assert "not a database" in result.line()
    assert path.read_text().startswith("These are my notes")


@pytest.mark.usefixtures("close_leaked_connections")
async def test_a_failed_database_check_leaves_no_connection_open(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("These are my notes, not a database. " * 20)
    before = {id(connection) for connection in open_connections()}

    result = await check_database(make_settings(tmp_path, "http://unused", database_path=path))

    assert result.ok is False
    assert [connection for connection in open_connections() if id(connection) not in before] == []


def test_check_result_lines_are_marked_by_outcome() -> None:
    assert CheckResult("Thing", True, "fine").line() == "[ok  ] Thing: fine"
    assert CheckResult("Thing", False, "broken").line() == "[FAIL] Thing: broken"
    assert CheckResult("Thing", None, "not set").line() == "[skip] Thing: not set"


# --- The command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["check"]], ids=["run", "check"])
def test_without_tokens_the_cli_exits_2_with_one_line_and_no_traceback(args: list[str]) -> None:
    assert not (PROJECT_ROOT / ".env").exists(), "a .env would be read and change this test"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}

    finished = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    output = (finished.stdout + finished.stderr).strip()
    assert finished.returncode == 2, output
    assert "Traceback" not in output
    [line] = output.splitlines()
    assert "DISCORD_TOKEN is not set" in line
    assert "HUMALIKE_TOKEN is not set" in line


def test_more_concurrent_starts_than_connections_is_refused_in_one_line() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(
            _env_file=None,
            discord_token=DISCORD_TOKEN,
            humalike_token=HUMALIKE_TOKEN,
            humalike_max_connections=10,
            humalike_max_concurrent_starts=10,
        )

    [line] = str(refused.value).splitlines()
    assert "HUMALIKE_MAX_CONCURRENT_STARTS must be below HUMALIKE_MAX_CONNECTIONS" in line
    assert_no_secret(line)


async def test_the_check_says_the_token_serves_turn_taking_too(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    result = await check_humalike(make_settings(tmp_path, fake.base_url or ""), session)

    assert result.ok and "(personas and natural mode's turn-taking)" in result.line()
    assert [request.path for request in fake.requests] == ["/v1/turn-taking/actions/whoami"]


async def test_a_separate_turn_taking_address_is_checked_on_its_own_line(
    fake: FakeHumalike, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, fake.base_url or "", humalike_turn_taking_url="http://127.0.0.1:9")

    report = [result.line() for result in await run_checks(settings, login=logged_in)]

    assert any(line.startswith("[ok  ] Humalike token:") for line in report)
    assert "[FAIL] Humalike turn-taking: could not reach http://127.0.0.1:9 (HUMALIKE_TURN_TAKING_URL)" in report
