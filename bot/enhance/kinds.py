"""What differs between making one persona and making a cast, said once.

A job is an enhancement (one persona from a sketch) or a population (a cast
from a prompt). Each kind knows how its job is started and polled on Humalike,
what it saves when it succeeds, and how its replies name it. Everything else
(recording, answering, following, failing) is the same for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from bot.clock import wall_clock
from bot.enhance import failures
from bot.enhance.naming import cast_name_from, infer_name
from bot.enhance.render import Reply, Subject, render_cast_card, render_persona_card
from bot.errors import UserFacingError
from bot.humalike.client import HumalikeClient
from bot.humalike.models import EnhancedPersona, Enhancement, Grounding, PolledJob, Population, StartedJob
from storage.casts import CastStore
from storage.models import Job, JobKind, NewPersona
from storage.personas import PersonaStore

# What a succeeded job that produced nothing is recorded as.
EMPTY_RESULT = failures.Failure("empty_result")


class Kind(ABC):
    key: JobKind

    def __init__(self, humalike: HumalikeClient) -> None:
        self._humalike = humalike

    @abstractmethod
    def subject(self, job: Job) -> Subject:
        """How the job's replies name what it makes."""

    @abstractmethod
    async def refuse_taken_name(self, guild_id: int, name: str) -> None:
        """A UserFacingError when `name` is taken here and cannot be numbered instead."""

    @abstractmethod
    async def start(self, job: Job) -> StartedJob:
        """Start the job on Humalike: billed, so called once per job."""

    @abstractmethod
    async def poll(self, job: Job) -> PolledJob | None:
        """Where the job stands on Humalike (None: Humalike answered null)."""

    def produced(self, polled: PolledJob) -> tuple[int, int] | None:
        """(made, asked for) when the job reports progress as it goes."""
        return None

    @abstractmethod
    async def save(self, job: Job, result: PolledJob) -> Reply | failures.Failure:
        """Save what a succeeded job made, once however often called; the card to show, or why none."""

    @abstractmethod
    async def stored_result(self, job: Job) -> Reply | None:
        """A succeeded job's card, rebuilt from what was saved; None if it was deleted since."""


def new_persona(job: Job, made: EnhancedPersona, *, name: str, key: str | None, now: float) -> NewPersona:
    """A persona Humalike made for `job`, as the member who asked for it will own it."""
    return NewPersona(
        guild_id=job.guild_id,
        name=name,
        creator_id=job.user_id,
        creator_name=job.user_name,
        enhancement_id=key,
        humalike_persona_id=made.persona_id,
        fields=made.fields,
        system_prompt=made.system_prompt,
        markdown=made.markdown,
        sketch=job.sketch,
        grounding=job.grounding,
        created_at=now,
    )


class EnhancementKind(Kind):
    key = JobKind.ENHANCEMENT

    def __init__(self, humalike: HumalikeClient, personas: PersonaStore) -> None:
        super().__init__(humalike)
        self._personas = personas

    def subject(self, job: Job) -> Subject:
        return Subject("Enhancing a persona")

    async def refuse_taken_name(self, guild_id: int, name: str) -> None:
        if await self._personas.name_taken(guild_id, name):
            raise UserFacingError(
                f"A persona named “{name}” already exists in this server. "
                "Pick another name, or leave it out to let the bot choose."
            )

    async def start(self, job: Job) -> StartedJob:
        return await self._humalike.start_enhancement(job.sketch, Grounding(job.grounding))

    async def poll(self, job: Job) -> PolledJob | None:
        assert job.enhancement_id is not None
        return await self._humalike.get_enhancement(job.enhancement_id)

    async def save(self, job: Job, result: PolledJob) -> Reply | failures.Failure:
        assert isinstance(result, Enhancement)
        made = result.persona
        if made is None:
            return EMPTY_RESULT
        name = infer_name(
            requested=job.requested_name,
            fields=made.fields,
            sketch=job.sketch,
            sheet=made.markdown,
            system_prompt=made.system_prompt,
        )
        saved = await self._personas.save_enhanced(
            job.id, new_persona(job, made, name=name, key=job.enhancement_id, now=wall_clock())
        )
        note = None
        if saved.persona.name != name:
            note = f"“{name}” was already taken in this server, so it is saved as “{saved.persona.name}”."
        if job.timed_out:
            note = ((note or "") + " It finished after the deadline, but it is all here.").strip()
        return render_persona_card(saved.persona, requested_by=job.user_id, note=note)

    async def stored_result(self, job: Job) -> Reply | None:
        persona = await self._personas.get(job.persona_id) if job.persona_id is not None else None
        return render_persona_card(persona, requested_by=job.user_id) if persona is not None else None


class PopulationKind(Kind):
    key = JobKind.POPULATION

    def __init__(self, humalike: HumalikeClient, casts: CastStore) -> None:
        super().__init__(humalike)
        self._casts = casts

    def subject(self, job: Job) -> Subject:
        return Subject("Generating a cast", facts=(("Cast size", str(job.cast_size)),))

    async def refuse_taken_name(self, guild_id: int, name: str) -> None:
        if await self._casts.by_name(guild_id, name):
            raise UserFacingError(f"A cast named “{name}” already exists in this server. Pick another name.")

    async def start(self, job: Job) -> StartedJob:
        assert job.cast_size is not None
        return await self._humalike.start_population(job.sketch, job.cast_size, Grounding(job.grounding))

    async def poll(self, job: Job) -> PolledJob | None:
        assert job.enhancement_id is not None
        return await self._humalike.get_population(job.enhancement_id)

    def produced(self, polled: PolledJob) -> tuple[int, int] | None:
        assert isinstance(polled, Population)
        return (polled.progress.produced, polled.progress.total) if polled.progress is not None else None

    async def save(self, job: Job, result: PolledJob) -> Reply | failures.Failure:
        assert isinstance(result, Population)
        made = result.result.personas if result.result else []
        if not made:
            return EMPTY_RESULT
        now = wall_clock()
        cast_name = job.requested_name or cast_name_from(job.sketch)
        members = [
            new_persona(
                job,
                persona,
                name=infer_name(
                    requested=None,
                    fields=persona.fields,
                    sketch="",
                    sheet=persona.markdown,
                    system_prompt=persona.system_prompt,
                    placeholder=f"{cast_name} #{position + 1}",
                ),
                key=f"{job.enhancement_id}/{position}",  # saved once, like an enhancement's persona
                now=now,
            )
            for position, persona in enumerate(made)
        ]
        cast = await self._casts.save_population(job, cast_name=cast_name, members=members, now=now)
        return render_cast_card(cast, requested_by=job.user_id)

    async def stored_result(self, job: Job) -> Reply | None:
        cast = await self._casts.by_job(job.id)
        return render_cast_card(cast, requested_by=job.user_id) if cast is not None else None


def all_kinds(humalike: HumalikeClient, personas: PersonaStore, casts: CastStore) -> dict[JobKind, Kind]:
    kinds: list[Kind] = [EnhancementKind(humalike, personas), PopulationKind(humalike, casts)]
    return {kind.key: kind for kind in kinds}
