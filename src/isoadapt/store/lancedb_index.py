"""`isoadapt index`: a LanceDB table (a folder on disk, no server) in a run's space, written from a split's
corpus or from a parquet file of vectors.

From a split, the corpus is encoded (through the embedding cache) onto the run's document side: adapted
for a both-sides head, base vectors for a query-only head (the index a user already has). From parquet
(`--vectors`, e.g. the output of `isoadapt apply`), base vectors of the run's model go through the same
side, and vectors that `apply` already put there with this run's head are kept as they are; every other
column is kept too, so that `search --where` can filter on it. Every vector is L2-normalised, as the run
scores.

A table records the sha256 of the head that made it (search refuses another head: a query adapted by one
head against documents adapted by another would rank silently wrong) and, when it holds texts that the
run's model can embed, LanceDB's `isoadapt` embedding function, so that `table.search("text")` in LanceDB
itself takes the run's query side. A parquet file is read twice, every check first, so a bad row leaves
no table behind; a write that fails anyway drops the table it was creating (and the --db folder it made).

Two `isoadapt index` runs into one table take turns: the write holds a lock per table (a file in the
temporary folder named by a hash of the table's path, so that nothing is added to the user's folders; it
stays there, since removing a lock file races with the next writer) and checks the target again under
it, so the second run without --overwrite stops with the same line as if it had started later.
A full disk, `ulimit -f` or a read-only --db is one line naming the table's folder.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from isoadapt.data.formats import check_texts_are_real, load_eval
from isoadapt.data.vector_files import VectorBatch, VectorColumns, VectorFile, check_width
from isoadapt.encoding.precomputed import is_precomputed
from isoadapt.errors import InputError, disk_error
from isoadapt.fileio import machine_lock
from isoadapt.head_options import SIDES
from isoadapt.metrics.normalize import l2_normalize
from isoadapt.owned_folders import check_folder_path, check_replaceable
from isoadapt.progress import progress
from isoadapt.store.apply import APPLY_KIND, HEAD_KEY, check_adaptable, check_side_model
from isoadapt.store.lancedb_ann import build_ann, check_ann_rows
from isoadapt.store.run_space import input_width, open_space, plain_documents, query_vectors, to_space, width
from isoadapt.training.run_folder import OpenedRun, open_run

log = logging.getLogger(__name__)
INDEX_KIND = "isoadapt-index"  # table metadata: the tables isoadapt wrote (and may replace)
CHUNK = 8192  # documents encoded and adapted at once
TABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")
ID, TEXT, VECTOR = "id", "text", "vector"  # the table's own columns; a parquet file's others keep their names
DOCUMENTS_KEY = "isoadapt.documents"  # table metadata: the plain base vectors it holds (run_space.plain_documents)
SEARCH_FIELDS = ("score", "_distance")  # what a search answer adds to a row: no column of the table may be named so


def connect(db: Path):
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
        kind = (_table_kind(connect(db), table) or b"").decode()
        check_replaceable(f"--table {table} in {db}", kind, INDEX_KIND, "an index table", overwrite)


def vector_column(vectors: np.ndarray) -> pa.FixedSizeListArray:  # (n, width) -> LanceDB's vector type
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), vectors.shape[1])


def index_corpus(
    run_dir: Path, data: Path, db: Path, table: str, cache_dir: Path, overwrite: bool = False, ann: bool = False
) -> int:
    """Write the split's corpus into a LanceDB table; returns the number of documents. With `ann`, an ANN
    index too, and the refine factor that keeps the split's queries' top 10 exact (store/lancedb_ann.py)."""
    check_index_target(db, table, overwrite)
    run = open_run(run_dir)
    check_texts_are_real(data, run.config["base_model"])
    split = load_eval(data)
    corpus = split.corpus  # every input checked before the model loads
    if ann:
        check_ann_rows(len(corpus))
    space = open_space(run, cache_dir)
    space.encoder("document")  # the documents' model (the base), loaded before the first chunk
    ids, texts = list(corpus), list(corpus.values())
    parts = [
        space.embed(texts[start : start + CHUNK], "document", cached=True)  # (chunk, width)
        for start in progress(range(0, len(ids), CHUNK), desc=f"index {table}", unit="chunk")
    ]
    schema = pa.schema([(ID, pa.string()), (TEXT, pa.string()), (VECTOR, pa.list_(pa.float32(), width(run)))])
    rows = pa.record_batch([pa.array(ids), pa.array(texts), vector_column(np.concatenate(parts))], schema=schema)
    write_table(db, table, overwrite, run, cache_dir, schema, [rows])
    if ann:
        queries = query_vectors(space, list(split.queries.values()))  # (queries, width)
        built = build_ann(connect(db).open_table(table), queries, VECTOR)
        log.info(
            "--ann: %s index, refine factor %d (top %d exact for %d queries)",
            built.index_type,
            built.refine_factor,
            built.k,
            built.queries,
        )
    return len(ids)


def in_document_space(run: OpenedRun, file: VectorFile, model: str | None) -> bool:
    """True when `isoadapt apply` already put the file's vectors on this run's document side; False for base
    vectors of the run's model (a query-only head's documents, which apply copies unchanged, are still base
    vectors). Vectors another head transformed, and a query-only head's queries, are refused; so are a
    cross-model run's query model's vectors: its documents stay the base model's."""
    check_side_model(run, file, model, "document")
    meta = file.metadata
    if meta.get("isoadapt.kind") != APPLY_KIND or meta.get("isoadapt.normalized") != "true":
        return False
    if meta.get(HEAD_KEY) != run.head_sha256:
        raise InputError(
            f"{file.path}: was transformed by `isoadapt apply` with another head ({meta.get('isoadapt.run')}, "
            f"sha256 {str(meta.get(HEAD_KEY))[:16]}), not the head of {run.folder}; index the original vectors"
        )
    if meta.get("isoadapt.side") == "query" and getattr(run.head, "adapt", "both") == "query":
        raise InputError(
            f"{file.path}: holds query vectors (`isoadapt apply --side query` with a query-only head); "
            "index document vectors"
        )
    return True


