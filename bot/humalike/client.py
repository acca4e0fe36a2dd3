"""The Humalike HTTP client: start an enhancement, poll it, check the token.

Built on aiohttp rather than httpx: discord.py already depends on it, and per
poll it spends a fraction of the CPU of the httpx line the openai SDK installs
(0.08-0.17 ms against 0.58-0.64 ms, `python -m bench.http_clients`), which is
what lets a thousand jobs in flight poll from one process. One `ClientSession`
is shared by every call.
"""

from __future__ import annotations

from bot.humalike.http import HumalikeHTTP, parse_model, parse_retry_after
from bot.humalike.models import Enhancement, Grounding, Population, StartedJob

ENHANCE_PATH = "/v1/personas/actions/enhance"
ENHANCEMENT_PATH = "/v1/personas/repositories/Enhancement/by-id/{id}"
GENERATE_PATH = "/v1/personas/actions/generate"
POPULATION_PATH = "/v1/personas/repositories/Population/by-id/{id}"


class HumalikeClient(HumalikeHTTP):
    """Enhancements and populations: billed starts, free polls (and `whoami`, from the base)."""

    async def start_enhancement(self, sketch: str, grounding: Grounding) -> StartedJob:
        """Start a billed enhancement. Never retried here: a retry could start a second job."""
        body = await self._request("POST", ENHANCE_PATH, {"persona": sketch, "grounding": grounding.value})
        return parse_model(StartedJob, body)

    async def get_enhancement(self, enhancement_id: str) -> Enhancement | None:
        """Poll a job (free). `None` when the service answers `null` (an unknown id)."""
        body = await self._request("GET", ENHANCEMENT_PATH.format(id=enhancement_id))
        return None if body is None else parse_model(Enhancement, body)

    async def start_population(self, prompt: str, count: int, grounding: Grounding) -> StartedJob:
        """Start a billed population (a cast). Never retried here, like an enhancement."""
        body = await self._request(
            "POST", GENERATE_PATH, {"prompt": prompt, "count": count, "grounding": grounding.value}
        )
        return parse_model(StartedJob, body)

    async def get_population(self, population_id: str) -> Population | None:
        """Poll a population (free). `None` when the service answers `null`."""
        body = await self._request("GET", POPULATION_PATH.format(id=population_id))
        return None if body is None else parse_model(Population, body)


__all__ = ["HumalikeClient", "parse_retry_after"]
