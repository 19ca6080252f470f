"""Post-hoc transforms (posthoc.py) do what their papers define; heads that start exactly from a fitted
transform, and a dimension-reducing whitening head that trains."""

from __future__ import annotations

import numpy as np
import pytest

from isoadapt.head import apply_head, load_head, save_head
from isoadapt.posthoc import fit_all_but_the_top, fit_posthoc, fit_whitening, initial_head
from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import tiny_dataset, train_config

RNG = np.random.default_rng(1)
CLOUD = (RNG.normal(size=(3000, 12)) * np.geomspace(0.1, 3, 12) + 2.0).astype(np.float32)


def test_whitening_gives_zero_mean_identity_covariance():
    out = apply_head(fit_posthoc("whitening", CLOUD), CLOUD).astype(np.float64)
    assert np.abs(out.mean(axis=0)).max() < 1e-4
    assert np.allclose(np.cov(out, rowvar=False), np.eye(12), atol=1e-3)
    assert apply_head(fit_posthoc("whitening", CLOUD, keep=4), CLOUD).shape == (3000, 4)


def test_abtt_removes_the_top_directions_and_the_mean():
    head = fit_posthoc("abtt", CLOUD, remove=2)
    out = apply_head(head, CLOUD).astype(np.float64)
    centered = CLOUD - CLOUD.mean(axis=0)
    top = np.linalg.svd(centered, full_matrices=False)[2][:2]
    assert np.abs(out.mean(axis=0)).max() < 1e-4
    assert np.abs(out @ top.T).max() < 1e-3


def test_centering_and_posthoc_round_trip(tmp_path):
    head = fit_posthoc("centering", CLOUD)
    assert np.allclose(apply_head(head, CLOUD), CLOUD - CLOUD.mean(axis=0), atol=1e-5)
    save_head(head, tmp_path / "h")
    assert np.array_equal(apply_head(load_head(tmp_path / "h"), CLOUD), apply_head(head, CLOUD))


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


def test_a_start_fitted_on_fewer_texts_than_dimensions_warns(tmp_path, fake_encoder, caplog):
    """Whitening fitted on fewer texts than dimensions is a poor start (far below the base model): say so."""
    from isoadapt.training.train_command import run_training

    from conftest import tiny_dataset, train_config

    data = tiny_dataset(tmp_path / "data")
    cfg = train_config(data, tmp_path, head_init="whitening", max_train_examples=2, batch_size=2)  # 5 texts
    run_training(cfg, encoder=fake_encoder, quiet=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "--head_init" in r.getMessage()]
    assert warnings == [
        "--head_init whitening: fitted on 5 texts, fewer than the 16 dimensions: the start is a poor estimate "
        "(it can score far below the base model); use more texts or --head_init identity"
    ]
