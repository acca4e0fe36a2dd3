"""Who answers a message addressed to nobody: a draw weighted by talkativeness, held back by recency."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from bot.roleplay.choosing import RECENT_LINES, choose_speaker, speaker_weights

SAM, MIRA, BO = 1, 2, 3


def table_night(talkativeness: dict[int, int], turns: int, seed: int) -> list[int]:
    """Who answered each of `turns` unaddressed messages in a row, each answer then a recent line."""
    rng = random.Random(seed)
    spoken: list[int] = []
    for _ in range(turns):
        chosen = choose_speaker(talkativeness, spoken, rng)
        assert chosen is not None
        spoken.append(chosen)
    return spoken


def test_a_persona_of_talkativeness_zero_is_never_drawn() -> None:
    spoken = table_night({SAM: 80, MIRA: 40, BO: 0}, turns=300, seed=11)

    assert BO not in spoken


def test_the_shares_follow_talkativeness_and_nobody_takes_every_turn() -> None:
    shares = Counter(table_night({SAM: 80, MIRA: 40}, turns=300, seed=11))

    assert shares[SAM] > shares[MIRA] > 0.2 * 300
    assert shares[SAM] < 0.75 * 300  # twice as talkative, yet held back by its own recent lines


def test_the_last_speaker_is_often_not_the_one_drawn() -> None:
    spoken = table_night({SAM: 50, MIRA: 50, BO: 50}, turns=200, seed=5)

    repeats = sum(1 for before, after in itertools.pairwise(spoken) if before == after)
    assert 0 < repeats < 0.25 * 200  # possible, as at any table, but far from always
    assert set(Counter(spoken)) == {SAM, MIRA, BO}


def test_a_chattering_persona_weighs_less_the_more_recent_lines_are_its_own() -> None:
    fresh = speaker_weights({SAM: 60, MIRA: 60}, [])
    after_one = speaker_weights({SAM: 60, MIRA: 60}, [MIRA, SAM])
    after_all = speaker_weights({SAM: 60, MIRA: 60}, [SAM] * RECENT_LINES)

    assert fresh == {SAM: 60.0, MIRA: 60.0}
    assert after_one[SAM] < after_one[MIRA] < fresh[MIRA]  # the last speaker is held back most
    assert after_all[SAM] == 60 / (1 + RECENT_LINES + 1)
    assert after_all[MIRA] == 60


def test_only_the_last_lines_count_against_a_persona() -> None:
    long_ago = [SAM] * 50 + [MIRA] * RECENT_LINES

    assert speaker_weights({SAM: 50, MIRA: 50}, long_ago)[SAM] == 50


def test_a_lone_talker_still_talks_however_much_it_said() -> None:
    assert choose_speaker({SAM: 30, MIRA: 0}, [SAM] * 20, random.Random(1)) == SAM


def test_nobody_is_drawn_when_every_candidate_has_talkativeness_zero_or_there_is_none() -> None:
    assert choose_speaker({SAM: 0, MIRA: 0}, [], random.Random(1)) is None
    assert choose_speaker({}, [SAM], random.Random(1)) is None


def test_the_same_seed_draws_the_same_speakers() -> None:
    talkativeness = {SAM: 70, MIRA: 30, BO: 50}

    assert table_night(talkativeness, turns=50, seed=9) == table_night(talkativeness, turns=50, seed=9)
