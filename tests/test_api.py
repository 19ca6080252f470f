"""isoadapt's Python API (api.py): Adapter.load on runs (and, in the slow tests, exports), transform against
`isoadapt apply` and the head itself, encode through the run's encoder, save -> load round trips."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import isoadapt
from isoadapt.cli import main
from isoadapt.head import apply_head, load_head
from test_precomputed_vectors import MODEL, prepare_argv, vector_table

from conftest import FakeEncoder, tiny_dataset
from hostile import TEXTS, apply_argv, train_argv, write, write_vectors


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_transform_gives_what_isoadapt_apply_writes(two_runs, capsys):
    """Both sides of a both-sides head, and the query side of a query-only head, equal `apply`'s output."""
    source = write_vectors(two_runs / "in.parquet")
    base = FakeEncoder().encode(TEXTS)
    for run, side in (("both", "document"), ("both", "query"), ("query", "query")):
        out = two_runs / f"{run}-{side}.parquet"
        assert main([str(a) for a in apply_argv(two_runs / run, source, out, "--side", side)]) == 0
        written = np.stack(pq.read_table(out).column("vector").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(isoadapt.Adapter.load(two_runs / run).transform(base, side), written, atol=1e-6)
    capsys.readouterr()


def test_a_query_only_head_leaves_documents_in_the_base_space_normalised(two_runs):
    adapter = isoadapt.Adapter.load(two_runs / "query")
    assert adapter.adapt == "query"
    raw = 3.0 * FakeEncoder().encode(TEXTS)  # not unit length: the output is
    np.testing.assert_allclose(adapter.transform(raw, side="document"), unit(raw), atol=1e-6)
    queries = adapter.transform(raw, side="query")
    np.testing.assert_allclose(queries, unit(apply_head(load_head(two_runs / "query" / "head"), raw)), atol=1e-6)
    assert not np.allclose(queries, unit(raw))


def test_one_vector_in_one_vector_out(run):
    adapter = isoadapt.Adapter.load(run["run"])
    vectors = FakeEncoder().encode(TEXTS[:3])
    assert adapter.transform(vectors[1]).shape == (adapter.out_dim,)
    np.testing.assert_allclose(adapter.transform(vectors[1]), adapter.transform(vectors)[1], atol=1e-7)


def test_encode_goes_through_the_runs_encoder_then_the_head(run):
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    base = FakeEncoder().encode(TEXTS)
    np.testing.assert_allclose(adapter.encode_query(TEXTS), adapter.transform(base, "query"), atol=1e-6)
    np.testing.assert_allclose(adapter.encode_document(TEXTS), adapter.transform(base, "document"), atol=1e-6)


def test_the_card_holds_the_metrics_it_was_selected_with(run):
    adapter = isoadapt.Adapter.load(run["run"])
    selected = adapter.card["validation"]["selected"]
    assert selected["ndcg@10"] == pytest.approx(adapter.card["val"]["trained"]["ndcg@10"])
    assert adapter.base_model == adapter.config["base_model"] and adapter.dim == 16


def test_save_then_load_gives_identical_outputs_and_a_run_every_command_reads(run, capsys):
    adapter = isoadapt.Adapter.load(run["run"])
    saved = adapter.save(run["t"] / "copy")
    again = isoadapt.Adapter.load(saved)
    vectors = FakeEncoder().encode(TEXTS)
    for side in ("query", "document"):
        np.testing.assert_array_equal(again.transform(vectors, side), adapter.transform(vectors, side))
    assert again.card == adapter.card and again.config == adapter.config
    argv = ["evaluate", "--run_dir", saved, "--data", run["data"]["dev"], "--cache_dir", run["cache"]]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()


def test_fit_on_a_dataset_folder_gives_what_isoadapt_train_writes(tmp_path, capsys, fake_model):
    """The same settings through the command line and through fit: the same metrics.json, to the digit."""
    data = tiny_dataset(tmp_path / "data")
    argv = train_argv(data, tmp_path / "run", tmp_path / "cache", test_data=data["test"], lambda_contrastive=1.0)
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    fitted = isoadapt.fit(tmp_path / "data", cache_dir=tmp_path / "cache", epochs=1, batch_size=4, lambda_contrastive=1)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for metrics in (written, fitted.metrics):
        del metrics["train"]["seconds"]
    assert fitted.metrics == written
    assert fitted.adapter.folder is None and fitted.adapter.card is fitted.metrics
    assert capsys.readouterr().out == ""  # quiet unless verbose


def test_evaluate_returns_what_isoadapt_evaluate_writes(run, capsys):
    output = run["t"] / "eval.json"
    argv = ["evaluate", "--run_dir", run["run"], "--data", run["data"]["test"], "--cache_dir", run["cache"]]
    assert main([str(a) for a in [*argv, "--output", output]]) == 0
    printed = capsys.readouterr().out
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    result = isoadapt.evaluate(adapter, run["data"]["test"])
    assert result == json.loads(output.read_text())
    assert "ndcg@10" in printed and capsys.readouterr().out == ""


def id_only_vectors(topics: int = 8, per_topic: int = 3):
    """Fake-encoder vectors by id: train and validation queries on `topics` topics, two documents each; a
    query's first word differs from its documents', so the base model ranks them poorly and training helps."""
    encoder = FakeEncoder()
    documents = [f"d{t}_{j}" for t in range(topics) for j in range(2)]
    splits = {}
    for name, count in (("train", per_topic), ("val", 1)):
        ids = [f"{name}{t}_{i}" for t in range(topics) for i in range(count)]
        qrels = {q: {f"d{t}_0": 1, f"d{t}_1": 1} for q, t in zip(ids, [t for t in range(topics) for _ in range(count)])}
        texts = [f"question{q.split('_')[0].removeprefix(name)} {q}" for q in ids]  # apart from the documents
        splits[name] = (ids, encoder.encode(texts), qrels)
    document_vectors = encoder.encode([f"topic{d[1:].split('_')[0]} {d}" for d in documents])
    return splits, documents, document_vectors


def test_fit_on_arrays_gives_what_prepare_vectors_then_train_gives(tmp_path, capsys):
    """Arrays through fit and the same vectors as parquet through `prepare vectors` + `train --base_model
    vectors:NAME`: the same pairs, negatives and batches, so the same validation metrics and head."""
    splits, documents, document_vectors = id_only_vectors()
    queries = [q for ids, _, _ in splits.values() for q in ids]
    query_vectors = np.concatenate([vectors for _, vectors, _ in splits.values()])
    paths = {"queries": tmp_path / "q.parquet", "documents": tmp_path / "d.parquet"}
    pq.write_table(vector_table(queries, None, query_vectors), paths["queries"])
    pq.write_table(vector_table(documents, None, document_vectors), paths["documents"])
    for name, file in (("train", "train"), ("val", "dev")):
        lines = [f"{q}\t{d}\t{g}" for q, judged in splits[name][2].items() for d, g in judged.items()]
        write(tmp_path / "qrels" / f"{file}.tsv", "\n".join(lines) + "\n")
    cache, out = tmp_path / "cache", tmp_path / "processed"
    argv = prepare_argv(paths, cache, qrels_dir=tmp_path / "qrels", name="acme", out_root=out)
    assert main([str(a) for a in argv]) == 0
    settings = dict(epochs=2, batch_size=4, lambda_contrastive=1.0, projection_learning_rate=1e-2)
    argv = train_argv(
        {"train": out / "acme" / "train.json", "dev": out / "acme" / "dev.json"}, tmp_path / "run", cache, **settings
    )
    assert main([str(a) for a in [*argv, "--base_model", f"vectors:{MODEL}"]]) == 0
    capsys.readouterr()
    given = {
        name: isoadapt.Vectors(vectors, document_vectors, qrels=qrels, query_ids=ids, document_ids=documents)
        for name, (ids, vectors, qrels) in splits.items()
    }
    fitted = isoadapt.fit(given["train"], given["val"], base_model=MODEL, **settings)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert fitted.metrics["validation"] == written["validation"]
    assert fitted.metrics["val"] == written["val"]
    assert written["validation"]["selected"]["step"] > 0  # training moved the head: not a trivial equality
    assert fitted.adapter.base_model == f"vectors:{MODEL}"
    np.testing.assert_allclose(
        fitted.adapter.transform(document_vectors), isoadapt.Adapter.load(tmp_path / "run").transform(document_vectors)
    )


def test_evaluate_on_arrays_scores_as_fit_scored_validation(tmp_path):
    splits, documents, document_vectors = id_only_vectors()
    given = {
        name: isoadapt.Vectors(vectors, document_vectors, qrels=qrels, query_ids=ids, document_ids=documents)
        for name, (ids, vectors, qrels) in splits.items()
    }
    fitted = isoadapt.fit(
        given["train"], given["val"], epochs=2, batch_size=4, lambda_contrastive=1, projection_learning_rate=1e-2
    )
    result = isoadapt.evaluate(fitted.adapter, given["val"])
    assert {k: result[k] for k in ("baseline", "trained", "change_pct")} == fitted.metrics["val"]
    assert result["trained"]["ndcg@10"] > result["baseline"]["ndcg@10"]
    assert result["data"] == "arrays" and result["run_dir"] is None


def test_evaluate_and_encode_share_one_load_of_the_base_model(run, monkeypatch):
    import isoadapt.training.run_folder

    built = []

    def build(*args, **kwargs):
        built.append(args[0])
        return FakeEncoder()

    monkeypatch.setattr(isoadapt.training.run_folder, "open_encoder", build)
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    isoadapt.evaluate(adapter, run["data"]["test"])
    adapter.encode_query(TEXTS)
    adapter.encode_document(TEXTS)
    assert len(built) == 1


def test_the_public_names_are_the_api_even_after_every_module_is_imported():
    """No submodule shadows a public name (a module isoadapt/evaluate.py once would have)."""
    import importlib
    import inspect

    import isoadapt.api.adapter
    import isoadapt.api.fitting

    for module in ("evaluation", "training.evaluate_command", "api.fitting", "api.adapter", "encoding.arrays"):
        importlib.import_module(f"isoadapt.{module}")
    assert isoadapt.evaluate is isoadapt.api.fitting.evaluate and isoadapt.fit is isoadapt.api.fitting.fit
    assert isoadapt.Adapter is isoadapt.api.adapter.Adapter
    assert all(not inspect.ismodule(getattr(isoadapt, name)) for name in isoadapt.__all__)
