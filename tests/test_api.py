"""isoadapt's Python API (api.py): Adapter.load on runs (and, in the slow tests, exports), transform against
`isoadapt apply` and the head itself, encode through the run's encoder, save -> load round trips."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import isoadapt
from isoadapt.cli import main
from isoadapt.head import apply_head, load_head
from isoadapt.training.config import TrainConfig
from test_precomputed_vectors import MODEL, prepare_argv, vector_table

from conftest import REPO, FakeEncoder, move_head_off_identity, tiny_dataset
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


def test_metrics_are_the_runs_and_the_card_is_a_model_card_showing_them(run):
    adapter = isoadapt.Adapter.load(run["run"])
    written = json.loads((run["run"] / "metrics.json").read_text())
    assert adapter.metrics == written
    assert adapter.base_model == adapter.config["base_model"] and adapter.dim == 16
    card = adapter.card
    assert str(card) == card.text and card.text.startswith("---\nlibrary_name: sentence-transformers")
    val = written["val"]
    row = f"| ndcg@10 | {val['baseline']['ndcg@10']:.4f} | {val['trained']['ndcg@10']:.4f} |"
    assert row in card.text
    assert card.save(run["t"] / "card.md").read_text(encoding="utf-8") == card.text


def test_save_then_load_gives_identical_outputs_and_a_run_every_command_reads(run, capsys):
    adapter = isoadapt.Adapter.load(run["run"])
    saved = adapter.save(run["t"] / "copy")
    again = isoadapt.Adapter.load(saved)
    vectors = FakeEncoder().encode(TEXTS)
    for side in ("query", "document"):
        np.testing.assert_array_equal(again.transform(vectors, side), adapter.transform(vectors, side))
    assert again.metrics == adapter.metrics and again.config == adapter.config
    argv = ["evaluate", "--run_dir", saved, "--data", run["data"]["dev"], "--cache_dir", run["cache"]]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()


def head_by_hand(head) -> tuple[np.ndarray, np.ndarray, str]:
    """(W, b, adapt) of a linear head, read as plain numbers."""
    state = {k: v.detach().numpy().astype(np.float64) for k, v in head.state_dict().items()}
    return state["linear.weight"], state["linear.bias"], getattr(head, "adapt", "both")


def adapted_by_hand(head, vectors: np.ndarray, side: str) -> np.ndarray:
    """The affine map W x + b in NumPy (float64) on the sides it applies to, then unit length."""
    weight, bias, adapt = head_by_hand(head)
    out = vectors @ weight.T + bias if side == "query" or adapt == "both" else np.asarray(vectors, np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def ndcg_at_10_by_hand(split: dict, queries: np.ndarray, documents: np.ndarray) -> float:
    """trec_eval's ndcg_cut_10 written out: rank by cosine, gain = grade, log2 discount, ideal from the
    judgments; the mean over queries with a relevant document."""
    doc_ids = list(split["corpus"])
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    documents = documents / np.linalg.norm(documents, axis=1, keepdims=True)
    scores = []
    for row, qid in enumerate(split["queries"]):
        judged = split["qrels"].get(qid, {})
        if not any(g > 0 for g in judged.values()):
            continue
        ranked = np.argsort(-(documents @ queries[row]), kind="stable")[:10]
        dcg = sum(max(judged.get(doc_ids[d], 0), 0) / np.log2(rank + 2) for rank, d in enumerate(ranked))
        ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
        scores.append(dcg / sum(g / np.log2(rank + 2) for rank, g in enumerate(ideal)))
    return float(np.mean(scores))


def split_vectors(path) -> tuple[dict, np.ndarray, np.ndarray]:
    split = json.loads(path.read_text())
    encoder = FakeEncoder()
    return split, encoder.encode(list(split["queries"].values())), encoder.encode(list(split["corpus"].values()))


def test_evaluate_gives_the_hand_computed_ndcg_of_base_and_adapted_vectors(run):
    """Against NumPy and trec_eval's formula written out, not against `isoadapt evaluate` (which calls this)."""
    move_head_off_identity(run["run"], seed=0)
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    result = isoadapt.evaluate(adapter, run["data"]["test"])
    split, queries, documents = split_vectors(run["data"]["test"])
    base = ndcg_at_10_by_hand(split, queries, documents)
    trained = ndcg_at_10_by_hand(
        split, adapted_by_hand(adapter.head, queries, "query"), adapted_by_hand(adapter.head, documents, "document")
    )
    assert result["baseline"]["ndcg@10"] == pytest.approx(base, abs=1e-6)
    assert result["trained"]["ndcg@10"] == pytest.approx(trained, abs=1e-6)
    assert abs(trained - base) > 1e-3  # the head moved the ranking: the two numbers test different things


