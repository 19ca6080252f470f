"""`isoadapt search`: a query (a text through the run's encoder, or the query's base vector from a file) on
the run's query side, against a table that `isoadapt index` wrote with the same head, or one whose documents
no head touched and that holds the run's own base vectors (run_space.plain_documents: a cross-model run
searches the index of a query-only run on its base model); the top k by cosine.

It never passes off an approximate answer as exact. Search is exact by default: LanceDB's flat scan, even on
a table the user gave an ANN index (`create_index(IVF_PQ)`), whose distances alone were off by up to 0.78
in cosine here. With `--ann` it asks that index for refine_factor x k candidates, which LanceDB re-ranks on
the stored vectors, and the answer says it is approximate. Either way the printed score is recomputed from
the stored vector: the true cosine, whatever index or metric the table was given. `--where` is a SQL
filter that LanceDB applies before the search (prefilter); it is checked against the table, like every
other input, before any model loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from isoadapt.data.readers import check_text
from isoadapt.errors import InputError, describe
from isoadapt.fileio import read_json
from isoadapt.metrics.normalize import l2_normalize
from isoadapt.store.apply import check_adaptable
from isoadapt.store.lancedb_ann import recorded_refine_factor
from isoadapt.store.lancedb_index import (
    DOCUMENTS_KEY,
    ID,
    INDEX_KIND,
    SEARCH_FIELDS,
    TEXT,
    VECTOR,
    check_table_name,
    connect,
)
from isoadapt.store.run_space import (
    check_encodes_text,
    open_space,
    plain_documents,
    query_vectors,
    to_space,
)
from isoadapt.training.run_folder import OpenedRun, open_run

MAX_K = 10_000
MAX_REFINE = 1_000
DEFAULT_REFINE = 10  # `--ann` on a table without a measured factor
RECORDED = -1  # `--ann` without a number: the refine factor `index --ann` recorded on the table
VECTOR_FILES = (".json", ".npy")  # a JSON list of numbers, or a NumPy array of one vector


@dataclass
class Index:
    """An opened table written by `isoadapt index`: where it is, and LanceDB's handle."""

    db: Path
    table: str
    handle: object

    @property
    def width(self) -> int:
        return self.handle.schema.field(VECTOR).type.list_size

    @property
    def columns(self) -> list[str]:
        return self.handle.schema.names


def open_index(db: Path, table: str, run: OpenedRun) -> Index:
    """The table `isoadapt index` wrote with this run's head (or with the plain base vectors this run scores
    against), checked before any model loads."""
    check_table_name(table)
    if not (db / f"{table}.lance").is_dir():
        raise InputError(f"--table {table}: no such table in {db} (write it with `isoadapt index`)")
    try:
        handle = connect(db).open_table(table)
    except Exception as err:  # lance's own error types: a folder named like a table that is none
        raise InputError(
            f"--table {table} in {db}: LanceDB cannot open it ({describe(err)}); it is no table of isoadapt's: "
            "choose another --table or --db"
        ) from None
    metadata = {k.decode(): v.decode() for k, v in (handle.schema.metadata or {}).items()}
    if metadata.get("isoadapt.kind") != INDEX_KIND:
        raise InputError(f"--table {table}: was not written by `isoadapt index`; it has no head to match")
    hidden = [name for name in SEARCH_FIELDS if name in handle.schema.names]
    if hidden:
        raise InputError(
            f"--table {table}: has a column named {hidden[0]!r}, which would hide or replace search's own; "
            "rename it in the parquet file and index again"
        )
    indexed = metadata.get("isoadapt.base_model")
    if indexed is not None and indexed != run.config["base_model"]:
        raise InputError(
            f"--table {table}: holds document vectors of {indexed}, but {run.folder} scores queries against "
            f"{run.config['base_model']}'s; search it with a run whose base model is {indexed}, or index "
            f"{run.config['base_model']}'s document vectors with this run"
        )
    shared = plain_documents(run) is not None and metadata.get(DOCUMENTS_KEY) == plain_documents(run)
    if metadata.get("isoadapt.head_sha256") != run.head_sha256 and not shared:
        raise InputError(
            f"--table {table}: was indexed with the head of {metadata.get('isoadapt.run')}, not {run.folder}; "
            "search with that run, or index again"
        )
    return Index(db, table, handle)


