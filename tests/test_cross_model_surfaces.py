"""A cross-model run (queries on NEW, documents on OLD: tests/cross_model.py) everywhere a run is used: its
export in plain sentence-transformers, `Adapter`, and every integration give the run's vectors on each side,
held to a reference computed without isoadapt (NEW's encode with its prompt, the head's weights in numpy;
OLD's encode for documents)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import cosines
from cross_model import DOCUMENTS, QUERIES

slow = pytest.mark.slow  # the tests on the real models (the session's `cross_model` fixture builds NEW once)


def close(found, expected) -> None:
    assert np.asarray(found).shape == expected.shape
    assert cosines(found, expected).min() >= 0.9999


@slow
def test_the_export_loads_in_plain_sentence_transformers_with_each_side_on_its_model(cross_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(cross_model["export"]), device="cpu", local_files_only=True)
    close(model.encode_query(QUERIES), cross_model["expected"]["query"])
    close(model.encode_document(DOCUMENTS), cross_model["expected"]["document"])
    # encode(task=...) routes but, as sentence-transformers does, applies a prompt only when it is named
    close(model.encode(QUERIES, task="query", prompt_name="query"), cross_model["expected"]["query"])
    with pytest.raises(ValueError, match="Could not determine route"):  # no silent default side
        model.encode(QUERIES)
    card = (cross_model["export"] / "README.md").read_text(encoding="utf-8")
    assert "| query model | " in card and "(queries; documents stay on the base model)" in card


@slow
@pytest.mark.parametrize("source", ["run", "export"])
def test_the_adapter_encodes_each_side_on_its_model(cross_model, source):
    import isoadapt

    adapter = isoadapt.Adapter.load(cross_model[source], cross_model["cache"])
    assert adapter.query_model == str(cross_model["new"])
    close(adapter.encode_query(QUERIES), cross_model["expected"]["query"])
    close(adapter.encode_document(DOCUMENTS), cross_model["expected"]["document"])
    assert adapter.encode_query([]).shape == adapter.encode_document([]).shape == (0, 384)


@slow
def test_the_adapter_transforms_each_models_vectors(cross_model):
    """transform reads the query model's 256-dim vectors on the query side, the base's 384 on the document side."""
    from sentence_transformers import SentenceTransformer

    import isoadapt
    from isoadapt.errors import InputError

    adapter = isoadapt.Adapter.load(cross_model["run"], cross_model["cache"])
    new = SentenceTransformer(str(cross_model["new"]), device="cpu", local_files_only=True)
    close(adapter.transform(new.encode_query(QUERIES), "query"), cross_model["expected"]["query"])
    documents = cross_model["expected"]["document"].astype(np.float32)
    close(adapter.transform(documents, "document"), documents)
    with pytest.raises(InputError, match=r"reads 256-dim vectors of .*new-model \(shape \(n, 256\)\)"):
        adapter.transform(documents, "query")


def model_vectors(cross_model, texts: list[str], side: str) -> np.ndarray:
    """The side's own model's vectors (NEW with its query prompt, or OLD), by sentence-transformers alone."""
    from sentence_transformers import SentenceTransformer

    from isoadapt.encoding.offline_models import resolve_model

    from cross_model import MINILM, QUERY_PROMPT

    folder = cross_model["new"] if side == "query" else resolve_model(MINILM, cross_model["cache"])
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return model.encode([QUERY_PROMPT + t if side == "query" else t for t in texts], convert_to_numpy=True)


@slow
def test_apply_maps_the_query_models_vectors_and_passes_the_documents(cross_model, tmp_path, capsys):
    import pyarrow.parquet as pq

    from isoadapt.cli import main

    from cross_model import MINILM
    from hostile import apply_argv, write_vectors

    files = {
        "query": write_vectors(
            tmp_path / "q.parquet",
            model_vectors(cross_model, QUERIES, "query"),
            metadata={"isoadapt.model": str(cross_model["new"])},
        ),
        "document": write_vectors(
            tmp_path / "d.parquet",
            model_vectors(cross_model, DOCUMENTS, "document"),
            metadata={"isoadapt.model": MINILM},
        ),
    }
    for side in ("query", "document"):
        out = tmp_path / f"{side}-out.parquet"
        assert main([str(a) for a in apply_argv(cross_model["run"], files[side], out, "--side", side)]) == 0
        written = np.array(pq.read_table(out).column("vector").to_pylist())
        close(written, cross_model["expected"][side])
    capsys.readouterr()


def index_documents(cross_model, tmp_path, capsys) -> Path:
    """`isoadapt index` of DOCUMENTS with the cross-model run (documents on the base model): the table's db."""
    from isoadapt.cli import main

    from conftest import write_json

    corpus = {f"d{i}": text for i, text in enumerate(DOCUMENTS)}
    split = write_json(
        tmp_path / "split.json", {"queries": {"q0": QUERIES[0]}, "corpus": corpus, "qrels": {"q0": {"d0": 1}}}
    )
    run, cache, db = cross_model["run"], cross_model["cache"], tmp_path / "db"
    assert main(["index", "--run_dir", str(run), "--data", str(split), "--db", str(db), "--cache_dir", str(cache)]) == 0
    capsys.readouterr()
    return db


