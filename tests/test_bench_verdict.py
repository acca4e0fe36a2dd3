"""The wire benchmarks' one verdict rule: figures are judged only when every job went all the way."""

from __future__ import annotations

from bench.wire_common import Completeness, Target, verdict

TARGETS = [
    Target("peak RSS < 150 MB", met=True, figure="97 MB"),
    Target("CPU < 0.5 cores over the whole run", met=True, figure="0.21 cores"),
]


def run(started: int, finished: int, saved: int, refused: int, jobs: int = 1000) -> Completeness:
    return Completeness(jobs, {"started": started, "finished": finished, "saved": saved}, refused)


def judged(text: str) -> list[str]:
    """What each target line says of its target: met, missed, or not judged."""
    return [line.split(": ", 1)[1].split(" (")[0] for line in text.splitlines() if line.startswith("- ")]


def test_an_incomplete_run_is_missed_even_when_every_target_figure_is_met() -> None:
    text = verdict(run(started=629, finished=629, saved=629, refused=371), TARGETS)

    assert text.splitlines()[0] == (
        "Verdict: MISSED (incomplete run: 629 of 1000 started, 629 finished, 629 saved, 371 refused with 10062)"
    )
    assert judged(text) == ["not judged", "not judged"]
    assert "97 MB" in text  # the figures are still shown


def test_a_run_with_one_refusal_or_one_unsaved_job_is_incomplete() -> None:
    assert verdict(run(1000, 1000, 1000, refused=1), TARGETS).startswith("Verdict: MISSED (incomplete run")
    assert verdict(run(1000, 1000, 999, refused=0), TARGETS).startswith("Verdict: MISSED (incomplete run")


def test_only_a_complete_run_gets_met_and_missed_per_target() -> None:
    complete = run(1000, 1000, 1000, refused=0)

    met = verdict(complete, TARGETS)
    assert met.splitlines()[0] == (
        "Verdict: met (complete run: 1000 of 1000 started, 1000 finished, 1000 saved, 0 refused with 10062)"
    )
    assert judged(met) == ["met", "met"]

    one_missed = verdict(complete, [TARGETS[0], Target("CPU < 0.5 cores", met=False, figure="0.70 cores")])
    assert one_missed.startswith("Verdict: missed (1 of 2 targets)")
    assert judged(one_missed) == ["met", "missed"]
