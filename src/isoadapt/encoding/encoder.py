"""The frozen base encoder: loads a SentenceTransformer folder offline and knows its own fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from isoadapt.encoding.backend_choice import AUTO, BACKEND_CHOICES, BACKENDS, Probe, choose_encoder
from isoadapt.encoding.offline_models import model_identity, resolve_model
from isoadapt.encoding.precomputed import PrecomputedEncoder, is_precomputed
from isoadapt.encoding.prompts import resolve_prompts
from isoadapt.errors import InputError
from isoadapt.progress import progress

log = logging.getLogger(__name__)
TOKEN_BUDGET = 512  # padded tokens per batch (every backend): near the matmul rate here for short and long texts
# What one more forward pass costs, in padded tokens: MiniLM on one thread here costs 14.7 ms a pass plus
# 0.41 ms a padded token (36 tokens); cuts chosen with anything from 20 to 60 cost within 1% of the best.
BATCH_OVERHEAD_TOKENS = 32


def length_batches(
    lengths: Sequence[int], max_tokens: int, max_texts: int, overhead: float = BATCH_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Indices of texts grouped longest first into batches of at most `max_texts` texts and `max_tokens`
    padded tokens (at least one text each), cut where the work is least: each batch costs `overhead` plus
    its padded tokens (its size times its longest text), and the cuts minimise the sum.

    sentence-transformers sorts one call's texts by characters and cuts fixed batches of 32: on Semanlink
    and STS-B that computes 1.4x-1.7x the texts' own tokens in padding, and a batch of 32 long texts runs
    below the matmul rate. Sorting by tokens and capping padded tokens pads 1% on Semanlink's test split and
    keeps every batch near the rate (bench/encode_efficiency.py: 2.08x the texts/s on its sample; 1.52x on
    the demo's first encode). Padding does not change a text's vector: each is pooled over its own tokens.
    Filling each batch up to the caps pads a small call badly (a served request of 17 texts from 3 to 27
    tokens: one batch padded to 27, twice its tokens); the cheapest cuts split it where a length drops by
    more than a forward pass costs (bench/README.md, section 14). A sorted order's best cuts are found by
    dynamic programming over where the last batch starts: O(texts x max_texts).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    widths = [lengths[i] for i in order]  # non-increasing: a batch's first text sets its padded length
    best, start_of = [0.0] * (len(order) + 1), [0] * (len(order) + 1)  # best[k]: cheapest cuts of the first k
    for end in range(1, len(order) + 1):
        best[end] = float("inf")
        for start in range(end - 1, max(0, end - max_texts) - 1, -1):
            size = end - start
            if size > 1 and size * widths[start] > max_tokens:
                break  # an earlier start is longer and larger: over the budget too
            cost = best[start] + overhead + size * widths[start]
            if cost < best[end]:
                best[end], start_of[end] = cost, start
    batches, end = [], len(order)
    while end:
        batches.append(order[start_of[end] : end])
        end = start_of[end]
    return batches[::-1]


class Encoder:
    """Wraps a SentenceTransformer; `encode` returns float32 vectors, `fingerprint` names them for the cache.
    `prompts` says what each side's texts are prefixed with before they reach `encode` (encoding/prompts.py):
    `encode` itself encodes the strings it is given."""

    backend_choice: dict | None = None  # what `--encode_backend auto` measured to pick `backend`; None when named

    def __init__(
        self,
        base_model: str,
        cache_dir: Path,
        device: str = "cpu",
        batch_size: int = 32,
        show_progress: bool = True,
        backend: str = "torch",
        query_prompt: str | None = None,
        document_prompt: str | None = None,
    ):
        self.name = base_model
        self.folder = resolve_model(base_model, cache_dir)  # fails fast, before the heavy import
        self.prompts = resolve_prompts(self.folder, query_prompt, document_prompt)
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
            from isoadapt.encoding.onnx_backend import OnnxRunner, export_onnx  # torch.onnx: only for this backend

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
        texts = list(texts)
        batches = length_batches(self.token_lengths(texts), TOKEN_BUDGET, self.batch_size)
        show = self.show_progress and len(texts) > self.batch_size
        label = "encoding" if self.runner is None else f"encoding ({self.backend})"
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        with progress(total=len(texts), desc=label, unit="text", show=show) as bar:
            for batch in batches:
                vectors[batch] = self.encode_pass([texts[i] for i in batch])
                bar.update(len(batch))
        return vectors

    def encode_pass(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        """One forward pass over the texts as given: `encode` cuts its passes itself; the server's batcher
        chooses its own from every request waiting (integrations/server/batching.py)."""
        if self.runner is not None:
            return self.runner.encode(texts)
        return self.model.encode(texts, batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True)

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Tokens per text as the model sees them (special tokens included, cut at max_seq_length)."""
        encoded = self.model.tokenizer(texts, truncation=True, max_length=self.model.max_seq_length)
        return [len(ids) for ids in encoded["input_ids"]]


DESCRIBED = (
    "name",
    "identity",
    "fingerprint",
    "dim",
    "backend",
    "backend_choice",
    "folder",
    "prompts",
)  # what the cache and a run need


def describe_encoder(encoder) -> dict:
    """An encoder as the cache and a run folder see it: plain data that pickles small."""
    return {n: getattr(encoder, n) for n in DESCRIBED}


class CachedFirst:
    """An encoder described by `describe_encoder` (which is all the cache needs), whose model is built only
    when a text turns out not to be cached. A plan encodes every text before its trials start, so a Ray
    trial normally never loads the model: one model load saved per trial process."""

    def __init__(self, described: dict, build: Callable[[], object]):
        self.__dict__.update(described)
        self._build, self._model = build, None

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        if self._model is None:
            model = self._build()
            if model.fingerprint != self.fingerprint:  # another node's model folder: its vectors must not mix in
                raise InputError(
                    f"--base_model {self.name}: the model loaded here ({model.identity}) is not the one that "
                    f"encoded the plan ({self.identity}); give every node the same model files"
                )
            self._model = model
        return self._model.encode(texts)


def open_encoder(
    base_model: str,
    cache_dir: Path,
    device: str = "cpu",
    batch_size: int = 32,
    show_progress: bool = True,
    backend: str = "torch",
    probe: Probe | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
):
    """The base for a --base_model name: a SentenceTransformer, or the precomputed vectors a user stored
    with `isoadapt prepare vectors` (`vectors:NAME`); both give vectors with the same interface. `auto`
    resolves to a named backend here (measured on `probe` the first time on this CPU and model). The
    prompts (None: the model's own) are the encoder's `prompts`."""
    if backend not in BACKEND_CHOICES:
        raise InputError(f"--encode_backend {backend}: expected one of {list(BACKEND_CHOICES)}")
    if is_precomputed(base_model):
        if backend != "torch":
            raise InputError(f"--encode_backend {backend}: {base_model} is precomputed, nothing is encoded")
        if query_prompt or document_prompt:
            raise InputError(f"--query_prompt/--document_prompt: {base_model} is precomputed, nothing is encoded")
        return PrecomputedEncoder(base_model, cache_dir)
    prompts = {"query_prompt": query_prompt, "document_prompt": document_prompt}
    if backend == AUTO:
        return choose_encoder(
            lambda name: Encoder(base_model, cache_dir, device, batch_size, show_progress, name, **prompts),
            cache_dir,
            device,
            probe,
        )
    return Encoder(base_model, cache_dir, device, batch_size, show_progress, backend, **prompts)
