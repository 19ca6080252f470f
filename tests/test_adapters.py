"""The science issue's pieces, each against a reference: InfoNCE against sentence-transformers' MNRL, NUDGE
against the authors' package, heads that start from a fitted transform, query-only heads, and selection
on validation that never reads test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from isoadapt.data.formats import EvalSet, TrainExample
from isoadapt.experiment.nudge import nudge_documents, split_answers, training_answers
from isoadapt.head import apply_head
from isoadapt.losses.contrastive import infonce_loss
from isoadapt.posthoc import fit_all_but_the_top, fit_whitening, initial_head
from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import tiny_dataset, train_config, write_json


def test_infonce_equals_sentence_transformers_mnrl_on_the_same_embeddings():
    """Without in-batch duplicates our InfoNCE is MNRL: same value, same gradient."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    g = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(8, 16, generator=g) for _ in range(3))
    q.requires_grad_(True)
    eye = torch.eye(8, dtype=torch.bool)
    ours = infonce_loss(q, p, eye, 0.05, n, torch.ones(8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool))
    (ours_grad,) = torch.autograd.grad(ours, q)
    q2 = q.detach().clone().requires_grad_(True)
    mnrl = MultipleNegativesRankingLoss(model=None, scale=1 / 0.05)
    theirs = mnrl.compute_loss_from_embeddings([q2, p, n], torch.arange(8))
    (theirs_grad,) = torch.autograd.grad(theirs, q2)
    assert torch.allclose(ours, theirs, atol=1e-6) and torch.allclose(ours_grad, theirs_grad, atol=1e-6)


def test_infonce_masks_other_relevant_candidates():
    """A second tag of the same bookmark is not a negative: masking it lowers the loss, never raises it."""
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.1], [1.0, 0.0]])  # query 0 is as close to positive 1 as to its own
    plain = infonce_loss(q, p, torch.eye(2, dtype=torch.bool), 0.05)
    masked = infonce_loss(q, p, torch.tensor([[True, True], [False, True]]), 0.05)
    assert masked < plain
    # query 0 keeps only its own positive (loss 0); query 1 still weighs both positives
    row1 = torch.nn.functional.normalize(p, dim=-1) @ q[1] / 0.05
    assert masked.item() == pytest.approx((torch.logsumexp(row1, 0) - row1[1]).item() / 2, abs=1e-5)


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


@pytest.mark.parametrize("init", ["whitening", "abtt"])
def test_a_head_initialised_from_a_transform_starts_exactly_there(init, fake_encoder):
    vectors = fake_encoder.encode([f"topic{i % 5} text {i}" for i in range(200)])
    head = initial_head(init, fake_encoder.dim, vectors, 8 if init == "whitening" else None, "both")
    fitted = fit_whitening(vectors, keep=8) if init == "whitening" else fit_all_but_the_top(vectors)
    assert np.array_equal(apply_head(head, vectors), apply_head(fitted, vectors))
    assert head.out_dim == (8 if init == "whitening" else fake_encoder.dim)
    assert all(p.requires_grad for p in head.parameters())


def config(data, tmp_path, **overrides) -> TrainConfig:
    return train_config(data, tmp_path, **{"lambda_isotropy": 0.0, "tracker": "none", **overrides})


def test_selection_keeps_the_start_when_training_only_hurts(tmp_path, fake_encoder):
    """A learning rate that wrecks the head: the selected state is the untouched identity (step 0), so the
    run ends exactly where it started on validation, and its test numbers are the base model's."""
    data = tiny_dataset(tmp_path / "data")
    run = run_training(
        config(data, tmp_path, projection_learning_rate=50.0, lambda_isotropy=1.0), encoder=fake_encoder, quiet=True
    )
    validation = run.metrics["validation"]
    assert validation["selected"]["step"] == 0 and validation["selected"]["ndcg@10"] == validation["start"]
    assert max(p["ndcg@10"] for p in validation["curve"][1:]) < validation["start"]
    assert torch.equal(run.head.linear.weight, torch.eye(fake_encoder.dim))
    assert run.metrics["test"]["trained"]["ndcg@10"] == run.metrics["test"]["baseline"]["ndcg@10"]


