"""Every setting the bot reads is listed in .env.example and the README, so an admin can find it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = sorted(name.upper() for name in Settings.model_fields)


@pytest.mark.parametrize("key", SETTINGS)
def test_the_setting_is_in_env_example_with_a_comment(key: str) -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if line.lstrip("# ").startswith(f"{key}="))
    block = []  # the lines above it, up to a blank line: its comment and any sibling settings
    for line in reversed(lines[:index]):
        if not line.strip():
            break
        block.append(line)
    assert any(line.startswith("# ") and "=" not in line for line in block), f"{key} has no comment above it"


@pytest.mark.parametrize("key", SETTINGS)
def test_the_setting_is_in_the_readme(key: str) -> None:
    assert f"`{key}`" in (ROOT / "README.md").read_text(encoding="utf-8")
