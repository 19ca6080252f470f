"""Our wiring of trec_eval (pytrec_eval) agrees with ranx, an independent implementation, on graded qrels."""

import numpy as np
import pytest

from isoadapt.metrics.retrieval import exact_search, retrieval_scores


def random_case(seed: int):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(300)]
    qrels = {
        f"q{i}": {docs[j]: int(rng.integers(1, 4)) for j in rng.choice(300, rng.integers(1, 6), replace=False)}
        for i in range(40)
    }
    run = {
        q: {docs[j]: float(rng.random()) for j in rng.choice(300, 150, replace=False)} for q in qrels
    }  # no ties: libraries break them differently
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pytrec_eval_wiring_matches_ranx(seed):
    import warnings

    from ranx import Qrels, Run, evaluate

    qrels, run = random_case(seed)
    ours, per_query = retrieval_scores(qrels, run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranx_scores = evaluate(
            Qrels.from_dict(qrels), Run.from_dict(run), ["ndcg@10", "mrr@10", "recall@100"], return_mean=False
        )
    for metric in ("ndcg@10", "mrr@10", "recall@100"):
        assert ours[metric] == pytest.approx(float(np.mean(ranx_scores[metric])), abs=1e-9)
    assert [per_query[q] for q in sorted(qrels)] == pytest.approx(list(ranx_scores["ndcg@10"]), abs=1e-9)


def test_hand_checked_single_query():
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"x": 0.9, "a": 0.8, "b": 0.1}}
    scores, _ = retrieval_scores(qrels, run)
    dcg = 2 / np.log2(3) + 1 / np.log2(4)  # trec_eval's linear gains
    idcg = 2 / np.log2(2) + 1 / np.log2(3)
    assert scores["ndcg@10"] == pytest.approx(dcg / idcg)
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@100"] == 1.0


def test_mrr_cut_at_10_breaks_ties_like_trec_eval():
    run = {"q": {f"d{i:02d}": 1.0 for i in range(12)}}  # all tied: trec_eval ranks d11, d10, ..., d00
    assert retrieval_scores({"q": {"d11": 1}}, run)[0]["mrr@10"] == 1.0
    assert retrieval_scores({"q": {"d01": 1}}, run)[0]["mrr@10"] == 0.0  # rank 11


def test_a_judged_query_missing_from_the_run_scores_zero():
    scores, per_query = retrieval_scores({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}})
    assert per_query == {"q1": 1.0, "q2": 0.0} and scores["ndcg@10"] == 0.5


def test_exact_search_is_cosine_top_k():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    run = exact_search(np.array([[2.0, 0.0]], dtype=np.float32), vectors * 5, ["q"], ["a", "b", "c", "d"], top_k=2)
    assert list(run["q"]) == ["a", "b"] and run["q"]["a"] == pytest.approx(1.0)


def test_chunked_top_k_equals_one_big_top_k():
    import torch

    from isoadapt.metrics.retrieval import top_k_cosine

    rng = np.random.default_rng(3)
    queries, docs = rng.normal(size=(37, 16)).astype(np.float32), rng.normal(size=(1000, 16)).astype(np.float32)
    scores, indices = top_k_cosine(queries, docs, 25, query_chunk=8, doc_chunk=97)
    full = (
        torch.nn.functional.normalize(torch.as_tensor(queries), dim=-1)
        @ torch.nn.functional.normalize(torch.as_tensor(docs), dim=-1).T
    )
    expected_scores, expected_indices = torch.topk(full, 25, dim=1)
    assert np.array_equal(indices, expected_indices.numpy())
    assert np.allclose(scores, expected_scores.numpy(), atol=1e-6)
