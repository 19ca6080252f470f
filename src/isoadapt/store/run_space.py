"""A run's space in a vector store: base vectors (or texts, through the run's encoder) to the run's query
side or document side, L2-normalised as the run scores. `index`, `search` and LanceDB's `isoadapt`
embedding function all go through here, so a query and the documents it is scored against never take two
different paths: a both-sides head transforms both, a query-only head transforms queries and leaves
documents as base vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.head import to_side
from isoadapt.training.run_folder import OpenedRun


def to_space(run: OpenedRun, vectors: np.ndarray, side: str) -> np.ndarray:  # (n, dim) -> (n, width)
    """Base vectors on the `side` ("query" or "document") of the run's space, L2-normalised (head.to_side)."""
    return to_side(run.head, vectors, side)


def width(run: OpenedRun) -> int:
    """The width of the run's space, on both sides (a query-only head keeps the documents' width)."""
    return getattr(run.head, "out_dim", run.head.dim)


def check_encodes_text(run: OpenedRun, what: str) -> None:
    """A run on precomputed vectors (`vectors:NAME`) has no model: it cannot embed a text it was not given."""
    base = run.config["base_model"]
    if is_precomputed(base):
        raise InputError(
            f"--run_dir {run.folder}: was trained on precomputed vectors ({base}), which cannot embed {what}; "
            "give the query's vector with --vector FILE"
        )


@dataclass
class RunSpace:
    """A run opened for indexing and search: the run, its encoder, and its vectors through the cache."""

    run: OpenedRun
    encoder: object
    vectors: object  # texts -> base (or fine-tuned) vectors, through the embedding cache


def open_space(run: OpenedRun, cache_dir: Path) -> RunSpace:
    """The run's encoder (the slow part: a model load) and its vectors through the cache."""
    encoder = run.trained_encoder(cache_dir)
    return RunSpace(run, encoder, CachedVectors(encoder, cache_dir))


def query_vectors(space: RunSpace, queries: list[str]) -> np.ndarray:  # (n, width), through the query side
    return to_space(space.run, space.encoder.encode(space.encoder.prompts.texts(queries, "query")), "query")
