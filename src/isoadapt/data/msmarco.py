"""MS MARCO passage ranking from its official files, streamed (the real collection has 8.8M passages).

raw_dir holds collection.tsv (pid, passage), queries.{train,dev.small}.tsv (qid, text),
qrels.{train,dev.small}.tsv (qid 0 pid rel), triples.train.small.tsv (query, positive, negative) and,
optionally, top1000.dev (qid, pid, query, passage).
"""

from __future__ import annotations

import random
from pathlib import Path

from isoadapt.data.formats import TrainExample, dataset_folder, write_dataset
from isoadapt.data.grades import text_grade
from isoadapt.data.layout import smoke_name
from isoadapt.data.prepare_report import PrepareReport, finish_split
from isoadapt.data.readers import IdRegistry, Judgments, read_lines, read_tsv, require_text
from isoadapt.errors import InputError

SMOKE_TRAIN = 10_000


def read_id_texts(path: Path, kind: str) -> dict[str, str]:
    registry, texts = IdRegistry(path, kind), {}
    for number, (item_id, text) in read_tsv(path, columns=2):
        registry.add(item_id, number)
        texts[item_id] = require_text(path, number, f"{kind} text", text)
    return texts


def read_trec_qrels(path: Path, report: PrepareReport) -> dict[str, dict[str, int]]:
    judgments = Judgments()
    for number, line in read_lines(path):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4:
            raise InputError(f"{path}: line {number}: expected 4 columns (qid 0 pid rel), got {len(fields)}")
        judgments.add(fields[0], fields[2], text_grade(fields[3], f"{path}: line {number}", "relevance"))
    report.repeated_judgments(str(path), judgments)
    return judgments.qrels


def read_triples(path: Path, limit: int) -> list[TrainExample]:
    examples = []
    for number, (query, positive, negative) in read_tsv(path, columns=3):
        if len(examples) >= limit:
            break
        examples.append(
            TrainExample(
                *(
                    require_text(path, number, name, value)
                    for name, value in (("query", query), ("positive", positive), ("negative", negative))
                )
            )
        )
    return examples


def read_top1000(path: Path, qids: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Candidate passages of the chosen queries (pid -> text), and their query texts."""
    passages, queries = {}, {}
    for number, (qid, pid, query, passage) in read_tsv(path, columns=4):
        if qid in qids:
            passages[pid] = require_text(path, number, "passage", passage)
            queries[qid] = query
    return passages, queries


class _SeenIds:
    """Duplicate check for millions of ids: a bit per numeric id, a set for the rest."""

    def __init__(self):
        self.bits, self.other = bytearray(), set()

    def add(self, item_id: str) -> bool:
        if item_id.isdigit() and len(item_id) < 10:
            n = int(item_id)
            byte, bit = divmod(n, 8)
            if byte >= len(self.bits):
                self.bits.extend(bytes(byte + 1 - len(self.bits) + (1 << 16)))
            seen = self.bits[byte] >> bit & 1
            self.bits[byte] |= 1 << bit
            return not seen
        if item_id in self.other:
            return False
        self.other.add(item_id)
        return True


def stream_collection(
    path: Path, wanted: set[str], sample_size: int, seed: int
) -> tuple[dict[str, str], dict[str, str]]:
    """One pass: the wanted passages, plus a seeded reservoir sample of the others (Algorithm R)."""
    rng = random.Random(seed)
    found: dict[str, str] = {}
    reservoir: list[tuple[str, str]] = []
    seen, others = _SeenIds(), 0
    for number, (pid, passage) in read_tsv(path, columns=2):
        if not seen.add(pid):
            raise InputError(f"{path}: line {number}: duplicate passage id {pid!r}")
        text = require_text(path, number, "passage", passage)
        if pid in wanted:
            found[pid] = text
            continue
        others += 1
        if len(reservoir) < sample_size:
            reservoir.append((pid, text))
        else:
            slot = rng.randrange(others)
            if slot < sample_size:
                reservoir[slot] = (pid, text)
    return found, dict(sorted(reservoir))


def prepare_msmarco(
    raw_dir: Path,
    out_root: Path,
    max_train: int = 48_000,
    smoke: int | None = None,
    corpus_size: int = 100_000,
    smoke_corpus: int = 2_000,
    seed: int = 0,
    strict: bool = False,
) -> PrepareReport:
    report = PrepareReport("msmarco", strict)
    folder = dataset_folder(out_root, "msmarco")
    smoke_folder = dataset_folder(out_root, smoke_name("msmarco")) if smoke else None
    dev_queries = read_id_texts(raw_dir / "queries.dev.small.tsv", "query")
    dev_qrels = read_trec_qrels(raw_dir / "qrels.dev.small.tsv", report)
    triples = raw_dir / "triples.train.small.tsv"
    train = read_triples(triples, max_train) if triples.is_file() else None
    if train is None:
        report.lines.append(f"  no {triples.name}: no train.json")

    smoke_qids: list[str] = []
    if smoke:
        ordered = sorted(q for q in dev_queries if q in dev_qrels)
        random.Random(seed).shuffle(ordered)
        smoke_qids = sorted(ordered[:smoke])
    top1000 = raw_dir / "top1000.dev"
    candidates = read_top1000(top1000, set(smoke_qids))[0] if smoke and top1000.is_file() else {}
    judged = {pid for judged in dev_qrels.values() for pid in judged}
    found, sample = stream_collection(raw_dir / "collection.tsv", judged, corpus_size, seed)

    dev = finish_split(report, str(raw_dir / "qrels.dev.small.tsv"), dev_queries, {**found, **sample}, dev_qrels)
    write_dataset(folder, train, {"dev": dev})
    report.split("msmarco/dev", dev)
    if train is not None:
        report.train("msmarco/train.json", train)
    if smoke:
        chosen = {q: dev_queries[q] for q in smoke_qids}
        chosen_judged = {pid for q in smoke_qids for pid in dev_qrels.get(q, {})}
        judged_texts = {pid: found[pid] for pid in sorted(chosen_judged) if pid in found}
        corpus = {**judged_texts, **(candidates or dict(list(sample.items())[:smoke_corpus]))}
        smoke_report = PrepareReport("msmarco_smoke", strict)
        smoke_dev = finish_split(
            smoke_report,
            f"{raw_dir / 'qrels.dev.small.tsv'} (smoke)",
            chosen,
            corpus,
            {q: dev_qrels[q] for q in smoke_qids},
        )
        smoke_train = train[:SMOKE_TRAIN] if train is not None else None
        write_dataset(smoke_folder, smoke_train, {"dev": smoke_dev})
        report.split("msmarco_smoke/dev", smoke_dev)
        if smoke_train is not None:
            report.train("msmarco_smoke/train.json", smoke_train)
        report.lines.append(
            "  smoke corpus: "
            f"{'judged + top-1000 candidates' if candidates else f'judged + a seeded sample of {smoke_corpus}'}"
        )
    return report
