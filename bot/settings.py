"""Every setting the bot reads, from the environment and `.env`.

`.env.example` lists each key with a comment; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.sharding import check_shards, parse_shard_ids

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_PATH = PROJECT_ROOT / "data" / "bot.sqlite3"


class StorageSettings(BaseSettings):
    """Where the data lives: all that `python -m bot copy-db` needs, with no tokens required."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Unset: the SQLite file at DATABASE_PATH, nothing to install. postgresql://...: a PostgreSQL
    # database that several bot processes can share.
    database_url: str | None = Field(None, pattern=r"^(postgres|postgresql)://")
    database_path: Path = DEFAULT_DATABASE_PATH


class Settings(StorageSettings):
    discord_token: SecretStr
    humalike_token: SecretStr
    humalike_base_url: str = "https://api.humalike.com"
    # Where Humalike's turn-taking API (natural mode) is served, when not at HUMALIKE_BASE_URL.
    humalike_turn_taking_url: str | None = None
    humalike_timeout_seconds: float = Field(15.0, gt=0)
    # Connections to Humalike at most, and how many billable starts may be on the wire at once. More
    # starts wait in the bot's own queue, still "queued" (not sent), leaving connections for the polls
    # (up to 64 at once, bot/enhance/follower.py): hence fewer starts than connections.
    humalike_max_connections: int = Field(100, ge=2)
    humalike_max_concurrent_starts: int = Field(32, ge=1)

    dev_guild_id: int | None = None
    # Several processes (README, "Running at scale"): how many shards the bot has in all, and which of
    # them this process runs ("0-3", "0,2"). Unset: one process runs every shard Discord recommends.
    shard_count: int | None = Field(None, ge=1)
    shard_ids: str | None = None

    # Following a job: first poll soon, then as often as the job is likely to have ended
    # (bot/enhance/schedule.py), never closer than the interval, backing off on errors.
    poll_first_delay_seconds: float = Field(2.0, gt=0)
    poll_interval_seconds: float = Field(1.0, gt=0)
    poll_max_backoff_seconds: float = Field(60.0, gt=0)
    # After this long a job is reported as timed out; it is still followed, and saved if it succeeds.
    job_deadline_seconds: float = Field(1800.0, gt=0)
    max_jobs_per_user: int = Field(3, ge=1)
    # With DATABASE_URL, how long a job stays with a bot process that stopped renewing it (killed, host
    # lost) before another process takes it over.
    job_lease_seconds: float = Field(15.0, ge=3)
    # /persona import: cards one member may send a minute (reading a hostile card costs CPU).
    persona_imports_per_minute: int = Field(5, ge=1)

    # Optional: an OpenAI-compatible chat model, used by /roleplay.
    chat_model_base_url: str | None = None
    chat_model_api_key: SecretStr | None = None
    chat_model_name: str | None = None
    chat_model_timeout_seconds: float = Field(60.0, gt=0)
    chat_model_max_tokens: int = Field(400, ge=16)

    # Roleplay: what a server gets unless its admins choose otherwise.
    roleplay_idle_minutes: float = Field(30.0, gt=0)
    roleplay_max_active_per_guild: int = Field(10, ge=1)  # a whole cast (see cogs/casts.py)
    roleplay_channel_cooldown_seconds: float = Field(2.0, ge=0)
    roleplay_history_messages: int = Field(30, ge=1)
    roleplay_history_chars: int = Field(8000, ge=200)
    # The most of a persona's system prompt the model is sent each turn (its beginning is kept).
    roleplay_system_prompt_chars: int = Field(24000, ge=200)
    # The most of a card's lorebook a turn's prompt holds, in characters (bot/character.py).
    roleplay_lore_chars: int = Field(3000, ge=0)
    roleplay_answer_other_bots: bool = False
    # Answers to bots and webhooks in a row, with no member in between, before personas wait for a member:
    # two bots that answer each other would otherwise talk forever, one model call a line.
    roleplay_max_bot_turns: int = Field(3, ge=0)
    # Turns personas take because another persona named them, in a row with no member in between
    # (0: personas never answer each other): a bound checked before each turn, so no loop.
    roleplay_max_persona_chain: int = Field(2, ge=0)
    # What personas said is remembered (for replies to them, and read-back after a restart) this long.
    roleplay_message_retention_days: float = Field(30.0, gt=0)
    # Natural mode (Humalike's turn-taking): how many personas may answer one member message, whether
    # a persona remembers the players of its server, and the billable calls a server may make a day.
    roleplay_natural_max_speakers: int = Field(2, ge=1)
    roleplay_natural_memory: bool = True
    roleplay_natural_daily_calls: int = Field(2000, ge=1)
    # The chat model's tokens (prompt and reply) a server's personas may use a UTC day; 0: no cap.
    roleplay_daily_tokens_per_guild: int = Field(500_000, ge=0)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _starts_leave_connections_for_polls(self) -> Settings:
        if self.humalike_max_concurrent_starts >= self.humalike_max_connections:
            raise ValueError(
                "HUMALIKE_MAX_CONCURRENT_STARTS must be below HUMALIKE_MAX_CONNECTIONS,"
                " so polls always have connections"
            )
        return self

    @model_validator(mode="after")
    def _shards_are_among_the_count(self) -> Settings:
        check_shards(self.shard_count, self.shard_id_list)
        return self

    @property
    def shard_id_list(self) -> list[int] | None:
        """The shards this process runs; None: every shard."""
        return parse_shard_ids(self.shard_ids) if self.shard_ids else None

    @property
    def chat_model_configured(self) -> bool:
        return bool(self.chat_model_base_url and self.chat_model_name)


class SettingsError(Exception):
    """A configuration problem told in one line, without any secret value."""


def load_settings(**overrides: object) -> Settings:
    try:
        # Must stay: pydantic-settings fills the required tokens from the environment, which
        # a type checker cannot see in the constructor's signature.
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_settings_error(error)) from None


def load_storage_settings() -> StorageSettings:
    try:
        return StorageSettings()
    except ValidationError as error:
        raise SettingsError(describe_settings_error(error)) from None


def describe_settings_error(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]).upper()
        if item["type"] == "missing":
            problems.append(f"{key} is not set")
        elif key:
            problems.append(f"{key}: {item['msg']}")
        else:  # a rule between settings, which names them itself
            problems.append(item["msg"])
    return "; ".join(problems) + " (set it in .env or the environment; see .env.example)"
