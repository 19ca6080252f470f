"""`isoadapt index` and `isoadapt search` on LanceDB: exact search there returns the same top 10 as
isoadapt's own exact search, end to end through the CLI, for a both-sides and a query-only head."""

from __future__ import annotations

import pytest
import torch

from isoadapt.cli import main
from isoadapt.data.formats import load_eval
from isoadapt.evaluation import split_vectors
from isoadapt.head import load_head, save_head
from isoadapt.metrics.retrieval import exact_search
from isoadapt.store.lancedb_index import open_index, open_space, query_vectors, search
from isoadapt.training.run_folder import open_run

from conftest import tiny_dataset
from hostile import refused, train_argv, write

pytest.importorskip("lancedb")


@pytest.fixture
def trained(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data", topics=20)
    cache = tmp_path / "cache"
    for name, flags in (("both", {}), ("query", {"adapt": "query"})):
        assert main([str(a) for a in train_argv(data, tmp_path / name, cache, **flags)]) == 0
    capsys.readouterr()
    return tmp_path, data, cache


@pytest.mark.parametrize("run", ["both", "query"])
def test_lancedb_top10_equals_isoadapt_exact_search(trained, capsys, run):
    root, data, cache = trained
    argv = ["index", "--run_dir", root / run, "--data", data["test"], "--db", root / "db", "--cache_dir", cache]
    assert main([str(a) for a in argv]) == 0
    assert "indexed: 40 documents" in capsys.readouterr().out
    space = open_space(open_run(root / run), cache)
    split = load_eval(data["test"])
    query_ids, _, doc_ids, doc_vectors = split_vectors(split, space.vectors)
    queries = query_vectors(space, [split.queries[q] for q in query_ids])
    from isoadapt.head import apply_head, document_head

    documents = apply_head(document_head(space.run.head), doc_vectors)
    expected = exact_search(queries, documents, query_ids, doc_ids, top_k=10)
    found = search(open_index(root / "db", "documents", space.run), queries, 10)
    for qid, hits in zip(query_ids, found):
        ranked = sorted(expected[qid].items(), key=lambda kv: -kv[1])
        assert [h["id"] for h in hits] == [d for d, _ in ranked]
        assert [h["score"] for h in hits] == pytest.approx([s for _, s in ranked], abs=1e-5)
    argv = ["search", "topic3 what is topic3", "--db", root / "db", "--run_dir", root / run, "--cache_dir", cache]
    assert main([str(a) for a in argv + ["-k", "3"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("  1  ") and "topic3" in lines[0]


def test_search_refuses_another_head_and_index_keeps_foreign_tables(trained, capsys):
    root, data, cache = trained
    db = root / "db"
    assert (
        main(
            [
                str(a)
                for a in ["index", "--run_dir", root / "both", "--data", data["test"], "--db", db, "--cache_dir", cache]
            ]
        )
        == 0
    )
    other = load_head(root / "query" / "head")
    with torch.no_grad():
        other.linear.weight.mul_(1.5)  # selection may keep the identity start in both runs: make this head differ
    save_head(other, root / "query" / "head")
    refused(
        capsys,
        ["search", "topic1 x", "--db", db, "--run_dir", root / "query", "--cache_dir", cache],
        f"--table documents: was indexed with the head of {(root / 'both').resolve()}, not {root / 'query'}; "
        "search with that run, or index again",
        root,
    )
    refused(
        capsys,
        ["index", "--run_dir", root / "both", "--data", data["test"], "--db", db, "--cache_dir", cache],
        f"--table documents in {db}: exists (an index table written by isoadapt); pass --overwrite to replace it",
        root,
    )
    write(root / "notes" / "todo.txt", "mine")
    refused(
        capsys,
        ["index", "--run_dir", root / "both", "--data", data["test"], "--db", root / "notes", "--cache_dir", cache],
        f"--db {root / 'notes'}: holds files that are not LanceDB tables; choose a new or a LanceDB folder",
        root,
    )


def test_search_stays_exact_after_the_user_builds_an_ann_index(tmp_path, capsys, fake_model):
    """LanceDB's docs teach `create_index(IVF_PQ)`; isoadapt search must still print the exact top 10 and
    the true cosines (an index used without refinement returned other neighbours and distances)."""
    import lancedb

    data = tiny_dataset(tmp_path / "data", topics=160)
    cache, db = tmp_path / "cache", tmp_path / "db"
    assert main([str(a) for a in train_argv(data, tmp_path / "run", cache)]) == 0
    index = ["index", "--run_dir", tmp_path / "run", "--data", data["test"], "--db", db, "--cache_dir", cache]
    assert main([str(a) for a in index]) == 0
    space = open_space(open_run(tmp_path / "run"), cache)
    split = load_eval(data["test"])
    query_ids, _, doc_ids, doc_vectors = split_vectors(split, space.vectors)
    queries = query_vectors(space, [split.queries[q] for q in query_ids[:20]])
    exact = search(open_index(db, "documents", space.run), queries, 10)
    table = lancedb.connect(str(db)).open_table("documents")
    table.create_index(
        metric="cosine", index_type="IVF_PQ", num_partitions=4, num_sub_vectors=4, vector_column_name="vector"
    )
    assert table.list_indices()  # the ANN index is there, and a plain LanceDB query would use it
    after = search(open_index(db, "documents", space.run), queries, 10)
    for before_hits, after_hits in zip(exact, after):
        assert [h["id"] for h in after_hits] == [h["id"] for h in before_hits]
        assert [h["score"] for h in after_hits] == pytest.approx([h["score"] for h in before_hits], abs=1e-6)
    capsys.readouterr()
    argv = ["search", split.queries[query_ids[0]], "--db", db, "--run_dir", tmp_path / "run", "--cache_dir", cache]
    assert main([str(a) for a in argv]) == 0
    printed = [line.split()[1:3] for line in capsys.readouterr().out.splitlines()]
    assert printed == [[f"{h['score']:.4f}", h["id"]] for h in exact[0]]
