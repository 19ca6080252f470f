"""LanceDB's embedding function `isoadapt`: `table.search("text")` on a table written by `isoadapt index`
embeds the query on the run's query side, and `table.add([{"id": ..., "text": ...}])` embeds new documents
on its document side, exactly as `isoadapt search` and `isoadapt index` do.

LanceDB's stock `sentence-transformers` function calls `model.encode` for queries and documents alike, so it
cannot give a query-only head's two sides. `isoadapt index` records this function (run folder, cache folder,
head sha256, the table's own folder) in the table's schema; LanceDB finds functions by name in its registry.
It lives in the store, below the integrations, because `isoadapt index` writes it into the tables it makes;
users import it through `isoadapt.integrations.lancedb`, which registers it. LanceDB has no entry points for
embedding functions, so a process that did not import it meets LanceDB's bare KeyError: the name the tables
record is that error's message, `isoadapt (import isoadapt.integrations.lancedb to register it)`. (Tables
written before that name recorded `isoadapt`, still registered.)

    import lancedb
    import isoadapt.integrations.lancedb  # noqa: F401  (registers the function)

    table = lancedb.connect("runs/lancedb").open_table("documents")
    hits = table.search("python library for knowledge graphs").distance_type("cosine").limit(10).to_list()
"""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
from lancedb.embeddings import EmbeddingFunctionConfig, TextEmbeddingFunction, register
from pydantic import PrivateAttr

from isoadapt.errors import InputError
from isoadapt.store.run_space import RunSpace, open_space, width
from isoadapt.training.run_folder import OpenedRun, open_run

LEGACY_NAME = "isoadapt"  # the name tables written before NAME record
NAME = f"{LEGACY_NAME} (import isoadapt.integrations.lancedb to register it)"  # LanceDB's KeyError prints it


@register(NAME)
@register(LEGACY_NAME)
class AdapterEmbeddings(TextEmbeddingFunction):
    """The run's two sides as a LanceDB embedding function; the run and its model load on first use."""

    run_dir: str
    cache_dir: str
    head_sha256: str  # the head that indexed the table: a run trained again into the same folder is refused
    table: str = ""  # the table's folder (db/name.lance): its own recorded head must be this one (empty: older)
    max_retries: int = 0  # a local model: LanceDB's retries (made for rate-limited APIs) would only repeat an error
    _space: RunSpace | None = PrivateAttr(default=None)
    _run: OpenedRun | None = PrivateAttr(default=None)

    def opened_run(self) -> OpenedRun:
        if self._run is None:
            run = open_run(Path(self.run_dir))
            if run.head_sha256 != self.head_sha256:
                raise InputError(
                    f"{self.run_dir}: its head changed since the table was indexed (sha256 {self.head_sha256[:16]} "
                    f"then, {run.head_sha256[:16]} now); index the table again with this run"
                )
            self._check_table()
            self._run = run
        return self._run

    def _check_table(self) -> None:
        """The table's own record of its head, over this config (which a hand edit may point at another
        run): `isoadapt search` refuses the same pairing."""
        if not self.table:
            return
        folder = Path(self.table)
        metadata = lancedb.connect(str(folder.parent)).open_table(folder.stem).schema.metadata or {}
        recorded = metadata.get(b"isoadapt.head_sha256", b"").decode()
        if recorded != self.head_sha256:
            raise InputError(
                f"{folder}: was indexed with the head of {metadata.get(b'isoadapt.run', b'?').decode()} "
                f"(sha256 {recorded[:16]}), but its embedding function names {self.run_dir} (sha256 "
                f"{self.head_sha256[:16]}); search with the run that indexed it, or index again"
            )

    def ndims(self) -> int:
        return width(self.opened_run())

    def embed(self, texts, side: str) -> list[np.ndarray]:
        if self._space is None:
            self._space = open_space(self.opened_run(), Path(self.cache_dir))
        return list(self._space.embed(list(self.sanitize_input(texts)), side))  # each side on its model, prompt, head

    def compute_query_embeddings(self, query, *args, **kwargs) -> list[np.ndarray]:
        return self.embed(query, "query")

    def compute_source_embeddings(self, texts, *args, **kwargs) -> list[np.ndarray]:
        return self.embed(texts, "document")

    def generate_embeddings(self, texts, *args, **kwargs) -> list[np.ndarray]:
        return self.compute_source_embeddings(texts)

    def compute_query_embeddings_with_retry(self, *args, **kwargs) -> list[np.ndarray]:
        return self.compute_query_embeddings(*args, **kwargs)  # LanceDB wraps even max_retries=0 in a bare Exception

    def compute_source_embeddings_with_retry(self, *args, **kwargs) -> list[np.ndarray]:
        return self.compute_source_embeddings(*args, **kwargs)


def embedding_config(run: OpenedRun, cache_dir: Path, table: Path) -> EmbeddingFunctionConfig:
    """What `isoadapt index` records in a table (`table`: its folder): this function for the run, from
    `text` to `vector`."""
    function = AdapterEmbeddings.create(
        run_dir=str(run.folder.resolve()),
        cache_dir=str(Path(cache_dir).resolve()),
        head_sha256=run.head_sha256,
        table=str(Path(table).resolve()),
    )
    return EmbeddingFunctionConfig(source_column="text", vector_column="vector", function=function)
