"""A cross-model plan (plans/upgrade.toml, experiment/cross_rows.py) on the seeded fakes: the old model
"fake-16-0" keeps the index, "fake-8-1" is the new model. Every kind of row runs, each side reads its model,
and the report shows each row's share of the full re-embed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isoadapt.errors import InputError
from isoadapt.evaluation import evaluate_split
from isoadapt.experiment.plan import load_plan
from isoadapt.experiment.runner import run_experiment
from isoadapt.training.run_folder import open_run

from conftest import FakeEncoder, tiny_dataset

PLAN = """
name = "mini-upgrade"
seeds = [0, 1]
[defaults]
epochs = 1
batch_size = 8
lambda_contrastive = 1.0
contrastive_loss = "infonce"
projection_learning_rate = 0.01
[[configs]]
name = "old"
kind = "baseline"
[[configs]]
name = "reembed"
kind = "baseline"
models = "new"
[[configs]]
name = "procrustes"
kind = "align"
transform = "procrustes"
[[configs]]
name = "least-squares-20"
kind = "align"
transform = "least_squares"
paired_texts = 20
[[configs]]
name = "map-cosine"
models = "cross"
adapt = "query"
train_on = "paired_texts"
contrastive_loss = "cosine"
[[configs]]
name = "procrustes-labels"
models = "cross"
adapt = "query"
head_init = "procrustes"
negatives = "hard"
[[configs]]
name = "old-query-only"
adapt = "query"
"""


def test_the_shipped_upgrade_plan_loads_with_every_row_the_issue_names():
    plan = load_plan(Path(__file__).resolve().parents[1] / "plans" / "upgrade.toml")
    kinds = {(e.kind, e.models) for e in plan.entries}
    assert {("baseline", "old"), ("baseline", "new"), ("align", "cross"), ("train", "cross"), ("train", "old")} == kinds
    sizes = {e.settings.get("paired_texts") for e in plan.entries if e.kind == "align"}
    assert sizes == {None, 100, 1000}
    assert plan.seeds == [0, 1, 2] and plan.query_model is None  # the command names the new model


def test_a_cross_model_plan_runs_every_row_on_its_models(tmp_path, fake_model):
    root = tmp_path / "processed"
    tiny_dataset(root / "tiny")
    (tmp_path / "plan.toml").write_text(PLAN)
    folder = run_experiment(
        tmp_path / "plan.toml",
        "tiny",
        None,
        "fake-16-0",
        tmp_path / "cache",
        data_root=root,
        runs_root=tmp_path / "runs",
        query_model="fake-8-1",
    )
    report = json.loads((folder / "report.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    from isoadapt.data.formats import load_eval

    test = load_eval(root / "tiny" / "test.json")
    old, new = evaluate_split(test, FakeEncoder(16, 0).encode), evaluate_split(test, FakeEncoder(8, 1).encode)
    assert rows["old"]["ndcg@10"] == pytest.approx(old.metrics["ndcg@10"])
    assert rows["reembed"]["ndcg@10"] == pytest.approx(new.metrics["ndcg@10"])  # the new model on both sides
    assert rows["least-squares-20"]["seeds"] == [0, 1] and rows["procrustes"]["seeds"] == [None]
    assert report["meta"]["query_model"] == "fake-8-1"
    for name in ("procrustes", "least-squares-20/seed1", "map-cosine/seed0", "procrustes-labels/seed1"):
        run = open_run(folder / "runs" / name)
        assert (run.query_model, run.head.dim, run.head.out_dim) == ("fake-8-1", 8, 16)
    assert open_run(folder / "runs" / "old-query-only" / "seed0").query_model is None
    text = (folder / "report.md").read_text()
    assert "## Share of the full re-embed" in text and "--query_model fake-8-1" in text
    share = rows["procrustes"]["ndcg@10"] / rows["reembed"]["ndcg@10"]
    assert f"| {rows['procrustes']['ndcg@10']:.4f} | {100 * share:.1f}% |" in text


def test_a_plan_with_cross_rows_needs_a_query_model(tmp_path, fake_model):
    root = tmp_path / "processed"
    tiny_dataset(root / "tiny")
    (tmp_path / "plan.toml").write_text(PLAN)
    with pytest.raises(InputError, match=r"read a query model: give --query_model NEW or a query_model in the plan"):
        run_experiment(tmp_path / "plan.toml", "tiny", None, "fake-16-0", tmp_path / "cache", data_root=root)