def _plans(index: Index, where: str) -> None:
    query = index.handle.search(np.zeros(index.width, np.float32)).where(where, prefilter=True)
    query.bypass_vector_index().limit(1).explain_plan()


def check_where(index: Index, where: str) -> str:
    """A SQL filter LanceDB can plan on this table (syntax, column names, types), found before any model loads,
    and one that LanceDB applies whole. Its parser stops at a `;` or after the first complete condition and
    drops the rest (`year >= 2015; year < 2003` filters on the first half): the filter is planned a second
    time as `nullif(<filter>, FALSE)`, which parses only when the filter is one whole condition, so that what
    --json records as applied is what was applied."""
    if not where.strip():
        raise InputError(f"--where {where!r}: an empty filter; give a SQL condition such as \"source = 'crawl'\"")
    try:
        _plans(index, where)
    except Exception as err:  # lance's own error types: a parse error, an unknown column, a type mismatch
        raise InputError(
            f"--where {where!r}: LanceDB cannot filter --table {index.table} with it ({describe(err)}); "
            f"its columns: {', '.join(c for c in index.columns if c != VECTOR)}"
        ) from None
    try:
        _plans(index, f"nullif({where}\n, FALSE)")  # the newline ends a trailing `--` comment
    except Exception:
        raise InputError(
            f"--where {where!r}: LanceDB would apply only its first condition and ignore the rest (its parser "
            "stops at ';' or at anything after a complete condition); give one condition, joined with AND / OR"
        ) from None
    return where


@dataclass(frozen=True)
class Ann:
    """Search through the table's ANN index: refine_factor x k candidates, re-ranked on the stored vectors."""

    index_type: str
    refine_factor: int


def check_ann(index: Index, refine_factor: int) -> Ann:
    """`refine_factor` RECORDED (`--ann` without a number): the factor `index --ann` measured, else
    DEFAULT_REFINE."""
    if refine_factor == RECORDED:
        refine_factor = recorded_refine_factor(index.handle, VECTOR) or DEFAULT_REFINE
    if not 1 <= refine_factor <= MAX_REFINE:
        raise InputError(f"--ann {refine_factor}: the refine factor must be between 1 and {MAX_REFINE}")
    vector_indices = [i for i in index.handle.list_indices() if VECTOR in i.columns]
    if not vector_indices:
        raise InputError(
            f"--ann: --table {index.table} has no ANN index on its vectors (LanceDB's create_index makes one); "
            "search without --ann is exact"
        )
    return Ann(str(vector_indices[0].index_type), refine_factor)