def test_fit_scores_its_selected_head_as_numpy_does_and_is_quiet(tmp_path, capsys, fake_model):
    """fit on a dataset folder: the validation and test NDCG@10 it reports are the hand-computed ones of the
    head it returns; it prints nothing unless verbose."""
    data = tiny_dataset(tmp_path / "data")
    recipe = TrainConfig.settings_only(cache_dir=str(tmp_path / "cache"), epochs=2, batch_size=4)
    fitted = isoadapt.fit(tmp_path / "data", config=recipe, lambda_contrastive=1, projection_learning_rate=1e-2)
    assert fitted.adapter.folder is None and fitted.adapter.metrics is fitted.metrics
    for name, path in (("val", data["dev"]), ("test", data["test"])):
        split, queries, documents = split_vectors(path)
        head = fitted.adapter.head
        expected = ndcg_at_10_by_hand(
            split, adapted_by_hand(head, queries, "query"), adapted_by_hand(head, documents, "document")
        )
        assert fitted.metrics[name]["trained"]["ndcg@10"] == pytest.approx(expected, abs=1e-6)
    assert capsys.readouterr().out == ""  # quiet unless verbose


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
    recipe = TrainConfig.settings_only()  # `isoadapt train`'s defaults, not fit's recommended recipe
    fitted = isoadapt.fit(given["train"], given["val"], config=recipe, base_model=MODEL, **settings)
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
        given["train"], given["val"], epochs=2, batch_size=4, negatives="file", projection_learning_rate=1e-2
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


# -- sentence-transformers' habits -------------------------------------------------------------------------


