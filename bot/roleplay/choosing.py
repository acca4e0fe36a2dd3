"""Who answers a message addressed to nobody when several personas could: one weighted draw.

Each candidate persona p weighs

    w(p) = talkativeness(p) / (1 + lines(p) + LAST_SPEAKER_PENALTY × [p said the last persona line])

where lines(p) is how many of the channel's last RECENT_LINES persona lines were p's. Then one
persona is drawn with probability w(p) / Σw.

- Talkativeness (0-100) sets the odds: when turns are shared evenly, 80 speaks twice as often as 40.
- Talkativeness 0 weighs 0: never drawn (such a persona speaks only when named or replied to).
- Every recent line a persona took lowers its weight, so one chattering persona cannot take over:
  with all of the last 6 lines its weight is an eighth of its talkativeness, and the quieter ones
  catch up. The last speaker is less likely again, yet never excluded: a lone talker still talks.

The draw uses the `random.Random` it is given, so tests fix it with a seed. O(candidates + RECENT_LINES).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

# How far back a persona's own lines count against it: about a round of a busy table.
RECENT_LINES = 6
# How much more the very last speaker is held back, beyond its one recent line.
LAST_SPEAKER_PENALTY = 1.0


def speaker_weights(talkativeness: Mapping[int, int], recent_speakers: Sequence[int]) -> dict[int, float]:
    """Each candidate's weight in the draw (see the module's formula), in the candidates' order.

    `talkativeness` maps each candidate's persona id to its talkativeness; `recent_speakers` are the
    persona ids of the channel's persona lines, oldest first (only the last RECENT_LINES count).
    """
    recent = recent_speakers[-RECENT_LINES:]
    lines: dict[int, int] = {}
    for persona_id in recent:
        lines[persona_id] = lines.get(persona_id, 0) + 1
    last = recent[-1] if recent else None
    return {
        persona_id: max(0, talk) / (1 + lines.get(persona_id, 0) + (LAST_SPEAKER_PENALTY if persona_id == last else 0))
        for persona_id, talk in talkativeness.items()
    }


def choose_speaker(talkativeness: Mapping[int, int], recent_speakers: Sequence[int], rng: random.Random) -> int | None:
    """The persona id drawn to answer; None when every candidate has talkativeness 0 (or there is none)."""
    weights = speaker_weights(talkativeness, recent_speakers)
    total = sum(weights.values())
    if total <= 0:
        return None
    point = rng.random() * total
    chosen = None
    for persona_id, weight in weights.items():
        if weight <= 0:
            continue
        chosen = persona_id
        point -= weight
        if point < 0:
            break
    return chosen  # the last weighted candidate when rounding leaves the point at the very end
