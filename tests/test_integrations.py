"""isoadapt's heads inside the libraries users retrieve with, each held to the adapter's vectors on the side
that should have them (cosine >= 0.9999) and to the base vectors on the side that should not: LanceDB's
`table.search("text")` on a table `isoadapt index` wrote (fast, on the fake encoder, and slow on MiniLM),
and, on MiniLM exports, LangChain's HuggingFaceEmbeddings, LlamaIndex's HuggingFaceEmbedding (through
isoadapt.integrations.llama_index) and sentence-transformers' own `encode`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from isoadapt.cli import main
from isoadapt.errors import InputError

from conftest import MINILM_TEXTS as TEXTS
from conftest import FakeEncoder, adapted, cosines, move_head_off_identity

pytest.importorskip("lancedb")
QUERY = "topic3 what is topic3"


def index_run(root, run, capsys):
    argv = ["index", "--run_dir", root / run, "--data", root / "data" / "test.json", "--db", root / f"db-{run}"]
    assert main([str(a) for a in [*argv, "--cache_dir", root / "cache"]]) == 0
    capsys.readouterr()
    import lancedb

    import isoadapt.integrations.lancedb  # noqa: F401  registers the `isoadapt` embedding function

    return lancedb.connect(str(root / f"db-{run}")).open_table("documents")


@pytest.mark.parametrize("run", ["both", "query"])
def test_lancedb_search_text_embeds_the_query_on_the_runs_query_side(distinct_runs, capsys, run):
    root = distinct_runs
    table = index_run(root, run, capsys)
    function = table.embedding_functions["vector"].function
    base = FakeEncoder().encode([QUERY])
    embedded = np.array(function.compute_query_embeddings(QUERY))
    assert cosines(embedded, adapted(root / run, base, "query"))[0] >= 0.9999
    assert cosines(embedded, base)[0] < 0.99  # the head moved the query: the check above can fail
    hits = table.search(QUERY).distance_type("cosine").limit(10).to_list()
    argv = ["search", QUERY, "--db", root / f"db-{run}", "--run_dir", root / run, "--cache_dir", root / "cache"]
    assert main([str(a) for a in [*argv, "--json"]]) == 0
    ours = json.loads(capsys.readouterr().out)["hits"]
    assert [h["id"] for h in hits] == [h["id"] for h in ours]
    assert [1 - h["_distance"] for h in hits] == pytest.approx([h["score"] for h in ours], abs=1e-5)


@pytest.mark.parametrize("run", ["both", "query"])
def test_lancedb_add_embeds_new_documents_on_the_runs_document_side(distinct_runs, capsys, run):
    root = distinct_runs
    table = index_run(root, run, capsys)
    text = "topic3 a document added later"
    table.add([{"id": "new", "text": text}])
    stored = np.array(table.search().where("id = 'new'").to_list()[0]["vector"])[None, :]
    base = FakeEncoder().encode([text])
    assert cosines(stored, adapted(root / run, base, "document"))[0] >= 0.9999
    moved = cosines(stored, base)[0]
    assert moved >= 0.9999 if run == "query" else moved < 0.99  # a query-only head leaves documents alone


def test_lancedb_refuses_a_run_whose_head_changed_since_indexing(distinct_runs, capsys):
    root = distinct_runs
    table = index_run(root, "both", capsys)
    move_head_off_identity(root / "both", seed=7)  # trained again into the same folder, say
    with pytest.raises(InputError, match="its head changed since the table was indexed"):
        table.search(QUERY).limit(3).to_list()


def check_sides(minilm, run, queries, documents) -> None:
    """Queries hold the adapter's query side; documents its document side: base vectors for a query-only head."""
    root, base = minilm["root"], minilm["base"]
    assert cosines(queries, adapted(root / run, base, "query")).min() >= 0.9999
    assert cosines(documents, adapted(root / run, base, "document")).min() >= 0.9999
    assert cosines(queries, base).max() < 0.99  # the head moved the queries: the checks above can fail
    moved = cosines(documents, base)
    assert moved.min() >= 0.9999 if run == "query" else moved.max() < 0.99


