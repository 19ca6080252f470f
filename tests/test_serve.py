"""`isoadapt serve` with the real clients (openai, LangChain, LlamaIndex) against a real server on a free
loopback port: every vector equals `Adapter.encode_query` / `encode_document` for a head on both sides and
a query-only head; the side rule, batching, usage, metrics and the API key; a `vectors:` run is refused."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from isoadapt.cli import main

from conftest import FakeEncoder, tiny_dataset, train_config
from hostile import PRECOMPUTED_MODEL, export_from_cache, one_line, prepare_argv
from serving import WINDOW, cosines, fake_runs, get, post, process_server, reference, thread_server

QUERIES = ["topic1 what is topic1", "topic3 where", "topic5 a longer question about topic5 and more"]
DOCUMENTS = ["topic1 document 0 about topic1", "topic7 document 1", "topic2 passage"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return fake_runs(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def both(runs):
    with thread_server(runs["both"], max_wait_ms=20) as (url, model):
        yield url, model


@pytest.fixture(scope="module")
def query_only(runs):
    with thread_server(runs["query"]) as (url, model):
        yield url, model


def openai_client(url: str, key: str = "unused"):
    from openai import OpenAI

    return OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def vectors_of(response) -> np.ndarray:
    """The vectors of an openai response; base64 asked for explicitly stays a string there: decoded here."""
    rows = [item.embedding for item in response.data]
    if isinstance(rows[0], str):
        return np.stack([np.frombuffer(base64.b64decode(row), dtype="<f4") for row in rows])
    return np.array(rows, dtype=np.float32)


def close(served, expected) -> None:
    assert np.asarray(served).shape == expected.shape
    assert cosines(served, expected).min() >= 0.9999


@pytest.mark.parametrize("head", ["both", "query"])
@pytest.mark.parametrize("encoding_format", ["float", "base64", None])  # None: the client's own base64
def test_the_openai_client_gets_the_adapters_vectors_on_each_side(runs, both, query_only, head, encoding_format):
    url, model = both if head == "both" else query_only
    client = openai_client(url)
    for side, texts in (("query", QUERIES), ("document", DOCUMENTS)):
        expected = reference(runs[head], texts, side)
        by_field = client.embeddings.create(
            model=model.name, input=texts, encoding_format=encoding_format, extra_body={"input_type": side}
        )
        by_model = client.embeddings.create(model=f"{model.name}:{side}", input=texts, encoding_format=encoding_format)
        close(vectors_of(by_field), expected)
        close(vectors_of(by_model), expected)
        assert by_model.model == f"{model.name}:{side}"
    if head == "query":  # the sides differ: a query is not its document's vector
        assert (
            cosines(reference(runs[head], QUERIES, "query"), reference(runs[head], QUERIES, "document")).max() < 0.999
        )


def test_a_run_trained_with_prompts_is_served_with_them_on_each_side(runs):
    """Each side's prompt is prepended as the run encoded it (the vectors differ from unprompted ones), and
    usage counts the prompt's tokens."""
    from isoadapt.api.adapter import Adapter

    with thread_server(runs["prompted"]) as (url, model):
        client = openai_client(url)
        for side, texts in (("query", QUERIES), ("document", DOCUMENTS)):
            answer = client.embeddings.create(model=f"{model.name}:{side}", input=texts)
            close(vectors_of(answer), reference(runs["prompted"], texts, side))
            unprompted = Adapter.load(runs["prompted"]).transform(FakeEncoder().encode(texts), side)
            assert cosines(vectors_of(answer), unprompted).max() < 0.999  # the prompt changed the vectors
        usage = client.embeddings.create(model=f"{model.name}:query", input=["a b c"]).usage
        assert usage.prompt_tokens == 1 + 3 + 2  # "query:" + three words + [CLS] [SEP]
        # a head on both sides, but each side prompted differently: a request without a side has no default
        status, _, body = post(url + "/v1/embeddings", {"model": model.name, "input": ["x"]})
        assert status == 400 and "say which side the texts are" in json.loads(body)["error"]["message"]


def test_the_openai_client_default_is_base64_and_decodes_to_the_float_answer(both):
    url, model = both
    raw = post(url + "/v1/embeddings", {"model": model.name, "input": QUERIES, "encoding_format": "base64"})
    decoded = np.stack(
        [np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in json.loads(raw[2])["data"]]
    )
    floats = json.loads(post(url + "/v1/embeddings", {"model": model.name, "input": QUERIES})[2])["data"]
    np.testing.assert_array_equal(decoded, np.array([d["embedding"] for d in floats], dtype=np.float32))


def test_a_head_on_both_sides_defaults_to_the_document_side(runs, both):
    url, model = both
    answer = openai_client(url).embeddings.create(model=model.name, input=DOCUMENTS)
    close(vectors_of(answer), reference(runs["both"], DOCUMENTS, "document"))


