"""Semanlink: bookmarks (queries) tagged with concepts (documents), from cherche 2.2.1's source archive.

A query is a bookmark's title + comment (bookmarks that carry an arXiv summary are left out); a document
is a tag, its prefLabel and altLabel texts; a query's relevant documents are its tags, minus the generic
`arxiv_doc` tag. Bookmarks are split 80/10/10, seeded.

Two shift probes are written beside the splits, validation-only (selection may read them; they are never a
test set): `probe_arxiv.json`, the bookmarks left out because they carry an arXiv summary, with that summary
(a paper abstract) as the query, against the same tags; and `probe_titles.json`, the dev bookmarks' titles
alone, lower-cased and stripped of punctuation (short keyword-style queries), against the same tags.
A third, `probe_documents.json`, asks with whole documents: each arXiv abstract is the query, the train and
dev bookmarks' texts are the corpus (a test bookmark never is, nor any text equal to one), and a bookmark's
grade is how many tags it shares with the paper. A head that adapts queries only, or moves long texts away
from the space documents live in, shows it here and nowhere else.
With `news_source` (gensim's wheel), a fourth: `probe_news.json`, whole documents of another domain asked as
queries (data/news_probe.py).
"""

from __future__ import annotations

import json
import logging
import random
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from isoadapt.data.formats import EvalSet, TrainExample, dataset_folder, write_dataset
from isoadapt.data.layout import DATA_ROOT, DOCUMENT_PROBE, NEWS_PROBE, PROBE_PREFIX, smoke_name
from isoadapt.data.news_probe import news_probe
from isoadapt.data.readers import check_text, is_blank
from isoadapt.data.sampling import sample_negative, split_ids
from isoadapt.errors import InputError, describe

log = logging.getLogger(__name__)

GENERIC_TAG = "http://www.semanlink.net/tag/arxiv_doc"
DEFAULT_SOURCE = Path("data/raw/cherche-2.2.1.tar.gz")
SMOKE_PAIRS = 2000


@dataclass
class SemanlinkSummary:
    bookmarks: int
    dropped_empty_text: int
    dropped_no_tags: int
    documents: int
    splits: dict[str, int]
    judgments: dict[str, int]
    train_pairs: int
    smoke_pairs: int
    probes: dict[str, int]  # probe file -> queries

    def lines(self) -> list[str]:
        out = [f"semanlink: {self.bookmarks} bookmarks without an arXiv summary, {self.documents} tags (documents)"]
        out.append(
            f"  dropped: {self.dropped_empty_text} with empty text, {self.dropped_no_tags} with no tag "
            "besides arxiv_doc"
        )
        for name in ("train", "dev", "test"):
            out.append(f"  {name}: {self.splits[name]} queries, {self.judgments[name]} judgments")
        out.append(f"  train.json: {self.train_pairs} pairs; semanlink_smoke/train.json: {self.smoke_pairs} pairs")
        out.append(
            "  shift probes (validation only): " + ", ".join(f"{n}.json {q} queries" for n, q in self.probes.items())
        )
        if PROBE_PREFIX + NEWS_PROBE not in self.probes:
            out.append(f"  {PROBE_PREFIX}{NEWS_PROBE}.json not written: no --news_source (`make setup` downloads it)")
        return out


