"""Expected failures: each carries the sentence the user sees."""

from __future__ import annotations

from discord import app_commands


class UserFacingError(app_commands.AppCommandError):
    """Raised for a request we refuse on purpose; the message goes to the user as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