@slow
def test_index_holds_the_base_models_documents_and_search_encodes_the_query_on_the_query_model(
    cross_model, tmp_path, capsys
):
    import json

    from isoadapt.cli import main

    db = index_documents(cross_model, tmp_path, capsys)
    run, cache = cross_model["run"], cross_model["cache"]
    for query, expected in zip(QUERIES, cross_model["expected"]["query"]):
        argv = ["search", query, "--run_dir", str(run), "--db", str(db), "--cache_dir", str(cache), "--json"]
        assert main(argv) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        scores = {hit["id"]: hit["score"] for hit in hits}
        reference = cross_model["expected"]["document"] @ expected  # cosines: both sides are unit vectors
        assert [scores[f"d{i}"] for i in range(len(DOCUMENTS))] == pytest.approx(reference, abs=1e-4)
        assert hits[0]["id"] == f"d{int(np.argmax(reference))}"


@slow
def test_lancedb_search_text_takes_the_query_model(cross_model, tmp_path, capsys):
    import lancedb

    import isoadapt.integrations.lancedb  # noqa: F401  (registers the function)

    db = index_documents(cross_model, tmp_path, capsys)
    table = lancedb.connect(str(db)).open_table("documents")
    hits = table.search(QUERIES[1]).distance_type("cosine").limit(3).to_list()
    reference = cross_model["expected"]["document"] @ cross_model["expected"]["query"][1]
    found = {hit["id"]: 1 - hit["_distance"] for hit in hits}
    assert [found[f"d{i}"] for i in range(len(DOCUMENTS))] == pytest.approx(reference, abs=1e-4)


@slow
def test_langchain_adapter_embeddings(cross_model):
    import isoadapt
    from isoadapt.integrations.langchain import AdapterEmbeddings

    embeddings = AdapterEmbeddings(isoadapt.Adapter.load(cross_model["run"], cross_model["cache"]))
    close([embeddings.embed_query(q) for q in QUERIES], cross_model["expected"]["query"])
    close(embeddings.embed_documents(DOCUMENTS), cross_model["expected"]["document"])


@slow
def test_llama_index_adapter_embedding(cross_model):
    from isoadapt.integrations.llama_index import AdapterEmbedding

    embed_model = AdapterEmbedding(model_name=str(cross_model["export"]), device="cpu")
    close([embed_model.get_query_embedding(q) for q in QUERIES], cross_model["expected"]["query"])
    close(embed_model.get_text_embedding_batch(DOCUMENTS), cross_model["expected"]["document"])


