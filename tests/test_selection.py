"""Selection on validation (training/selection.py): the selected state is the best validation point, it
never reads test, and early stopping stops after the patience."""

from __future__ import annotations

import json

import torch

from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import tiny_dataset, train_config, write_json


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


def test_first_best_is_the_point_the_selector_keeps_among_ties():
    from isoadapt.training.selection import ValidationSelector, first_best

    scores = iter([0.50, 0.62, 0.62, 0.55, 0.62])
    selector = ValidationSelector({}, lambda step: next(scores))
    for step in range(5):
        selector.observe(step * 10, step / 2)
    assert selector.best["step"] == 10 and first_best(selector.curve) == selector.best


def test_selection_line_names_the_step_and_says_when_the_start_was_kept():
    from isoadapt.training.selection import selection_line

    curve = [{"step": 0, "epoch": 0.0, "ndcg@10": 0.40}, {"step": 6, "epoch": 1.0, "ndcg@10": 0.44}]
    later = {"curve": curve, "start": 0.40, "selected": curve[1], "stopped_early": False}
    assert (
        selection_line(later)
        == "selected on validation: step 6 (epoch 1.0), NDCG@10 0.4400, 0.4000 at the start (+10.00%)"
    )
    start = {**later, "selected": curve[0], "stopped_early": True}
    assert selection_line(start) == (
        "selected on validation: step 0 (epoch 0.0), NDCG@10 0.4000, the start: no later state scored higher; "
        "stopped early (patience)"
    )
