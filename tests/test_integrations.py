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