def _read_member(source: Path, name: str):
    """Read docs.json / tags.json from the source archive or from a folder holding them."""
    if source.is_dir():
        path = source / name
        if not path.is_file():
            raise InputError(f"{source}: no {name} in this folder")
        data = path.read_bytes()
    elif source.is_file():
        try:
            with tarfile.open(source) as archive:
                member = next(
                    (m for m in archive.getmembers() if m.name.endswith(f"cherche/data/semanlink/{name}")), None
                )
                if member is None:
                    raise InputError(f"{source}: archive has no cherche/data/semanlink/{name}")
                data = archive.extractfile(member).read()
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:  # truncated or damaged gzip stream
            raise InputError(f"{source}: not a readable tar archive ({describe(err)})") from None
    else:
        raise InputError(f"{source}: file not found (run `make setup`, or pass --source)")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{source}: {name}: malformed JSON ({err})") from None


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_docs(source: Path, docs) -> None:
    """docs.json: a list of bookmark objects with a string `document` id, optional string title/comment and
    a list of tag URIs; anything else stops with the record's index."""
    if not isinstance(docs, list):
        raise InputError(f"{source}: docs.json: expected a list of bookmarks, got {type(docs).__name__}")
    for index, doc in enumerate(docs):
        where = f"{source}: docs.json: record {index}"
        if not isinstance(doc, dict):
            raise InputError(f"{where}: expected an object, got {type(doc).__name__}")
        check_text(source, f"docs.json: record {index}", "document", doc.get("document"))
        for key in ("title", "comment"):
            value = doc.get(key) or ""
            if not isinstance(value, str):
                raise InputError(f"{where}: '{key}' must be a string, got {type(value).__name__}")
            if not is_blank(value):  # blank titles are dropped and counted later, not refused
                check_text(source, f"docs.json: record {index}", key, value)
        if not _strings(doc.get("tag", [])):
            raise InputError(f"{where}: 'tag' must be a list of strings")


def check_tags(source: Path, tags) -> None:
    """tags.json: an object {uri: {prefLabel: [str], altLabel: [str]}}."""
    if not isinstance(tags, dict):
        raise InputError(f"{source}: tags.json: expected an object of {{uri: tag}}, got {type(tags).__name__}")
    for uri, tag in tags.items():
        where = f"{source}: tags.json: tag {uri!r}"
        if not isinstance(tag, dict):
            raise InputError(f"{where}: expected an object, got {type(tag).__name__}")
        for key in ("prefLabel", "altLabel"):
            labels = tag.get(key) or []
            if not _strings(labels):
                raise InputError(f"{where}: '{key}' must be a list of strings")
            for label in (label for label in labels if not is_blank(label)):
                check_text(source, f"tags.json: tag {uri!r}", key, label)


def tag_text(tag: dict) -> str:
    labels = [*(tag.get("prefLabel") or []), *(tag.get("altLabel") or [])]
    return "; ".join(label.strip() for label in labels if not is_blank(label))


def bookmark_text(doc: dict) -> str:
    return " ".join(part.strip() for part in (doc.get("title") or "", doc.get("comment") or "") if not is_blank(part))


