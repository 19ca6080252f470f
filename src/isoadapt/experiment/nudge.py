"""NUDGE (Zeighami et al. 2024, arXiv 2409.02343): fine-tune the stored document vectors themselves, with
no model, through the authors' reference implementation (`nudge-ft` 0.1.2, wrapped, not rewritten).

NUDGE-M and NUDGE-N move each document that answers training queries toward those queries, by a step
gamma that the reference package chooses on the validation queries. What comes out is a new set of
document vectors for one fixed corpus, not a model: it cannot embed a new document, and its gains belong
to the documents that appeared as answers in training (here every tag of Semanlink is shared by train,
dev and test, which is the setting NUDGE was made for). NUDGE-M's vectors are not normalised and are
scored by dot product, as its authors prescribe; NUDGE-N's are unit vectors.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from isoadapt.data.formats import EvalSet, TrainExample
from isoadapt.errors import InputError

VARIANTS = {"nudge-m": "NUDGEM", "nudge-n": "NUDGEN"}
SIMILARITY = {"nudge-m": "dot", "nudge-n": "cosine"}
EXTRA = "pip install 'isoadapt[nudge]'"  # the authors' package is an extra: only plans with NUDGE rows need it


def check_installed(where: str) -> None:
    """NUDGE rows need the authors' package; without it a plan stops here, while it is being checked,
    not after its other rows have trained."""
    try:
        import nudge  # noqa: F401
    except ImportError:
        raise InputError(
            f"{where}: kind 'nudge' runs the authors' package nudge-ft, which is not installed; {EXTRA}"
        ) from None


def training_answers(
    examples: list[TrainExample], doc_ids: list[str], corpus: dict[str, str]
) -> tuple[list[str], list[list[int]]]:
    """Training queries (unique texts) and, for each, the corpus rows whose text is one of its positives."""
    rows_of_text: dict[str, list[int]] = {}
    for row, doc_id in enumerate(doc_ids):
        rows_of_text.setdefault(corpus[doc_id], []).append(row)
    answers: dict[str, set[int]] = {}
    for example in examples:
        rows = rows_of_text.get(example.positive, [])
        if rows:
            answers.setdefault(example.query, set()).update(rows)
    if not answers:
        raise InputError("NUDGE: no training positive is a document of the evaluation corpus; it has nothing to move")
    return list(answers), [sorted(rows) for rows in answers.values()]


def split_answers(split: EvalSet, doc_ids: list[str]) -> tuple[list[str], list[list[int]]]:
    """A split's query ids and, for each, the corpus rows judged relevant (grade > 0)."""
    row = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    query_ids = list(split.queries)
    return query_ids, [sorted(row[d] for d, g in split.qrels[q].items() if g > 0) for q in query_ids]


def nudge_documents(
    variant: str,
    doc_vectors: np.ndarray,  # (nd, d) base vectors of the corpus
    train_queries: np.ndarray,  # (nq, d)
    train_answers: list[list[int]],
    val_queries: np.ndarray,  # (nv, d)
    val_answers: list[list[int]],
) -> np.ndarray:  # (nd, d)
    """The corpus' fine-tuned vectors from the reference package; gamma is its own choice on validation."""
    import nudge
    import torch

    if variant not in VARIANTS:
        raise InputError(f"NUDGE variant {variant!r}: expected one of {list(VARIANTS)}")
    method = getattr(nudge, VARIANTS[variant])(device=torch.device("cpu"))
    train = {"q_embs": np.ascontiguousarray(train_queries, dtype=np.float32), "q_ans_indx": train_answers}
    val = {"q_embs": np.ascontiguousarray(val_queries, dtype=np.float32), "q_ans_indx": val_answers}
    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints its progress
        return np.asarray(
            method.finetune_embeddings(np.ascontiguousarray(doc_vectors, dtype=np.float32), train, val),
            dtype=np.float32,
        )
