"""`isoadapt prepare vectors`: a user's precomputed vectors (parquet) become a base model.

Every row's vector goes into the embedding cache under the model name the user gives, keyed by the row's
text (or by `query:<id>` / `document:<id>` when the file has no text column), so training, evaluation
and plans read them like any encoder's. Relevance comes from BEIR-style qrels files (a new dataset is
written) or from an existing processed dataset whose texts the files must cover. Both files are read
twice, one row group at a time: first every check, then the writes, so a bad file leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isoadapt.data.beir import build_splits, is_header, qrels_files, write_splits
from isoadapt.data.formats import dataset_folder, load_eval, load_train
from isoadapt.data.layout import PLACEHOLDERS, DatasetFolder
from isoadapt.data.prepare_report import PrepareReport
from isoadapt.data.readers import read_tsv
from isoadapt.data.vector_files import VectorColumns, VectorFile, check_width
from isoadapt.encoding.cache import EmbeddingCache, text_key
from isoadapt.encoding.precomputed import PREFIX, precomputed_cache
from isoadapt.errors import InputError
from isoadapt.fileio import machine_lock
from isoadapt.progress import progress

log = logging.getLogger(__name__)
SAME_VECTOR = 1e-6  # a text already stored under this model must come back with this vector (max abs difference)


@dataclass
class Scanned:
    """One checked file: its width and each id's text (the id-based placeholder when it has no texts)."""

    side: str  # "query" or "document"
    dim: int | None = None
    texts: dict[str, str] = field(default_factory=dict)
    differing: int = 0  # texts seen twice with different vectors (the first is kept)


def placeholder(side: str, item_id: str) -> str:
    return f"{side}:{item_id}"


def _batch_texts(batch, side: str) -> list[str]:
    return batch.texts if batch.texts is not None else [placeholder(side, i) for i in batch.ids]


def scan(file: VectorFile, side: str, cache: EmbeddingCache, dim: int | None, seen: dict[str, int]) -> Scanned:
    """Every check, no write: one width (also the cache's), finite values, unique ids, and no text whose
    stored vector under this model differs from the file's. `seen` spans both files: a text that is both
    a query and a document keeps one vector (an asymmetric model's two vectors are counted as differing)."""
    scanned = Scanned(side, dim)
    for batch in progress(file.batches(), desc=f"checking {file.path.name}", unit="batch", show=file.rows >= 200_000):
        check_width(batch.where, batch.vectors.shape[1], scanned.dim, "the first vectors read")
        scanned.dim = batch.vectors.shape[1]
        check_width(batch.where, scanned.dim, cache.dim, f"the cache of {cache.identity['precomputed']!r}")
        texts = _batch_texts(batch, side)
        scanned.texts.update(zip(batch.ids, texts))  # ids are unique: VectorFile checks
        _check_stored(batch, texts, cache, seen, scanned)
    if scanned.dim is None:
        raise InputError(f"{file.path}: no rows")
    return scanned


def _check_stored(batch, texts: list[str], cache: EmbeddingCache, seen: dict, scanned: Scanned) -> None:
    """Refuse a text the cache already holds with another vector (another file under the same name);
    count a text repeated in this import with another vector (providers are not always deterministic)."""
    stored = [i for i, t in enumerate(texts) if text_key(t) in cache]
    if stored:
        old = cache.get([texts[i] for i in stored], _nothing)  # (stored, dim): all cached, nothing is encoded
        bad = np.flatnonzero(np.abs(old - batch.vectors[stored]).max(axis=1) > SAME_VECTOR)
        if len(bad):
            row = stored[int(bad[0])]
            raise InputError(
                f"{batch.where}, row {batch.first_row + row}: the cache already holds another vector for this text "
                f"under {cache.identity['precomputed']!r}; give these vectors another --model name"
            )
    for i, text in enumerate(texts):
        digest = hash(batch.vectors[i].tobytes())
        if seen.setdefault(text_key(text), digest) != digest:
            scanned.differing += 1


def _nothing(texts: list[str]) -> np.ndarray:
    raise AssertionError("only called for texts that are cached")


def store(file: VectorFile, side: str, cache: EmbeddingCache) -> None:
    """Second pass: each batch's vectors into the cache (a text seen before keeps its first vector)."""
    for batch in progress(file.batches(), desc=f"storing {file.path.name}", unit="batch", show=file.rows >= 200_000):
        texts = _batch_texts(batch, side)
        row_of = {t: i for i, t in reversed(list(enumerate(texts)))}  # the first row of each text
        cache.ensure(texts, lambda missing, b=batch, r=row_of: b.vectors[[r[t] for t in missing]])


def check_qrels_ids(qrels: dict[str, Path], queries: Scanned, documents: Scanned, files: tuple[Path, Path]) -> None:
    """Every id a judgment names has a vector: one line naming the qrels line and the missing id."""
    for path in qrels.values():
        for number, (qid, doc_id, grade) in read_tsv(path, columns=3):
            if is_header(number, grade):
                continue
            if qid not in queries.texts:
                raise InputError(f"{path}: line {number}: query id {qid!r} is not in {files[0]}")
            if doc_id not in documents.texts:
                raise InputError(f"{path}: line {number}: document id {doc_id!r} is not in {files[1]}")