def table_schema(file: VectorFile, out_width: int) -> pa.Schema:
    """The file's columns with its id, vector and text columns as the table's own; the others as they are."""
    c = file.columns
    own = {c.id: pa.field(ID, pa.string()), c.vector: pa.field(VECTOR, pa.list_(pa.float32(), out_width))}
    own |= {c.text: pa.field(TEXT, pa.string())} if file.has_text else {}
    fields = []
    for field in file.schema:
        if field.name not in own and field.name in (ID, TEXT, VECTOR):
            raise InputError(
                f"{file.path}: column {field.name!r} would clash with the table's own {field.name!r} column "
                f"(made from --id_column {c.id!r}, --vector_column {c.vector!r}); rename it"
            )
        if field.name in SEARCH_FIELDS:
            raise InputError(
                f"{file.path}: column {field.name!r} would be confused with the cosine that `isoadapt search` "
                "gives as its score; rename it"
            )
        fields.append(own.get(field.name, field))
    return pa.schema(fields)


def _table_rows(batch: VectorBatch, schema: pa.Schema, vectors: np.ndarray) -> pa.RecordBatch:
    """One batch of the file in the table's schema: ids as strings, texts as checked, vectors as given."""
    made = {ID: pa.array(batch.ids, pa.string()), VECTOR: vector_column(vectors)}
    made |= {TEXT: pa.array(batch.texts, pa.string())} if batch.texts is not None else {}
    columns = [made.get(field.name, column) for field, column in zip(schema, batch.table.columns)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def index_vectors(
    run_dir: Path,
    source: Path,
    db: Path,
    table: str,
    cache_dir: Path,
    columns: VectorColumns = VectorColumns(),
    model: str | None = None,
    overwrite: bool = False,
) -> int:
    """Write a parquet file of vectors into a LanceDB table in the run's space; returns the number of rows."""
    check_index_target(db, table, overwrite)
    run = open_run(run_dir)
    check_adaptable(run)
    file = VectorFile(source, columns)
    kept = in_document_space(run, file, model)
    schema = table_schema(file, width(run))
    reads = input_width(run.head, "document")  # a cross-model run's documents: the base model's width
    expected, what = (width(run), f"the index of {run_dir}") if kept else (reads, f"the head of {run_dir}")
    rows = 0
    for batch in file.batches():  # the first reading: every check, before a table is started
        check_width(batch.where, batch.vectors.shape[1], expected, what)
        rows += len(batch.ids)

    def adapted() -> Iterator[pa.RecordBatch]:
        for batch in file.batches(all_columns=True):
            vectors = l2_normalize(batch.vectors) if kept else to_space(run, batch.vectors, "document")  # (rows, width)
            yield _table_rows(batch, schema, vectors)

    write_table(db, table, overwrite, run, cache_dir, schema, adapted())
    return rows


@contextmanager
def table_lock(db: Path, table: str) -> Iterator[None]:
    """One writer per table at a time, across processes of this machine (any user's: mode 0o666)."""
    waiting = f"waiting for another `isoadapt index` to finish writing --table {table} in {db}"
    with machine_lock("index", str(db.resolve() / table), waiting, mode=0o666):
        yield


def write_table(
    db: Path, table: str, overwrite: bool, run: OpenedRun, cache_dir: Path, schema: pa.Schema, rows: Iterable
) -> None:
    """Create (or, with overwrite, replace) the table from record batches, streamed; it records the run's head
    and, for texts the run's model can embed, the `isoadapt` embedding function."""
    metadata = {
        "isoadapt.kind": INDEX_KIND,
        "isoadapt.run": str(run.folder.resolve()),
        "isoadapt.head_sha256": run.head_sha256,
        "isoadapt.base_model": run.config["base_model"],
        "isoadapt.adapt": getattr(run.head, "adapt", "both"),
    }
    documents = plain_documents(run)  # documents no head touched: any run on the same base may search them
    metadata |= {DOCUMENTS_KEY: documents} if documents else {}
    schema = schema.with_metadata(metadata)
    with table_lock(db, table):
        check_index_target(db, table, overwrite)  # again: another run may have written the table meanwhile
        _create(db, table, overwrite, run, cache_dir, schema, rows)


def _create(
    db: Path, table: str, overwrite: bool, run: OpenedRun, cache_dir: Path, schema: pa.Schema, rows: Iterable
) -> None:
    new_db, existed, failed, connection = not db.exists(), (db / f"{table}.lance").exists(), [], None
    try:
        db.mkdir(parents=True, exist_ok=True)  # inside the try: a stop right after it leaves no empty --db
        connection = connect(db)
        functions = None
        models = [run.side_model(side) for side in SIDES]
        if TEXT in schema.names and not any(is_precomputed(m) for m in models):
            from isoadapt.store.lancedb_function import embedding_config  # imports lancedb: after connect() quiets it

            functions = [embedding_config(run, cache_dir, db / f"{table}.lance")]
        reader = pa.RecordBatchReader.from_batches(schema, _remembering(rows, failed))
        connection.create_table(
            table, data=reader, mode="overwrite" if overwrite else "create", embedding_functions=functions
        )
    except BaseException as err:
        if connection is not None and not existed:  # the table this call started: LanceDB lists a half one
            _drop(connection, table)
        if new_db and db.is_dir() and not any(db.iterdir()):
            db.rmdir()
        if failed:  # a batch's own error (a bad row, Ctrl-C), which LanceDB reports as a foreign RuntimeError
            raise failed[0] from None
        error = _write_error(err, db, table)
        if error is err:
            raise
        raise error from err


def _write_error(err: BaseException, db: Path, table: str) -> BaseException:
    """A full disk, `ulimit -f`, a read-only --db, or another program's commit: one line naming the table's
    folder (LanceDB raises them as its own RuntimeError); anything else as it came."""
    folder = db / f"{table}.lance"
    if disk_error(err):
        return InputError(f"{folder}: {disk_error(err)}; --table {table} was not written")
    if isinstance(err, Exception) and "commit conflict" in str(err).lower():
        return InputError(
            f"{folder}: another program wrote to --table {table} at the same time (LanceDB: commit conflict); "
            "it was not written by this run: run it again"
        )
    return err


def _remembering(rows: Iterable, failed: list) -> Iterator[pa.RecordBatch]:
    try:
        yield from rows
    except BaseException as err:
        failed.append(err)
        raise


def _drop(connection, table: str) -> None:
    try:
        connection.drop_table(table)
    except Exception as err:  # the write's own error is the one to report; this one is logged
        log.warning("could not drop the half-written table %s: %s", table, err)
