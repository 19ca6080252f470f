"""A run's space in a vector store: base vectors (or texts, through the run's encoder) to the run's query
side or document side, L2-normalised as the run scores. `index`, `search` and LanceDB's `isoadapt`
embedding function all go through here, so a query and the documents it is scored against never take two
different paths: a both-sides head transforms both, a query-only head transforms queries and leaves
documents as base vectors. In a cross-model run (`--query_model`) a query's text goes to the query model
and a document's to the base model (`OpenedRun.side_encoder`), and the documents' space is the base's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import nn

from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.head import side_head, to_side
from isoadapt.training.run_folder import OpenedRun


def to_space(run: OpenedRun, vectors: np.ndarray, side: str) -> np.ndarray:  # (n, dim) -> (n, width)
    """Base vectors on the `side` ("query" or "document") of the run's space, L2-normalised (head.to_side)."""
    return to_side(run.head, vectors, side)


def width(run: OpenedRun) -> int:
    """The width of the run's space, on both sides (a query-only head keeps the documents' width)."""
    return getattr(run.head, "out_dim", run.head.dim)


def input_width(head: nn.Module, side: str | None) -> int:
    """The width of the vectors a side starts from: the head's input where the side passes through it, else
    the documents' own width, which is the head's output (a query-only head writes the documents' space; in
    a cross-model run the query model's width may differ from it)."""
    return head.dim if side_head(head, side) is not None else getattr(head, "out_dim", head.dim)


def plain_documents(run: OpenedRun) -> str | None:
    """What a run's document vectors are when no head touches them (a query-only head over a frozen base):
    the base model's vectors, named by the model, its weights and its document prompt (JSON). Two such runs
    on one base (a cross-model run and the index's own run, say) score against the same documents, so a
    table one indexed serves the other's search. None when a head or a fine-tuned encoder makes them."""
    if run.fine_tuned is not None or side_head(run.head, "document") is not None or not run.recorded_weights:
        return None  # a head or a tuned encoder made them, or the run recorded no weights to match them by
    prompts = run.prompts
    documents = {
        "model": run.config["base_model"],
        "weights_sha256": run.recorded_weights,
        "document_prompt": prompts["document_prompt"],
    }
    return json.dumps(documents, sort_keys=True)


def check_encodes_text(run: OpenedRun, what: str, side: str = "query") -> None:
    """A run on precomputed vectors (`vectors:NAME`) has no model: it cannot embed a text it was not given."""
    model = run.side_model(side)
    if is_precomputed(model):
        raise InputError(
            f"--run_dir {run.folder}: was trained on precomputed vectors ({model}), which cannot embed {what}; "
            "give the query's vector with --vector FILE"
        )


class RunSpace:
    """A run opened for indexing and search: each side's encoder (`OpenedRun.side_encoder`), loaded on first
    use (one for both sides of a same-model run), and texts on either side of the run's space."""

    def __init__(self, run: OpenedRun, cache_dir: Path):
        self.run, self.cache_dir = run, cache_dir
        self._opened: dict[str, tuple[object, CachedVectors]] = {}  # side's model -> (encoder, its cached vectors)

    def _open(self, side: str) -> tuple[object, CachedVectors]:
        key = self.run.side_model(side)  # a same-model run's two sides share one model
        if key not in self._opened:
            encoder = self.run.side_encoder(side, self.cache_dir)
            self._opened[key] = (encoder, CachedVectors(encoder, self.cache_dir))
        return self._opened[key]

    def encoder(self, side: str):
        """The encoder of `side`'s texts (the slow part, a model load, done here once)."""
        return self._open(side)[0]

    def embed(self, texts: list[str], side: str, cached: bool = False) -> np.ndarray:  # (n, width)
        """Texts on `side` of the run's space: the side's prompt, its model (through the embedding cache when
        `cached`: a corpus, not a one-off query), then its side of the head."""
        encoder, cache = self._open(side)
        prompted = encoder.prompts.texts(list(texts), side)
        return to_space(self.run, cache(prompted) if cached else encoder.encode(prompted), side)


def open_space(run: OpenedRun, cache_dir: Path) -> RunSpace:
    return RunSpace(run, cache_dir)


def query_vectors(space: RunSpace, queries: list[str]) -> np.ndarray:  # (n, width), through the query side
    return space.embed(queries, "query")