def check_processed(folder: Path, stored: set[str], files: tuple[Path, Path]) -> None:
    """Every text of an existing processed dataset has a vector in the files (matched by text)."""
    where = " or ".join(map(str, files))
    dataset = DatasetFolder(folder)
    for path in (dataset.dev, dataset.test):
        split = load_eval(path)
        for side, items in (("queries", split.queries), ("corpus", split.corpus)):
            for item_id, text in items.items():
                if text_key(text) not in stored:
                    raise InputError(f"{path}: {side}[{item_id!r}]: its text has no vector in {where}")
    for index, example in enumerate(load_train(dataset.train)):
        for name in ("query", "positive", "negative"):
            text = getattr(example, name)
            if text is not None and text_key(text) not in stored:
                raise InputError(f"{dataset.train}: record {index}: its {name} has no vector in {where}")


@contextmanager
def import_lock(model: str, cache_dir: Path) -> Iterator[None]:
    """One import at a time per model name in a cache, from the first check to the last write: two imports
    checked against the same empty cache would both pass, and the second one's vectors would be dropped.
    The second waits, then is checked against the first one's vectors. The lock file lives in this
    machine's temp folder, keyed by the cache entry's path (a refused import leaves nothing in the user's
    cache); imports on two machines sharing one cache folder are not serialised."""
    entry = precomputed_cache(model, cache_dir).folder.resolve()
    waiting = f"another import of {model} into {cache_dir} is running: waiting for it to finish"
    with machine_lock("import", str(entry), waiting):
        yield


@dataclass
class VectorSources:
    queries: Path
    documents: Path
    model: str
    columns: VectorColumns = field(default_factory=VectorColumns)


@dataclass
class Checked:
    """Both files and the relevance source, checked whole; nothing written yet."""

    queries: Scanned
    documents: Scanned
    report: PrepareReport
    dataset: tuple | None  # (train, splits) to write, from --qrels_dir


def check_import(sources: VectorSources, cache_dir: Path, qrels: dict | None, processed: Path | None, seed: int):
    """Every check of an import, before any write: the files, their vectors against the cache, and the
    qrels (ids, grades, empty splits) or the processed dataset's texts."""
    cache = precomputed_cache(sources.model, cache_dir)
    files = (sources.queries, sources.documents)
    query_file = VectorFile(sources.queries, sources.columns, "--queries")
    document_file = VectorFile(sources.documents, sources.columns, "--documents")
    if processed is not None:
        for file in (query_file, document_file):
            if not file.has_text:
                raise InputError(
                    f"{file.path}: no {sources.columns.text!r} column; --processed matches vectors to texts"
                )
    seen: dict[str, int] = {}
    queries = scan(query_file, "query", cache, None, seen)
    documents = scan(document_file, "document", cache, queries.dim, seen)
    report = PrepareReport(f"vectors/{sources.model}", strict=True)
    dataset = None
    if qrels is not None:
        check_qrels_ids(qrels, queries, documents, files)
        dataset = build_splits(report, queries.texts, documents.texts, qrels, seed)  # grades, empty splits
    else:
        check_processed(processed, {text_key(t) for s in (queries, documents) for t in s.texts.values()}, files)
    return Checked(queries, documents, report, dataset), (query_file, document_file)


def prepare_vectors(
    sources: VectorSources,
    cache_dir: Path,
    out_root: Path,
    name: str | None = None,
    qrels_dir: Path | None = None,
    processed: Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> str:
    """Check both files and the relevance source, then store the vectors and (from qrels) write the dataset.
    An existing dataset of that name (perhaps a long `prepare beir`) is replaced only with --overwrite."""
    if (qrels_dir is None) == (processed is None):
        raise InputError("prepare vectors: give either --qrels_dir (with --name) or --processed, not both")
    if qrels_dir is not None and not name:
        raise InputError("--qrels_dir: give --name, the processed dataset to write")
    folder = dataset_folder(out_root, name, overwrite) if qrels_dir is not None else None
    qrels = qrels_files(qrels_dir) if qrels_dir is not None else None  # before the long scans
    with import_lock(sources.model, cache_dir):
        checked, (query_file, document_file) = check_import(sources, cache_dir, qrels, processed, seed)
        cache = precomputed_cache(sources.model, cache_dir, create=True)  # every check passed: now it may write
        store(query_file, "query", cache)
        store(document_file, "document", cache)
    report, queries = checked.report, checked.queries
    if checked.dataset is not None:
        placeholders = not (query_file.has_text and document_file.has_text)
        extra = {PLACEHOLDERS: {"model": sources.model}} if placeholders else None
        write_splits(folder, report, *checked.dataset, extra)
    differing = queries.differing + checked.documents.differing
    if differing:
        report.drop(
            str((sources.queries, sources.documents)),
            "repeated texts with different vectors (the first was kept)",
            differing,
        )
    report.lines.insert(
        0, f"  {len(queries.texts)} query and {len(checked.documents.texts)} document vectors, width {queries.dim}"
    )
    report.lines.append(f"  use them with --base_model {PREFIX}{sources.model}")
    return report.render()
