"""Exact cosine search and retrieval metrics from trec_eval (through pytrec_eval), for graded qrels."""

from __future__ import annotations

import numpy as np
import torch

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@100")
PRIMARY_METRIC = "ndcg@10"


def exact_search(
    query_vectors: np.ndarray,  # (nq, d)
    doc_vectors: np.ndarray,  # (nd, d)
    query_ids: list[str],
    doc_ids: list[str],
    top_k: int = 100,
    chunk_size: int = 1024,
) -> dict[str, dict[str, float]]:
    """Top-k documents by cosine for every query, as a BEIR run {qid: {doc_id: score}}; queries in chunks.

    As BEIR's evaluator does by default, a document whose id equals the query's id is skipped: a query
    never retrieves itself (STS-B's sentences are both queries and documents)."""
    docs = torch.nn.functional.normalize(torch.as_tensor(doc_vectors, dtype=torch.float32), dim=-1)  # (nd, d)
    k = min(top_k + 1, len(doc_ids))
    run: dict[str, dict[str, float]] = {}
    for start in range(0, len(query_ids), chunk_size):
        queries = torch.nn.functional.normalize(torch.as_tensor(query_vectors[start : start + chunk_size], dtype=torch.float32), dim=-1)
        scores, indices = torch.topk(queries @ docs.T, k, dim=1)  # (chunk, k)
        for row, qid in enumerate(query_ids[start : start + chunk_size]):
            hits = [(doc_ids[i], float(s)) for i, s in zip(indices[row].tolist(), scores[row].tolist()) if doc_ids[i] != qid]
            run[qid] = dict(hits[:top_k])
    return run




def retrieval_scores(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean NDCG@10, MRR@10 and Recall@100 over the judged queries, and the per-query NDCG@10 (for paired
    tests), computed by trec_eval through pytrec_eval (graded qrels; ties broken as trec_eval does).
    MRR@10 is trec_eval's recip_rank on each query's top 10."""
    import pytrec_eval

    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    # trec_eval's order: score descending, ties by document id descending
    top10 = {qid: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for qid, docs in run.items()}
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    qids = sorted(qrels)
    zero = {"ndcg_cut_10": 0.0, "recall_100": 0.0, "recip_rank": 0.0}  # a judged query the run missed scores 0
    per_metric = {
        "ndcg@10": [full.get(q, zero)["ndcg_cut_10"] for q in qids],
        "mrr@10": [reciprocal.get(q, zero)["recip_rank"] for q in qids],
        "recall@100": [full.get(q, zero)["recall_100"] for q in qids],
    }
    means = {name: float(np.mean(values)) for name, values in per_metric.items()}
    return means, dict(zip(qids, per_metric[PRIMARY_METRIC]))