def test_a_query_only_head_refuses_a_request_that_does_not_name_its_side(query_only):
    import openai

    url, model = query_only
    with pytest.raises(openai.BadRequestError, match="say which side the texts are"):
        openai_client(url).embeddings.create(model=model.name, input=QUERIES)


def test_langchain_openai_embeddings(runs, both, query_only):
    from langchain_openai import OpenAIEmbeddings

    def embeddings(url, model):
        return OpenAIEmbeddings(model=model, base_url=url + "/v1", api_key="unused", check_embedding_ctx_length=False)

    url, model = both
    stock = embeddings(url, model.name)
    close(stock.embed_documents(DOCUMENTS), reference(runs["both"], DOCUMENTS, "document"))
    close([stock.embed_query(QUERIES[0])], reference(runs["both"], QUERIES[:1], "query"))
    url, model = query_only  # a query-only head: one wrapper per side, each naming its model id
    close(
        [embeddings(url, f"{model.name}:query").embed_query(QUERIES[0])], reference(runs["query"], QUERIES[:1], "query")
    )
    close(
        embeddings(url, f"{model.name}:document").embed_documents(DOCUMENTS),
        reference(runs["query"], DOCUMENTS, "document"),
    )


def test_llama_index_served_embedding_routes_each_side(runs, both, query_only):
    from llama_index.embeddings.openai import OpenAIEmbedding

    from isoadapt.integrations.llama_index_openai import ServedEmbedding

    url, model = both
    stock = OpenAIEmbedding(model_name=model.name, api_base=url + "/v1", api_key="unused")
    close(stock.get_text_embedding_batch(DOCUMENTS), reference(runs["both"], DOCUMENTS, "document"))
    url, model = query_only
    routed = ServedEmbedding(model_name=model.name, api_base=url + "/v1", api_key="unused")
    close([routed.get_query_embedding(QUERIES[0])], reference(runs["query"], QUERIES[:1], "query"))
    close(routed.get_text_embedding_batch(DOCUMENTS), reference(runs["query"], DOCUMENTS, "document"))


def test_models_health_and_usage_counted_by_the_tokenizer(both):
    url, model = both
    ids = [m["id"] for m in json.loads(get(url + "/v1/models")[2])["data"]]
    assert ids == [model.name, f"{model.name}:query", f"{model.name}:document"]
    assert json.loads(get(url + "/health")[2])["status"] == "ready"
    long = "topic4 " + " ".join(f"w{i}" for i in range(100))  # far past the fake's window of 12 tokens
    usage = json.loads(post(url + "/v1/embeddings", {"model": model.name, "input": ["a b c", long]})[2])["usage"]
    assert usage == {"prompt_tokens": (3 + 2) + WINDOW, "total_tokens": (3 + 2) + WINDOW}  # words + [CLS] [SEP]


def test_concurrent_requests_share_forward_passes_and_the_metrics_count_them(runs):
    """24 one-text requests at once, on a server whose idle workers wait up to 300 ms for company (the fake's
    passes are instant, so with the default 2 ms a slow thread start could give each request its own)."""
    with thread_server(runs["both"], max_wait_ms=300) as (url, model):
        concurrent_requests_share_passes(runs, url, model)


def concurrent_requests_share_passes(runs, url, model):
    from prometheus_client.parser import text_string_to_metric_families

    calls_before = model.encoder.calls
    answers, texts = {}, [f"topic{i} question {i}" for i in range(24)]

    def one(i):
        answers[i] = post(url + "/v1/embeddings", {"model": f"{model.name}:query", "input": [texts[i]]})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(answers[i][0] == 200 for i in range(len(texts)))
    served = np.array([json.loads(answers[i][2])["data"][0]["embedding"] for i in range(len(texts))])
    close(served, reference(runs["both"], texts, "query"))
    assert model.encoder.calls - calls_before < len(texts)  # batched: fewer passes than requests
    families = {f.name: f for f in text_string_to_metric_families(get(url + "/metrics")[2].decode())}
    requests = {(s.labels["path"], s.labels["status"]): s.value for s in families["isoadapt_requests"].samples}
    assert requests[("/v1/embeddings", "200")] >= len(texts)
    batch_sizes = [s for s in families["isoadapt_batch_requests"].samples if s.name.endswith("_count")]
    assert 0 < batch_sizes[0].value < requests[("/v1/embeddings", "200")]
    truncated = families["isoadapt_truncated_texts"].samples[0].value
    assert truncated >= 0


def test_an_api_key_is_required_when_set(runs):
    import openai

    with thread_server(runs["both"], api_key="s3cret") as (url, model):
        with pytest.raises(openai.AuthenticationError, match="API key"):
            openai_client(url, "wrong").embeddings.create(model=model.name, input=["topic1 x"])
        assert get(url + "/v1/models")[0] == 401
        assert get(url + "/health")[0] == 200  # for the load balancer: no key, no texts
        answer = openai_client(url, "s3cret").embeddings.create(model=model.name, input=["topic1 x"])
        assert len(answer.data) == 1


