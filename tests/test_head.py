"""Heads (head.py): a query-only head leaves the documents alone."""

from __future__ import annotations

import json

from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import tiny_dataset, train_config


def config(data, tmp_path, **overrides) -> TrainConfig:
    return train_config(data, tmp_path, **{"lambda_isotropy": 0.0, "tracker": "none", **overrides})


def test_query_only_head_leaves_documents_alone(tmp_path, fake_encoder):
    data = tiny_dataset(tmp_path / "data")
    run = run_training(config(data, tmp_path, adapt="query", epochs=5), encoder=fake_encoder, quiet=True)
    saved = json.loads((tmp_path / "run" / "head" / "head_config.json").read_text())
    assert saved == {"type": "linear", "dim": fake_encoder.dim, "out_dim": fake_encoder.dim, "adapt": "query"}
    assert run.metrics["validation"]["selected"]["step"] > 0  # it learned something on the queries' side
    from isoadapt.head import document_head

    assert document_head(run.head) is None
