"""`prepare semanlink` on the real cherche 2.2.1 archive: counts, determinism, and the format contract."""

import json

import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval, load_train
from isoadapt.data.sampling import split_ids
from isoadapt.data.semanlink import GENERIC_TAG, prepare_semanlink
from isoadapt.experiment.runner import ExperimentData

from conftest import CHERCHE_ARCHIVE

needs_archive = pytest.mark.skipif(
    not CHERCHE_ARCHIVE.is_file(), reason="run `make setup` first: it fetches cherche's source archive"
)


@needs_archive
def test_prepare_semanlink_counts_and_contract(tmp_path, capsys):
    assert main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path)]) == 0
    summary = capsys.readouterr().out
    assert "semanlink: 6986 bookmarks without an arXiv summary, 4602 tags (documents)" in summary
    assert "train: 5504 queries, 12261 judgments" in summary
    train = load_train(tmp_path / "semanlink" / "train.json")
    smoke = load_train(tmp_path / "semanlink_smoke" / "train.json")
    test = load_eval(tmp_path / "semanlink" / "test.json")
    dev = load_eval(tmp_path / "semanlink" / "dev.json")
    assert len(train) == 12261 and 1900 <= len(smoke) <= 2100
    assert all(e.negative for e in train)
    assert len(test.queries) == len(dev.queries) == 688
    assert not set(test.queries) & set(dev.queries)
    assert GENERIC_TAG not in test.corpus
    # smoke shares dev/test with the full set
    assert (tmp_path / "semanlink_smoke" / "test.json").read_bytes() == (
        tmp_path / "semanlink" / "test.json"
    ).read_bytes()


@needs_archive
def test_prepare_semanlink_is_deterministic(tmp_path):
    main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path / "a")])
    main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path / "b")])
    for name in ("train.json", "dev.json", "test.json"):
        assert (tmp_path / "a" / "semanlink" / name).read_bytes() == (tmp_path / "b" / "semanlink" / name).read_bytes()


@needs_archive
def test_negatives_are_never_relevant(tmp_path):
    main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path)])
    records = json.loads((tmp_path / "semanlink" / "train.json").read_text())
    positives: dict[str, set[str]] = {}
    for r in records:
        positives.setdefault(r["query"], set()).add(r["positive"])
    assert all(r["negative"] not in positives[r["query"]] for r in records)


def test_missing_archive_is_one_line(tmp_path, capsys):
    assert main(["prepare", "semanlink", "--source", str(tmp_path / "none.tar.gz"), "--out_root", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"isoadapt: error: {tmp_path / 'none.tar.gz'}: file not found (run `make setup`, or pass --source)"
    )


@needs_archive
def test_the_shift_probes_are_new_queries_or_rewritten_dev_queries_never_train_or_test(tmp_path, capsys):
    """probe_arxiv: the bookmarks prepare leaves out (an arXiv summary), their abstract as the query;
    probe_titles: dev bookmarks' titles, keyword-style. Neither holds a train or test query."""
    assert main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path)]) == 0
    assert "probe_arxiv.json 313 queries, probe_titles.json 687 queries" in capsys.readouterr().out
    folder = tmp_path / "semanlink"
    dev, test = load_eval(folder / "dev.json"), load_eval(folder / "test.json")
    train_queries = {e.query for e in load_train(folder / "train.json")}
    arxiv, titles = load_eval(folder / "probe_arxiv.json"), load_eval(folder / "probe_titles.json")
    assert not set(arxiv.queries) & (set(dev.queries) | set(test.queries))
    assert not set(arxiv.queries.values()) & train_queries
    assert set(titles.queries) <= set(dev.queries)
    assert all(titles.qrels[q] == dev.qrels[q] for q in titles.queries)
    assert all(t == t.lower() and "." not in t and "," not in t for t in titles.queries.values())
    assert arxiv.corpus == dev.corpus and GENERIC_TAG not in {d for q in arxiv.qrels.values() for d in q}


