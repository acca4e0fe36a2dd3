"""What to tell a user when an enhancement does not produce a persona.

Each failure is stored on the job as a short code (plus an optional detail),
and turned into plain words here: what happened and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.humalike import errors


@dataclass(frozen=True)
class Failure:
    code: str
    detail: str | None = None


@dataclass(frozen=True)
class FailureText:
    title: str
    explanation: str
    retryable: bool


# Codes of our own; any other code is a failure category reported by Humalike for the job.
UNAUTHORIZED = "unauthorized"
OUT_OF_CREDITS = "out_of_credits"
FORBIDDEN = "forbidden"
INVALID_SKETCH = "invalid_sketch"
UNAVAILABLE = "unavailable"
INTERRUPTED = "interrupted"
LOST = "lost"
UNCONFIRMED = "unconfirmed"  # the start got no usable answer: the job may or may not exist


def failure_for_start_error(error: errors.HumalikeError) -> Failure:
    """A refused or unanswered start. Nothing was started, so nothing was charged."""
    if isinstance(error, errors.Unauthorized):
        return Failure(UNAUTHORIZED)
    if isinstance(error, errors.OutOfCredits):
        return Failure(OUT_OF_CREDITS)
    if isinstance(error, errors.Forbidden):
        return Failure(FORBIDDEN)
    if isinstance(error, errors.ValidationFailed):
        problems = "; ".join(p.message for p in error.problems if p.message)
        return Failure(INVALID_SKETCH, problems or error.message)
    if isinstance(error, errors.NetworkError | errors.UnexpectedResponse):
        return Failure(UNCONFIRMED)
    return Failure(UNAVAILABLE, error.trace_id)


def describe(failure: Failure) -> FailureText:
    code, detail = failure.code, failure.detail
    if code == UNAUTHORIZED:
        return FailureText(
            "Humalike rejected the bot's token",
            "Nothing was started. A server admin needs to put a valid `HUMALIKE_TOKEN` in the bot's "
            "settings and restart it (`python -m bot check` tests the token), then press **Retry**.",
            retryable=True,
        )
    if code == OUT_OF_CREDITS:
        return FailureText(
            "Out of Humalike credits",
            "The bot's Humalike account has no credits left for this, so nothing was started or charged. "
            "Whoever runs the bot can top it up in the Humalike dashboard; then press **Retry**.",
            retryable=True,
        )
    if code == FORBIDDEN:
        return FailureText(
            "The bot's Humalike token may not enhance personas",
            "Humalike accepted the token but does not allow it to use this endpoint. Nothing was started. "
            "Whoever runs the bot needs a token with access to persona enhancement.",
            retryable=True,
        )
    if code == INVALID_SKETCH:
        reason = f": {detail}" if detail else "."
        return FailureText(
            "Humalike could not read that sketch",
            f"It was rejected{reason} Nothing was charged. Change the sketch and run `/enhance` again.",
            retryable=False,
        )
    if code == UNAVAILABLE:
        trace = f" (trace id `{detail}`)" if detail else ""
        return FailureText(
            "Humalike is unavailable right now",
            f"It did not accept the job{trace}, so nothing was started or charged. Press **Retry** in a minute.",
            retryable=True,
        )
    if code == INTERRUPTED:
        return FailureText(
            "The bot restarted while starting this job",
            "Humalike had not confirmed the job when the bot went down, and to be sure no job is started "
            "(and paid for) twice it was not sent again. Press **Retry** to start it.",
            retryable=True,
        )
    if code == UNCONFIRMED:
        return FailureText(
            "Humalike is unavailable right now",
            "It did not answer when the bot started this job, so the bot cannot tell whether Humalike started "
            "(and billed) it. If no persona appears, press **Retry** in a minute.",
            retryable=True,
        )
    if code == LOST:
        return FailureText(
            "Humalike lost track of this job",
            "Humalike no longer knows the job it accepted, so its result cannot be collected. "
            "Press **Retry** to start a fresh enhancement.",
            retryable=True,
        )
    reason = f" (`{code}`{': ' + detail if detail else ''})"
    return FailureText(
        "Humalike could not finish this persona",
        f"The enhancement failed on Humalike's side{reason}. Failed jobs are not charged. "
        "Press **Retry** to start a fresh enhancement of the same sketch.",
        retryable=True,
    )