def test_the_command_serves_and_sigterm_drains_then_exits_0(runs):
    with process_server("--run_dir", str(runs["query"]), "--name", "q") as (url, process):
        answer = openai_client(url).embeddings.create(model="q:query", input=QUERIES)
        close(vectors_of(answer), reference(runs["query"], QUERIES, "query"))
        process.terminate()
        assert process.wait(60) == 0


def test_a_vectors_run_is_refused_at_start_with_one_line(tmp_path, capsys):
    """A run on precomputed vectors has no model to embed text with: serve says so, before any port."""
    from isoadapt.training.train_command import run_training

    data = tiny_dataset(tmp_path / "data")
    paths = export_from_cache(data, FakeEncoder(), tmp_path / "cache", tmp_path / "parquet")
    assert main([str(a) for a in prepare_argv(paths, tmp_path / "vcache", processed=tmp_path / "data")]) == 0
    cfg = train_config(data, tmp_path, base_model=f"vectors:{PRECOMPUTED_MODEL}", cache_dir=str(tmp_path / "vcache"))
    cfg.output_dir = str(tmp_path / "run-vectors")
    run_training(cfg, quiet=True)
    capsys.readouterr()
    line = one_line(capsys, ["serve", "--run_dir", tmp_path / "run-vectors", "--cache_dir", tmp_path / "vcache"])
    assert "precomputed vectors: there is no model to embed text with" in line
    assert Path(tmp_path / "run-vectors").is_dir()


@pytest.mark.slow
def test_ray_serve_with_one_replica_gives_the_same_vectors(runs):
    """The same app as a Ray Serve deployment on a local Ray (seconds to a minute: Ray starts)."""
    import functools

    import ray
    from ray import cloudpickle, serve

    from isoadapt.integrations.server.ray_deployment import start_on_ray
    from isoadapt.integrations.server.settings import ServeSettings

    import conftest
    import hostile
    import serving

    for module in (serving, conftest, hostile):  # the fake travels to the replica with its code
        cloudpickle.register_pickle_by_value(module)
    port = serving.free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        start_on_ray(functools.partial(serving.open_fake_model, runs["query"]), ServeSettings(), "127.0.0.1", port, 1)
        client = openai_client(f"http://127.0.0.1:{port}")
        for side, texts in (("query", QUERIES), ("document", DOCUMENTS)):
            answer = client.embeddings.create(model=f"query:{side}", input=texts)
            close(vectors_of(answer), reference(runs["query"], texts, side))
        assert get(f"http://127.0.0.1:{port}/health")[0] == 200
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.mark.slow
def test_minilm_run_and_export_served_equal_the_adapter_and_cut_long_texts_as_it_does(tmp_path):
    """A query-only MiniLM run and its export, each served by the real command: both sides equal
    Adapter.encode_query / encode_document (a text far past the window included: both cut it at 256 tokens),
    and usage counts what MiniLM's own tokenizer reads."""
    from transformers import AutoTokenizer

    from isoadapt.api.adapter import Adapter
    from isoadapt.encoding.offline_models import resolve_model

    from conftest import move_head_off_identity
    from hostile import train_argv

    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    data, cache = tiny_dataset(tmp_path / "data", topics=4), tmp_path / "cache"
    assert main([str(a) for a in train_argv(data, tmp_path / "run", cache, base_model=minilm, adapt="query")]) == 0
    move_head_off_identity(tmp_path / "run", seed=3)
    assert (
        main(
            ["export", "--run_dir", str(tmp_path / "run"), "--out", str(tmp_path / "export"), "--cache_dir", str(cache)]
        )
        == 0
    )
    long = "semantic web " * 400  # about 800 tokens, past MiniLM's 256
    texts = {"query": [*QUERIES, long], "document": [*DOCUMENTS, long]}
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model(minilm, cache)))
    expected_tokens = sum(min(len(tokenizer(t)["input_ids"]), 256) for t in texts["query"])
    for flag, folder in (("--run_dir", tmp_path / "run"), ("--export", tmp_path / "export")):
        adapter = Adapter.load(folder, cache)
        with process_server(flag, str(folder), "--cache_dir", str(cache), fake=False) as (url, _):
            client = openai_client(url)
            for side in ("query", "document"):
                answer = client.embeddings.create(model=f"{folder.name}:{side}", input=texts[side])
                reference_vectors = (
                    adapter.encode_query(texts[side]) if side == "query" else adapter.encode_document(texts[side])
                )
                close(vectors_of(answer), reference_vectors)
            query_answer = client.embeddings.create(model=f"{folder.name}:query", input=texts["query"])
            assert query_answer.usage.prompt_tokens == expected_tokens
