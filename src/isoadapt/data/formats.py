"""The processed formats, their loaders and their validation.

train.json: a list of {"query", "positive", "negative"?} records (texts).
dev.json / test.json: {"queries": {qid: text}, "corpus": {doc_id: text}, "qrels": {qid: {doc_id: grade}}},
BEIR's data contract. Loaders fail with one line naming the file, the record and the problem.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from isoadapt.data.grades import grade as to_grade
from isoadapt.data.layout import PLACEHOLDERS, TRAIN, split_file
from isoadapt.data.readers import check_id, check_text
from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.owned_folders import check_folder_path, check_output_folder, staged_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainExample:
    query: str
    positive: str
    negative: str | None = None


@dataclass
class EvalSet:
    """A retrieval benchmark split: texts by id and graded judgments."""

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]
    dropped_queries: int = field(default=0)


_text = check_text


def load_train(path: str | Path) -> list[TrainExample]:
    """Load and validate train.json."""
    path = Path(path)
    records = read_json(path)
    if not isinstance(records, list):
        raise InputError(
            f"{path}: expected a JSON list of {{query, positive, negative?}} records, got {type(records).__name__}"
        )
    if not records:
        raise InputError(f"{path}: no training records")
    examples = []
    for index, record in enumerate(records):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise InputError(f"{path}: {where}: expected an object, got {type(record).__name__}")
        for name in ("query", "positive"):
            if name not in record:
                raise InputError(f"{path}: {where}: missing '{name}'")
        negative = record.get("negative")
        examples.append(
            TrainExample(
                query=_text(path, where, "query", record["query"]),
                positive=_text(path, where, "positive", record["positive"]),
                negative=None if negative is None else _text(path, where, "negative", negative),
            )
        )
    return examples


def _id_text_map(path: Path, data: dict, key: str) -> dict[str, str]:
    section = data.get(key)
    if not isinstance(section, dict):
        raise InputError(f"{path}: '{key}' must be an object of {{id: text}}")
    if not section:
        raise InputError(f"{path}: '{key}' is empty")
    for item_id in section:
        check_text(path, key, "id", item_id)
        check_id(f"{path}: {key}", "id", item_id)
    return {str(item_id): _text(path, f"{key}[{item_id!r}]", "text", text) for item_id, text in section.items()}


def load_eval(path: str | Path) -> EvalSet:
    """Load and validate a dev/test split; queries with no relevant document are dropped and counted."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object with 'queries', 'corpus' and 'qrels', got {type(data).__name__}")
    for key in ("queries", "corpus", "qrels"):
        if key not in data:
            raise InputError(f"{path}: missing '{key}'")
    queries = _id_text_map(path, data, "queries")
    corpus = _id_text_map(path, data, "corpus")
    if not isinstance(data["qrels"], dict):
        raise InputError(f"{path}: 'qrels' must be an object of {{qid: {{doc_id: grade}}}}")
    qrels: dict[str, dict[str, int]] = {}
    for qid, judged in data["qrels"].items():
        if qid not in queries:
            raise InputError(f"{path}: qrels[{qid!r}]: query id not in queries")
        if not isinstance(judged, dict):
            raise InputError(f"{path}: qrels[{qid!r}]: expected an object of {{doc_id: grade}}")
        for doc_id, grade in judged.items():
            if doc_id not in corpus:
                raise InputError(f"{path}: qrels[{qid!r}]: doc id {doc_id!r} not in corpus")
            qrels.setdefault(qid, {})[doc_id] = to_grade(grade, f"{path}: qrels[{qid!r}][{doc_id!r}]")
    relevant = {qid for qid, judged in qrels.items() if any(g > 0 for g in judged.values())}
    if not relevant:
        raise InputError(f"{path}: no query has a relevant document (grade > 0)")
    dropped = len(queries) - len(relevant)
    if dropped:
        log.warning("%s: %d queries without a relevant document are left out of evaluation", path, dropped)
    return EvalSet(
        queries={qid: text for qid, text in queries.items() if qid in relevant},
        corpus=corpus,
        qrels={qid: qrels[qid] for qid in relevant},
        dropped_queries=dropped,
    )


