"""A BEIR folder: corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/{split}.tsv
(header `query-id corpus-id score`). Title and text are joined as BEIR's SentenceBERT model does."""

from __future__ import annotations

import random
from pathlib import Path

from isoadapt.data.formats import TrainExample, dataset_folder, write_dataset
from isoadapt.data.grades import spells_a_number, text_grade
from isoadapt.data.layout import TRAIN
from isoadapt.data.prepare_report import PrepareReport, finish_split
from isoadapt.data.readers import (
    IdRegistry,
    Judgments,
    read_jsonl,
    read_tsv,
    record_id,
    require_text,
)
from isoadapt.data.sampling import sample_negative
from isoadapt.errors import InputError

SPLITS = ("train", "dev", "test")


def read_corpus(path: Path) -> dict[str, str]:
    registry, corpus = IdRegistry(path, "document"), {}
    for number, record in read_jsonl(path):
        doc_id = record_id(path, number, record)
        registry.add(doc_id, number)
        title, text = record.get("title") or "", record.get("text") or ""
        if not isinstance(title, str) or not isinstance(text, str):
            raise InputError(f"{path}: line {number}: 'title' and 'text' must be strings")
        corpus[doc_id] = require_text(path, number, "text", (title + " " + text).strip())
    if not corpus:
        raise InputError(f"{path}: empty corpus")
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    registry, queries = IdRegistry(path, "query"), {}
    for number, record in read_jsonl(path):
        qid = record_id(path, number, record)
        registry.add(qid, number)
        queries[qid] = require_text(path, number, "text", record.get("text"))
    return queries


def read_qrels(path: Path, report: PrepareReport) -> dict[str, dict[str, int]]:
    """BEIR writes a `query-id corpus-id score` header, but hand-made files often lack it: the first line
    is a header only when its score column is not a number, so no judgment is lost either way."""
    judgments = Judgments()
    for number, (qid, doc_id, score) in read_tsv(path, columns=3):
        if is_header(number, score):
            continue
        judgments.add(qid, doc_id, text_grade(score, f"{path}: line {number}", "score"))
    report.repeated_judgments(str(path), judgments)
    return judgments.qrels


def prepare_beir(raw_dir: Path, name: str, out_root: Path, seed: int = 0, strict: bool = False) -> PrepareReport:
    report = PrepareReport(f"beir/{name}", strict)
    folder = dataset_folder(out_root, name)
    files = qrels_files(raw_dir / "qrels")  # before the corpus is read: a missing folder fails fast
    corpus = read_corpus(raw_dir / "corpus.jsonl")
    queries = read_queries(raw_dir / "queries.jsonl")
    write_splits(folder, report, *build_splits(report, queries, corpus, files, seed))
    return report


def qrels_files(qrels_dir: Path) -> dict[str, Path]:
    """BEIR's qrels/{train,dev,test}.tsv: those present, at least one."""
    present = {s: qrels_dir / f"{s}.tsv" for s in SPLITS if (qrels_dir / f"{s}.tsv").is_file()}
    if not present:
        raise InputError(f"{qrels_dir}: no train.tsv, dev.tsv or test.tsv")
    return present


def is_header(number: int, score: str) -> bool:
    """BEIR writes a `query-id corpus-id score` header, hand-made files often lack it: the first line is a
    header only when its score column is not a number."""
    return number == 1 and not spells_a_number(score)


def build_splits(
    report: PrepareReport, queries: dict[str, str], corpus: dict[str, str], files: dict[str, Path], seed: int
) -> tuple[list[TrainExample] | None, dict]:
    """The processed dataset from texts by id and BEIR qrels, checked whole and written nowhere yet: dev
    and test as retrieval splits, train as (query, positive, sampled negative) pairs. Shared with
    `prepare vectors`, which must finish every check before it stores a vector."""
    splits = {}
    for split, path in files.items():
        qrels = read_qrels(path, report)
        splits[split] = finish_split(report, str(path), {q: queries[q] for q in qrels if q in queries}, corpus, qrels)
    train = train_pairs(queries, corpus, splits["train"].qrels, seed) if "train" in splits else None
    return train, splits


def train_pairs(
    queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]], seed: int
) -> list[TrainExample]:
    """One (query, positive, sampled negative) pair per relevant judgment; the negative is drawn, seeded,
    from the documents the query's judgments do not name."""
    rng, pool, train = random.Random(seed), sorted(corpus), []
    for qid, judged in qrels.items():
        relevant = {d for d, g in judged.items() if g > 0}
        for doc_id in sorted(relevant):
            negative = sample_negative(rng, pool, set(judged))
            train.append(TrainExample(queries[qid], corpus[doc_id], corpus[negative] if negative else None))
    return train


def write_splits(
    folder: Path, report: PrepareReport, train: list[TrainExample] | None, splits: dict, extra: dict | None = None
) -> None:
    write_dataset(folder, train, {s: data for s, data in splits.items() if s != "train"}, extra)
    for split, data in splits.items():
        report.split(split, data)
    if train is not None:
        report.train(TRAIN, train)