@slow
@pytest.mark.parametrize("source", ["run", "export"])
def test_serve_answers_each_side_with_its_model(cross_model, source):
    """The real server (uvicorn on a loopback port) over the run and over its export, with the real models."""
    import threading

    import uvicorn
    from transformers import AutoTokenizer

    import isoadapt
    from isoadapt.integrations.server.app import bind, build_app
    from isoadapt.integrations.server.model import open_served
    from isoadapt.integrations.server.settings import ServeSettings

    from cross_model import QUERY_PROMPT
    from serving import post, wait_ready

    tokenizer = AutoTokenizer.from_pretrained(str(cross_model["new"]))  # MiniLM's, in both models
    model = open_served(isoadapt.Adapter.load(cross_model[source], cross_model["cache"]), cross_model["cache"])
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(build_app(model, ServeSettings()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_ready(url, thread.is_alive)
        for side, texts in (("query", QUERIES), ("document", DOCUMENTS)):
            asked = {"model": cross_model[source].name, "input": texts, "input_type": side}
            status, _, body = post(url + "/v1/embeddings", asked)
            assert status == 200, body
            vectors = [item["embedding"] for item in json_of(body)["data"]]
            close(vectors, cross_model["expected"][side])
            prompted = [QUERY_PROMPT + t if side == "query" else t for t in texts]  # as the side's model reads them
            assert json_of(body)["usage"]["prompt_tokens"] == sum(len(ids) for ids in tokenizer(prompted)["input_ids"])
        status, _, body = post(url + "/v1/embeddings", {"model": cross_model[source].name, "input": QUERIES})
        assert status == 400  # a query-only head: the side must be named
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def json_of(body: bytes) -> dict:
    import json

    return json.loads(body)


def test_a_trained_cross_model_run_indexes_old_documents_and_searches_with_new_queries(tmp_path, capsys, fake_model):
    """A cross-model run as `isoadapt train` writes it (fake models: documents on fake-16-0, queries on
    fake-8-1): index encodes the corpus with the old model, search the query with the new one and the head;
    every score equals the cosine computed here from the fakes' vectors and the head's weights."""
    import json

    from safetensors.numpy import load_file

    from isoadapt.cli import main
    from isoadapt.data.formats import load_eval

    from conftest import FakeEncoder, move_head_off_identity, tiny_dataset
    from hostile import train_argv

    data, run, cache = tiny_dataset(tmp_path / "data"), tmp_path / "run", tmp_path / "cache"
    flags = {"base_model": "fake-16-0", "query_model": "fake-8-1", "adapt": "query"}
    assert main([str(a) for a in train_argv(data, run, cache, **flags)]) == 0
    move_head_off_identity(run, seed=2)
    db = tmp_path / "db"
    assert (
        main(["index", "--run_dir", str(run), "--data", str(data["test"]), "--db", str(db), "--cache_dir", str(cache)])
        == 0
    )
    query = "topic3 what is topic3"
    argv = ["search", query, "--run_dir", str(run), "--db", str(db), "--cache_dir", str(cache), "-k", "5", "--json"]
    capsys.readouterr()
    assert main(argv) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    corpus = load_eval(data["test"]).corpus
    documents = FakeEncoder(16, 0).encode(list(corpus.values())).astype(np.float64)  # (docs, 16)
    weights = load_file(str(run / "head" / "head.safetensors"))
    vector = FakeEncoder(8, 1).encode([query])[0] @ weights["linear.weight"].T + weights["linear.bias"]  # (16,)
    scores = cosines(documents, np.tile(vector, (len(documents), 1)))
    best = np.argsort(-scores)[:5]
    assert [hit["id"] for hit in hits] == [list(corpus)[i] for i in best]
    assert [hit["score"] for hit in hits] == pytest.approx(scores[best], abs=1e-5)


def test_a_cross_model_run_searches_the_index_of_a_query_only_run_on_its_base(two_runs, capsys, fake_model):
    """The index a user already has (a query-only run's table: its documents are the base model's vectors,
    untouched) serves a cross-model run on that base as it is; a table whose documents a head changed does
    not."""
    import json

    from isoadapt.cli import main
    from isoadapt.data.formats import load_eval
    from isoadapt.encoding.offline_models import MPNET

    from conftest import FakeEncoder, tiny_dataset
    from cross_model import fake_cross_run
    from hostile import one_line

    data, cache = tiny_dataset(two_runs / "data"), two_runs / "cache"
    cross = fake_cross_run(two_runs / "cross", base_model=MPNET)  # the fakes' runs are trained as mpnet
    for run in ("query", "both"):
        argv = ["index", "--run_dir", two_runs / run, "--data", data["test"], "--db", two_runs / f"db-{run}"]
        assert main([str(a) for a in [*argv, "--cache_dir", cache]]) == 0
    query = "topic3 what is topic3"
    search = ["search", query, "--run_dir", cross, "--cache_dir", cache, "-k", "3", "--json", "--db"]
    capsys.readouterr()
    assert main([str(a) for a in [*search, two_runs / "db-query"]]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    corpus = load_eval(data["test"]).corpus
    documents = FakeEncoder(16, 0).encode(list(corpus.values()))  # (docs, 16): the base vectors, untouched
    vector = head_by_numpy(cross, FakeEncoder(8, 1).encode([query]))  # (16,)
    scores = cosines(documents, np.tile(vector, (len(documents), 1)))
    best = np.argsort(-scores)[:3]
    assert [hit["id"] for hit in hits] == [list(corpus)[i] for i in best]
    assert [hit["score"] for hit in hits] == pytest.approx(scores[best], abs=1e-5)
    line = one_line(capsys, [*search, two_runs / "db-both"])
    assert f"was indexed with the head of {(two_runs / 'both').resolve()}, not {cross}" in line


def head_by_numpy(run_dir, vectors):  # (1, dim) -> (out_dim,)
    """The run's query vector by numpy: the head's weights read from its file."""
    from safetensors.numpy import load_file

    weights = load_file(str(run_dir / "head" / "head.safetensors"))
    return (vectors @ weights["linear.weight"].T + weights["linear.bias"])[0]


@slow
def test_export_builds_no_onnx_runtime_for_a_run_encoded_with_onnx(cross_model, tmp_path, monkeypatch):
    """The export holds the models' torch modules whatever --encode_backend the run used."""
    import json
    import shutil

    import isoadapt.encoding.onnx_backend
    from isoadapt.cli import main

    def refuse(*args, **kwargs):
        raise AssertionError("export built an ONNX runtime")

    monkeypatch.setattr(isoadapt.encoding.onnx_backend, "export_onnx", refuse)
    run = shutil.copytree(cross_model["run"], tmp_path / "run")
    document = json.loads((run / "config.json").read_text())
    document["config"]["encode_backend"] = "onnx"
    (run / "config.json").write_text(json.dumps(document))
    out = tmp_path / "export"
    assert main(["export", "--run_dir", str(run), "--out", str(out), "--cache_dir", str(cross_model["cache"])]) == 0
