"""Hard negatives for the contrastive loss, mined from the frozen base model's own ranking.

The recipe is sentence-transformers' `mine_hard_negatives` with `sampling_strategy="top"` and
`relative_margin` (NV-Retriever's TopK-PercPos): for each query, rank the training documents by the base
model's cosine, drop every document judged relevant to the query (all of its positives, not only the
pair's), drop near-duplicates of the positive (a candidate scoring above `min_pos - |min_pos| * margin`,
where `min_pos` is the query's lowest positive score: such a "negative" is often an unjudged positive), and
take the best of what is left among the top `RANGE_MAX`. Written here because that function encodes every
text with a SentenceTransformer, while ours are in the cache (or are a user's own vectors);
tests/test_hard_negatives.py checks the choice against `mine_hard_negatives` on the same model.

One difference, on purpose: a query with several positives gives its pairs the 1st, 2nd, ... valid
candidate in turn, where sentence-transformers repeats its top candidate for each positive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from isoadapt.data.formats import TrainExample
from isoadapt.metrics.normalize import l2_normalize

log = logging.getLogger(__name__)

RANGE_MAX = 50  # candidates looked at per query, after its positives: the base model's top 50
CHUNK = 1024  # queries scored at once: bounds the (chunk, documents) score matrix


@dataclass
class MiningReport:
    pairs: int
    mined: int  # pairs that got a mined negative
    kept: int  # pairs with no valid candidate: they keep the file's negative (or none)
    dropped_as_near_positive: int  # candidates refused by the margin

    def line(self) -> str:
        return (
            f"hard negatives: {self.mined} of {self.pairs} pairs mined from the base model's top {RANGE_MAX}; "
            f"{self.kept} kept the file's negative (no valid candidate); {self.dropped_as_near_positive} "
            "candidates dropped as near-duplicates of a positive"
        )


def ranked_candidates(
    query_vectors: np.ndarray,  # (q, d)
    doc_vectors: np.ndarray,  # (n, d)
    positives: list[list[int]],  # per query: indices of its relevant documents
    relative_margin: float,
) -> tuple[list[list[int]], int]:
    """Per query, the valid negative candidates best first, and how many the margin refused."""
    q, docs = l2_normalize(query_vectors), l2_normalize(doc_vectors)
    out, refused = [], 0
    for start in range(0, len(q), CHUNK):
        scores = q[start : start + CHUNK] @ docs.T  # (chunk, n)
        for row, relevant in zip(scores, positives[start : start + CHUNK]):
            top = np.argsort(-row, kind="stable")[: RANGE_MAX + len(relevant)]
            lowest_positive = float(row[relevant].min())
            threshold = lowest_positive - abs(lowest_positive) * relative_margin
            judged = set(relevant)
            unjudged = [int(i) for i in top if int(i) not in judged][:RANGE_MAX]
            valid = [i for i in unjudged if row[i] <= threshold]
            refused += len(unjudged) - len(valid)
            out.append(valid)
    return out, refused


def mine_hard_negatives(
    examples: list[TrainExample], vectors, relative_margin: float, judged: list[TrainExample] | None = None
) -> tuple[list[TrainExample], MiningReport]:
    """The same pairs with mined negatives (see the module docstring); `vectors(texts)` gives base vectors.
    `judged` (default: `examples`) is every pair of the training file: when the pairs trained on are a sample,
    a query's positives left out of it stay excluded, and the file's documents stay the candidates."""
    judged = examples if judged is None else judged
    queries = list(dict.fromkeys(e.query for e in examples))
    documents = list(dict.fromkeys(t for e in [*judged, *examples] for t in (e.positive, e.negative) if t is not None))
    doc_index = {text: i for i, text in enumerate(documents)}
    asked = set(queries)
    positives: dict[str, list[int]] = {q: [] for q in queries}
    for e in [*examples, *judged]:
        if e.query in asked and doc_index[e.positive] not in positives[e.query]:
            positives[e.query].append(doc_index[e.positive])
    ranked, refused = ranked_candidates(
        vectors(queries), vectors(documents), [positives[t] for t in queries], relative_margin
    )
    candidates = dict(zip(queries, ranked))
    turn: dict[str, int] = {}
    mined, kept = [], 0
    for e in examples:
        options = candidates[e.query]
        if not options:
            kept += 1
            mined.append(e)
            continue
        k = turn.get(e.query, 0)
        turn[e.query] = k + 1
        mined.append(replace(e, negative=documents[options[k % len(options)]]))
    report = MiningReport(len(examples), len(examples) - kept, kept, refused)
    log.info(report.line())
    return mined, report