def read_query_vector(path: Path, run: OpenedRun) -> np.ndarray:  # (1, dim): a base vector of the run's model
    """The query's vector as the run's base model gave it (`--vector`), checked: one finite, non-zero vector
    of the width the head reads."""
    if path.suffix not in VECTOR_FILES:
        raise InputError(f"--vector {path}: expected a JSON list of numbers (.json) or a NumPy array (.npy)")
    if not path.is_file():
        raise InputError(f"--vector {path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"--vector {path}: is an empty file; expected one query vector")
    try:
        values = np.load(path, allow_pickle=False) if path.suffix == ".npy" else read_json(path)
    except (ValueError, OSError, EOFError) as err:  # an empty .npy file is an EOFError
        raise InputError(f"--vector {path}: not a readable NumPy file ({describe(err)})") from None
    numbers = isinstance(values, list) and all(type(v) in (int, float) for v in values)
    if path.suffix == ".json" and not numbers:
        raise InputError(f"--vector {path}: expected a JSON list of numbers (one query vector)")
    vector = np.asarray(values)
    if vector.ndim == 2 and len(vector) == 1:
        vector = vector[0]
    if vector.ndim != 1 or vector.dtype.kind not in "fiu":
        raise InputError(f"--vector {path}: expected one vector of numbers, got shape {vector.shape} of {vector.dtype}")
    if len(vector) != run.head.dim:
        raise InputError(
            f"--vector {path}: has {len(vector)} values, but the head of {run.folder} reads {run.head.dim} "
            f"(a query vector of {run.side_model('query')})"
        )
    vector = vector.astype(np.float32)
    if not np.isfinite(vector).all():
        raise InputError(f"--vector {path}: holds NaN or infinity (or a float32 overflow)")
    if not vector.any():
        raise InputError(f"--vector {path}: is all zeros; a cosine needs a direction")
    return vector[None, :]


def _hit(row: dict, query: np.ndarray) -> dict:
    """A LanceDB row as a hit: id, the true cosine to the stored vector, then the table's other columns."""
    stored = np.asarray(row.pop(VECTOR), dtype=np.float64)
    row.pop("_distance", None)
    score = float(l2_normalize(stored) @ l2_normalize(np.asarray(query, dtype=np.float64)))
    return {"id": row.pop(ID), "score": score, **row}


def search(index: Index, vectors: np.ndarray, k: int, where: str | None = None, ann: Ann | None = None) -> list:
    """Each query's top k: [{id, score, ...columns}] by cosine, best first. Exact unless `ann` is given."""
    results = []
    for vector in vectors:
        query = index.handle.search(vector).distance_type("cosine").limit(k)
        query = query.where(where, prefilter=True) if where is not None else query
        query = query.refine_factor(ann.refine_factor) if ann else query.bypass_vector_index()
        try:
            hits = query.to_list()
        except Exception as err:  # lance's own error types: data files gone, or a filter that fails on the rows
            if where is not None:
                raise InputError(
                    f"--where {where!r}: LanceDB failed on --table {index.table} in {index.db} with it "
                    f"({describe(err)})"
                ) from None
            raise InputError(
                f"--table {index.table} in {index.db}: LanceDB cannot read it ({describe(err)}); write it again "
                "with `isoadapt index --overwrite`"
            ) from None
        results.append([_hit(hit, np.asarray(vector, dtype=np.float64)) for hit in hits])
    return results


@dataclass
class Found:
    """One search's answer, as `isoadapt search` prints it (lines, or one JSON object with --json)."""

    table: str
    k: int
    query: str | None
    vector_file: str | None
    where: str | None
    approximate: Ann | None
    hits: list[dict] = field(default_factory=list)

    def as_json(self) -> str:
        document = {**asdict(self), "exact": self.approximate is None}
        order = ("query", "vector_file", "table", "k", "where", "exact", "approximate", "hits")
        return json.dumps({key: document[key] for key in order}, ensure_ascii=False, default=str)

    def lines(self) -> list[str]:
        lines = []
        if self.approximate:
            lines.append(
                f"approximate: ANN index {self.approximate.index_type}, refine factor "
                f"{self.approximate.refine_factor}; each score is the exact cosine of a candidate it found"
            )
        for rank, hit in enumerate(self.hits, start=1):
            text = " ".join(str(hit.get(TEXT) or "").split())[:100]
            lines.append(f"{rank:>3}  {hit['score']:.4f}  {hit['id']}  {text}".rstrip())
        return lines


def run_search(
    run_dir: Path,
    db: Path,
    table: str,
    cache_dir: Path,
    query: str | None = None,
    vector_file: Path | None = None,
    k: int = 10,
    where: str | None = None,
    refine_factor: int | None = None,
) -> Found:
    """Search a table with a query text or a query vector file; `refine_factor` searches through the table's
    ANN index (approximate), None searches exactly. Every input is checked before the model loads."""
    if (query is None) == (vector_file is None):
        raise InputError("search: give a query text or --vector FILE (one of them)")
    if not 1 <= k <= MAX_K:
        raise InputError(f"-k {k}: must be between 1 and {MAX_K}")
    if query is not None:
        query = check_text("search", "the query", "query", query)
    run = open_run(run_dir)
    index = open_index(db, table, run)
    where = check_where(index, where) if where is not None else None
    ann = check_ann(index, refine_factor) if refine_factor is not None else None
    if vector_file is not None:
        check_adaptable(run)
        vectors = to_space(run, read_query_vector(vector_file, run), "query")
    else:
        check_encodes_text(run, "a query text")
        vectors = query_vectors(open_space(run, cache_dir), [query])
    hits = search(index, vectors, k, where, ann)[0]
    return Found(table, k, query, str(vector_file) if vector_file else None, where, ann, hits)