@dataclass(frozen=True)
class StsPairs:
    sentence1: list[str]
    sentence2: list[str]
    scores: list[float]


def load_sts(path: str | Path) -> StsPairs:
    """Load sts_*.json: a list of {sentence1, sentence2, score}."""
    path = Path(path)
    records = read_json(path)
    if not isinstance(records, list) or not records:
        raise InputError(f"{path}: expected a non-empty JSON list of {{sentence1, sentence2, score}} records")
    s1, s2, scores = [], [], []
    for index, record in enumerate(records):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise InputError(f"{path}: {where}: expected an object, got {type(record).__name__}")
        s1.append(_text(path, where, "sentence1", record.get("sentence1")))
        s2.append(_text(path, where, "sentence2", record.get("sentence2")))
        score = record.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise InputError(f"{path}: {where}: 'score' must be a finite number, got {score!r}")
        scores.append(float(score))
    return StsPairs(s1, s2, scores)


def eval_set_to_json(split: EvalSet) -> dict:
    return {"queries": split.queries, "corpus": split.corpus, "qrels": split.qrels}


DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_texts_are_real(data: str | Path, base_model: str) -> None:
    """A dataset imported from vectors without a text column holds placeholders (`query:<id>`,
    `document:<id>`), not texts: only the vectors it was imported with may read it; a real encoder would
    silently train and score on the placeholders."""
    data = Path(data)
    marker = (data if data.is_dir() else data.parent) / PLACEHOLDERS
    if not marker.is_file():
        return
    model = read_json(marker).get("model")
    if base_model != f"vectors:{model}":
        raise InputError(
            f"{data}: its texts are placeholders ('query:<id>', 'document:<id>') from vectors imported without "
            f"a text column; use it with --base_model vectors:{model}"
        )


def dataset_folder(out_root: Path, name: str, overwrite: bool = True) -> Path:
    """out_root/name, where name is one plain folder name and the folder is new or an isoadapt dataset
    (replaced only with `overwrite`: a source's own `prepare` passes True, `prepare vectors` the flag)."""
    if not DATASET_NAME.match(name) or len(name) > 200:
        raise InputError(
            f"dataset name {name!r}: must be one folder name of letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    folder = out_root / name
    check_output_folder(folder, "--out_root", "dataset", overwrite)
    return folder


@contextmanager
def prepare_lock(out_root: Path) -> Iterator[None]:
    """One `prepare` at a time per --out_root: two writers of the same dataset would race to swap it in."""
    check_folder_path(out_root, "--out_root")
    # The lock lives in the system's temp folder, keyed by the resolved out_root: no litter in the user's folder.
    key = hashlib.sha256(str(out_root.resolve()).encode()).hexdigest()[:16]
    lock = FileLock(str(Path(tempfile.gettempdir()) / f"isoadapt-prepare-{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise InputError(
            f"--out_root {out_root}: another isoadapt prepare is writing there; wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def write_dataset(
    out_dir: str | Path,
    train: list[TrainExample] | None,
    splits: dict[str, EvalSet],
    extra: dict[str, object] | None = None,
) -> None:
    """Write a processed dataset folder all at once: built beside it, then swapped in."""
    if "train" in splits:
        raise ValueError("the train split is written as train.json pairs, not in the retrieval format")
    with staged_folder(Path(out_dir), "dataset") as staging:
        if train is not None:
            records = [
                {"query": e.query, "positive": e.positive, **({"negative": e.negative} if e.negative else {})}
                for e in train
            ]
            atomic_write_json(staging / TRAIN, records, indent=None)
        for name, split in splits.items():
            atomic_write_json(staging / split_file(name), eval_set_to_json(split), indent=None)
        for name, obj in (extra or {}).items():
            atomic_write_json(staging / name, obj, indent=None)
