"""`prepare semanlink` on the real cherche 2.2.1 archive: counts, determinism, and the format contract."""

import json

import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval, load_train
from isoadapt.data.semanlink import GENERIC_TAG

from conftest import CHERCHE_ARCHIVE

pytestmark = pytest.mark.skipif(
    not CHERCHE_ARCHIVE.is_file(), reason="run `make setup` first: it fetches cherche's source archive"
)


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


def test_prepare_semanlink_is_deterministic(tmp_path):
    main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path / "a")])
    main(["prepare", "semanlink", "--source", str(CHERCHE_ARCHIVE), "--out_root", str(tmp_path / "b")])
    for name in ("train.json", "dev.json", "test.json"):
        assert (tmp_path / "a" / "semanlink" / name).read_bytes() == (tmp_path / "b" / "semanlink" / name).read_bytes()


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
