"""Cross-model runs (training/cross_model.py, docs/upgrade.md): the head reads the query (new) model's vectors
and is scored against the base (old) model's document vectors, which never change. On the seeded fakes:
"fake-16-0" is the old model, "fake-8-1" a new one of another width and seed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isoadapt.cli import main
from isoadapt.head import LinearHead, load_head, to_side
from isoadapt.metrics.retrieval import exact_search, retrieval_scores
from isoadapt.training.alignment import procrustes_map
from isoadapt.training.run_folder import open_run

from conftest import FakeEncoder, tiny_dataset
from hostile import train_argv

OLD, NEW = "fake-16-0", "fake-8-1"


def cross_argv(tmp_path, data, name="run", **flags):
    flags = {"base_model": OLD, "query_model": NEW, "adapt": "query", "test_data": data["test"], **flags}
    return [str(a) for a in train_argv(data, tmp_path / name, tmp_path / "cache", **flags)]


def test_a_cross_model_run_scores_new_queries_against_old_documents(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    assert main(cross_argv(tmp_path, data, epochs=2, contrastive_loss="infonce")) == 0
    capsys.readouterr()
    run = open_run(tmp_path / "run")
    document = json.loads((tmp_path / "run" / "config.json").read_text())
    assert document["config"]["query_model"] == NEW
    assert document["query_encoder"]["weights_sha256"] == FakeEncoder(8, 1).identity["weights_sha256"]
    assert document["encoder"]["weights_sha256"] == FakeEncoder(16, 0).identity["weights_sha256"]
    assert (run.head.dim, run.head.out_dim) == (8, 16)
    # test NDCG@10 recomputed by hand: NEW queries through the head, OLD documents untouched
    split = json.loads(data["test"].read_text())
    qids, dids = list(split["queries"]), list(split["corpus"])
    queries = to_side(run.head, FakeEncoder(8, 1).encode([split["queries"][q] for q in qids]), "query")
    documents = to_side(run.head, FakeEncoder(16, 0).encode([split["corpus"][d] for d in dids]), "document")
    found = exact_search(queries, documents, qids, dids, top_k=100)
    expected, _ = retrieval_scores(split["qrels"], found)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["trained"]["ndcg@10"] == pytest.approx(expected["ndcg@10"], abs=1e-6)
    old_only = exact_search(
        *[FakeEncoder(16, 0).encode(t) for t in ([split["queries"][q] for q in qids],)],
        FakeEncoder(16, 0).encode([split["corpus"][d] for d in dids]),
        qids,
        dids,
        top_k=100,
    )
    assert metrics["test"]["baseline"]["ndcg@10"] == pytest.approx(
        retrieval_scores(split["qrels"], old_only)[0]["ndcg@10"]
    )


def test_a_procrustes_start_is_the_closed_form_on_the_paired_texts(tmp_path, capsys, fake_model):
    """With a learning rate too small to move it, the selected head is the start: the closed form fitted on
    the training queries and positives, which SciPy-checked procrustes_map reproduces here."""
    data = tiny_dataset(tmp_path / "data")
    argv = cross_argv(tmp_path, data, head_init="procrustes", projection_learning_rate=1e-12)
    assert main(argv) == 0
    capsys.readouterr()
    examples = json.loads(data["train"].read_text())
    texts = list(dict.fromkeys(t for e in examples for t in (e["query"], e["positive"])))
    weight, bias = procrustes_map(FakeEncoder(8, 1).encode(texts), FakeEncoder(16, 0).encode(texts))
    head = load_head(tmp_path / "run" / "head")
    np.testing.assert_allclose(head.linear.weight.detach().numpy(), weight.T, atol=1e-5)
    np.testing.assert_allclose(head.linear.bias.detach().numpy(), bias, atol=1e-5)


def test_a_map_trained_on_paired_texts_moves_new_vectors_onto_old_ones(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    flags = {"train_on": "paired_texts", "contrastive_loss": "cosine", "lambda_isotropy": 0}
    argv = cross_argv(tmp_path, data, **flags, epochs=8, batch_size=8, projection_learning_rate=0.05)
    assert main(argv) == 0
    capsys.readouterr()
    head = load_head(tmp_path / "run" / "head")
    examples = json.loads(data["train"].read_text())
    texts = list(dict.fromkeys(t for e in examples for t in (e["query"], e["positive"])))
    new, old = FakeEncoder(8, 1).encode(texts), FakeEncoder(16, 0).encode(texts)
    trained = float(np.mean(np.sum(to_side(head, new, "query") * old, axis=1)))
    start = float(np.mean(np.sum(to_side(LinearHead(8, 16, adapt="query"), new, "query") * old, axis=1)))
    assert trained > start + 0.2, (start, trained)  # the mapped new vectors point much nearer the old ones


def test_fit_takes_a_query_model_as_train_does(tmp_path, fake_model):
    import isoadapt

    data = tiny_dataset(tmp_path / "data")
    fitted = isoadapt.fit(
        train_data=str(data["train"]),
        val_data=str(data["dev"]),
        base_model=OLD,
        query_model=NEW,
        negatives="file",
        batch_size=8,
        epochs=1,
        cache_dir=str(tmp_path / "cache"),
        output_dir=str(tmp_path / "fit"),
        show_progress_bar=False,
    )
    run = open_run(tmp_path / "fit")
    assert run.query_model == NEW and (run.head.dim, run.head.out_dim) == (8, 16)
    assert fitted.adapter.adapt == "query"  # fit's default head is on both sides; a cross-model run's cannot be
    assert fitted.metrics == json.loads((tmp_path / "fit" / "metrics.json").read_text())


def test_a_cross_model_run_on_two_providers_vectors(tmp_path, capsys):
    """--base_model vectors:OLD --query_model vectors:NEW: two parquet imports of different widths."""
    from hostile import export_from_cache

    data = tiny_dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    for encoder, model in ((FakeEncoder(16, 0), "acme/old"), (FakeEncoder(8, 1), "acme/new")):
        paths = export_from_cache(data, encoder, tmp_path / "encoded", tmp_path / model.replace("/", "_"))
        argv = ["prepare", "vectors", "--queries", paths["queries"], "--documents", paths["documents"]]
        argv += ["--model", model, "--cache_dir", cache, "--processed", tmp_path / "data"]
        assert main([str(a) for a in argv]) == 0
    flags = {"base_model": "vectors:acme/old", "query_model": "vectors:acme/new", "head_init": "least_squares"}
    assert main(cross_argv(tmp_path, data, **flags)) == 0
    capsys.readouterr()
    run = open_run(tmp_path / "run")
    assert (run.query_model, run.head.dim, run.head.out_dim) == ("vectors:acme/new", 8, 16)
    assert run.side_encoder("query", cache).dim == 8 and run.side_encoder("document", cache).dim == 16
