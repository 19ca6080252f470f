"""Texts for `fit` in the forms a sentence-transformers user already has: a list of (anchor, positive[,
negative]) tuples or of {"anchor"/"query", "positive", "negative"?} dicts, or a `datasets.Dataset` whose
first column is the anchor, the second the positive and an optional third the negative (sentence-transformers'
column convention: by position, not by name). Validation and test splits may also be BEIR-style dicts
({"queries", "corpus", "qrels"}, the arguments of sentence-transformers' InformationRetrievalEvaluator) or a
processed split file. Everything is checked here, each refusal naming the argument and the row, then
written as a processed dataset that the train command reads."""

from __future__ import annotations

import sys
from pathlib import Path

from isoadapt.api.inputs import text_problem
from isoadapt.data.formats import EvalSet, TrainExample, load_eval, write_dataset
from isoadapt.data.layout import EVALUATED, DatasetFolder
from isoadapt.errors import InputError

ANCHOR_KEYS = ("anchor", "query")  # sentence-transformers' name, and the processed train.json's
ROW_KEYS = {*ANCHOR_KEYS, "positive", "negative"}


def is_dataset(value: object) -> bool:
    """A Hugging Face `datasets.Dataset` (checked without importing `datasets` when it is not loaded)."""
    datasets = sys.modules.get("datasets")
    return datasets is not None and isinstance(value, datasets.Dataset)


def is_texts(value: object) -> bool:
    """Pairs given as Python objects (a list or tuple of rows, or a Dataset), not a folder or arrays."""
    return is_dataset(value) or isinstance(value, (list, tuple))


def _dataset_rows(where: str, dataset) -> list[tuple]:
    columns = list(dataset.column_names)
    if not 2 <= len(columns) <= 3:
        raise InputError(
            f"{where}: a Dataset with columns {columns}; expected (anchor, positive) or (anchor, positive, "
            "negative), by position as sentence-transformers reads them"
        )
    return list(zip(*(dataset[name] for name in columns)))


def _row(where: str, index: int, row: object) -> tuple[str, str, str | None]:
    """One (anchor, positive, negative or None), each a checked text."""
    if isinstance(row, dict):
        unknown = sorted(set(row) - ROW_KEYS, key=str)
        anchors = [k for k in ANCHOR_KEYS if k in row]
        if unknown or len(anchors) != 1 or "positive" not in row:
            raise InputError(
                f"{where}[{index}]: a dict with keys {sorted(row, key=str)}; expected 'anchor' (or 'query'), "
                "'positive' and optionally 'negative'"
            )
        fields = {"anchor": row[anchors[0]], "positive": row["positive"], "negative": row.get("negative")}
    elif isinstance(row, (tuple, list)) and len(row) in (2, 3):
        fields = dict(zip(("anchor", "positive", "negative"), (*row, None)))
    else:
        raise InputError(
            f"{where}[{index}]: expected an (anchor, positive[, negative]) tuple or a dict, got {row!r:.60}"
        )
    for name, text in fields.items():
        problem = None if name == "negative" and text is None else text_problem(text)
        if problem is None and isinstance(text, str) and not text.strip():
            problem = "is empty"
        if problem:
            raise InputError(f"{where}[{index}] {name}: {problem}")
    return fields["anchor"], fields["positive"], fields["negative"]


def text_rows(where: str, data: object) -> list[tuple[str, str, str | None]]:
    rows = _dataset_rows(where, data) if is_dataset(data) else list(data)
    if not rows:
        raise InputError(f"{where}: no training pairs")
    return [_row(where, index, row) for index, row in enumerate(rows)]


def examples(where: str, data: object) -> list[TrainExample]:
    return [TrainExample(*row) for row in text_rows(where, data)]


def split_from_pairs(where: str, data: object) -> EvalSet:
    """Pairs as a retrieval split: each distinct anchor a query, every positive and negative a document,
    an anchor's positives relevant (grade 1), as sentence-transformers' examples build an
    InformationRetrievalEvaluator from pairs."""
    rows = text_rows(where, data)
    query_ids: dict[str, str] = {}
    document_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for anchor, positive, negative in rows:
        qid = query_ids.setdefault(anchor, f"q{len(query_ids)}")
        for text in (positive, negative):
            if text is not None:
                document_ids.setdefault(text, f"d{len(document_ids)}")
        qrels.setdefault(qid, {})[document_ids[positive]] = 1
    return EvalSet({q: t for t, q in query_ids.items()}, {d: t for t, d in document_ids.items()}, qrels)


def stage_texts(train: object, splits: dict[str, object], folder: Path) -> dict[str, Path]:
    """Write the training pairs and the evaluated splits (pairs, a BEIR dict, or a processed file) as a
    processed dataset in `folder`; each split is read back with the train command's own checks before
    training, its messages naming the argument rather than the staged file. Returns each split's file."""
    evaluated = {}
    for name, value in splits.items():
        if isinstance(value, (str, Path)):
            evaluated[name] = load_eval(value)  # the user's own file: its messages name it
        elif isinstance(value, dict):
            parts = [value.get(key) for key in ("queries", "corpus", "qrels")]
            if sorted(value) != ["corpus", "qrels", "queries"] or not all(isinstance(p, dict) for p in parts):
                raise InputError(
                    f"{name}: a dict with keys {sorted(value, key=str)}; expected 'queries' {{id: text}}, "
                    "'corpus' {id: text} and 'qrels' {query_id: {document_id: grade}}"
                )
            evaluated[name] = EvalSet(*parts)
        else:
            evaluated[name] = split_from_pairs(name, value)
    files = {EVALUATED[name]: name for name in splits}
    write_dataset(folder, examples("data", train), {file: evaluated[name] for file, name in files.items()})
    written = DatasetFolder(folder).inputs()
    for name in splits:
        try:
            load_eval(written[name])
        except InputError as err:
            raise InputError(str(err).replace(str(written[name]), name)) from None
    return {"train": written["train"], **{name: written[name] for name in splits}}
