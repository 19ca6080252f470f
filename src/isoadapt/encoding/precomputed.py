"""Precomputed vectors as a base model: `--base_model vectors:NAME` reads the vectors that
`isoadapt prepare vectors --model NAME` stored in the embedding cache, for users whose embeddings come
from an API or a pipeline that already wrote them. It has the encoder's interface (name, identity,
fingerprint, dim, encode), so training, evaluation and plans run unchanged on it. It cannot encode a
text it was not given: asking for one is an error that says how to add it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from isoadapt.encoding.cache import EmbeddingCache, text_key
from isoadapt.encoding.prompts import NO_PROMPTS
from isoadapt.errors import InputError

PREFIX = "vectors:"


def is_precomputed(base_model: str) -> bool:
    return base_model.startswith(PREFIX)


def check_model_name(name: str, flag: str = "--model") -> str:
    """A provider/model name as the user gives it (`openai/text-embedding-3-small`): the cache's key."""
    if not name or name != name.strip() or any(ord(c) < 32 for c in name) or len(name) > 200:
        raise InputError(f"{flag} {name!r}: give the provider and model name, e.g. openai/text-embedding-3-small")
    return name


def precomputed_identity(model: str) -> dict:
    return {"precomputed": check_model_name(model)}


def precomputed_cache(model: str, cache_dir: Path, create: bool = False) -> EmbeddingCache:
    """The cache of one model's vectors; opened for reading (and checks) it writes nothing."""
    identity = precomputed_identity(model)
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return EmbeddingCache(Path(cache_dir), fingerprint, identity, create=create)


class PrecomputedEncoder:
    """The vectors one provider's model gave, looked up by text in the cache; nothing is encoded."""

    backend = "torch"  # the config's default value: no encoder runs, so there is no backend to choose
    backend_choice = None
    prompts = NO_PROMPTS  # the vectors are looked up by the texts they were stored with

    def __init__(self, base_model: str, cache_dir: Path):
        self.name = base_model
        self.model_name = check_model_name(base_model.removeprefix(PREFIX), "--base_model")
        self.folder = None  # no model folder: export and full fine-tuning refuse a precomputed base
        self.cache = precomputed_cache(self.model_name, cache_dir)
        self.identity = self.cache.identity
        self.fingerprint = self.cache.fingerprint
        if not len(self.cache):
            raise InputError(
                f"--base_model {base_model}: no vectors stored for {self.model_name!r} in {cache_dir}; "
                f"run `isoadapt prepare vectors --model {self.model_name} ...` first"
            )
        self.dim = self.cache.dim
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim), or an error naming what is missing
        self.calls += 1
        self.cache.refresh()
        missing = [t for t in texts if text_key(t) not in self.cache]
        if missing:
            raise InputError(
                f"--base_model {self.name}: {len(missing)} texts have no stored vector (first: {missing[0][:80]!r}); "
                "precomputed vectors cannot encode new text: add them with `isoadapt prepare vectors`"
            )
        return self.cache.get(texts, self.encode)
