"""What the server encodes with: the run's base encoder (our `Encoder`, its length-sorted batches, its
`--encode_backend`, `auto` included, and the prompts the run was trained with) and the adapter's
`transform`, the one function that decides what each side's vector is. Requests of both sides share one
base encode: each text carries its side's prompt (encoding/prompts.py), then its side of the head."""

from __future__ import annotations

import copy
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from isoadapt.data.formats import load_eval
from isoadapt.encoding.backend_choice import AUTO, probe_from_split
from isoadapt.encoding.encoder import open_encoder
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.integrations.server.protocol import SIDES, Catalog

log = logging.getLogger(__name__)


class ServedModel:
    """An adapter (`isoadapt.Adapter`) and the base encoder its head reads, warmed up by one batch."""

    def __init__(self, adapter, encoder, name: str):
        self.adapter, self.encoder, self.name = adapter, encoder, name
        # The SentenceTransformer's tokenizer (usage counts what the model reads), copied: a fast tokenizer
        # called from two threads with different truncation settings fails ("Already borrowed"), and the
        # encoder's thread calls it with truncation on.
        self.tokenizer = copy.deepcopy(encoder.model.tokenizer)
        self.counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isoadapt-tokens")
        self.window = int(encoder.model.max_seq_length)
        self.catalog: Catalog | None = None  # known once warm_up has run one batch

    def warm_up(self) -> None:
        """One batch through the encoder and each side of the head; the widths are read off its output."""
        base = self.encoder.encode(["warm-up"])  # (1, dim)
        widths = {side: int(self.adapter.transform(base, side).shape[1]) for side in SIDES}
        # A request may leave its side out only where both sides give the same vector: a head on both sides
        # AND one prompt for both (a prompted run's query and document texts differ before the head).
        same = self.adapter.adapt == "both" and self.encoder.prompts.query == self.encoder.prompts.document
        default = "document" if same else None
        self.catalog = Catalog(self.name, widths, default)

    def token_counts(self, texts: list[str], side: str) -> list[int]:
        """Tokens per text as the model reads it on `side` (its prompt prepended, special tokens included),
        before truncation: the model reads min(count, window)."""
        prompted = self.encoder.prompts.texts(texts, side)
        return [len(ids) for ids in self.tokenizer(prompted, truncation=False, verbose=False)["input_ids"]]

    def encode(self, requests: list[tuple[list[str], str]]) -> list[np.ndarray]:
        """(texts, side) per request -> their vectors: one base encode over every text of every request
        (length-sorted batches inside), then each request's rows through its side of the adapter."""
        texts = [text for group, side in requests for text in self.encoder.prompts.texts(group, side)]
        base = self.encoder.encode(texts)  # (n, dim): each side's prompt prepended, as the run encoded them
        out, start = [], 0
        for group, side in requests:
            out.append(self.adapter.transform(base[start : start + len(group)], side))  # (len(group), width)
            start += len(group)
        return out


def open_served(adapter, cache_dir: Path, backend: str | None = None, name: str | None = None) -> ServedModel:
    """The adapter's base encoder, loaded and checked against the run (weights, width) before any port is
    bound. A run on precomputed vectors (`vectors:`) has no model to embed text with, and a run that tuned
    its encoder is served from its export: both are refused with one line."""
    base_model = adapter.base_model
    if is_precomputed(base_model):
        raise InputError(
            f"serve {adapter.where}: its base is {base_model}, precomputed vectors: there is no model to embed "
            "text with; serve a run trained on a model, or use Adapter.transform on your own vectors"
        )
    if adapter.fine_tuned:
        raise InputError(f"serve {adapter.where}: the run fine-tuned its encoder; serve a frozen-encoder adapter")
    backend = backend or adapter.config.get("encode_backend", "torch")
    probe = _probe(adapter.config) if backend == AUTO else None
    prompts = adapter.run.prompts  # the prompts the run was trained with
    encoder = open_encoder(base_model, cache_dir, show_progress=False, backend=backend, probe=probe, **prompts)
    adapter.run.check_weights(encoder.identity.get("weights_sha256"))
    adapter.run.check_width(encoder.dim)
    log.info("serve: %s on %s (%s backend)", adapter.where, base_model, encoder.backend)
    folder = adapter.export_folder or adapter.folder
    return ServedModel(adapter, encoder, name or Path(folder).name)


def _probe(config: dict):
    """What `auto` measures on when this CPU has no recorded choice: the run's validation split."""
    val = config.get("val_data")
    return probe_from_split(load_eval(val), val) if val and Path(val).is_file() else None
