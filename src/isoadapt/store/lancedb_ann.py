"""`isoadapt index --ann`: an ANN index on the table's vectors, and the refine factor that keeps its top k
equal to exact search, measured on the split's own queries and recorded on the table.

LanceDB's IVF_PQ index answers from compressed vectors, whose cosines were off by up to 0.78 here; asked
for refine_factor x k candidates it re-ranks them on the stored vectors. Which factor is enough depends on
the data, so it is measured, not guessed: every query of the split is searched exactly and through the
index with factors 1, 2, 5, ... until every query's top k (ids, in order) equals the exact one. That factor
is recorded in the vector field's metadata, and `isoadapt search --ann` without a number uses it. It holds
for the table as written: rows added later (LanceDB's `table.add`) are not in the index until it is built
again, and queries unlike the split's may need more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from isoadapt.errors import InputError

log = logging.getLogger(__name__)

REFINE_FACTORS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # tried in order; the first that holds is kept
REFINE_KEY = "isoadapt.ann_refine_factor"  # in the vector field's metadata
CHECKED_KEY = "isoadapt.ann_checked"  # what the factor was measured on: "<queries> queries, top <k>"
MIN_ROWS = 256  # IVF_PQ trains 256 centroids per sub-vector: fewer rows cannot train it
INDEX_TYPE = "IVF_PQ"


@dataclass(frozen=True)
class AnnIndex:
    """What `index --ann` built: the index type, the refine factor found and what it was checked on."""

    index_type: str
    refine_factor: int
    queries: int
    k: int


def check_ann_rows(rows: int) -> None:
    """Refused before anything is written: too few rows to train the index."""
    if rows < MIN_ROWS:
        raise InputError(
            f"--ann: {rows} documents are too few for an {INDEX_TYPE} index (it trains on at least {MIN_ROWS}); "
            "search them exactly (index without --ann)"
        )


def top_ids(handle, vector: np.ndarray, k: int, refine_factor: int | None) -> list[str]:
    query = handle.search(vector).distance_type("cosine").limit(k).select(["id"])
    query = query.refine_factor(refine_factor) if refine_factor else query.bypass_vector_index()
    return [row["id"] for row in query.to_list()]


def build_ann(handle, queries: np.ndarray, vector_column: str, k: int = 10) -> AnnIndex:  # queries: (n, width)
    """Build the index, find the smallest refine factor whose top k equals exact search for every query,
    and record it on the vector field."""
    handle.create_index(metric="cosine", vector_column_name=vector_column, index_type=INDEX_TYPE)
    exact = [top_ids(handle, q, k, None) for q in queries]
    for factor in REFINE_FACTORS:
        misses = sum(top_ids(handle, q, k, factor) != ids for q, ids in zip(queries, exact))
        log.info("--ann: refine factor %d: %d of %d queries differ from exact search", factor, misses, len(queries))
        if misses == 0:
            checked = f"{len(queries)} queries, top {k}"
            handle.update_field_metadata(
                {"path": vector_column, "metadata": {REFINE_KEY: str(factor), CHECKED_KEY: checked}}
            )
            return AnnIndex(INDEX_TYPE, factor, len(queries), k)
    raise InputError(
        f"--ann: no refine factor up to {REFINE_FACTORS[-1]} gives the exact top {k} for every query of the "
        "split; search this table exactly (index without --ann)"
    )


def recorded_refine_factor(handle, vector_column: str) -> int | None:
    """The refine factor `index --ann` measured for this table, or None."""
    metadata = handle.schema.field(vector_column).metadata or {}
    value = metadata.get(REFINE_KEY.encode())
    return int(value) if value is not None and value.isdigit() else None
