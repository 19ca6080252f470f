"""An embedded vector store for a trained run: LanceDB, a folder on disk, no server.

`index` writes a split's corpus as (id, text, vector): adapted vectors for a both-sides head, base vectors
for a query-only head (the index a user already has). `search` encodes a query, puts it through the head
and asks LanceDB for the nearest documents by cosine. Every vector is L2-normalised, as the run scores.
A table remembers the sha256 of the head that made it, and search refuses another head: a query adapted
by one head against documents adapted by another would rank silently wrong.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from isoadapt.data.formats import check_texts_are_real, load_eval
from isoadapt.encoding.cache import CachedVectors
from isoadapt.errors import InputError, describe
from isoadapt.head import apply_head, document_head
from isoadapt.owned_folders import check_folder_path, check_replaceable
from isoadapt.progress import progress
from isoadapt.training.run_folder import OpenedRun, open_run

INDEX_KIND = "isoadapt-index"  # table metadata: the tables isoadapt wrote (and may replace)
CHUNK = 8192  # documents encoded and adapted at once
TABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")


@dataclass
class RunSpace:
    """A run opened for indexing and search: the run, and its (base or fine-tuned) vectors through the cache."""

    run: OpenedRun
    encoder: object
    vectors: object  # texts -> base (or fine-tuned) vectors


def open_space(run: OpenedRun, cache_dir: Path) -> RunSpace:
    """The run's encoder (the slow part: a model load) and its vectors through the cache."""
    encoder = run.trained_encoder(cache_dir)
    return RunSpace(run, encoder, CachedVectors(encoder, cache_dir))


def _unit(vectors: np.ndarray) -> np.ndarray:  # (n, d) -> rows of norm 1
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def _connect(db: Path):
    os.environ.setdefault("LANCEDB_LOG", "error")  # lance's own notices ("creating a new dataset") are not ours
    import lancedb

    return lancedb.connect(str(db))


def _table_kind(connection, name: str) -> bytes | None:
    """The isoadapt kind in a table's metadata; None for a table of another writer, a folder that only
    looks like a table, or a table LanceDB cannot open."""
    try:
        metadata = connection.open_table(name).schema.metadata or {}
    except Exception:  # lance raises its own types (ValueError, OSError, RuntimeError) for a folder it cannot read
        return None
    return metadata.get(b"isoadapt.kind")


def check_table_name(table: str) -> None:
    """A plain ASCII name: LanceDB refuses others (after the corpus was encoded), and a path (`../x`) would
    reach outside --db."""
    if not TABLE_NAME.fullmatch(table):
        raise InputError(f"--table {table!r}: use ASCII letters, digits, '-' and '_'")


def check_index_target(db: Path, table: str, overwrite: bool) -> None:
    """--db is new or a LanceDB folder; a table of that name is replaced only if isoadapt wrote it."""
    check_folder_path(db, "--db")
    if db.exists() and not db.is_dir():
        raise InputError(f"--db {db}: is a file, expected a folder")
    if db.is_dir() and any(not p.name.endswith(".lance") for p in db.iterdir()):
        raise InputError(f"--db {db}: holds files that are not LanceDB tables; choose a new or a LanceDB folder")
    check_table_name(table)
    if (db / f"{table}.lance").exists():
        kind = (_table_kind(_connect(db), table) or b"").decode()
        check_replaceable(f"--table {table} in {db}", kind, INDEX_KIND, "an index table", overwrite)


def index_corpus(run_dir: Path, data: Path, db: Path, table: str, cache_dir: Path, overwrite: bool = False) -> int:
    """Write the split's corpus into a LanceDB table; returns the number of documents."""
    check_index_target(db, table, overwrite)
    run = open_run(run_dir)
    check_texts_are_real(data, run.config["base_model"])
    corpus = load_eval(data).corpus  # every input checked before the model loads
    space = open_space(run, cache_dir)
    ids, texts = list(corpus), list(corpus.values())
    head = document_head(space.run.head)
    parts = []
    for start in progress(range(0, len(ids), CHUNK), desc=f"index {table}", unit="chunk"):
        vectors = _unit(apply_head(head, space.vectors(texts[start : start + CHUNK])))  # (chunk, d)
        parts.append(vectors)
    vectors = np.concatenate(parts)
    metadata = {
        "isoadapt.kind": INDEX_KIND,
        "isoadapt.run": str(run_dir.resolve()),
        "isoadapt.head_sha256": space.run.head_sha256,
        "isoadapt.base_model": space.run.config["base_model"],
        "isoadapt.adapt": getattr(space.run.head, "adapt", "both"),
    }
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("vector", pa.list_(pa.float32(), vectors.shape[1]))],
        metadata=metadata,
    )
    rows = pa.table(
        [
            pa.array(ids),
            pa.array(texts),
            pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
        ],
        schema=schema,
    )
    db.mkdir(parents=True, exist_ok=True)
    _connect(db).create_table(table, data=rows, mode="overwrite" if overwrite else "create")
    return len(ids)


def open_index(db: Path, table: str, run: OpenedRun) -> Index:
    """The table `isoadapt index` wrote with this run's head, checked before any model loads."""
    check_table_name(table)
    if not (db / f"{table}.lance").is_dir():
        raise InputError(f"--table {table}: no such table in {db} (write it with `isoadapt index`)")
    try:
        handle = _connect(db).open_table(table)
    except Exception as err:  # lance's own error types: a folder named like a table that is none
        raise InputError(
            f"--table {table} in {db}: LanceDB cannot open it ({describe(err)}); it is no table of isoadapt's: "
            "choose another --table or --db"
        ) from None
    metadata = {k.decode(): v.decode() for k, v in (handle.schema.metadata or {}).items()}
    if metadata.get("isoadapt.kind") != INDEX_KIND:
        raise InputError(f"--table {table}: was not written by `isoadapt index`; it has no head to match")
    if metadata.get("isoadapt.head_sha256") != run.head_sha256:
        raise InputError(
            f"--table {table}: was indexed with the head of {metadata.get('isoadapt.run')}, not {run.folder}; "
            "search with that run, or index again"
        )
    return Index(db, table, handle)


@dataclass
class Index:
    """An opened table written by `isoadapt index`: where it is, and LanceDB's handle."""

    db: Path
    table: str
    handle: object


def query_vectors(space: RunSpace, queries: list[str]) -> np.ndarray:  # (n, d), through the query path
    return _unit(apply_head(space.run.head, space.encoder.encode(queries)))


def search(index: Index, vectors: np.ndarray, k: int) -> list[list[dict]]:
    """Each query's top k: [{id, text, score}] by cosine, best first (LanceDB's cosine distance is 1 - cos).
    Exact: a user's ANN index (IVF_PQ) would otherwise answer with approximate neighbours and distances."""
    results = []
    for vector in vectors:
        try:
            hits = index.handle.search(vector).metric("cosine").bypass_vector_index().limit(k).to_list()
        except Exception as err:  # lance's own error types: a table of ours whose data files are gone
            raise InputError(
                f"--table {index.table} in {index.db}: LanceDB cannot read it ({describe(err)}); write it again "
                "with `isoadapt index --overwrite`"
            ) from None
        results.append([{"id": h["id"], "text": h["text"], "score": 1.0 - h["_distance"]} for h in hits])
    return results
