"""The out-of-domain documents-as-queries probe (data/news_probe.py): grades from the human ratings, an
article never its own answer, the wheel read as a zip, and `prepare semanlink` writing it beside the probes."""

from __future__ import annotations

import math
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval
from isoadapt.data.news_probe import (
    ARTICLES,
    DEFAULT_NEWS_SOURCE,
    RATINGS,
    news_grade,
    news_probe,
    read_news_files,
)
from isoadapt.metrics.retrieval import exact_search
from test_hostile_prepare import semanlink_raw

from hostile import write

# Three articles; each pair's mean rating (1-5) / 5, as gensim ships them. By hand, grade = rating - 2, rounded
# half up, where positive: 0.9 -> rating 4.5 -> 3; 0.5 -> 2.5 -> 1; 0.3 -> 1.5 -> 0 (not relevant).
MATRIX = "1.0 0.9 0.3\n0.0 1.0 0.5\n0.0 0.0 1.0\n"  # upper triangle only, as gensim ships it
ARTICLES_TEXT = "Rain in Sydney.\nSydney  floods after rain.\nMarkets fall \xa3 5 per cent.\n"


def lee_folder(root: Path, matrix: str = MATRIX, articles: str = ARTICLES_TEXT) -> Path:
    write(root / Path(ARTICLES).name, articles.encode("latin-1"))
    write(root / Path(RATINGS).name, matrix)
    return root


def lee_wheel(path: Path, folder: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for member in (ARTICLES, RATINGS):
            wheel.write(folder / Path(member).name, member)
    return path


@pytest.mark.parametrize(
    "similarity, grade", [(0.2, 0), (0.49, 0), (0.5, 1), (0.69, 1), (0.7, 2), (0.89, 2), (0.9, 3), (1.0, 3)]
)
def test_grade_is_the_mean_rating_minus_two_rounded_half_up(similarity, grade):
    rating = 5 * Fraction(str(similarity))  # the raters' 1-5 scale, exactly
    assert news_grade(similarity) == grade == max(0, math.floor(rating - 2 + Fraction(1, 2)))


def test_probe_from_a_folder_and_from_a_wheel_are_the_same(tmp_path):
    folder = lee_folder(tmp_path / "lee")
    probe = news_probe(folder)
    assert probe.qrels == {"lee00": {"lee01": 3}, "lee01": {"lee00": 3, "lee02": 1}, "lee02": {"lee01": 1}}
    assert probe.corpus["lee01"] == "Sydney floods after rain."  # whitespace folded
    assert probe.corpus["lee02"] == "Markets fall £ 5 per cent."  # Latin-1, as gensim reads it
    assert probe.queries == probe.corpus and probe.dropped_queries == 0
    assert news_probe(lee_wheel(tmp_path / "g.whl", folder)) == probe


def test_an_article_with_no_related_one_is_no_query_but_stays_a_document(tmp_path):
    probe = news_probe(lee_folder(tmp_path, "1 0.2 0.2\n0 1 0.8\n0 0 1\n"))
    assert sorted(probe.queries) == ["lee01", "lee02"] and sorted(probe.corpus) == ["lee00", "lee01", "lee02"]
    assert probe.dropped_queries == 1


def test_a_full_symmetric_matrix_reads_as_its_upper_triangle(tmp_path):
    full = news_probe(lee_folder(tmp_path / "full", "1.0 0.9 0.3\n0.9 1.0 0.5\n0.3 0.5 1.0\n"))
    assert full == news_probe(lee_folder(tmp_path / "upper"))


def test_an_article_never_retrieves_itself():
    """Query and document share an id: search skips it, as BEIR's evaluator does."""
    vectors = np.eye(3, dtype=np.float32) + 0.1
    run = exact_search(vectors, vectors, ["lee00", "lee01", "lee02"], ["lee00", "lee01", "lee02"], top_k=2)
    assert all(qid not in docs for qid, docs in run.items())


def test_prepare_semanlink_writes_the_news_probe_beside_the_others(tmp_path, capsys):
    wheel = lee_wheel(tmp_path / "g.whl", lee_folder(tmp_path / "lee"))
    raw = semanlink_raw(tmp_path / "raw")
    argv = ["prepare", "semanlink", "--source", raw, "--out_root", tmp_path / "out", "--news_source", wheel]
    assert main([str(a) for a in argv]) == 0
    assert "probe_news.json 3 queries" in capsys.readouterr().out
    assert load_eval(tmp_path / "out" / "semanlink" / "probe_news.json").qrels["lee01"] == {"lee00": 3, "lee02": 1}


def test_without_the_wheel_the_summary_says_the_probe_is_not_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/raw/ holds no wheel here
    raw = semanlink_raw(tmp_path / "raw")
    assert main(["prepare", "semanlink", "--source", str(raw), "--out_root", str(tmp_path / "out")]) == 0
    assert "probe_news.json not written: no --news_source" in capsys.readouterr().out
    assert not (tmp_path / "out" / "semanlink" / "probe_news.json").exists()


@pytest.mark.skipif(not DEFAULT_NEWS_SOURCE.is_file(), reason="run `make setup` first: it fetches gensim's wheel")
def test_the_real_lee_corpus():
    """50 articles judged pairwise by people. The scale is mean rating / 5: the lowest value is 0.2, a mean
    rating of 1 (had it been (rating - 1) / 4, it would be 0). Relevant pairs are those rated 0.5 or more,
    counted straight off the file's upper triangle; each is judged from both of its articles."""
    articles, ratings = read_news_files(DEFAULT_NEWS_SOURCE)
    upper = ratings[np.triu_indices(len(articles), 1)]
    assert len(articles) == 50 and upper.min() == pytest.approx(0.2)
    probe = news_probe(DEFAULT_NEWS_SOURCE)
    assert len(probe.corpus) == 50 and len(probe.queries) + probe.dropped_queries == 50
    assert all(q not in docs for q, docs in probe.qrels.items())
    assert sum(len(docs) for docs in probe.qrels.values()) == 2 * int((upper >= 0.5 - 1e-9).sum())
