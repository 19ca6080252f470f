"""Heads (head.py): an untrained head is exactly the identity, a head round-trips through safetensors, and a
query-only head leaves the documents alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from isoadapt.data.formats import load_eval
from isoadapt.errors import InputError
from isoadapt.evaluation import evaluate_split
from isoadapt.head import LinearHead, MLPHead, apply_head, build_head, load_head, save_head
from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import tiny_dataset, train_config


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_untrained_head_is_exactly_the_identity(kind, fake_encoder):
    vectors = fake_encoder.encode([f"text {i}" for i in range(50)])
    head = build_head({"type": kind, "dim": fake_encoder.dim})
    assert np.array_equal(apply_head(head, vectors), vectors)


def test_identity_head_reproduces_baseline_metrics_exactly(tiny_data, fake_encoder):
    split = load_eval(tiny_data["test"])
    baseline = evaluate_split(split, fake_encoder.encode)
    with_head = evaluate_split(split, fake_encoder.encode, LinearHead(fake_encoder.dim))
    assert baseline.metrics == with_head.metrics and baseline.per_query == with_head.per_query
    assert np.array_equal(baseline.std, with_head.std)


@pytest.mark.parametrize("head", [LinearHead(8), MLPHead(8, hidden=5)])
def test_save_load_gives_identical_outputs(tmp_path, head):
    with torch.no_grad():
        for p in head.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    save_head(head, tmp_path / "head")
    loaded = load_head(tmp_path / "head", expected_dim=8)
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(9))
    assert type(loaded) is type(head)
    assert torch.equal(head(x), loaded(x))
    assert not list(tmp_path.glob("head/*.pt")) and not list(tmp_path.glob("head/*.bin"))


def test_loading_a_head_for_another_width_names_both(tmp_path):
    save_head(LinearHead(8), tmp_path / "head")
    with pytest.raises(InputError, match="head expects 8-dim inputs but the encoder gives 384"):
        load_head(tmp_path / "head", expected_dim=384)


def config(data, tmp_path, **overrides) -> TrainConfig:
    return train_config(data, tmp_path, **{"lambda_isotropy": 0.0, "tracker": "none", **overrides})


def test_query_only_head_leaves_documents_alone(tmp_path, fake_encoder):
    data = tiny_dataset(tmp_path / "data")
    run = run_training(config(data, tmp_path, adapt="query", epochs=5), encoder=fake_encoder, quiet=True)
    saved = json.loads((tmp_path / "run" / "head" / "head_config.json").read_text())
    assert saved == {"type": "linear", "dim": fake_encoder.dim, "out_dim": fake_encoder.dim, "adapt": "query"}
    assert run.metrics["validation"]["selected"]["step"] > 0  # it learned something on the queries' side
    from isoadapt.head import side_head

    assert side_head(run.head, "document") is None and side_head(run.head, "query") is run.head
