"""`Adapter`: a trained head with the base model it reads, loaded from a run or an export folder. It adds
no maths of its own: the head is applied by `head.apply_head`, runs are read by `open_run`, exports by the
files `isoadapt export` writes (and written by `store/export.py`), the card by `store/model_card.py`.
It is used as a SentenceTransformer is: `encode_query("text")`, `encode_document(texts, batch_size=64)`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from isoadapt.api.export_files import read_export
from isoadapt.api.inputs import check_texts, check_vectors
from isoadapt.api.sentence_transformers_habits import EncodeOptions
from isoadapt.api.wording import speaks_python
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.fileio import read_json
from isoadapt.head import side_head, to_side
from isoadapt.head_options import SIDES
from isoadapt.metrics.normalize import l2_normalize
from isoadapt.owned_folders import check_output_folder, staged_folder
from isoadapt.store.export import export_run, sentence_transformer
from isoadapt.store.model_card import ModelCard, card_text
from isoadapt.store.run_space import input_width
from isoadapt.training.config import DEFAULT_CACHE_DIR
from isoadapt.training.run_folder import OpenedRun, open_run, write_run
from isoadapt.training.validation_plot import VALIDATION_PLOT

if TYPE_CHECKING:
    from torch import nn

    from isoadapt.encoding.encoder import Encoder


class Adapter:
    """A trained head (or a plan's post-hoc transform) and the base model whose vectors it reads.

    `Adapter.load(folder)` reads a run folder (`isoadapt train`, `isoadapt.fit`, a plan's run or post-hoc
    folder) or an export folder (`isoadapt export`). `transform` maps base vectors into the adapter's space;
    `encode_query` / `encode_document` embed texts with the base model first, as sentence-transformers'
    methods of the same names do (a string or a list, its keyword arguments). Outputs are L2-normalised, as
    the run scored them. A query-only head (`adapt == "query"`) leaves documents in the base space.
    `metrics` holds what the run measured, `card` its model card; `export` writes a SentenceTransformer
    folder, `to_sentence_transformer` returns that model. Bad input raises `isoadapt.errors.InputError`, one
    line naming the argument (and the index) and what is wrong."""

    def __init__(
        self,
        run: OpenedRun,
        metrics: dict,
        cache_dir: Path,
        export: Path | None = None,
        fine_tuned: bool | None = None,
    ):
        self.run = run  # the run as open_run reads it: head, settings, the base model's recorded weights
        self.metrics = metrics  # the run's metrics.json: val (and test) baseline vs trained, `validation`'s selection
        self.cache_dir = cache_dir  # where base models are unpacked and base vectors cached
        self.folder: Path | None = run.folder  # None once a fit's temporary run folder is gone
        self.export_folder = export  # the export folder it was loaded from, else None
        # The run tuned its encoder: the head reads that encoder's vectors, not the base model's.
        self.fine_tuned = run.fine_tuned is not None if fine_tuned is None else fine_tuned
        self._base = None  # the base model's encoder, loaded on first use and kept (encode, evaluate)
        self._model = None  # the encoder the head reads (or the exported SentenceTransformer), likewise
        self._query = None  # a cross-model run's query model, likewise

    # -- loading and saving ------------------------------------------------------------------------------

    @classmethod
    @speaks_python({"run_dir": "folder"})
    def load(cls, folder: str | Path, cache_dir: str | Path | None = None) -> Adapter:
        """A run folder (it holds config.json) or an export folder (it holds modules.json). `cache_dir` is
        where base models are unpacked (default ~/.cache/isoadapt, as the command line's)."""
        folder = Path(folder)
        cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        if (folder / "modules.json").is_file():
            return cls._from_export(folder, cache)
        run = open_run(folder)  # refuses anything that is not a completed run, with one line
        metrics = folder / "metrics.json"
        return cls(run, read_json(metrics) if metrics.is_file() else {}, cache)

    @classmethod
    def _from_export(cls, folder: Path, cache_dir: Path) -> Adapter:
        saved = read_export(folder)  # every file it reads checked here, not at the first encode
        run = OpenedRun(folder, saved.document["config"], saved.head, saved.head_sha256, saved.weights, saved.document)
        return cls(run, saved.metrics, cache_dir, export=folder, fine_tuned=saved.fine_tuned)

    @speaks_python()
    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write a copy that `Adapter.load` reads back: a run folder for an adapter loaded from a run (every
        `--run_dir` command takes it), an export folder for one loaded from an export. Built in a hidden
        sibling and renamed into place; `overwrite` replaces only the same kind of isoadapt folder."""
        folder = Path(folder)
        kind = "export" if self.export_folder is not None else "run"
        check_output_folder(folder, "save", kind, overwrite)
        if self.folder is not None and self.folder.resolve() == folder.resolve():
            raise InputError(f"save {folder}: is the folder this adapter was loaded from")
        with staged_folder(folder, kind) as staging:
            if self.export_folder is not None:
                shutil.copytree(
                    self.export_folder, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".isoadapt-*")
                )
            else:
                self._write_run(staging)
        return folder

    def _write_run(self, staging: Path) -> None:
        """What `open_run` reads (training/run_folder.py's write_run), with the tuned encoder if there is one."""
        write_run(staging, self.run.document, self.head, self.metrics, self.run.fine_tuned if self.fine_tuned else None)

    @speaks_python({"out": "folder"})
    def export(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the adapter as a SentenceTransformer folder, as `isoadapt export` does (base modules, a Dense
        module holding the head, Normalize; a Router for a query-only head; the model card as README.md):
        `SentenceTransformer(folder)` loads it anywhere, `Adapter.load(folder)` too."""
        folder = Path(folder)
        if self.export_folder is not None:  # already an export: a copy is the export
            return self.save(folder, overwrite)
        if self.folder is not None:
            return export_run(self.folder, folder, self.cache_dir, overwrite)
        with tempfile.TemporaryDirectory(prefix="isoadapt-export-") as scratch:  # a fit's run, gone from disk
            run = Path(scratch) / "run"
            self.save(run)
            return export_run(run, folder, self.cache_dir, overwrite)

    @speaks_python()
    def to_sentence_transformer(self):
        """The adapter as one `sentence_transformers.SentenceTransformer` on the CPU: what `export` saves
        (`encode_query` applies the head; for a query-only head `encode_document` gives the base vectors)."""
        if self.export_folder is not None:
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(str(self.export_folder), device="cpu", local_files_only=True)
        return sentence_transformer(self.run, self.cache_dir)

    # -- what it is --------------------------------------------------------------------------------------

    @property
    def card(self) -> ModelCard:
        """The model card (markdown in `.text`, shown as markdown in a notebook): the card of the export
        it was loaded from, else the one `export` would write."""
        if self.export_folder is not None and (self.export_folder / "README.md").is_file():
            return ModelCard((self.export_folder / "README.md").read_text(encoding="utf-8"), self.metrics)
        run_dir = self.folder or Path(f"adapter-{self.base_model.rsplit('/', 1)[-1]}")
        plot = self.folder is not None and (self.folder / VALIDATION_PLOT).is_file()
        text = card_text(self.run.document, self.metrics or None, self.head.config(), run_dir, run_dir, plot)
        return ModelCard(text, self.metrics)

    @property
    def head(self) -> nn.Module:
        """The head (a torch module), in eval mode."""
        return self.run.head

    @property
    def config(self) -> dict:
        """The run's settings (TrainConfig's fields)."""
        return self.run.config

    @property
    def base_model(self) -> str:
        return self.config["base_model"]

    @property
    def adapt(self) -> str:
        """Which texts pass through the head: "both" sides, or only the "query" (documents keep base vectors)."""
        return getattr(self.head, "adapt", "both")

    @property
    def query_model(self) -> str | None:
        """A cross-model run's query model (queries are encoded by it, documents by `base_model`), else None."""
        return self.run.query_model

    @property
    def dim(self) -> int:
        """The width of the vectors the head reads: the base model's, or a cross-model run's query model's."""
        return self.head.dim

    @property
    def out_dim(self) -> int:
        """The width of the adapted (query) vectors."""
        return getattr(self.head, "out_dim", self.head.dim)

    @property
    def where(self) -> str:
        return str(self.folder) if self.folder is not None else f"the adapter fitted on {self.base_model}"

    def __repr__(self) -> str:
        query = f", query_model={self.query_model!r}" if self.query_model else ""
        return f"Adapter({self.where!r}, base_model={self.base_model!r}{query}, adapt={self.adapt!r})"

    # -- using it ----------------------------------------------------------------------------------------

    @speaks_python()
    def transform(self, vectors: ArrayLike, side: str | None = None) -> np.ndarray:
        """Base vectors (n, dim) (or one vector (dim,)) -> adapted, L2-normalised vectors; (0, dim) gives
        (0, width). `side` is "query" or "document"; a query-only head needs it named (on the document side it
        returns the input, normalised), a both-sides head maps both alike and takes None (head.side_head: the
        one rule). An all-zero row
        is refused (InputError): it has no direction, and the head would map it to its bias direction, a
        unit vector that means nothing."""
        self.check_base_vectors()
        return self._project(vectors, side)

    def encode_query(self, sentences: str | list[str], **options) -> np.ndarray:
        """Texts -> adapted query vectors (n, out_dim), through the base model (or the export) first; one
        string gives one vector (out_dim,). The keyword arguments are `encode`'s."""
        return self.encode(sentences, task="query", **options)

    def encode_document(self, sentences: str | list[str], **options) -> np.ndarray:
        """Texts -> adapted document vectors; a query-only head gives the base vectors, normalised."""
        return self.encode(sentences, task="document", **options)

    @speaks_python()
    def encode(
        self,
        sentences: str | list[str],
        task: str | None = None,
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = True,
        device: str | None = None,
    ):
        """sentence-transformers' `encode` with its keyword arguments, on one side (`task="query"` or
        `"document"`: the head is side-specific, so there is no default side). A string gives one vector, a
        list (n, width), an empty list (0, width). `convert_to_tensor` gives a torch tensor, and
        `convert_to_numpy=False` a list of tensors, as sentence-transformers does. The vectors are always
        unit length, whatever `normalize_embeddings` says: the run scored by cosine, and the export ends in
        a Normalize module that sentence-transformers applies whatever the flag. `device` moves the model
        there (as sentence-transformers' `encode(device=...)` does); `show_progress_bar=None` shows progress
        on a terminal for long lists."""
        if task not in SIDES:
            raise InputError(
                f"encode: task={task!r}; name the side, task='query' or task='document' (or call "
                "encode_query / encode_document): a query-only head treats them differently"
            )
        if not isinstance(normalize_embeddings, bool):
            raise InputError(f"normalize_embeddings={normalize_embeddings!r}: expected True or False")
        options = EncodeOptions.checked(batch_size, show_progress_bar, convert_to_numpy, convert_to_tensor, device)
        texts, single = check_texts(f"encode_{task}: sentences", sentences)
        if not texts:
            vectors = np.empty((0, self.width(task)), dtype=np.float32)
        else:
            vectors = self._encode(texts, task, options)
        return options.output(vectors, single)

    def width(self, side: str) -> int:
        """The width of one side's vectors: the head's output, the documents' width (a query-only head writes
        the documents' space, and leaves them as they are)."""
        return self.out_dim

    def check_base_vectors(self) -> None:
        """The head reads the base model's vectors, unless the run fine-tuned its encoder."""
        if self.fine_tuned:
            raise InputError(
                f"{self.where}: the run fine-tuned its encoder, so the head reads that encoder's vectors, not "
                "the base model's; use encode_query / encode_document"
            )

    def _project(self, vectors: ArrayLike, side: str) -> np.ndarray:
        side_head(self.head, side)  # an unknown side, or none for a query-only head: refused before the input
        dim = input_width(self.head, side)  # a cross-model run: the query model's width, the documents' own
        reads = f"{self.where} reads {dim}-dim vectors of {self.run.side_model(side or 'document')}"
        array, single = check_vectors("transform", vectors, dim, reads)
        if not len(array):
            return np.empty((0, self.width(side)), dtype=np.float32)
        out = to_side(self.head, array, side)
        return out[0] if single else out

    def _encode(self, texts: list[str], side: str, options: EncodeOptions) -> np.ndarray:
        if self.export_folder is not None:
            model = self._exported_model()
            encode = model.encode_query if side == "query" else model.encode_document
            return l2_normalize(encode(texts, convert_to_numpy=True, **options.sentence_transformers()))
        model = self.run.side_model(side)
        if is_precomputed(model):
            raise InputError(
                f"{self.where}: its {'base' if model == self.base_model else 'query model'} is {model}, precomputed "
                "vectors: there is no model to encode text with; pass your vectors to transform()"
            )
        encoder = self.side_encoder(side)
        with options.applied_to(encoder):
            base = encoder.encode(encoder.prompts.texts(texts, side))
        return self._project(base, side)

    def side_encoder(self, side: str) -> Encoder:
        """The encoder of `side`'s texts (`OpenedRun.side_encoder`), loaded once: a cross-model run's query
        model for queries; else the encoder the head was trained over, shared by both sides (and evaluate)."""
        if side == "query" and self.query_model:
            if self._query is None:
                self._query = self.run.side_encoder("query", self.cache_dir, show_progress=True)
            return self._query
        if self._model is None:
            self._model = self.run.trained_encoder(self.cache_dir) if self.fine_tuned else self.base_encoder()
        return self._model

    def base_encoder(self) -> Encoder:
        """The base model (refused when its weights are not the ones the run was trained on), loaded once."""
        if self._base is None:
            self._base = self.run.base_encoder(self.cache_dir, show_progress=True)
        return self._base

    def _exported_model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.export_folder), device="cpu", local_files_only=True)
        return self._model
