"""A scriptable fake of the Humalike API, served as an aiohttp application.

It follows Humalike's published API pages (enhance, personas, whoami, errors,
authentication) and the live service's observed behaviour: extra
`created_at`/`updated_at` keys, `persona` and `error` as `null` until a job
ends, `null` for an unknown id, `400 invalid id` for a malformed one, two
validation shapes, `error` as a string or an object, and an `x-request-id`
header on every answer. It never imports the bot.

Job progress is computed from the injected `clock()` at poll time, so a test on
a virtual or manual clock drives a job by advancing that clock; the fake itself
never sleeps, but for `start_latency` (a slow Humalike, below). Tests script it per case::

    fake = FakeHumalike(clock=clock)
    fake.script_enhancement(pending_for=0, running_for=30, outcome=Fail({"code": "timeout"}))
    fake.fail_next_polls(502, times=2)
    async with serve(fake) as base_url:
        ...

Standalone, for pointing a real bot at it (HUMALIKE_BASE_URL=http://127.0.0.1:8765)::

    python -m tests.fakes.humalike --port 8765 [--host 127.0.0.1] [--token T]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import copy
import hmac
import json
import logging
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.faults import Dropped, Fault, FaultQueue
from tests.fakes.loopback import serve_fake

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "test-token"
DEFAULT_USER_ID = "user_fake123"
DEFAULT_PORT = 8765
# The documented cap is "configured"; 50 is this fake's configuration.
GENERATE_COUNT_CAP = 50
GROUNDINGS = ("off", "web", "research")
ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

ENHANCE_PATH = "/v1/personas/actions/enhance"
ENHANCEMENT_PATH = "/v1/personas/repositories/Enhancement/by-id/{id}"
GENERATE_PATH = "/v1/personas/actions/generate"
POPULATION_PATH = "/v1/personas/repositories/Population/by-id/{id}"
WHOAMI_PATH = "/v1/turn-taking/actions/whoami"

JobKind = Literal["enhancement", "population"]


# --- Error bodies -------------------------------------------------------------------------------


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The standard envelope: `{"error": {"code", "message", ...extra}}`."""
    return {"error": {"code": code, "message": message, **extra}}


def validation_failed_body(
    field: str = "persona",
    msg: str = "String should have at least 1 character",
    type_: str = "string_too_short",
) -> dict[str, Any]:
    """422 shape of the persona endpoints: `details: [{loc, msg, type}]`."""
    return error_body(
        "validation_failed", "request validation failed", details=[{"loc": [field], "msg": msg, "type": type_}]
    )


def validation_error_body(
    field: str = "persona", message: str = "must not be empty", *, summary: str = "The request body is invalid."
) -> dict[str, Any]:
    """400/422 shape of the errors page and turn-taking: `details: [{field, message}]`."""
    return error_body("VALIDATION_ERROR", summary, details=[{"field": field, "message": message}])


def trace_id() -> str:
    return f"trc_{uuid.uuid4().hex[:24]}"


def default_error_body(status: int) -> dict[str, Any]:
    """The documented body for a status; 5xx bodies get a fresh `trace_id` each time."""
    if status == 400:
        return validation_error_body()
    if status == 401:
        return error_body("UNAUTHORIZED", "Authentication failed.")
    if status == 402:
        return error_body("PAYMENT_REQUIRED", "insufficient credits")
    if status == 403:
        return error_body("forbidden", "The credentials are valid but not permitted for this endpoint.")
    if status == 404:
        return error_body("NOT_FOUND", "Not found.")
    if status == 422:
        return validation_failed_body()
    if status == 429:
        # Never observed live, so undocumented: this envelope is the fake's guess.
        return error_body("RATE_LIMITED", "Too many requests.")
    if status == 502:
        return error_body("UPSTREAM_ERROR", "A dependency the request relies on was unavailable.", trace_id=trace_id())
    if status >= 500:
        return error_body("INTERNAL_ERROR", "Internal server error.", trace_id=trace_id())
    return error_body("ERROR", f"HTTP {status}")


# --- Personas -----------------------------------------------------------------------------------


def enhanced_persona_id() -> str:
    """The id shape seen live: `enhanced-<12 hex>`."""
    return f"enhanced-{uuid.uuid4().hex[:12]}"


