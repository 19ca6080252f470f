"""Which model's vectors each side's texts get. An ordinary run has one source for both sides; a cross-model
run (`query_model`, docs/upgrade.md) reads queries from the query (new) model and documents from the base
(old, the index's) model, whose vectors never change. Every evaluator splits its source here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

VectorSource = Callable[[list[str]], np.ndarray]  # texts -> vectors (n, d)


@dataclass(frozen=True)
class SideVectors:
    """A source per side. Deliberately not callable: code that would ask for "the" vectors of a text without
    naming its side fails loudly instead of giving queries the index model's vectors in silence."""

    query: VectorSource
    document: VectorSource


def side_sources(vectors: VectorSource | SideVectors) -> tuple[VectorSource, VectorSource]:
    """(query source, document source): the same callable twice for an ordinary run."""
    if isinstance(vectors, SideVectors):
        return vectors.query, vectors.document
    return vectors, vectors
