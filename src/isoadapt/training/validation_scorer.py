"""Validation NDCG@10 of the state being trained (what selection reads), and the vectors the selected
state is evaluated on."""

from __future__ import annotations

import numpy as np
import torch

from isoadapt.data.formats import EvalSet
from isoadapt.encoding.cache import CachedVectors, memoized
from isoadapt.evaluation import ndcg_at_10, split_vectors
from isoadapt.training.selection import ValidationSelector
from isoadapt.training.trainable import Trainable


class ValidationScorer:
    """Validation NDCG@10 of the trainable parts as they are now. Base vectors are read once; a fine-tuned
    encoder has moved after step 0, so its validation texts are encoded again each time (slow, but honest),
    and the last such encoding is kept for the final evaluation when that state is the one selected."""

    def __init__(self, trainable: Trainable, base_vectors: CachedVectors, split: EvalSet):
        self.trainable, self.split = trainable, split
        self.query_ids, self.query_vectors, self.doc_ids, self.doc_vectors = split_vectors(split, base_vectors)
        self.memo_step: int | None = None
        self.memo: dict[str, np.ndarray] = {}

    def __call__(self, step: int) -> float:
        queries, documents = self.query_vectors, self.doc_vectors
        tuned = self.trainable.tuned
        if tuned is not None and step > 0:
            tuned.model.eval()
            _, queries, _, documents = split_vectors(self.split, self._remember(step, tuned.encode))
            tuned.model.train()
        with torch.no_grad():
            value = ndcg_at_10(self.split, self.query_ids, queries, self.doc_ids, documents, self.trainable.head.eval())
        self.trainable.head.train()
        return value

    def _remember(self, step: int, encode):
        self.memo_step, self.memo = step, {}

        def encode_and_keep(texts: list[str]) -> np.ndarray:
            vectors = encode(texts)
            self.memo.update(zip(texts, vectors))
            return vectors

        return encode_and_keep


def tuned_vectors(
    trainable: Trainable, base_vectors: CachedVectors, scorer: ValidationScorer, selector: ValidationSelector
):
    """The vectors the selected state sees: the cached base ones for a frozen encoder, and also for a
    fine-tuned one restored to step 0 (its weights are then the base weights); else the fine-tuned encoder's,
    reusing the validation texts' vectors when the selected state is the last one scored."""
    tuned = trainable.tuned
    if tuned is None or selector.best["step"] == 0:
        return base_vectors
    return memoized(tuned.encode, dict(scorer.memo) if scorer.memo_step == selector.best["step"] else {})