def sam_persona(persona_id: str | None = None) -> dict[str, Any]:
    """A realistic enhancement of the documented sketch (Sam, a Thresh support main)."""
    fields = {
        "name": "Sam Okafor",
        "age": "30",
        "main_role": "support",
        "main_champion": "Thresh",
        "play_style": "warm but sharp, runs the map from the shadows",
        "backstory": (
            "Fell for support after carrying a friend group through normals for years; has mained "
            "Thresh since release and shot-calls for a club team."
        ),
    }
    system_prompt = (
        "You are Sam Okafor, a warm-but-sharp 30-year-old Thresh support main. You talk like a "
        "teammate on voice comms: friendly, quick, a little teasing, never toxic. You think in "
        "vision control, lantern saves and engage timings, and you shot-call for a club team, so you "
        "explain plays clearly and praise good ones. Stay in character; keep replies short unless "
        "someone asks for a breakdown."
    )
    markdown = (
        "# Sam Okafor\n\n"
        "_Warm-but-sharp Thresh support who runs the map from the shadows._\n\n"
        "## At a glance\n\n"
        "- **Age:** 30\n- **Role:** support\n- **Main:** Thresh\n\n"
        "## Backstory\n\n"
        f"{fields['backstory']}\n\n"
        "## Voice\n\n"
        "Friendly and quick on comms, a little teasing, never toxic; explains plays clearly.\n"
    )
    return {
        "persona_id": persona_id or enhanced_persona_id(),
        "fields": fields,
        "system_prompt": system_prompt,
        "markdown": markdown,
    }


_PLAIN_SENTENCES = (
    "You are a long-time support player who has spent years learning how fights are won before they start.",
    "You speak plainly and warmly, and you notice when a teammate is tilting before they say a word.",
    "You care more about the team's mood than about your own score, though you keep a close eye on both.",
    "When someone asks for advice you give one concrete thing to try next game rather than a lecture.",
    "You remember the small wins, a good hook or a well-timed lantern, and you bring them up later.",
    "You dislike blame in chat and steer conversations back to what the team can still control.",
    "Outside the game you work regular hours, cook on weekends and follow the pro scene casually.",
    "You answer in short sentences unless someone clearly wants a longer explanation of a play.",
)


def plain_text_persona(size: int = 8192, persona_id: str | None = None) -> dict[str, Any]:
    """Odd but legal, as seen live: `fields: {}`, and `system_prompt` identical to `markdown`,
    about `size` characters of plain text with no Markdown headings."""
    text = ""
    index = 0
    while True:
        paragraph = " ".join(_PLAIN_SENTENCES[(index + k) % len(_PLAIN_SENTENCES)] for k in range(4))
        candidate = f"{text}\n\n{paragraph}" if text else paragraph
        if len(candidate) > size:
            break
        text = candidate
        index += 1
    return {"persona_id": persona_id or enhanced_persona_id(), "fields": {}, "system_prompt": text, "markdown": text}


_POPULATION_NAMES = ("Jiwoo Park", "Lucas Ferreira", "Amara Nwosu", "Lena Vogel", "Mateo Ruiz", "Chen Wei")
_POPULATION_REGIONS = ("KR", "BR", "NA", "EUW", "EUW", "CN")
_POPULATION_RANKS = ("Challenger", "Silver", "Gold", "Platinum", "Bronze", "Diamond")


def population_result(count: int, prompt: str = "") -> dict[str, Any]:
    """A small but well-formed `result`: `count` personas and the blueprint they follow."""
    personas = []
    for index in range(count):
        name = _POPULATION_NAMES[index % len(_POPULATION_NAMES)]
        rank = _POPULATION_RANKS[index % len(_POPULATION_RANKS)]
        fields = {
            "region": _POPULATION_REGIONS[index % len(_POPULATION_REGIONS)],
            "rank": rank,
            "name": name,
            "backstory": f"A {rank} player who queues most evenings and keeps a notebook of matchups.",
        }
        personas.append(
            {
                "persona_id": f"p_{index + 1:02d}",
                "fields": fields,
                "system_prompt": f"You are {name}, a {rank} player. Stay in character.",
                "markdown": f"# {name}\n\n_{rank} player from {fields['region']}._\n",
            }
        )
    blueprint = {
        "domain": "generic",
        "order": ["region", "rank"],
        "fields": [
            {
                "name": "region",
                "kind": "categorical",
                "description": "server region",
                "parents": [],
                "categorical": {"weights": {"NA": 0.2, "EUW": 0.3, "KR": 0.2, "BR": 0.15, "CN": 0.15}},
                "conditionals": [],
            },
            {
                "name": "rank",
                "kind": "categorical",
                "description": "ranked tier",
                "parents": [],
                "categorical": {"weights": {rank: 1.0 for rank in _POPULATION_RANKS}},
                "conditionals": [],
            },
            {"name": "name", "kind": "text", "description": "display name", "parents": ["region"], "conditionals": []},
            {"name": "backstory", "kind": "text", "description": "short bio", "parents": ["rank"], "conditionals": []},
        ],
        "constraints": [],
        "rationale": f"A fake blueprint for: {prompt}" if prompt else "A fake blueprint.",
        "sources": [],
    }
    result: dict[str, Any] = {"personas": personas, "blueprint": blueprint}
    if count > 1:  # documented: only multi-persona populations carry the fidelity reports
        result["diversity"] = {"max_pairwise_similarity": 0.4, "mean_pairwise_similarity": 0.2, "duplicate_pairs": 0}
        result["marginals"] = []
    return result