def keyword_style(title: str) -> str:
    """A title as a keyword query: lower-cased, punctuation replaced by spaces, whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", title.lower()).split())


def probe_splits(docs: list, corpus: dict[str, str], dev: EvalSet) -> dict[str, EvalSet]:
    """The two shift probes (see the module docstring); a query with no text or no known tag is left out."""
    abstracts, relevant = {}, {}
    for doc in docs:
        tags = {t for t in doc.get("tag", []) if t != GENERIC_TAG and t in corpus}
        summary = " ".join((doc.get("arxiv_summary") or "").split())
        if summary and tags:
            abstracts[doc["document"]], relevant[doc["document"]] = summary, tags
    titles = {d["document"]: keyword_style(d.get("title") or "") for d in docs if d["document"] in dev.queries}
    titles = {qid: text for qid, text in titles.items() if text}
    return {
        PROBE_PREFIX + "arxiv": EvalSet(abstracts, corpus, {q: {t: 1 for t in sorted(relevant[q])} for q in abstracts}),
        PROBE_PREFIX + "titles": EvalSet(titles, corpus, {q: dev.qrels[q] for q in titles}),
    }


def document_probe(docs: list, texts: dict[str, str], relevant: dict[str, set[str]], held_out: set[str]) -> EvalSet:
    """Documents as queries (module docstring): arXiv abstracts against the bookmark texts `texts` (train and
    dev only), graded by shared tags. `held_out`: the test bookmarks' texts, never a document here even
    when a train bookmark repeats one word for word. A paper sharing no tag with any bookmark is left out."""
    corpus = {bid: text for bid, text in texts.items() if text not in held_out}
    by_tag: dict[str, set[str]] = {}
    for bid in corpus:
        for tag in relevant[bid]:
            by_tag.setdefault(tag, set()).add(bid)
    queries, qrels = {}, {}
    for doc in docs:
        summary = " ".join((doc.get("arxiv_summary") or "").split())
        shared: dict[str, int] = {}
        for tag in {t for t in doc.get("tag", []) if t != GENERIC_TAG}:
            for bid in by_tag.get(tag, ()):
                shared[bid] = shared.get(bid, 0) + 1
        if summary and shared:
            queries[doc["document"]], qrels[doc["document"]] = summary, dict(sorted(shared.items()))
    return EvalSet(queries, corpus, qrels)


def prepare_semanlink(
    source: Path = DEFAULT_SOURCE, out_root: Path = DATA_ROOT, seed: int = 0, news_source: Path | None = None
) -> SemanlinkSummary:
    full, smoke_folder = dataset_folder(out_root, "semanlink"), dataset_folder(out_root, smoke_name("semanlink"))
    news = news_probe(news_source) if news_source else None  # read first: a bad file fails before any work
    docs = _read_member(source, "docs.json")
    check_docs(source, docs)
    tags = _read_member(source, "tags.json")
    check_tags(source, tags)
    corpus = {uri: tag_text(tag) for uri, tag in sorted(tags.items())}
    corpus = {uri: text for uri, text in corpus.items() if text and uri != GENERIC_TAG}

    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    bookmarks = dropped_text = dropped_tags = 0
    for doc in docs:
        if doc.get("arxiv_summary"):
            continue
        bookmarks += 1
        text = bookmark_text(doc)
        doc_tags = {t for t in doc.get("tag", []) if t != GENERIC_TAG and t in corpus}
        if not text:
            dropped_text += 1
            continue
        if not doc_tags:
            dropped_tags += 1
            continue
        queries[doc["document"]] = text
        relevant[doc["document"]] = doc_tags

    train_ids, dev_ids, test_ids = split_ids(list(queries), (0.8, 0.1, 0.1), seed)
    rng = random.Random(seed)
    pool = list(corpus)
    train: list[TrainExample] = []
    for qid in train_ids:
        for tag in sorted(relevant[qid]):
            negative = sample_negative(rng, pool, relevant[qid])
            train.append(TrainExample(queries[qid], corpus[tag], corpus[negative] if negative else None))
    rng.shuffle(train)

    # Smoke train: whole bookmarks, in the seeded order, until about SMOKE_PAIRS pairs.
    smoke: list[TrainExample] = []
    by_query: dict[str, list[TrainExample]] = {}
    for example in train:
        by_query.setdefault(example.query, []).append(example)
    for group in by_query.values():
        if len(smoke) >= SMOKE_PAIRS:
            break
        smoke.extend(group)

    def split(ids: list[str]) -> EvalSet:
        return EvalSet({q: queries[q] for q in ids}, corpus, {q: {t: 1 for t in sorted(relevant[q])} for q in ids})

    dev, test = split(dev_ids), split(test_ids)
    probes = probe_splits(docs, corpus, dev)
    known = {q: queries[q] for q in (*train_ids, *dev_ids)}
    probes[PROBE_PREFIX + DOCUMENT_PROBE] = document_probe(docs, known, relevant, {queries[q] for q in test_ids})
    if news is not None:
        probes[PROBE_PREFIX + NEWS_PROBE] = news
    write_dataset(full, train, {"dev": dev, "test": test, **probes})
    write_dataset(smoke_folder, smoke, {"dev": dev, "test": test})
    return SemanlinkSummary(
        bookmarks=bookmarks,
        dropped_empty_text=dropped_text,
        dropped_no_tags=dropped_tags,
        documents=len(corpus),
        splits={"train": len(train_ids), "dev": len(dev_ids), "test": len(test_ids)},
        judgments={
            name: sum(len(relevant[q]) for q in ids)
            for name, ids in (("train", train_ids), ("dev", dev_ids), ("test", test_ids))
        },
        train_pairs=len(train),
        smoke_pairs=len(smoke),
        probes={name: len(split.queries) for name, split in probes.items()},
    )
