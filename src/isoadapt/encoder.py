"""The frozen base encoder: loads a SentenceTransformer folder offline and knows its own fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from isoadapt.errors import InputError
from isoadapt.offline_models import model_identity, resolve_model
from isoadapt.onnx_backend import OnnxRunner, export_onnx

log = logging.getLogger(__name__)
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")  # how the frozen encoder runs; vectors are cached per backend


class Encoder:
    """Wraps a SentenceTransformer; `encode` returns float32 vectors, `fingerprint` names them for the cache."""

    def __init__(
        self,
        base_model: str,
        cache_dir: Path,
        device: str = "cpu",
        batch_size: int = 32,
        show_progress: bool = True,
        backend: str = "torch",
    ):
        self.name = base_model
        self.folder = resolve_model(base_model, cache_dir)  # fails fast, before the heavy import
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(self.folder), device=device, local_files_only=True)
        self.batch_size = batch_size
        self.show_progress = show_progress
        if backend not in BACKENDS:
            raise InputError(f"--encode_backend {backend}: expected one of {list(BACKENDS)}")
        self.backend = backend
        self.identity = {
            **model_identity(self.folder, cache_dir),
            "max_seq_length": self.model.max_seq_length,
            "backend": backend,
        }
        self.dim = int(self.model.get_embedding_dimension())
        self.calls = 0
        self.runner = None
        if backend != "torch":
            if device != "cpu":
                raise InputError(f"--encode_backend {backend}: runs on the CPU only; use --device cpu")
            onnx_path = export_onnx(
                self.model,
                self.identity["weights_sha256"],
                cache_dir,
                "onnx-int8" if backend == "onnx-int8" else "onnx",
            )
            self.runner = OnnxRunner(
                self.model,
                onnx_path,
                self.identity["normalize"],
                "openvino" if backend == "openvino" else "onnxruntime",
            )

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        self.calls += 1
        if self.runner is not None:
            show = self.show_progress and len(texts) > self.batch_size
            return self.runner.encode(
                list(texts),
                self.batch_size,
                lambda it: tqdm(it, desc=f"encoding ({self.backend})", unit="batch", disable=not show),
            )
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress and len(texts) > self.batch_size,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def open_encoder(
    base_model: str,
    cache_dir: Path,
    device: str = "cpu",
    batch_size: int = 32,
    show_progress: bool = True,
    backend: str = "torch",
):
    """The base for a --base_model name: a SentenceTransformer, or the precomputed vectors a user stored
    with `isoadapt prepare vectors` (`vectors:NAME`); both give vectors with the same interface."""
    from isoadapt.precomputed import PrecomputedEncoder, is_precomputed

    if is_precomputed(base_model):
        if backend != "torch":
            raise InputError(f"--encode_backend {backend}: {base_model} is precomputed, nothing is encoded")
        return PrecomputedEncoder(base_model, cache_dir)
    return Encoder(base_model, cache_dir, device, batch_size, show_progress, backend)
