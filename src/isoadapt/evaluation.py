"""Retrieval + diagnostics for the base model or a transformed space, on one split; wiring only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from isoadapt.data.formats import EvalSet, StsPairs
from isoadapt.encoding.sides import SideVectors, side_sources
from isoadapt.head import apply_head, side_head
from isoadapt.metrics.isotropy import covariance_spectrum, isotropy_report, per_dimension_std
from isoadapt.metrics.retrieval import RETRIEVAL_METRICS, exact_search, percent_change, retrieval_scores
from isoadapt.metrics.sts import sts_spearman

VectorSource = Callable[[list[str]], np.ndarray] | SideVectors  # texts -> base vectors (n, d), or one per side


def split_vectors(split: EvalSet, vectors: VectorSource) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    query_ids, doc_ids = list(split.queries), list(split.corpus)
    queries_from, documents_from = side_sources(vectors)
    return (
        query_ids,
        queries_from([split.queries[q] for q in query_ids]),
        doc_ids,
        documents_from([split.corpus[d] for d in doc_ids]),
    )


@dataclass
class Evaluation:
    """One flat dict of metrics (primary: ndcg@10, then isotropy diagnostics), and the arrays behind them."""

    metrics: dict
    std: np.ndarray  # (d,) per-dimension std of the normalised space
    per_query: dict[str, float]  # qid -> ndcg@10
    spectrum: np.ndarray  # normalised covariance eigenvalues, descending


def per_query_ndcg_at_10(
    split: EvalSet, query_ids, query_vectors, doc_ids, doc_vectors, head=None, similarity: str = "cosine"
) -> dict[str, float]:
    """Each judged query's NDCG@10 on vectors already computed (what a paired test on validation needs)."""
    queries = apply_head(side_head(head, "query"), query_vectors)
    documents = apply_head(side_head(head, "document"), doc_vectors)
    run = exact_search(queries, documents, query_ids, doc_ids, top_k=10, similarity=similarity)
    return retrieval_scores(split.qrels, run)[1]


def ndcg_at_10(
    split: EvalSet, query_ids, query_vectors, doc_ids, doc_vectors, head=None, similarity: str = "cosine"
) -> float:
    """Validation's one number, the mean over judged queries: cheap enough to call every epoch."""
    per_query = per_query_ndcg_at_10(split, query_ids, query_vectors, doc_ids, doc_vectors, head, similarity)
    return float(np.mean(list(per_query.values())))


def evaluate_split(
    split: EvalSet,
    vectors: VectorSource,
    head: torch.nn.Module | None = None,
    documents: np.ndarray | None = None,
    similarity: str = "cosine",
) -> Evaluation:
    """Retrieval metrics and isotropy diagnostics of the (optionally transformed) queries + corpus.
    `documents` replaces the corpus' vectors (in the split's corpus order): NUDGE's stored vectors."""
    query_ids, query_vectors, doc_ids, doc_vectors = split_vectors(split, vectors)
    doc_vectors = documents if documents is not None else doc_vectors
    query_vectors = apply_head(side_head(head, "query"), query_vectors)
    doc_vectors = apply_head(side_head(head, "document"), doc_vectors)
    run = exact_search(query_vectors, doc_vectors, query_ids, doc_ids, top_k=100, similarity=similarity)
    scores, per_query = retrieval_scores(split.qrels, run)
    space = np.concatenate([query_vectors, doc_vectors])
    std = per_dimension_std(space)
    doc_row = {d: i for i, d in enumerate(doc_ids)}
    pairs = [(qi, doc_row[d]) for qi, q in enumerate(query_ids) for d, g in split.qrels[q].items() if g > 0]
    anchors = query_vectors[[p[0] for p in pairs]]
    positives = doc_vectors[[p[1] for p in pairs]]
    metrics = {
        **scores,
        "embedding_std_mean": float(std.mean()),
        "embedding_std_min": float(std.min()),
        "embedding_std_max": float(std.max()),
        **isotropy_report(space, anchors, positives),
        "queries": len(query_ids),
        "documents": len(doc_ids),
    }
    return Evaluation(metrics, std, per_query, covariance_spectrum(space))


def evaluate_sts(pairs: StsPairs, vectors: VectorSource, head: torch.nn.Module | None = None) -> float:
    """Spearman of cosine vs gold score through the same (optional) head; a query-only head: sentence1 is the query."""
    queries_from, documents_from = side_sources(vectors)
    return sts_spearman(
        apply_head(side_head(head, "query"), queries_from(pairs.sentence1)),
        apply_head(side_head(head, "document"), documents_from(pairs.sentence2)),
        np.asarray(pairs.scores),
    )


def format_sts(path: str, baseline: float, trained: float) -> str:
    return f"STS Spearman ({path}): baseline {baseline:.4f}, trained {trained:.4f} ({trained - baseline:+.4f})"


def change_pct(baseline: dict, trained: dict) -> dict[str, float | None]:
    """Relative change of each retrieval metric vs the baseline, in percent."""
    return {m: percent_change(trained[m], baseline[m]) for m in RETRIEVAL_METRICS}


def format_comparison(title: str, baseline: dict, trained: dict, label: str = "trained") -> str:
    change = change_pct(baseline, trained)
    lines = [
        f"{title} ({baseline['queries']} queries, {baseline['documents']} documents)",
        f"{'metric':<12}{'baseline':>10}{label:>10}{'change':>10}",
    ]
    for metric in RETRIEVAL_METRICS:
        delta = "n/a" if change[metric] is None else f"{change[metric]:+.2f}%"
        lines.append(f"{metric:<12}{baseline[metric]:>10.4f}{trained[metric]:>10.4f}{delta:>10}")
    lines.append(f"{'emb. std':<12}{baseline['embedding_std_mean']:>10.4f}{trained['embedding_std_mean']:>10.4f}")

    return "\n".join(lines)
