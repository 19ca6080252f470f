"""NUDGE (experiment/nudge.py) against the authors' package, and the answers it is given come from the
texts and the judgments only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from isoadapt.data.formats import EvalSet, TrainExample
from isoadapt.experiment.nudge import nudge_documents, split_answers, training_answers


def nudge_case(seed: int = 0):
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(30, 8)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    train_q = rng.normal(size=(20, 8)).astype(np.float32)
    train_q /= np.linalg.norm(train_q, axis=1, keepdims=True)
    val_q = train_q[:10] + 0.1 * rng.normal(size=(10, 8)).astype(np.float32)  # validation asks what training asked
    val_q /= np.linalg.norm(val_q, axis=1, keepdims=True)
    train_answers = [[i % 30, (i * 7) % 30] for i in range(20)]
    val_answers = [[i % 30] for i in range(10)]
    return docs, train_q, train_answers, val_q, val_answers


@pytest.mark.parametrize(("variant", "cls"), [("nudge-m", "NUDGEM"), ("nudge-n", "NUDGEN")])
def test_nudge_rows_are_the_reference_packages_output(variant, cls):
    import nudge

    docs, train_q, train_answers, val_q, val_answers = nudge_case()
    ours = nudge_documents(variant, docs, train_q, train_answers, val_q, val_answers)
    reference = getattr(nudge, cls)(device=torch.device("cpu")).finetune_embeddings(
        docs, {"q_embs": train_q, "q_ans_indx": train_answers}, {"q_embs": val_q, "q_ans_indx": val_answers}
    )
    assert np.array_equal(ours, reference)
    assert not np.allclose(ours, docs)  # it moved something: the case is not a no-op


def test_nudge_answers_come_from_texts_and_judgments_only():
    corpus = {"t1": "tag one", "t2": "tag two", "t3": "tag three"}
    examples = [
        TrainExample("q a", "tag two", "tag one"),
        TrainExample("q a", "tag three"),
        TrainExample("q b", "tag one"),
    ]
    queries, answers = training_answers(examples, list(corpus), corpus)
    assert queries == ["q a", "q b"] and answers == [[1, 2], [0]]
    split = EvalSet({"v": "q v"}, corpus, {"v": {"t3": 1, "t1": 0}})
    assert split_answers(split, list(corpus)) == (["v"], [[2]])
