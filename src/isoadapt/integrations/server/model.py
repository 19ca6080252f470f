"""What the server encodes with: the run's base encoder (our `Encoder`, its length-sorted batches, its
`--encode_backend`, `auto` included, and the prompts the run was trained with) and the adapter's
`transform`, the one function that decides what each side's vector is. Requests of both sides share the
base model's forward passes: each text carries its side's prompt (encoding/prompts.py), then its side of
the head. A cross-model run's queries go to its query model instead (`OpenedRun.side_encoder`): a pass
reads the texts of one model."""

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
from isoadapt.head_options import SIDES
from isoadapt.integrations.server.protocol import Catalog

log = logging.getLogger(__name__)


class ServedModel:
    """An adapter (`isoadapt.Adapter`) and the base encoder its head reads (a cross-model run: and its query
    model's, `query_encoder`), warmed up by one batch."""

    def __init__(self, adapter, encoder, name: str, query_encoder=None):
        self.adapter, self.encoder, self.name = adapter, encoder, name
        self.encoders = {"query": query_encoder or encoder, "document": encoder}  # each side's encoder
        # The SentenceTransformer's tokenizer (usage counts what the model reads), copied: a fast tokenizer
        # called from two threads with different truncation settings fails ("Already borrowed"), and the
        # encoder's thread calls it with truncation on.
        self.tokenizers = {side: copy.deepcopy(e.model.tokenizer) for side, e in self.encoders.items()}
        self.counting = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isoadapt-tokens")
        self.windows = {side: int(e.model.max_seq_length) for side, e in self.encoders.items()}
        self.pass_texts = min(e.batch_size for e in self.encoders.values())  # texts per forward pass, as `encode`
        self.catalog: Catalog | None = None  # known once warm_up has run one batch

    def warm_up(self) -> None:
        """One pass through each side's path, as a request takes it; the widths are read off its output."""
        widths = {}
        for side in SIDES:
            prompted, _ = self.read(["warm-up"], side)
            widths[side] = int(self.finish(self.encode_pass(side, prompted), side).shape[1])
        # A request may leave its side out only where both sides give the same vector: a head on both sides
        # AND one prompt for both (a prompted run's query and document texts differ before the head).
        same = self.adapter.adapt == "both" and self.encoder.prompts.query == self.encoder.prompts.document
        default = "document" if same else None
        self.catalog = Catalog(self.name, widths, default)

    def read(self, texts: list[str], side: str) -> tuple[list[str], list[int]]:
        """The texts as the model reads them on `side` (its prompt prepended), and each one's tokens
        (special tokens included) before truncation: the model reads min(count, window)."""
        prompted = self.encoders[side].prompts.texts(texts, side)
        counts = [len(ids) for ids in self.tokenizers[side](prompted, truncation=False, verbose=False)["input_ids"]]
        return prompted, counts

    def model_of(self, side: str) -> int:
        """Which base model encodes the side: texts of sides that share one may share a forward pass."""
        return id(self.encoders[side])

    def encode_pass(self, side: str, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        """One forward pass of the side's base model over prompted texts (of any side it encodes)."""
        return self.encoders[side].encode_pass(texts)

    def finish(self, base: np.ndarray, side: str) -> np.ndarray:  # (n, width)
        """A request's vectors: its base vectors through its side of the adapter."""
        return self.adapter.transform(base, side)


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
    if adapter.query_model and is_precomputed(adapter.query_model):
        raise InputError(
            f"serve {adapter.where}: its query model is {adapter.query_model}, precomputed vectors: there is "
            "no model to embed queries with; serve a run trained on a model"
        )
    backend = backend or adapter.config.get("encode_backend", "torch")
    probe = _probe(adapter.config) if backend == AUTO else None
    prompts = adapter.run.prompts  # the prompts the run was trained with
    encoder = open_encoder(base_model, cache_dir, show_progress=False, backend=backend, probe=probe, **prompts)
    adapter.run.check_weights(encoder.identity.get("weights_sha256"))
    adapter.run.check_width(encoder.dim)
    log.info("serve: %s on %s (%s backend)", adapter.where, base_model, encoder.backend)
    query_encoder = None
    if adapter.query_model:  # its queries on the query model (the run's backend), its documents on the base
        query_encoder = adapter.run.side_encoder("query", cache_dir)
        log.info("serve: queries on %s (%s backend)", adapter.query_model, query_encoder.backend)
    folder = adapter.export_folder or adapter.folder
    return ServedModel(adapter, encoder, name or Path(folder).name, query_encoder)


def _probe(config: dict):
    """What `auto` measures on when this CPU has no recorded choice: the run's validation split."""
    val = config.get("val_data")
    return probe_from_split(load_eval(val), val) if val and Path(val).is_file() else None