def test_encode_takes_a_string_a_list_and_sentence_transformers_keywords(run):
    """Against the fake encoder's vectors and the head applied in NumPy (the reference), not against transform."""
    move_head_off_identity(run["run"], seed=1)
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    base = FakeEncoder().encode(TEXTS).astype(np.float64)
    expected = {side: adapted_by_hand(adapter.head, base, side) for side in ("query", "document")}
    one = adapter.encode_query(TEXTS[3])
    assert one.shape == (adapter.out_dim,)
    np.testing.assert_allclose(one, expected["query"][3], atol=1e-5)
    listed = adapter.encode_query(TEXTS, batch_size=3, show_progress_bar=False, normalize_embeddings=True)
    np.testing.assert_allclose(listed, expected["query"], atol=1e-5)
    tensor = adapter.encode_document(TEXTS, convert_to_tensor=True, device="cpu")
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (len(TEXTS), adapter.out_dim)
    np.testing.assert_allclose(tensor.numpy(), expected["document"], atol=1e-5)
    rows = adapter.encode(TEXTS[:2], task="document", convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and isinstance(rows[0], torch.Tensor)
    np.testing.assert_allclose(np.stack([r.numpy() for r in rows]), expected["document"][:2], atol=1e-5)
    np.testing.assert_allclose(adapter.encode(tuple(TEXTS), task="query"), expected["query"], atol=1e-5)


def test_empty_input_gives_empty_arrays_of_each_sides_width(two_runs):
    """sentence-transformers gives (0, d) for []: so do encode and transform, per side (a query-only head's
    documents keep the base width)."""
    for name in ("both", "query"):
        adapter = isoadapt.Adapter.load(two_runs / name, cache_dir=two_runs / "cache")
        assert adapter.encode_query([]).shape == (0, adapter.out_dim)
        assert adapter.encode_document([]).shape == (0, adapter.dim)
        assert adapter.encode_query([], convert_to_tensor=True).shape == (0, adapter.out_dim)
        assert adapter.transform(np.zeros((0, adapter.dim)), "query").shape == (0, adapter.out_dim)
        assert adapter.transform(np.zeros((0, adapter.dim)), "document").dtype == np.float32


def test_fit_on_pairs_equals_fit_on_the_same_pairs_as_a_dataset_folder(tmp_path, fake_model):
    """Tuples, dicts and a datasets.Dataset (columns by position) stage the same train.json the folder holds:
    the same head and validation curve as training on the folder."""
    import datasets

    data = tiny_dataset(tmp_path / "data")
    records = json.loads(data["train"].read_text())
    recipe = TrainConfig.settings_only(cache_dir=str(tmp_path / "cache"), epochs=2, batch_size=4)
    reference = isoadapt.fit(tmp_path / "data", config=recipe, lambda_contrastive=1.0)
    columns = {"anchor": [r["query"] for r in records], "positive": [r["positive"] for r in records]}
    columns["negative"] = [r["negative"] for r in records]
    given = {
        "tuples": [(r["query"], r["positive"], r["negative"]) for r in records],
        "dicts": [{"anchor": r["query"], "positive": r["positive"], "negative": r["negative"]} for r in records],
        "dataset": datasets.Dataset.from_dict(
            {"a": columns["anchor"], "p": columns["positive"], "n": columns["negative"]}
        ),
    }
    for name, pairs in given.items():
        fitted = isoadapt.fit(pairs, data["dev"], data["test"], config=recipe, lambda_contrastive=1.0)
        assert fitted.metrics["validation"] == reference.metrics["validation"], name
        assert fitted.metrics["test"] == reference.metrics["test"], name
        for a, b in zip(fitted.adapter.head.state_dict().values(), reference.adapter.head.state_dict().values()):
            torch.testing.assert_close(a, b)


def test_fit_takes_validation_as_pairs_or_as_an_information_retrieval_dict(tmp_path, fake_model):
    """val as pairs builds the split sentence-transformers users build for InformationRetrievalEvaluator:
    each anchor a query, each positive relevant; the same split as a dict scores the same."""
    data = tiny_dataset(tmp_path / "data")
    records = json.loads(data["train"].read_text())
    pairs = [(r["query"], r["positive"]) for r in records]
    recipe = TrainConfig.settings_only(cache_dir=str(tmp_path / "cache"), epochs=1, batch_size=4)
    as_pairs = isoadapt.fit(pairs, pairs[:16], config=recipe)
    anchors = list(dict.fromkeys(a for a, _ in pairs[:16]))
    positives = list(dict.fromkeys(p for _, p in pairs[:16]))
    qrels = {f"q{anchors.index(a)}": {} for a in anchors}
    for a, p in pairs[:16]:
        qrels[f"q{anchors.index(a)}"][f"d{positives.index(p)}"] = 1
    split = {
        "queries": {f"q{i}": t for i, t in enumerate(anchors)},
        "corpus": {f"d{i}": t for i, t in enumerate(positives)},
        "qrels": qrels,
    }
    as_dict = isoadapt.fit(pairs, split, config=recipe)
    assert as_dict.metrics["val"] == as_pairs.metrics["val"]
    base = ndcg_at_10_by_hand(split, FakeEncoder().encode(anchors), FakeEncoder().encode(positives))
    assert as_pairs.metrics["val"]["baseline"]["ndcg@10"] == pytest.approx(base, abs=1e-6)


def test_fits_defaults_are_the_recommended_row_of_the_minilm_report():
    """The recipe fit trains by default is the adapters plan's row that the committed MiniLM report
    recommends ([defaults] + that row), on that report's model; `isoadapt train` keeps TrainConfig's."""
    import tomllib

    from isoadapt.api.fitting import RECOMMENDED

    report = json.loads((REPO / "docs/results/adapters-semanlink-minilm/report.json").read_text())
    plan = tomllib.loads((REPO / "plans/adapters.toml").read_text())
    row = next(c for c in plan["configs"] if c["name"] == report["meta"]["selection"]["picks"]["recommended"])
    settings = set(TrainConfig.settings_only().to_dict())
    recipe = {k: v for k, v in {**plan["defaults"], **row}.items() if k in settings}
    assert RECOMMENDED == {**recipe, "base_model": report["meta"]["base_model"]}
    assert TrainConfig.settings_only().contrastive_loss == "margin"  # the command line: the note's recipe


def test_fit_uses_the_recommended_recipe_and_takes_numpy_numbers(tmp_path, fake_model):
    data = tiny_dataset(tmp_path / "data")
    fitted = isoadapt.fit(
        tmp_path / "data", cache_dir=tmp_path / "cache", epochs=np.int64(1), batch_size=np.int32(8), seed=np.uint8(1)
    )
    config = fitted.adapter.config
    assert (config["epochs"], config["batch_size"], config["seed"]) == (1, 8, 1)
    assert type(config["epochs"]) is int
    assert (config["adapt"], config["negatives"], config["contrastive_loss"]) == ("both", "hard", "infonce")
    assert (config["head_init"], config["lambda_isotropy"]) == ("identity", 1.0)
    assert "hard_negatives" in fitted.metrics and fitted.adapter.adapt == "both"
    assert data  # the folder fit read


def test_fit_shows_progress_bars_on_a_terminal_without_the_summary(tmp_path, capsys, fake_model, monkeypatch):
    """Bars are drawn as tqdm draws them on a terminal (disable=None: off in a pipe, as here); the command
    line's summary lines are printed only with verbose."""
    import isoadapt.progress

    drawn = []
    real = isoadapt.progress.tqdm

    def recording(*args, **kwargs):
        drawn.append((kwargs.get("desc"), kwargs.get("disable")))
        return real(*args, **kwargs)

    monkeypatch.setattr(isoadapt.progress, "tqdm", recording)
    tiny_dataset(tmp_path / "data")
    recipe = TrainConfig.settings_only(cache_dir=str(tmp_path / "cache"), epochs=1, batch_size=4)
    isoadapt.fit(tmp_path / "data", config=recipe)
    assert ("training", None) in drawn and capsys.readouterr().out == ""
    drawn.clear()
    isoadapt.fit(tmp_path / "data", config=recipe, show_progress_bar=False)
    assert drawn and all(disable is True for _, disable in drawn)
    isoadapt.fit(tmp_path / "data", config=recipe, verbose=True)
    assert "run folder:" in capsys.readouterr().out


def vectors_of_processed_split(data: dict, integer_ids: bool = False) -> tuple:
    """The fake encoder's vectors of a processed dataset's texts as isoadapt.Vectors: the training split as
    (query, positive, negative) triples in train.json's order, dev.json by its own ids (or by integers)."""
    encoder = FakeEncoder()
    records = json.loads(data["train"].read_text())
    queries = list(dict.fromkeys(r["query"] for r in records))
    documents = list(dict.fromkeys(t for r in records for t in (r["positive"], r["negative"])))
    triples = [
        (queries.index(r["query"]), documents.index(r["positive"]), documents.index(r["negative"])) for r in records
    ]
    train = isoadapt.Vectors(encoder.encode(queries), encoder.encode(documents), pairs=triples)
    dev = json.loads(data["dev"].read_text())
    qids, dids = list(dev["queries"]), list(dev["corpus"])
    rename = {i: n for n, i in enumerate(qids + dids)} if integer_ids else {i: i for i in qids + dids}
    val = isoadapt.Vectors(
        encoder.encode(list(dev["queries"].values())),
        encoder.encode(list(dev["corpus"].values())),
        qrels={rename[q]: {rename[d]: g for d, g in judged.items()} for q, judged in dev["qrels"].items()},
        query_ids=[rename[q] for q in qids],
        document_ids=[rename[d] for d in dids],
    )
    return train, val


def test_vectors_with_the_stored_negatives_reproduce_the_run_on_the_texts(tmp_path, fake_model):
    """Issue #28: a vectors run drew its own negatives per seed, so it could not reproduce the text run on
    the processed split. With the stored negatives as triples it does: the same curve and head; integer ids
    (as `prepare vectors` takes them) score the same."""
    data = tiny_dataset(tmp_path / "data")
    recipe = TrainConfig.settings_only(epochs=2, batch_size=4, lambda_contrastive=1.0, projection_learning_rate=1e-2)
    texts = isoadapt.fit(tmp_path / "data", config=recipe, cache_dir=str(tmp_path / "cache"))
    for integer_ids in (False, True):
        train, val = vectors_of_processed_split(data, integer_ids)
        arrays = isoadapt.fit(train, val, config=recipe)
        assert arrays.metrics["validation"]["curve"] == texts.metrics["validation"]["curve"]
        assert arrays.metrics["val"] == texts.metrics["val"]
        for a, b in zip(arrays.adapter.head.state_dict().values(), texts.adapter.head.state_dict().values()):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert texts.metrics["validation"]["selected"]["step"] > 0  # training moved the head


@pytest.mark.slow
def test_export_and_to_sentence_transformer_are_what_plain_sentence_transformers_computes(tmp_path):
    """fit on pairs with the default recipe (MiniLM, query-only head), the head moved off the identity; the
    reference is plain sentence-transformers on the base model with the head applied in NumPy: the adapter,
    its export loaded by SentenceTransformer, to_sentence_transformer() and Adapter.load(export) agree."""
    from sentence_transformers import SentenceTransformer

    from isoadapt.encoding.offline_models import MINILM, resolve_model

    topics = ["cooking pasta", "tuning a bicycle", "planting tomatoes", "learning the violin"]
    pairs = [(f"how do I go about {t}?", f"A short guide to {t}, step {i}.") for t in topics for i in range(3)]
    fitted = isoadapt.fit(pairs, pairs, cache_dir=tmp_path / "cache", epochs=1, batch_size=4, adapt="query")
    adapter = fitted.adapter
    assert adapter.base_model == MINILM and adapter.adapt == "query"
    with torch.no_grad():
        adapter.head.linear.weight.add_(
            0.3 * torch.randn(adapter.head.linear.weight.shape, generator=torch.Generator().manual_seed(0))
        )
    texts = [p for pair in pairs[:5] for p in pair]
    base = SentenceTransformer(str(resolve_model(MINILM, tmp_path)), device="cpu").encode(texts).astype(np.float64)
    expected = {
        "query": adapted_by_hand(adapter.head, base, "query"),
        "document": adapted_by_hand(adapter.head, base, "document"),
    }

    def close(ours, side):
        ours = np.asarray(ours, dtype=np.float64)
        assert ((ours * expected[side]).sum(axis=1) / np.linalg.norm(ours, axis=1)).min() >= 0.9999, side

    assert 1 - (expected["query"] * expected["document"]).sum(axis=1).max() > 1e-3  # the sides differ
    exported = adapter.export(tmp_path / "export")
    plain = SentenceTransformer(str(exported), device="cpu")
    loaded = isoadapt.Adapter.load(exported, cache_dir=tmp_path / "cache")
    model = adapter.to_sentence_transformer()
    for side in ("query", "document"):
        close(getattr(adapter, f"encode_{side}")(texts), side)
        close(getattr(plain, f"encode_{side}")(texts), side)
        close(getattr(model, f"encode_{side}")(texts), side)
        close(getattr(loaded, f"encode_{side}")(texts, batch_size=2), side)
    assert loaded.encode_query(texts[0]).shape == (adapter.out_dim,)
    assert loaded.card.text == (exported / "README.md").read_text(encoding="utf-8")
    assert loaded.metrics == fitted.metrics