# --- Scripts and faults -------------------------------------------------------------------------


@dataclass(frozen=True)
class Succeed:
    """The job ends `succeeded`.

    Enhancement: `persona` is sent verbatim (None: a fresh `sam_persona()`).
    Population: `result` is sent verbatim (None: `population_result(count)`).
    """

    persona: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Fail:
    """The job ends `failed` with `error` as a string (documented) or an object (also seen)."""

    error: str | dict[str, Any] = "provider_error"


Outcome = Succeed | Fail


@dataclass(frozen=True)
class Script:
    """How one job unfolds: `pending_for` seconds pending, then `running_for` running, then `outcome`."""

    pending_for: float = 1.0
    running_for: float = 5.0
    outcome: Outcome = field(default_factory=Succeed)


@dataclass
class Job:
    """One started job. Times are on the fake's clock; the status follows from them."""

    id: str
    kind: JobKind
    request: dict[str, Any]
    outcome: Outcome
    accepted_at: float
    running_at: float
    ended_at: float

    def status_at(self, now: float) -> str:
        if now >= self.ended_at:
            return "succeeded" if isinstance(self.outcome, Succeed) else "failed"
        if now >= self.running_at:
            return "running"
        return "pending"

    def changed_at(self, now: float) -> float:
        """When the job last changed status, for `updated_at`."""
        if now >= self.ended_at:
            return self.ended_at
        if now >= self.running_at:
            return self.running_at
        return self.accepted_at


@dataclass(frozen=True)
class StartRecord:
    """A billed start (accepted enhance or generate)."""

    kind: JobKind
    body: dict[str, Any]
    job_id: str
    request_id: str


@dataclass(frozen=True)
class RecordedRequest:
    """Every request the fake saw; `status` is None when the connection was dropped or cut."""

    method: str
    path: str
    body: Any
    status: int | None
    request_id: str