def semanlink_fixture(folder):
    """A tiny docs.json + tags.json: 40 bookmarks over 4 tags, and three arXiv papers whose summaries become
    the documents-as-queries probe's queries. A test bookmark and four others share one text word for word
    (split_ids, seed 0, says which bookmarks prepare puts in test)."""
    test_ids = split_ids([f"b{i}" for i in range(40)], (0.8, 0.1, 0.1), 0)[2]
    repeated = {test_ids[0], "b1", "b2", "b3", "b4"}
    tag = "http://www.semanlink.net/tag/{}".format
    tags = {tag(n): {"prefLabel": [n]} for n in ("nlp", "vision", "graphs", "audio")}
    tags[GENERIC_TAG] = {"prefLabel": ["arxiv doc"]}
    names = list(tags)[:4]
    docs = [
        {
            "document": f"b{i}",
            "title": "a repeated title" if f"b{i}" in repeated else f"bookmark {i} on {names[i % 4].rsplit('/', 1)[1]}",
            "tag": [names[i % 4], *([names[(i + 1) % 4]] if i % 3 == 0 else [])],
        }
        for i in range(40)
    ]
    docs += [
        {"document": "p0", "title": "paper", "arxiv_summary": "an  abstract\non nlp", "tag": [names[0], GENERIC_TAG]},
        {"document": "p1", "title": "paper", "arxiv_summary": "about graphs and audio", "tag": names[2:4]},
        {"document": "p2", "title": "paper", "arxiv_summary": "only generic", "tag": [GENERIC_TAG]},
    ]
    folder.mkdir()
    (folder / "docs.json").write_text(json.dumps(docs))
    (folder / "tags.json").write_text(json.dumps(tags))
    return docs


def test_the_documents_probe_asks_with_abstracts_against_train_and_dev_bookmarks_graded_by_shared_tags(tmp_path):
    """probe_documents: each arXiv abstract is a query against the train and dev bookmarks' texts; a bookmark's
    grade is the number of (non-generic) tags it shares with the paper; no test bookmark, nor any text equal
    to a test bookmark's, is a document; a paper sharing no tag is left out. Checked against the fixture's
    own tags, computed here independently."""
    docs = semanlink_fixture(tmp_path / "src")
    summary = prepare_semanlink(tmp_path / "src", tmp_path / "out")
    folder = tmp_path / "out" / "semanlink"
    probe = load_eval(folder / "probe_documents.json")
    dev, test = load_eval(folder / "dev.json"), load_eval(folder / "test.json")
    train_queries = {e.query for e in load_train(folder / "train.json")}
    assert summary.probes["probe_documents"] == 2 and set(probe.queries) == {"p0", "p1"}
    assert probe.queries["p0"] == "an abstract on nlp"  # whitespace collapsed, as probe_arxiv does
    assert not set(probe.corpus) & set(test.queries)
    assert not set(probe.corpus.values()) & set(test.queries.values())
    assert any(text == "a repeated title" for text in test.queries.values())  # the fixture exercises the case
    assert set(probe.corpus.values()) <= train_queries | set(dev.queries.values())
    assert set(probe.corpus) & set(dev.queries)  # dev bookmarks are documents too
    tags_of = {d["document"]: set(d["tag"]) - {GENERIC_TAG} for d in docs}
    for paper in ("p0", "p1"):
        expected = {b: len(tags_of[paper] & tags_of[b]) for b in probe.corpus if tags_of[paper] & tags_of[b]}
        assert probe.qrels[paper] == expected and expected
    assert max(probe.qrels["p1"].values()) == 2  # bookmarks tagged graphs and audio share both


def test_the_experiment_finds_the_documents_probe_prepare_wrote(tmp_path):
    semanlink_fixture(tmp_path / "src")
    prepare_semanlink(tmp_path / "src", tmp_path / "out")
    probes = ExperimentData.find_probes(tmp_path / "out", "semanlink", encodes=False)
    assert probes["documents"] == tmp_path / "out" / "semanlink" / "probe_documents.json"
