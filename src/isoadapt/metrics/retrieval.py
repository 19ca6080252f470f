"""Exact cosine search and retrieval metrics from trec_eval (through pytrec_eval), for graded qrels."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@100")
PRIMARY_METRIC = "ndcg@10"


def percent_change(new: float, old: float) -> float | None:
    """(new - old) / old in percent; None when old is 0 (no relative change is defined)."""
    return 100.0 * (new - old) / old if old else None


def top_k_cosine(
    query_vectors: np.ndarray,  # (nq, d)
    doc_vectors: np.ndarray,  # (nd, d), may be a memory map
    k: int,
    query_chunk: int = 1024,
    doc_chunk: int = 131_072,  # 1024 x 131072 float32 scores = 512 MiB at most
    normalize_documents: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by cosine, (scores (nq, k), doc indices (nq, k)); memory is bounded by the chunk sizes,
    not the corpus: each query chunk merges the running top-k with every document chunk's. Without
    `normalize_documents` the score is the dot product with the unit query (vectors whose norm carries
    meaning, as NUDGE-M's do)."""
    k = min(k, len(doc_vectors))
    all_scores, all_indices = [], []
    for q_start in range(0, len(query_vectors), query_chunk):
        queries = F.normalize(
            torch.as_tensor(np.asarray(query_vectors[q_start : q_start + query_chunk]), dtype=torch.float32), dim=-1
        )
        best_scores = torch.full((len(queries), 0), -float("inf"))
        best_indices = torch.zeros((len(queries), 0), dtype=torch.long)
        for d_start in range(0, len(doc_vectors), doc_chunk):
            docs = torch.as_tensor(np.asarray(doc_vectors[d_start : d_start + doc_chunk]), dtype=torch.float32)
            docs = F.normalize(docs, dim=-1) if normalize_documents else docs
            scores = queries @ docs.T  # (q_chunk, d_chunk)
            chunk_scores, chunk_indices = torch.topk(scores, min(k, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)
            merged_indices = torch.cat([best_indices, chunk_indices + d_start], dim=1)
            best_scores, order = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_indices = torch.gather(merged_indices, 1, order)
        all_scores.append(best_scores.numpy())
        all_indices.append(best_indices.numpy())
    return np.concatenate(all_scores), np.concatenate(all_indices)


def exact_search(
    query_vectors: np.ndarray,  # (nq, d)
    doc_vectors: np.ndarray,  # (nd, d)
    query_ids: list[str],
    doc_ids: list[str],
    top_k: int = 100,
    similarity: str = "cosine",
) -> dict[str, dict[str, float]]:
    """Top-k documents by cosine for every query, as a BEIR run {qid: {doc_id: score}}.

    As BEIR's evaluator does by default, a document whose id equals the query's id is skipped: a query
    never retrieves itself (STS-B's sentences are both queries and documents)."""
    scores, indices = top_k_cosine(query_vectors, doc_vectors, top_k + 1, normalize_documents=similarity == "cosine")
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(query_ids):
        hits = [
            (doc_ids[i], float(s)) for i, s in zip(indices[row].tolist(), scores[row].tolist()) if doc_ids[i] != qid
        ]
        run[qid] = dict(hits[:top_k])
    return run


def retrieval_scores(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean NDCG@10, MRR@10 and Recall@100 over the judged queries, and the per-query NDCG@10 (for paired
    tests), computed by trec_eval through pytrec_eval (graded qrels; ties broken as trec_eval does).
    MRR@10 is trec_eval's recip_rank on each query's top 10."""
    import pytrec_eval

    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    # trec_eval's order: score descending, ties by document id descending
    top10 = {
        qid: dict(sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]) for qid, docs in run.items()
    }
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
