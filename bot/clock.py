"""The wall clock the bot stores and shows times by.

Through discord.utils so that tests on simcord's virtual clock see virtual time.
"""

from __future__ import annotations

import discord


def wall_clock() -> float:
    """Seconds since the Unix epoch, now."""
    return discord.utils.utcnow().timestamp()
