"""Seeded, deterministic splitting and negative sampling shared by every source."""

from __future__ import annotations

import random
from collections.abc import Sequence


def split_ids(
    ids: Sequence[str], fractions: tuple[float, float, float], seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Shuffle sorted ids with a seeded RNG and cut them into train/dev/test by fraction."""
    ordered = sorted(ids)
    random.Random(seed).shuffle(ordered)
    n_train = round(len(ordered) * fractions[0])
    n_dev = round(len(ordered) * fractions[1])
    return ordered[:n_train], ordered[n_train : n_train + n_dev], ordered[n_train + n_dev :]


def sample_negative(rng: random.Random, pool: Sequence[str], relevant: set[str], tries: int = 100) -> str | None:
    """Draw one item of `pool` that is not in `relevant`; None when the pool has none."""
    for _ in range(tries):
        candidate = pool[rng.randrange(len(pool))]
        if candidate not in relevant:
            return candidate
    remaining = [item for item in pool if item not in relevant]
    return rng.choice(remaining) if remaining else None


def sample_pairs(examples: Sequence, n: int, seed: int) -> list:
    """A learning curve's point: `n` training pairs drawn with `seed` (every pair when n covers them all).
    Training and NUDGE draw through here, so one seed gives both the same pairs."""
    return list(examples) if n >= len(examples) else random.Random(seed).sample(list(examples), n)
