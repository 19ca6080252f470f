"""The frozen base encoder: loads a SentenceTransformer folder offline and knows its own fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from isoadapt.models import model_identity, resolve_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
log = logging.getLogger(__name__)


class Encoder:
    """Wraps a SentenceTransformer; `encode` returns float32 vectors, `fingerprint` names them for the cache."""

    def __init__(self, base_model: str, cache_dir: Path, device: str = "cpu", batch_size: int = 32, show_progress: bool = True):
        self.name = base_model
        self.folder = resolve_model(base_model, cache_dir)  # fails fast, before the heavy import
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(self.folder), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.identity = {**model_identity(self.folder, cache_dir), "max_seq_length": self.model.max_seq_length, "backend": "torch"}
        self.dim = int(self.model.get_embedding_dimension())
        self.calls = 0

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        self.calls += 1
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=self.show_progress and len(texts) > self.batch_size, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)
