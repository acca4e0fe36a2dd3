"""Rows the tests and the in-process benchmarks put straight into storage, the way the bot would save them."""

from __future__ import annotations

from storage.models import NewPersona


def new_persona(
    guild_id: int,
    name: str,
    *,
    created_at: float,
    creator_id: int = 1,
    creator_name: str = "alice",
    enhancement_id: str | None = None,
    fields: dict[str, str] | None = None,
) -> NewPersona:
    """A persona as an import saves it (no enhancement id unless given), speaking as `name`."""
    return NewPersona(
        guild_id=guild_id,
        name=name,
        creator_id=creator_id,
        creator_name=creator_name,
        enhancement_id=enhancement_id,
        humalike_persona_id=None,
        fields=fields or {},
        system_prompt=f"You are {name}.",
        markdown=f"# {name}",
        sketch=f"{name} is a support main.",
        grounding="off",
        created_at=created_at,
    )
