"""The seeds' spread: one definition for every place that asks whether a margin is noise (the
recommendation's ties, the report, scripts/check_reports.py's tolerance).

**The seed spread of a row is the range of its per-seed values: max - min over seeds (0.0 for one seed).**
A margin smaller than it is one that reseeding the same configuration already moves by, so it decides
nothing. The range, not the standard deviation: plans run three seeds, where a standard deviation is
itself a noisy estimate and assumes a shape the seeds do not show; the range is what a reader checks
against the per-seed numbers in report.json. (The report's `mean ± std` columns are a standard deviation,
and say so; they are not the spread.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0.0 for one value): the tables' `mean ± std`, which
    describes the seeds; ties and tolerances use `seed_spread`."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def seed_spread(values: Iterable[float | None]) -> float:
    """max - min of the per-seed values that exist; 0.0 for one value or none."""
    present = [float(v) for v in values if v is not None]
    return max(present) - min(present) if present else 0.0
