"""Your own vectors as numpy arrays (`isoadapt.Vectors`), the in-memory twin of `isoadapt prepare vectors`.

Each split is checked whole (shapes, one width, finite values, ids, judgments) before anything is written,
and each failure is one line naming the split, the argument and the row. A checked split becomes what
`prepare vectors` makes of parquet files without a text column: placeholder texts (`query:<split>/<id>`,
`document:<split>/<id>`) whose vectors sit in an embedding cache under a model name, and a processed
dataset (train.json pairs with sampled negatives, dev.json, test.json), so `fit` trains on arrays with the
train command's own code and `--base_model vectors:NAME`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isoadapt.data.beir import train_pairs
from isoadapt.data.formats import EvalSet, TrainExample, write_dataset
from isoadapt.data.grades import grade
from isoadapt.data.layout import EVALUATED, PLACEHOLDERS, DatasetFolder
from isoadapt.data.readers import check_id
from isoadapt.encoding.precomputed import precomputed_cache
from isoadapt.encoding.vector_import import placeholder
from isoadapt.errors import InputError


@dataclass
class Vectors:
    """One split of your own vectors: `queries` (n_q, d) and `documents` (n_d, d), and what is relevant to
    what, either `qrels` {query_id: {document_id: grade}} or `pairs`, (query_row, document_row) tuples
    that are relevant with grade 1. Ids default to the row numbers as strings ("0", "1", ...); integer ids
    are taken as their decimal strings, as `isoadapt prepare vectors` takes them.

    For the training split, `pairs` may be (query_row, document_row, negative_row) triples: the pairs are
    then trained on in that order with those negatives, as a processed train.json lists them, so a run on
    the vectors of a processed split's texts reproduces the run on the texts. Without them each pair's
    negative is drawn at random with the run's seed (another draw per seed than the stored file's)."""

    queries: np.ndarray
    documents: np.ndarray
    qrels: dict[str, dict[str, int]] | None = None
    pairs: Sequence[tuple[int, int]] | None = None
    query_ids: Sequence[str] | None = None
    document_ids: Sequence[str] | None = None


@dataclass
class CheckedSplit:
    """A split as the processed format holds it (placeholder texts by id) and the vector of each text."""

    split: EvalSet
    vectors: dict[str, np.ndarray]  # placeholder text -> (d,)
    triples: list[tuple[str, str, str]] | None = None  # (query, positive, negative) texts, given explicitly

    def lookup(self, texts: list[str]) -> np.ndarray:  # (len(texts), d): a VectorSource
        return np.stack([self.vectors[t] for t in texts])


def _matrix(where: str, array, dim: int | None) -> np.ndarray:
    try:
        matrix = np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"{where}: not an array of numbers") from None
    if matrix.ndim != 2 or not len(matrix) or not matrix.shape[1]:
        raise InputError(f"{where}: expected a non-empty 2-D array (rows, width), got shape {matrix.shape}")
    if dim is not None and matrix.shape[1] != dim:
        raise InputError(f"{where}: vectors of width {matrix.shape[1]}, but {dim} is expected")
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise InputError(f"{where}: row {int(bad[0])} holds NaN or infinite values")
    return matrix


def _ids(where: str, ids, rows: int) -> list[str]:
    if ids is None:
        return [str(i) for i in range(rows)]
    ids = [_id_string(item) for item in ids]
    if len(ids) != rows:
        raise InputError(f"{where}: {len(ids)} ids for {rows} rows")
    seen: set[str] = set()
    for index, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise InputError(f"{where}[{index}]: ids are non-empty strings or integers, got {item!r}")
        check_id(where, "id", item)
        if item in seen:
            raise InputError(f"{where}[{index}]: id {item!r} appears twice")
        seen.add(item)
    return ids


def _id_string(item):
    """An integer id (Python's or NumPy's, not a bool) as its decimal string; anything else as given."""
    return str(int(item)) if isinstance(item, (int, np.integer)) and not isinstance(item, bool) else item


def _from_pairs(
    where: str, pairs, query_ids: list[str], document_ids: list[str], triples: bool
) -> tuple[dict[str, dict[str, int]], list[tuple[int, int, int]]]:
    """The qrels the pairs make (grade 1), and the (query, positive, negative) rows of the triples."""
    qrels: dict[str, dict[str, int]] = {}
    given: list[tuple[int, int, int]] = []
    shape = "(query_row, document_row[, negative_row]) tuple" if triples else "(query_row, document_row) pair"
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) not in ((2, 3) if triples else (2,)):
            raise InputError(f"{where}[{index}]: expected a {shape}, got {pair!r}")
        sides = zip(pair, (query_ids, document_ids, document_ids), ("query", "document", "negative"))
        for row, rows, side in sides:
            if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < len(rows):
                raise InputError(f"{where}[{index}]: {side} row {row!r} is not a row number below {len(rows)}")
        if len(pair) == 3:
            given.append((int(pair[0]), int(pair[1]), int(pair[2])))
        qrels.setdefault(query_ids[pair[0]], {})[document_ids[pair[1]]] = 1
    if given and len(given) != len(pairs):
        raise InputError(f"{where}: give a negative with every pair or with none ({len(given)} of {len(pairs)})")
    return qrels, given


def _checked_qrels(where: str, qrels, query_ids: list[str], document_ids: list[str]) -> dict[str, dict[str, int]]:
    if not isinstance(qrels, dict):
        raise InputError(f"{where}: expected {{query_id: {{document_id: grade}}}}, got {type(qrels).__name__}")
    known_queries, known_documents = set(query_ids), set(document_ids)
    qrels = {
        _id_string(q): ({_id_string(d): g for d, g in j.items()} if isinstance(j, dict) else j)
        for q, j in qrels.items()
    }
    checked: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        if qid not in known_queries:
            raise InputError(f"{where}[{qid!r}]: not a query id")
        if not isinstance(judged, dict):
            raise InputError(f"{where}[{qid!r}]: expected {{document_id: grade}}, got {type(judged).__name__}")
        checked[qid] = {}
        for doc_id, value in judged.items():
            if doc_id not in known_documents:
                raise InputError(f"{where}[{qid!r}][{doc_id!r}]: not a document id")
            checked[qid][doc_id] = grade(value, f"{where}[{qid!r}][{doc_id!r}]")
    return checked


def check_split(name: str, given: Vectors, dim: int | None = None) -> CheckedSplit:
    """Every check of one split; its texts are `<side>:<name>/<id>`, so splits never share a vector by
    accident. Queries without a relevant document are left out, as load_eval leaves them out. Only the
    training split may give negatives (triples)."""
    if not isinstance(given, Vectors):
        raise InputError(f"{name}: expected isoadapt.Vectors, got {type(given).__name__}")
    queries = _matrix(f"{name}.queries", given.queries, dim)
    documents = _matrix(f"{name}.documents", given.documents, queries.shape[1])
    query_ids = _ids(f"{name}.query_ids", given.query_ids, len(queries))
    document_ids = _ids(f"{name}.document_ids", given.document_ids, len(documents))
    if (given.qrels is None) == (given.pairs is None):
        raise InputError(f"{name}: give qrels or pairs (one of them), to say which documents are relevant")
    rows: list[tuple[int, int, int]] = []
    if given.pairs is not None:
        qrels, rows = _from_pairs(f"{name}.pairs", given.pairs, query_ids, document_ids, name == "train")
    else:
        qrels = _checked_qrels(f"{name}.qrels", given.qrels, query_ids, document_ids)
    relevant = {qid: judged for qid, judged in qrels.items() if any(g > 0 for g in judged.values())}
    if not relevant:
        raise InputError(f"{name}: no query has a relevant document (grade > 0)")
    query_text = {qid: placeholder("query", f"{name}/{qid}") for qid in query_ids}
    document_text = {doc_id: placeholder("document", f"{name}/{doc_id}") for doc_id in document_ids}
    split = EvalSet({q: query_text[q] for q in query_ids if q in relevant}, document_text, relevant)
    vectors = dict(zip(query_text.values(), queries)) | dict(zip(document_text.values(), documents))
    document = [document_text[d] for d in document_ids]
    triples = [(query_text[query_ids[q]], document[p], document[n]) for q, p, n in rows]
    return CheckedSplit(split, vectors, triples or None)


def stage_arrays(splits: dict[str, Vectors], model: str, root: Path, seed: int) -> dict[str, Path]:
    """Check every split, then write the dataset to root/data and the vectors to the cache root/cache under
    `model` (the run's base is then `vectors:<model>`). Returns each split's file."""
    checked: dict[str, CheckedSplit] = {}
    dim = None
    for name, given in splits.items():
        checked[name] = check_split(name, given, dim)
        dim = next(iter(checked[name].vectors.values())).shape[0]
    train = checked["train"]
    if train.triples:
        examples = [TrainExample(*triple) for triple in train.triples]
    else:
        examples = train_pairs(train.split.queries, train.split.corpus, train.split.qrels, seed)
    evaluated = {EVALUATED[n]: c.split for n, c in checked.items() if n != "train"}
    write_dataset(root / "data", examples, evaluated, {PLACEHOLDERS: {"model": model}})
    cache = precomputed_cache(model, root / "cache", create=True)
    every = {text: vector for c in checked.values() for text, vector in c.vectors.items()}
    cache.ensure(list(every), lambda texts: np.stack([every[t] for t in texts]))
    inputs = DatasetFolder(root / "data").inputs()
    return {name: inputs[name] for name in splits}
