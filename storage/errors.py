"""Errors the stores act on, the same whichever database is underneath."""

from __future__ import annotations


class IntegrityError(Exception):
    """A write broke a constraint (a unique key, most often).

    Its text names the constraint or the columns, so a store can tell a clash of names
    from a clash of enhancement ids.
    """


class DatabaseUnavailable(Exception):
    """The database could not be reached; the caller may try again shortly."""