@pytest.mark.slow
def test_sentence_transformers_encode_needs_a_task_on_a_query_only_export(minilm):
    """The export's own contract: encode_query / encode_document (or encode with a task) give each side, and
    encode without a task raises instead of answering a query with base vectors."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm["root"] / "query-export"), device="cpu", local_files_only=True)
    check_sides(minilm, "query", model.encode_query(TEXTS), model.encode_document(TEXTS))
    check_sides(minilm, "query", model.encode(TEXTS, task="query"), model.encode(TEXTS, task="document"))
    for kwargs in ({}, {"prompt_name": "query"}):
        with pytest.raises(ValueError, match="Could not determine route for task=None"):
            model.encode(TEXTS, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["both", "query"])
def test_langchain_huggingface_embeddings(minilm, run):
    """LangChain's stock wrapper passes encode_kwargs / query_encode_kwargs to `encode`: naming the task of
    each side routes a query-only export; a both-sides export needs nothing."""
    from langchain_huggingface import HuggingFaceEmbeddings

    folder = str(minilm["root"] / f"{run}-export")
    tasks = {"encode_kwargs": {"task": "document"}, "query_encode_kwargs": {"task": "query"}}
    embeddings = HuggingFaceEmbeddings(model_name=folder, model_kwargs={"device": "cpu"}, **tasks)
    queries = np.array([embeddings.embed_query(text) for text in TEXTS])
    check_sides(minilm, run, queries, np.array(embeddings.embed_documents(TEXTS)))
    plain = HuggingFaceEmbeddings(model_name=folder, model_kwargs={"device": "cpu"})
    if run == "both":
        check_sides(
            minilm, run, np.array([plain.embed_query(t) for t in TEXTS]), np.array(plain.embed_documents(TEXTS))
        )
    else:
        with pytest.raises(ValueError, match="Could not determine route for task=None"):
            plain.embed_query(TEXTS[0])


@pytest.mark.slow
@pytest.mark.parametrize("run", ["both", "query"])
def test_llama_index_adapter_embedding(minilm, run):
    """LlamaIndex's stock wrapper never names a task; AdapterEmbedding does, for both kinds of head, and on a
    both-sides export gives what the stock wrapper gives."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from isoadapt.integrations.llama_index import AdapterEmbedding

    folder = str(minilm["root"] / f"{run}-export")
    embed_model = AdapterEmbedding(model_name=folder, device="cpu")
    queries = np.array([embed_model.get_query_embedding(text) for text in TEXTS])
    check_sides(minilm, run, queries, np.array(embed_model.get_text_embedding_batch(TEXTS)))
    if run == "both":
        stock = HuggingFaceEmbedding(model_name=folder, device="cpu")
        assert cosines(np.array([stock.get_query_embedding(t) for t in TEXTS]), queries).min() >= 0.9999


@pytest.mark.slow
def test_lancedb_search_text_in_a_fresh_process(minilm, tmp_path, capsys):
    """A process that imports only lancedb and isoadapt.integrations.lancedb: table.search("text") on the
    tables `isoadapt index` wrote embeds the query on each run's query side, and returns the same top 10 as
    `isoadapt search`."""
    import subprocess
    import sys

    root = minilm["root"]
    script = (
        "import json, sys, numpy as np, lancedb\n"
        "import isoadapt.integrations.lancedb\n"
        f"texts, out = {TEXTS!r}, {{}}\n"
        "for run in ('both', 'query'):\n"
        f"    table = lancedb.connect({str(root)!r} + f'/db-{{run}}').open_table('documents')\n"
        "    function = table.embedding_functions['vector'].function\n"
        "    out[run] = {'queries': np.array(function.compute_query_embeddings(texts)).tolist(),\n"
        "                'ids': [h['id'] for h in table.search(texts[0]).distance_type('cosine').limit(10).to_list()]}\n"
        f"json.dump(out, open({str(tmp_path / 'out.json')!r}, 'w'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads((tmp_path / "out.json").read_text())
    for run in ("both", "query"):
        queries = np.array(found[run]["queries"])
        assert cosines(queries, adapted(root / run, minilm["base"], "query")).min() >= 0.9999
        argv = ["search", TEXTS[0], "--db", root / f"db-{run}", "--run_dir", root / run, "--json"]
        assert main([str(a) for a in [*argv, "--cache_dir", minilm["cache"]]]) == 0
        assert found[run]["ids"] == [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]]


