"""One plan's inputs on one dataset: the data loaded once, every text encoded once, the base model
measured once, and validation scoring (what selects: validation NDCG@10 per query and the shift probes)."""

from __future__ import annotations

import time

import numpy as np

from isoadapt.data.formats import EvalSet, load_eval, load_sts, load_train
from isoadapt.data.sampling import sample_pairs
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.encoder import Encoder
from isoadapt.evaluation import evaluate_split, evaluate_sts, per_query_ndcg_at_10, split_vectors
from isoadapt.experiment.plan import PlanEntry
from isoadapt.experiment.plan_data import PlanRecipe


class PlanInputs:
    """Validation is scored for every row (it is what selects); test only reports."""

    def __init__(self, recipe: PlanRecipe, encoder: Encoder):
        self.recipe, self.encoder = recipe, encoder
        plan, data = recipe.plan, recipe.data
        self.started = time.perf_counter()
        self.splits: dict[str, EvalSet] = {"val": load_eval(data.dev), "test": load_eval(data.test)}
        self.shift = load_eval(data.shift) if data.shift else None
        self.probes = {name: load_eval(path) for name, path in data.probes.items()}
        self.sts = load_sts(data.sts) if data.sts else None
        self.sts_dev = load_sts(data.sts_dev) if data.sts_dev else None
        needs_full = any(e.train == "full" for e in plan.entries)
        self.train = {
            "smoke": load_train(data.train_smoke),
            "full": load_train(data.train_full) if needs_full else None,
        }
        self._prompt(encoder.prompts)
        self.query_encoder = self.query_vectors = self.cross_encoder = None  # a cross-model plan's (cross_rows)
        self.vectors = CachedVectors(encoder, self.cache_dir)
        self.vectors(self._every_text())  # encode once, up front: later steps only hit the cache
        self.baseline = {"test": evaluate_split(self.splits["test"], self.vectors)}
        self.base_sts = evaluate_sts(self.sts, self.vectors) if self.sts else None
        self.base_sts_dev = self.sts_dev_of(None)

    plan = property(lambda self: self.recipe.plan)
    data = property(lambda self: self.recipe.data)
    cache_dir = property(lambda self: self.recipe.cache_dir)
    staging = property(lambda self: self.recipe.staging)
    device = property(lambda self: self.recipe.device)

    def _prompt(self, prompts) -> None:
        """Every text as the encoder sees it on its side (encoding/prompts.py); nothing changes without prompts."""
        self.splits = {name: prompts.split(split) for name, split in self.splits.items()}
        self.shift = self.shift and prompts.split(self.shift)
        self.probes = {name: prompts.split(split) for name, split in self.probes.items()}
        self.sts, self.sts_dev = self.sts and prompts.sts(self.sts), self.sts_dev and prompts.sts(self.sts_dev)
        self.train = {name: examples and prompts.examples(examples) for name, examples in self.train.items()}

    def _every_text(self) -> list[str]:
        splits = [*self.splits.values(), *([self.shift] if self.shift else []), *self.probes.values()]
        needed = [t for s in splits for t in (*s.queries.values(), *s.corpus.values())]
        for examples in self.train.values():
            needed += [t for e in examples or [] for t in (e.query, e.positive, e.negative) if t]
        for pairs in (self.sts, self.sts_dev):
            needed += pairs.sentence1 + pairs.sentence2 if pairs else []
        return list(dict.fromkeys(needed))

    def pairs_of(self, entry: PlanEntry, seed: int | None) -> list:
        """The labelled pairs a row learns from: the whole file, or a learning curve's sample for this seed."""
        examples = self.train[entry.train]
        return examples if entry.pairs is None else sample_pairs(examples, entry.pairs, seed)

    def sts_dev_of(self, head) -> float | None:
        return evaluate_sts(self.sts_dev, self.vectors, head) if self.sts_dev else None

    def val_ndcg(self, head=None, documents=None, similarity: str = "cosine", split: EvalSet | None = None) -> float:
        """Validation NDCG@10 alone, as selection scores it (no diagnostics: only test reports them)."""
        per_query = self.val_per_query(head, documents, similarity, split)
        return float(np.mean(list(per_query.values())))

    def val_per_query(self, head=None, documents=None, similarity: str = "cosine", split: EvalSet | None = None):
        split = split or self.splits["val"]
        query_ids, queries, doc_ids, docs = split_vectors(split, self.vectors)
        docs = documents if documents is not None else docs
        return per_query_ndcg_at_10(split, query_ids, queries, doc_ids, docs, head, similarity)

    def validation(self, head=None, documents=None, similarity: str = "cosine") -> dict:
        """What selection may read of one state: validation NDCG@10 (mean and per query) and the probes."""
        per_query = self.val_per_query(head, documents, similarity)
        return {
            "val_ndcg": float(np.mean(list(per_query.values()))),
            "val_per_query": per_query,
            "probes": self.probe_ndcg(head, documents, similarity),
        }

    def probe_ndcg(self, head=None, documents=None, similarity: str = "cosine") -> dict[str, float | None]:
        """NDCG@10 on each shift probe, as validation scores it. Stored document vectors (NUDGE) exist for the
        validation corpus only: a probe over another corpus gets None for them."""
        scores: dict[str, float | None] = {}
        for name, split in self.probes.items():
            if documents is not None and list(split.corpus) != list(self.splits["val"].corpus):
                scores[name] = None
            else:
                scores[name] = self.val_ndcg(head, documents, similarity, split)
        return scores
