"""How the bot shows a URL or a text that may hold a secret."""

from __future__ import annotations

import pytest

from bot.redaction import UNREADABLE_URL, mask_secret_patterns, redact, redacted_url, url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.humalike.com", "https://api.humalike.com"),
        ("http://127.0.0.1:8766/v1", "http://127.0.0.1:8766/v1"),
        ("http://bot:hunter2@proxy.example:8080/v1", "http://***@proxy.example:8080/v1"),
        ("https://proxy.example/v1?key=sk-secret&tier=free", "https://proxy.example/v1?***"),
        ("https://token-only@proxy.example/v1#frag", "https://***@proxy.example/v1#***"),
        ("user:hunter2@proxy.example/v1", UNREADABLE_URL),  # no scheme: no telling the password apart
        ("http://proxy.example:port-hunter2/v1", UNREADABLE_URL),
    ],
)
def test_a_url_is_shown_without_credentials_query_or_fragment(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_a_urls_password_query_and_long_query_values_are_its_secrets() -> None:
    secrets = url_secrets("http://bot:p%40ss-word@proxy.example/v1?key=sk-secret%2F1&stream=1")

    assert "p@ss-word" in secrets and "p%40ss-word" in secrets
    assert "key=sk-secret%2F1&stream=1" in secrets
    assert "sk-secret/1" in secrets
    assert "1" not in secrets  # too short to be a key; masking it would garble every log line


def test_redacting_masks_each_secret_even_when_one_contains_another() -> None:
    text = "GET /v1?key=sk-secret-1234 failed; key sk-secret-1234"

    assert redact(text, ["sk-secret-1234", "key=sk-secret-1234"]) == "GET /v1?[redacted] failed; key [redacted]"


def test_discord_tokens_and_url_credentials_are_masked_in_any_text() -> None:
    text = (
        "POST https://discord.com/api/v10/webhooks/12/tok.en-_1?wait=1 then "
        "/interactions/34/aW50ZXI/callback {'id': '12', 'token': 'tok.en-_1'} via http://u:pw@proxy:3128/"
    )

    assert mask_secret_patterns(text) == (
        "POST https://discord.com/api/v10/webhooks/12/***?wait=1 then "
        "/interactions/34/***/callback {'id': '12', 'token': '***'} via http://***@proxy:3128/"
    )
