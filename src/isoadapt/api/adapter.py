"""`Adapter`: a trained head with the base model it reads, loaded from a run or an export folder. It adds
no maths of its own: the head is applied by `head.apply_head`, runs are read by `open_run`, exports by the
files `isoadapt export` writes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError
from isoadapt.fileio import read_json
from isoadapt.head import WEIGHTS_FILE, load_head, side_head, to_side
from isoadapt.metrics.normalize import l2_normalize
from isoadapt.owned_folders import check_output_folder, staged_folder
from isoadapt.store.export import ADAPTER_FILE, EXPORT_ADAPTER, check_modules
from isoadapt.training.config import DEFAULT_CACHE_DIR
from isoadapt.training.run_folder import OpenedRun, check_head_digest, open_run, write_run

if TYPE_CHECKING:
    from torch import nn

    from isoadapt.encoding.encoder import Encoder


class Adapter:
    """A trained head (or a plan's post-hoc transform) and the base model whose vectors it reads.

    `Adapter.load(folder)` reads a run folder (`isoadapt train`, `isoadapt.fit`, a plan's run or post-hoc
    folder) or an export folder (`isoadapt export`). `transform` maps base vectors into the adapter's space;
    `encode_query` / `encode_document` embed texts with the base model first. Outputs are L2-normalised,
    as the run scored them. A query-only head (`adapt == "query"`) leaves documents in the base space."""

    def __init__(
        self, run: OpenedRun, card: dict, cache_dir: Path, export: Path | None = None, fine_tuned: bool | None = None
    ):
        self.run = run  # the run as open_run reads it: head, settings, the base model's recorded weights
        self.card = card  # the run's metrics.json: val (and test) baseline vs trained, `validation`'s selection
        self.cache_dir = cache_dir  # where base models are unpacked and base vectors cached
        self.folder: Path | None = run.folder  # None once a fit's temporary run folder is gone
        self.export = export  # the export folder it was loaded from, else None
        # The run tuned its encoder: the head reads that encoder's vectors, not the base model's.
        self.fine_tuned = run.fine_tuned is not None if fine_tuned is None else fine_tuned
        self._base = None  # the base model's encoder, loaded on first use and kept (encode, evaluate)
        self._model = None  # the encoder the head reads (or the exported SentenceTransformer), likewise

    # -- loading and saving ------------------------------------------------------------------------------

    @classmethod
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
        recorded = folder / EXPORT_ADAPTER / ADAPTER_FILE
        if not recorded.is_file():
            raise InputError(
                f"{folder}: a SentenceTransformer folder without {EXPORT_ADAPTER}/{ADAPTER_FILE}; "
                "not written by `isoadapt export` (or by an older one: export the run again)"
            )
        saved = read_json(recorded)
        document = saved.get("run") if isinstance(saved, dict) else None
        if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
            raise InputError(f"{recorded}: expected an object with a 'run' object holding the run's 'config'")
        head = load_head(folder / EXPORT_ADAPTER)
        digest = check_head_digest(folder / EXPORT_ADAPTER / WEIGHTS_FILE, saved.get("head_sha256"), recorded)
        check_modules(folder, head)  # encode_* answers through the export's modules: they must carry this head
        weights = (document.get("encoder") or {}).get("weights_sha256")
        run = OpenedRun(folder, document["config"], head, digest, weights, document)
        card = saved.get("card") if isinstance(saved.get("card"), dict) else {}
        return cls(run, card, cache_dir, export=folder, fine_tuned=bool(saved.get("fine_tuned")))

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write a copy that `Adapter.load` reads back: a run folder for an adapter loaded from a run (every
        `--run_dir` command takes it), an export folder for one loaded from an export. Built in a hidden
        sibling and renamed into place; `overwrite` replaces only the same kind of isoadapt folder."""
        folder = Path(folder)
        kind = "export" if self.export is not None else "run"
        check_output_folder(folder, "save", kind, overwrite)
        if self.folder is not None and self.folder.resolve() == folder.resolve():
            raise InputError(f"save {folder}: is the folder this adapter was loaded from")
        with staged_folder(folder, kind) as staging:
            if self.export is not None:
                shutil.copytree(self.export, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".isoadapt-*"))
            else:
                self._write_run(staging)
        return folder

    def _write_run(self, staging: Path) -> None:
        """What `open_run` reads (training/run_folder.py's write_run), with the tuned encoder if there is one."""
        write_run(staging, self.run.document, self.head, self.card, self.run.fine_tuned if self.fine_tuned else None)

    # -- what it is --------------------------------------------------------------------------------------

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
    def dim(self) -> int:
        """The width of the base vectors the head reads."""
        return self.head.dim

    @property
    def out_dim(self) -> int:
        """The width of the adapted (query) vectors."""
        return getattr(self.head, "out_dim", self.head.dim)

    @property
    def where(self) -> str:
        return str(self.folder) if self.folder is not None else f"the adapter fitted on {self.base_model}"

    def __repr__(self) -> str:
        return f"Adapter({self.where!r}, base_model={self.base_model!r}, adapt={self.adapt!r})"

    # -- using it ----------------------------------------------------------------------------------------

    def transform(self, vectors: ArrayLike, side: str | None = None) -> np.ndarray:
        """Base vectors (n, dim) (or one vector (dim,)) -> adapted, L2-normalised vectors. `side` is "query"
        or "document"; a query-only head needs it named (on the document side it returns the input,
        normalised), a both-sides head maps both alike and takes None (head.side_head: the one rule)."""
        self.check_base_vectors()
        return self._project(vectors, side)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Texts -> adapted query vectors (n, out_dim), through the base model (or the export) first."""
        return self._encode(texts, "query")

    def encode_document(self, texts: list[str]) -> np.ndarray:
        """Texts -> adapted document vectors; a query-only head gives the base vectors, normalised."""
        return self._encode(texts, "document")

    def check_base_vectors(self) -> None:
        """The head reads the base model's vectors, unless the run fine-tuned its encoder."""
        if self.fine_tuned:
            raise InputError(
                f"{self.where}: the run fine-tuned its encoder, so the head reads that encoder's vectors, not "
                "the base model's; use encode_query / encode_document"
            )

    def _project(self, vectors: ArrayLike, side: str) -> np.ndarray:
        side_head(self.head, side)  # an unknown side, or none for a query-only head: refused before the input
        array = np.asarray(vectors, dtype=np.float32)
        single = array.ndim == 1
        array = array[None, :] if single else array
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise InputError(
                f"transform: vectors of shape {np.asarray(vectors).shape}; {self.where} reads {self.dim}-dim "
                f"vectors of {self.base_model} (shape (n, {self.dim}))"
            )
        if not np.isfinite(array).all():
            raise InputError("transform: the vectors hold NaN or infinite values")
        out = to_side(self.head, array, side)
        return out[0] if single else out

    def _encode(self, texts: list[str], side: str) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError(f"encode_{side}: expected a list of texts, got one string; wrap it in a list")
        texts = list(texts)
        if self.export is not None:
            model = self._exported_model()
            encode = model.encode_query if side == "query" else model.encode_document
            return l2_normalize(encode(texts, convert_to_numpy=True, show_progress_bar=False))
        if is_precomputed(self.base_model):
            raise InputError(
                f"{self.where}: its base is {self.base_model}, precomputed vectors: there is no model to encode "
                "text with; pass your vectors to transform()"
            )
        if self._model is None:
            self._model = self.run.trained_encoder(self.cache_dir) if self.fine_tuned else self.base_encoder()
        return self._project(self._model.encode(texts), side)

    def base_encoder(self) -> Encoder:
        """The base model (refused when its weights are not the ones the run was trained on), loaded once."""
        if self._base is None:
            self._base = self.run.base_encoder(self.cache_dir, show_progress=True)
        return self._base

    def _exported_model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.export), device="cpu", local_files_only=True)
        return self._model
