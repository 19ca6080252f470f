"""Exact cosine search and retrieval metrics from ranx (pytrec_eval-compatible, graded qrels)."""

from __future__ import annotations

import warnings

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
    """Mean NDCG@10, MRR@10 and Recall@100, and the per-query NDCG@10 (for paired significance tests)."""
    from ranx import Qrels, Run, evaluate

    ranx_qrels = Qrels.from_dict(qrels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's unsafe-cast notices
        scores = evaluate(ranx_qrels, Run.from_dict(run), list(RETRIEVAL_METRICS), return_mean=False)
    means = {name: float(np.mean(values)) for name, values in scores.items()}
    per_query = dict(zip(ranx_qrels.keys(), (float(v) for v in scores[PRIMARY_METRIC])))  # ranx keeps qids sorted
    return means, per_query
