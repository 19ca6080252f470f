"""A BEIR folder: corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/{split}.tsv
(header `query-id corpus-id score`). Title and text are joined as BEIR's SentenceBERT model does."""

from __future__ import annotations

import random
from pathlib import Path

from isoadapt.data.formats import TrainExample, write_dataset
from isoadapt.data.readers import IdRegistry, read_jsonl, read_tsv, require_text
from isoadapt.data.report import PrepareReport, finish_split
from isoadapt.data.sampling import sample_negative
from isoadapt.errors import InputError

SPLITS = ("train", "dev", "test")


def read_corpus(path: Path) -> dict[str, str]:
    registry, corpus = IdRegistry(path, "document"), {}
    for number, record in read_jsonl(path):
        doc_id = str(record.get("_id", ""))
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
        qid = str(record.get("_id", ""))
        registry.add(qid, number)
        queries[qid] = require_text(path, number, "text", record.get("text"))
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for number, (qid, doc_id, score) in read_tsv(path, columns=3, skip_header=True):
        try:
            grade = int(score)
        except ValueError:
            raise InputError(f"{path}: line {number}: score {score!r} is not an integer") from None
        qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def prepare_beir(raw_dir: Path, name: str, out_root: Path, seed: int = 0, strict: bool = False) -> PrepareReport:
    report = PrepareReport(f"beir/{name}", strict)
    present = [s for s in SPLITS if (raw_dir / "qrels" / f"{s}.tsv").is_file()]
    if not present:
        raise InputError(f"{raw_dir / 'qrels'}: no train.tsv, dev.tsv or test.tsv")
    corpus = read_corpus(raw_dir / "corpus.jsonl")
    queries = read_queries(raw_dir / "queries.jsonl")
    splits = {}
    for split in present:
        path = raw_dir / "qrels" / f"{split}.tsv"
        qrels = read_qrels(path)
        splits[split] = finish_split(report, str(path), {q: queries[q] for q in qrels if q in queries}, corpus, qrels)
    train = None
    if "train" in splits:
        rng, pool, train = random.Random(seed), sorted(corpus), []
        for qid, judged in splits["train"].qrels.items():
            relevant = {d for d, g in judged.items() if g > 0}
            for doc_id in sorted(relevant):
                negative = sample_negative(rng, pool, set(judged))
                train.append(TrainExample(queries[qid], corpus[doc_id], corpus[negative] if negative else None))
    write_dataset(out_root / name, train, {s: data for s, data in splits.items() if s != "train"})
    for split, data in splits.items():
        report.split(split, data)
    if train is not None:
        report.train("train.json", train)
    return report