@pytest.mark.slow
@pytest.mark.parametrize("run", ["both", "query"])
def test_langchain_adapter_embeddings_routes_each_side(minilm, run):
    """isoadapt.integrations.langchain.AdapterEmbeddings over an Adapter loaded from the run, from its export,
    and over the export as a plain SentenceTransformer: queries on the query side, documents on the document
    side, whatever LangChain code calls it; and a LangChain vector store ranks by those vectors."""
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore
    from sentence_transformers import SentenceTransformer

    import isoadapt
    from isoadapt.integrations.langchain import AdapterEmbeddings

    root = minilm["root"]
    export = SentenceTransformer(str(root / f"{run}-export"), device="cpu", local_files_only=True)
    for model in (
        isoadapt.Adapter.load(root / run, minilm["cache"]),
        isoadapt.Adapter.load(root / f"{run}-export"),
        export,
    ):
        embeddings = AdapterEmbeddings(model)
        assert isinstance(embeddings, Embeddings)
        queries = np.array([embeddings.embed_query(text) for text in TEXTS])
        check_sides(minilm, run, queries, np.array(embeddings.embed_documents(TEXTS)))
    store = InMemoryVectorStore.from_texts(TEXTS, embeddings)
    hits = store.similarity_search_with_score(TEXTS[2], k=3)
    query = adapted(root / run, minilm["base"][2:3], "query")
    expected = cosines(np.repeat(query, 3, axis=0), adapted(root / run, minilm["base"], "document"))
    assert [score for _, score in hits] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    assert embeddings.embed_documents([]) == []


def test_langchain_adapter_embeddings_refuses_what_has_no_sides():
    from isoadapt.integrations.langchain import AdapterEmbeddings

    with pytest.raises(
        InputError,
        match="^AdapterEmbeddings: expected an isoadapt.Adapter .*, got str without encode_query / encode_document$",
    ):
        AdapterEmbeddings("runs/minilm")


def point_the_function_at(db, run_dir, head_sha256: str) -> None:
    """Hand-edit the table's recorded embedding function (run folder and head sha256), as a user might:
    the same rows, written again with the edited schema metadata."""
    import lancedb

    connection = lancedb.connect(str(db))
    rows = connection.open_table("documents").to_arrow()
    metadata = dict(rows.schema.metadata)
    functions = json.loads(metadata[b"embedding_functions"])
    functions[0]["model"] |= {"run_dir": str(run_dir), "head_sha256": head_sha256}
    metadata[b"embedding_functions"] = json.dumps(functions).encode()
    connection.create_table("documents", data=rows.replace_schema_metadata(metadata), mode="overwrite")


def test_lancedb_trusts_the_tables_own_head_over_a_hand_edited_function(distinct_runs, capsys):
    """The function's config names the query run and its head; the table was indexed with the both run's:
    `isoadapt search` refuses that pairing, and so does LanceDB's `table.search("text")`."""
    import lancedb

    from isoadapt.training.run_folder import open_run

    root = distinct_runs
    index_run(root, "both", capsys)
    db = root / "db-both"
    other = open_run(root / "query").head_sha256
    point_the_function_at(db, root / "query", other)
    table = lancedb.connect(str(db)).open_table("documents")
    indexed_with = open_run(root / "both").head_sha256
    with pytest.raises(InputError) as caught:
        table.search(QUERY).limit(3).to_list()
    assert str(caught.value) == (
        f"{db / 'documents.lance'}: was indexed with the head of {root / 'both'} (sha256 {indexed_with[:16]}), "
        f"but its embedding function names {root / 'query'} (sha256 {other[:16]}); search with the run that "
        "indexed it, or index again"
    )


def test_lancedb_without_the_import_names_the_import(distinct_runs, capsys):
    """LanceDB has no entry points for embedding functions: a process that imports only lancedb gets
    LanceDB's own KeyError, whose message is the name the table records, naming the import to add."""
    import subprocess
    import sys

    index_run(distinct_runs, "both", capsys)
    script = (
        "import lancedb\n"
        f"table = lancedb.connect({str(distinct_runs / 'db-both')!r}).open_table('documents')\n"
        "try:\n"
        "    table.search('topic3 what is topic3').limit(3).to_list()\n"
        "except KeyError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "'isoadapt (import isoadapt.integrations.lancedb to register it)'"