class ManualClock:
    """A clock a test moves by hand: `clock.advance(5)`; pass it as `FakeHumalike(clock=clock)`."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.now += seconds


@dataclass
class _Exchange:
    """What the middleware learns about the request being handled."""

    request_id: str
    body: Any = None


# Set by the middleware around each handler (aiohttp handles one request at a time per task).
_EXCHANGE: contextvars.ContextVar[_Exchange] = contextvars.ContextVar("humalike_fake_exchange")


# --- The fake -----------------------------------------------------------------------------------


class FakeHumalike:
    """All state of one fake Humalike service; `app` serves it."""

    def __init__(self, token: str = DEFAULT_TOKEN, clock: Callable[[], float] = time.monotonic) -> None:
        self.token = token
        self.clock = clock  # may be swapped before jobs start (see the property)
        self.base_url: str | None = None  # set by `serve()` while served
        self.user_id = DEFAULT_USER_ID
        self.count_cap = GENERATE_COUNT_CAP
        self.default_enhancement = Script(pending_for=1.0, running_for=5.0)
        self.default_population = Script(pending_for=1.0, running_for=10.0)
        # Merged into every successful JSON object answer / every enhancement persona object.
        self.extra_keys: dict[str, Any] = {}
        self.extra_persona_keys: dict[str, Any] = {}
        # A slow Humalike: each start is answered this many seconds of event-loop time after it
        # arrives (a real sleep: it is for many starts at once, on the real clock, kept short).
        self.start_latency = 0.0
        self.starts_in_flight = 0  # starts received and not yet answered
        self.most_starts_in_flight = 0
        self.jobs: dict[str, Job] = {}
        self.starts: list[StartRecord] = []
        self.polls: Counter[str] = Counter()
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[JobKind, deque[Script]] = {"enhancement": deque(), "population": deque()}
        self._faults = FaultQueue(default_error_body)
        self.app = self._build_app()

    @property
    def clock(self) -> Callable[[], float]:
        """Where job progress is read from. Swap it before starting jobs, not while they run."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        # `created_at`/`updated_at` are wall-clock strings: anchor this clock's readings to now.
        self._wall_offset = time.time() - clock()

    # Scripting ------------------------------------------------------------------------------

    def script_enhancement(
        self, pending_for: float = 1.0, running_for: float = 5.0, outcome: Outcome | None = None
    ) -> None:
        """The next accepted enhancement follows this script (queued, first in first out)."""
        self._scripts["enhancement"].append(Script(pending_for, running_for, outcome or Succeed()))

    def script_population(
        self, pending_for: float = 1.0, running_for: float = 10.0, outcome: Outcome | None = None
    ) -> None:
        """The next accepted population follows this script (queued, first in first out)."""
        self._scripts["population"].append(Script(pending_for, running_for, outcome or Succeed()))

    def fail_next_start(
        self,
        fault: int | Fault,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        kind: JobKind | None = None,
    ) -> None:
        """The next `times` starts (enhance or generate, or only `kind`) misbehave.

        An int is `Fault.error(status, body, headers)`. A refused start creates and bills nothing
        unless the fault has `commit=True`.
        """
        self._faults.add("start", fault, body, headers, times, kind)

    def fail_next_polls(
        self,
        fault: int | Fault,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        *,
        times: int = 1,
        job_id: str | None = None,
    ) -> None:
        """The next `times` polls (of any id, or only of `job_id`) misbehave. An int is an error status.

        Note that aiohttp's client silently retries an idempotent GET once after a dropped
        connection, so a single `Fault.drop()` on a poll is invisible to it: use `times=2`.
        """
        self._faults.add("poll", fault, body, headers, times, job_id)

    def fail_next_whoami(
        self, fault: int | Fault, body: Any = None, headers: Mapping[str, str] | None = None, *, times: int = 1
    ) -> None:
        """The next `times` whoami calls misbehave (for example 403)."""
        self._faults.add("whoami", fault, body, headers, times, None)

    def release_hangs(self) -> None:
        """Let every request held by a `hang` fault answer now (normally)."""
        self._faults.held.release_all()

    @property
    def hanging(self) -> int:
        return self._faults.held.count

    async def wait_hanging(self, count: int = 1) -> None:
        """Return once at least `count` requests are held by `hang` faults."""
        await self._faults.held.wait_for(count)

    def finish(self, job_id: str, outcome: Outcome | None = None) -> Job:
        """End a job now (on the fake's clock), optionally with a different outcome."""
        job = self.jobs[job_id]
        now = self.clock()
        job.running_at = min(job.running_at, now)
        job.ended_at = min(job.ended_at, now)
        if outcome is not None:
            job.outcome = outcome
        return job

    # Inspection -----------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        return self.jobs[job_id]

    def status(self, job_id: str) -> str:
        return self.jobs[job_id].status_at(self.clock())

    @property
    def billed_starts(self) -> int:
        return len(self.starts)

    # Internals ------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(ENHANCE_PATH, self._enhance)
        app.router.add_get(ENHANCEMENT_PATH, self._poll_enhancement)
        app.router.add_post(GENERATE_PATH, self._generate)
        app.router.add_get(POPULATION_PATH, self._poll_population)
        app.router.add_post(WHOAMI_PATH, self._whoami)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        exchange = _Exchange(request_id=f"req_{uuid.uuid4().hex[:20]}")
        reset = _EXCHANGE.set(exchange)
        status: int | None = None
        try:
            if not self._authorized(request):
                response: web.StreamResponse = _json(401, default_error_body(401))
            else:
                try:
                    response = await handler(request)
                except web.HTTPException as error:  # aiohttp's own 404 and 405, in our envelope
                    response = _json(error.status, error_body(_code_for(error.status), error.reason))
            response.headers["x-request-id"] = exchange.request_id
            status = None if isinstance(response, Dropped) else response.status
            return response
        finally:
            _EXCHANGE.reset(reset)
            log.info("%s %s -> %s (x-request-id %s)", request.method, request.path, status or "-", exchange.request_id)
            self.requests.append(
                RecordedRequest(request.method, request.path, exchange.body, status, exchange.request_id)
            )

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip(), self.token)

    # Starts ---------------------------------------------------------------------------------

    async def _enhance(self, request: web.Request) -> web.StreamResponse:
        return await self._start(request, "enhancement", _enhance_problems)

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._start(request, "population", self._generate_problems)

    async def _start(
        self,
        request: web.Request,
        kind: JobKind,
        problems_of: Callable[[Any], tuple[int, dict[str, Any]] | None],
    ) -> web.StreamResponse:
        body = await _read_json(request)
        self.starts_in_flight += 1
        self.most_starts_in_flight = max(self.most_starts_in_flight, self.starts_in_flight)
        try:
            if self.start_latency:
                await asyncio.sleep(self.start_latency)
            return await self._answer_start(request, kind, problems_of, body)
        finally:
            self.starts_in_flight -= 1

    async def _answer_start(
        self,
        request: web.Request,
        kind: JobKind,
        problems_of: Callable[[Any], tuple[int, dict[str, Any]] | None],
        body: Any,
    ) -> web.StreamResponse:
        async def accept() -> web.StreamResponse:
            problem = problems_of(body)
            if problem is not None:
                return _json(*problem)
            return self._success(self._accept(kind, body, _EXCHANGE.get().request_id))

        fault = self._faults.take("start", kind)
        if fault is None:
            return await accept()
        return await self._faults.apply(request, fault, accept)

    def _accept(self, kind: JobKind, body: dict[str, Any], request_id: str) -> dict[str, Any]:
        script = self._scripts[kind].popleft() if self._scripts[kind] else self._default(kind)
        now = self.clock()
        job = Job(
            id=str(uuid.uuid4()),
            kind=kind,
            request=dict(body),
            outcome=script.outcome,
            accepted_at=now,
            running_at=now + script.pending_for,
            ended_at=now + script.pending_for + script.running_for,
        )
        self.jobs[job.id] = job
        self.starts.append(StartRecord(kind, dict(body), job.id, request_id))
        return {"id": job.id, "status": "pending"}

    def _default(self, kind: JobKind) -> Script:
        return self.default_enhancement if kind == "enhancement" else self.default_population

    def _generate_problems(self, body: Any) -> tuple[int, dict[str, Any]] | None:
        if not isinstance(body, dict):
            return 422, _body_problem(body)
        details = _string_problems(body, "prompt") + _grounding_problems(body)
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int):
            details.append(_detail("count", "Input should be a valid integer", "int_type"))
        elif count < 1:
            details.append(_detail("count", "Input should be greater than or equal to 1", "greater_than_equal"))
        if details:
            return 422, error_body("validation_failed", "request validation failed", details=details)
        if count > self.count_cap:
            return 400, validation_error_body(
                "count", f"count must be at most {self.count_cap}", summary="count is over the batch limit"
            )
        return None

    # Polls ----------------------------------------------------------------------------------

    async def _poll_enhancement(self, request: web.Request) -> web.StreamResponse:
        return await self._poll(request, "enhancement")

    async def _poll_population(self, request: web.Request) -> web.StreamResponse:
        return await self._poll(request, "population")

    async def _poll(self, request: web.Request, kind: JobKind) -> web.StreamResponse:
        job_id = request.match_info["id"]
        self.polls[job_id] += 1

        async def answer() -> web.StreamResponse:
            if not ID_PATTERN.match(job_id):
                return _json(400, error_body("VALIDATION_ERROR", "invalid id"))
            job = self.jobs.get(job_id)
            if job is None or job.kind != kind:
                return _json(200, None)
            return self._success(self._poll_body(job))

        fault = self._faults.take("poll", job_id)
        if fault is None:
            return await answer()
        return await self._faults.apply(request, fault, answer)

    def _poll_body(self, job: Job) -> dict[str, Any]:
        now = self.clock()
        status = job.status_at(now)
        body: dict[str, Any] = {"id": job.id, "status": status}
        if job.kind == "enhancement":
            body["source"] = job.request.get("persona")
        else:
            body["prompt"] = job.request.get("prompt")
            body["count"] = job.request.get("count", 1)
        body["grounding"] = job.request.get("grounding", "off")
        if job.kind == "enhancement":
            body["persona"] = self._persona(job) if status == "succeeded" else None
        else:
            body["progress"] = self._progress(job, now) if status == "running" else None
            body["result"] = self._result(job) if status == "succeeded" else None
        body["error"] = (
            copy.deepcopy(job.outcome.error) if isinstance(job.outcome, Fail) and status == "failed" else None
        )
        body["created_at"] = self._iso(job.accepted_at)
        body["updated_at"] = self._iso(job.changed_at(now))
        return body

    def _persona(self, job: Job) -> dict[str, Any]:
        assert isinstance(job.outcome, Succeed)
        if job.outcome.persona is None:
            # Made once per job, so every poll of it answers the same persona.
            job.outcome = Succeed(persona=sam_persona())
        persona = copy.deepcopy(job.outcome.persona)
        assert persona is not None
        if isinstance(persona, dict):
            persona.update(self.extra_persona_keys)
        return persona

    def _result(self, job: Job) -> dict[str, Any]:
        assert isinstance(job.outcome, Succeed)
        if job.outcome.result is None:
            job.outcome = Succeed(result=population_result(job.request.get("count", 1), job.request["prompt"]))
        return copy.deepcopy(job.outcome.result) or {}

    @staticmethod
    def _progress(job: Job, now: float) -> dict[str, int]:
        total = job.request.get("count", 1)
        span = job.ended_at - job.running_at
        fraction = (now - job.running_at) / span if span > 0 else 1.0
        return {"produced": max(0, min(total, int(total * fraction))), "total": total}

    # Whoami ---------------------------------------------------------------------------------

    async def _whoami(self, request: web.Request) -> web.StreamResponse:
        await _read_json(request)

        async def answer() -> web.StreamResponse:
            return self._success({"user_id": self.user_id})

        fault = self._faults.take("whoami", None)
        if fault is None:
            return await answer()
        return await self._faults.apply(request, fault, answer)

    # Helpers --------------------------------------------------------------------------------

    def _success(self, body: dict[str, Any]) -> web.Response:
        return _json(200, {**body, **self.extra_keys})

    def _iso(self, at: float) -> str:
        moment = datetime.fromtimestamp(self._wall_offset + at, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- Request and response helpers ---------------------------------------------------------------

_INVALID_JSON = object()


async def _read_json(request: web.Request) -> Any:
    """The JSON body, None when there is none, `_INVALID_JSON` when it does not parse."""
    text = await request.text()
    if not text.strip():
        body: Any = None
    else:
        try:
            body = json.loads(text)
        except ValueError:
            body = _INVALID_JSON
    _EXCHANGE.get().body = None if body is _INVALID_JSON else body
    return body


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _code_for(status: int) -> str:
    return {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "ERROR")


def _detail(field: str, msg: str, type_: str) -> dict[str, Any]:
    return {"loc": [field], "msg": msg, "type": type_}


def _body_problem(body: Any) -> dict[str, Any]:
    if body is _INVALID_JSON:
        detail = {"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}
    elif body is None:
        detail = {"loc": ["body"], "msg": "Field required", "type": "missing"}
    else:
        detail = {"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}
    return error_body("validation_failed", "request validation failed", details=[detail])


def _string_problems(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    if name not in body:
        return [_detail(name, "Field required", "missing")]
    value = body[name]
    if not isinstance(value, str):
        return [_detail(name, "Input should be a valid string", "string_type")]
    if not value:
        return [_detail(name, "String should have at least 1 character", "string_too_short")]
    return []


def _grounding_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    if body.get("grounding", "off") in GROUNDINGS:
        return []
    return [_detail("grounding", "Input should be 'off', 'web' or 'research'", "enum")]


def _enhance_problems(body: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(body, dict):
        return 422, _body_problem(body)
    details = _string_problems(body, "persona") + _grounding_problems(body)
    if details:
        return 422, error_body("validation_failed", "request validation failed", details=details)
    return None


# --- Serving ------------------------------------------------------------------------------------


def serve(fake: FakeHumalike) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve `fake` on a free loopback port; yields the base URL without a trailing slash."""
    return serve_fake(fake)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.humalike", description="Run the fake Humalike API on the real clock."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bearer token to accept")
    parser.add_argument("--pending-for", type=float, default=1.0, help="seconds an enhancement stays pending")
    parser.add_argument("--running-for", type=float, default=5.0, help="seconds an enhancement stays running")
    parser.add_argument("--start-latency", type=float, default=0.0, help="seconds before each start is answered")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fake = FakeHumalike(token=args.token)
    fake.default_enhancement = Script(args.pending_for, args.running_for)
    fake.start_latency = args.start_latency
    log.info("Fake Humalike listening; set HUMALIKE_BASE_URL=http://%s:%s", args.host, args.port)
    web.run_app(fake.app, host=args.host, port=args.port, print=None, access_log=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
