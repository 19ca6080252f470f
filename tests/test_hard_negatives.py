"""Hard-negative mining (training/hard_negatives.py): every judged-relevant document excluded, the
positive-aware margin, and the same choice as sentence-transformers' mine_hard_negatives on MiniLM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isoadapt.data.formats import TrainExample
from isoadapt.training.hard_negatives import mine_hard_negatives, ranked_candidates

from conftest import CHERCHE_ARCHIVE


def test_no_judged_relevant_document_is_ever_a_negative_and_the_margin_drops_near_positives():
    """Query 0 has two positives (documents 0 and 1, lowest cosine 0.936); document 2 (cosine 0.92) sits
    within 5% of that positive score, document 3 (0.61) is a clear negative."""
    queries = np.array([[1.0, 0.0, 0.0]])
    docs = np.array([[0.9, 0.1, 0.0], [0.8, 0.3, 0.0], [0.92, 0.392, 0.0], [0.6, 0.6, 0.5], [0.0, 0.0, 1.0]])
    ranked, refused = ranked_candidates(queries, docs, [[0, 1]], relative_margin=0.05)
    assert 0 not in ranked[0] and 1 not in ranked[0]
    assert ranked[0][:2] == [3, 4] and refused == 1  # 0.92 > 0.936 - 0.05 * 0.936: a likely positive
    no_margin, refused = ranked_candidates(queries, docs, [[0, 1]], relative_margin=0.0)
    assert no_margin[0][:3] == [2, 3, 4] and refused == 0


def vectors_of(table: dict[str, list[float]]):
    return lambda texts: np.array([table[t] for t in texts])


def test_mined_pairs_keep_their_query_and_positive_and_take_the_valid_candidates_in_turn():
    """A query with three positives gets its 1st, 2nd and 3rd valid candidate, best first."""
    angle = {f"d{i}": np.deg2rad(10 * i) for i in range(8)}
    table = {"q": [1.0, 0.0], "r": [0.0, 1.0], **{d: [np.cos(a), np.sin(a)] for d, a in angle.items()}}
    examples = [TrainExample("q", "d0", "d7"), TrainExample("q", "d1", "d7"), TrainExample("q", "d3", None)]
    others = [TrainExample("r", "d2", "d4"), TrainExample("r", "d5", "d6")]  # the rest of the candidates
    mined, report = mine_hard_negatives(examples + others, vectors_of(table), relative_margin=0.05)
    assert [(e.query, e.positive) for e in mined] == [(e.query, e.positive) for e in examples + others]
    # lowest positive d3 (cos 30deg = 0.866): threshold 0.823; d2 (0.940) refused; then d4, d5, d6 in turn
    assert [e.negative for e in mined[:3]] == ["d4", "d5", "d6"]
    assert report.mined == 5 and report.kept == 0


def test_a_query_with_no_valid_candidate_keeps_the_files_negative():
    table = {"q": [1.0, 0.0], "p": [0.0, 1.0], "n": [0.7, 0.7]}  # the only candidate scores above the positive
    mined, report = mine_hard_negatives([TrainExample("q", "p", "n")], vectors_of(table), relative_margin=0.05)
    assert mined[0].negative == "n" and (report.mined, report.kept) == (0, 1)


@pytest.mark.slow
@pytest.mark.skipif(not CHERCHE_ARCHIVE.is_file(), reason="run `make setup` first")
def test_the_choice_matches_sentence_transformers_mine_hard_negatives(tmp_path):
    """Single-positive queries from real Semanlink pairs, MiniLM's vectors: our top valid candidate is the
    negative sentence-transformers mines with relative_margin 0.05, range_max 50, sampling 'top'."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives as st_mine

    from isoadapt.data.semanlink import prepare_semanlink
    from isoadapt.encoding.encoder import open_encoder

    prepare_semanlink(CHERCHE_ARCHIVE, tmp_path)
    pairs = json.loads((tmp_path / "semanlink" / "train.json").read_text())
    counts = {}
    for p in pairs:
        counts[p["query"]] = counts.get(p["query"], 0) + 1
    single = [p for p in pairs if counts[p["query"]] == 1][:60]
    examples = [TrainExample(p["query"], p["positive"], p["negative"]) for p in single]
    encoder = open_encoder("sentence-transformers/all-MiniLM-L6-v2", tmp_path / "cache", "cpu")
    ours, _ = mine_hard_negatives(examples, encoder.encode, relative_margin=0.05)
    dataset = Dataset.from_dict({"query": [e.query for e in examples], "positive": [e.positive for e in examples]})
    theirs = st_mine(
        dataset,
        encoder.model,
        corpus=[e.negative for e in examples],
        range_max=50,
        relative_margin=0.05,
        num_negatives=1,
        sampling_strategy="top",
        verbose=False,
    )
    theirs = dict(zip(theirs["query"], theirs["negative"]))
    assert len(theirs) >= 50
    assert all(e.negative == theirs[e.query] for e in ours if e.query in theirs)


def test_a_sample_of_pairs_still_excludes_every_positive_of_the_file():
    """The file judges A and B relevant to q; trained on a sample holding (q, A) only, q's mined negative
    must not be B (another query's positive in the sample): C is."""
    table = {"q": [1.0, 0.0], "r": [0.0, 1.0], "A": [0.9, 0.436], "B": [0.7, 0.714], "C": [0.3, 0.954]}
    file_pairs = [TrainExample("q", "A", None), TrainExample("q", "B", None), TrainExample("r", "B", "C")]
    sample = [file_pairs[0], file_pairs[2]]
    alone, _ = mine_hard_negatives(sample, vectors_of(table), relative_margin=0.05)
    assert alone[0].negative == "B"  # without the file's judgments B looks like the hardest negative
    mined, _ = mine_hard_negatives(sample, vectors_of(table), relative_margin=0.05, judged=file_pairs)
    assert mined[0].negative == "C"