def test_selection_is_the_best_validation_point_and_ignores_test(tmp_path, fake_encoder):
    """The selected step is the arg-max of the validation curve (ties: the earliest), and it is the same
    whether or not a test split is given, or when the test split is replaced by a different one."""
    data = tiny_dataset(tmp_path / "data")
    other_test = json.loads(data["test"].read_text())
    other_test["qrels"] = {
        q: {d: g for d, g in judged.items() if d.endswith("_1")} for q, judged in other_test["qrels"].items()
    }
    swapped = write_json(tmp_path / "other_test.json", other_test)
    runs = [
        run_training(
            config(data, tmp_path, output_dir=str(tmp_path / name), eval_steps=2, **extra),
            encoder=fake_encoder,
            quiet=True,
        )
        for name, extra in (("a", {}), ("b", {"test_data": None}), ("c", {"test_data": str(swapped)}))
    ]
    selected = [r.metrics["validation"]["selected"] for r in runs]
    curve = runs[0].metrics["validation"]["curve"]
    best = max(curve, key=lambda p: p["ndcg@10"])
    assert selected[0] == selected[1] == selected[2] == next(p for p in curve if p["ndcg@10"] == best["ndcg@10"])
    assert len(curve) == 1 + 3 + (3 * 6) // 2 - 3  # start, every 2 steps, and each epoch's end (not counted twice)


def test_early_stopping_stops_after_patience(tmp_path, fake_encoder):
    data = tiny_dataset(tmp_path / "data")
    run = run_training(
        config(data, tmp_path, projection_learning_rate=50.0, epochs=20, early_stopping_patience=2),
        encoder=fake_encoder,
        quiet=True,
    )
    validation = run.metrics["validation"]
    assert validation["stopped_early"] and len(validation["curve"]) == 3 and run.metrics["train"]["steps"] == 2 * 6


def test_query_only_head_leaves_documents_alone(tmp_path, fake_encoder):
    data = tiny_dataset(tmp_path / "data")
    run = run_training(config(data, tmp_path, adapt="query", epochs=5), encoder=fake_encoder, quiet=True)
    saved = json.loads((tmp_path / "run" / "head" / "head_config.json").read_text())
    assert saved == {"type": "linear", "dim": fake_encoder.dim, "out_dim": fake_encoder.dim, "adapt": "query"}
    assert run.metrics["validation"]["selected"]["step"] > 0  # it learned something on the queries' side
    from isoadapt.head import document_head

    assert document_head(run.head) is None


def test_a_dimension_reducing_whitening_head_trains(tmp_path, fake_encoder):
    data = tiny_dataset(tmp_path / "data")
    run = run_training(
        config(data, tmp_path, head_init="whitening", out_dim=6, contrastive_loss="infonce"),
        encoder=fake_encoder,
        quiet=True,
    )
    assert run.head.linear.weight.shape == (6, fake_encoder.dim)
    assert run.metrics["test"]["trained"]["ndcg@10"] > 0
    validation = run.metrics["validation"]
    scores = [point["ndcg@10"] for point in validation["curve"]]
    assert len(set(scores)) > 1  # the head moved: one that never did scores the same at every check
    best = scores.index(max(scores))  # selection keeps the best check (here the whitening start, step 0)
    assert validation["selected"] == {k: validation["curve"][best][k] for k in validation["selected"]}


def test_recommendation_uses_validation_and_the_sts_dev_guard_only():
    """The recommended row is the best mean validation NDCG@10 among rows that keep STS-B dev within the
    tolerance; test NDCG@10 and test STS never enter (scrambling them changes nothing)."""
    from isoadapt.experiment.plan import Plan, PlanEntry
    from isoadapt.experiment.report import recommendations
    from isoadapt.experiment.runner import SeedResult

    def result(val, sts_dev, test=0.5, sts=0.8):
        return SeedResult(
            seed=0, test={"ndcg@10": test}, val_ndcg=val, per_query={}, spectrum=[], sts=sts, sts_dev=sts_dev
        )

    plan = Plan(
        "p",
        None,
        [0],
        [
            PlanEntry(n, k, n, "full", None)
            for n, k in (("base", "baseline"), ("a", "train"), ("b", "train"), ("c", "train"), ("w", "posthoc"))
        ],
    )
    results = {
        "base": [result(0.40, 0.80)],
        "a": [result(0.55, 0.75), result(0.56, 0.76)],  # best on validation, but loses STS-B dev
        "b": [result(0.50, 0.795), result(0.52, 0.80)],
        "c": [result(0.49, 0.80, test=0.99)],  # best on test: must not matter
        "w": [result(0.45, 0.80)],
    }
    assert recommendations(plan, results, base_sts_dev=0.80) == {
        "recommended": "b",
        "best_posthoc": "w",
        "best_nudge": None,
    }
    for seeds in results.values():
        for r in seeds:
            r.test, r.sts = {"ndcg@10": 1.0 - r.val_ndcg}, 0.0
    assert recommendations(plan, results, base_sts_dev=0.80)["recommended"] == "b"
    assert recommendations(plan, results, base_sts_dev=None)["recommended"] == "a"  # no STS-B dev: no guard
