"""Fixtures of the wire tests: the real bot process against the local fakes (see harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.wire.harness import WireHarness


@pytest.fixture
async def wire(tmp_path: Path) -> AsyncIterator[WireHarness]:
    """The bot running as its own process, logged in to the stand-in with its commands synced."""
    async with WireHarness(tmp_path) as harness:
        yield harness


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[Any]:
    """Attach the end of the bot's log to a failing wire test: what the bot process said."""
    report = yield
    if report.when == "call" and report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, WireHarness):
                report.sections.append(("bot log (last launch)", value.log_tail()))
    return report
