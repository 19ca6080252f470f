"""`isoadapt index` and `isoadapt search` on LanceDB: exact search there returns the same top 10 as
isoadapt's own exact search, end to end through the CLI, for a both-sides and a query-only head; `index
--vectors` writes parquet vectors (base, or this run's `apply` output) on the run's document side."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from isoadapt.cli import main
from isoadapt.data.formats import load_eval
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.offline_models import MPNET
from isoadapt.evaluation import split_vectors
from isoadapt.head import load_head, save_head
from isoadapt.metrics.retrieval import exact_search
from isoadapt.store.lancedb_search import open_index, search
from isoadapt.store.run_space import open_space, query_vectors
from isoadapt.training.run_folder import mark_completed, open_run

from conftest import FakeEncoder, adapted, cosines, tiny_dataset
from hostile import TEXTS, apply_argv, refused, train_argv, write, write_vectors

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
    query_ids, _, doc_ids, doc_vectors = split_vectors(split, CachedVectors(space.encoder("document"), cache))
    queries = query_vectors(space, [split.queries[q] for q in query_ids])
    from isoadapt.head import apply_head

    documents = doc_vectors if run == "query" else apply_head(space.run.head, doc_vectors)  # query-only: base
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
    mark_completed(root / "query")  # as training it again would
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
    query_ids, _, doc_ids, doc_vectors = split_vectors(split, CachedVectors(space.encoder("document"), cache))
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


def table_rows(db, table="documents") -> dict:
    import lancedb

    return lancedb.connect(str(db)).open_table(table).to_arrow().to_pydict()


@pytest.mark.parametrize("run", ["both", "query"])
def test_index_vectors_puts_base_vectors_on_the_document_side_and_keeps_every_column(distinct_runs, capsys, run):
    """Base vectors of the run's model go through the head's document side (none for a query-only head),
    L2-normalised; the parquet's other columns stay for --where; ids become strings."""
    two_runs = distinct_runs
    source = write_vectors(two_runs / "base.parquet")
    argv = ["index", "--run_dir", two_runs / run, "--vectors", source, "--db", two_runs / "db"]
    assert main([str(a) for a in [*argv, "--cache_dir", two_runs / "cache"]]) == 0
    assert f"indexed: {len(TEXTS)} documents" in capsys.readouterr().out
    rows = table_rows(two_runs / "db")
    assert rows["id"] == [f"p{i}" for i in range(len(TEXTS))] and rows["source"] == ["crawl"] * len(TEXTS)
    stored = np.array(rows["vector"])
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-6)
    base = FakeEncoder().encode(TEXTS)
    assert cosines(stored, adapted(two_runs / run, base, "document")).min() >= 0.9999
    if run == "query":  # documents keep their base vectors: the index a user already has
        assert cosines(stored, base).min() >= 0.9999
    else:
        assert cosines(stored, base).min() < 0.99  # the head moved them: the check above can fail


def test_index_vectors_keeps_vectors_this_runs_apply_already_adapted(distinct_runs, capsys):
    """`isoadapt apply` output of the same head is indexed as it is, not put through the head a second time."""
    two_runs = distinct_runs
    base = write_vectors(two_runs / "base.parquet")
    out = two_runs / "adapted.parquet"
    assert main([str(a) for a in apply_argv(two_runs / "both", base, out)]) == 0
    for source, db in ((base, "db-base"), (out, "db-applied")):
        argv = ["index", "--run_dir", two_runs / "both", "--vectors", source, "--db", two_runs / db]
        assert main([str(a) for a in [*argv, "--cache_dir", two_runs / "cache"]]) == 0
    from_base, from_apply = (np.array(table_rows(two_runs / db)["vector"]) for db in ("db-base", "db-applied"))
    np.testing.assert_allclose(from_apply, from_base, atol=1e-6)
    np.testing.assert_allclose(from_apply, np.array(pq.read_table(out).column("vector").to_pylist()), atol=1e-6)


def test_index_vectors_takes_the_columns_a_user_named(distinct_runs, capsys):
    """--id_column and --vector_column name the file's columns; the table holds them as id and vector, so
    search and LanceDB find them, and a file without model metadata is indexed with --model."""
    import pyarrow as pa

    source = distinct_runs / "named.parquet"
    base = FakeEncoder().encode(TEXTS)
    columns = {"doc": [f"n{i}" for i in range(len(TEXTS))], "emb": pa.array(list(base), pa.list_(pa.float32()))}
    pq.write_table(pa.table({**columns, "lang": ["en"] * len(TEXTS)}), source)
    argv = ["index", "--run_dir", distinct_runs / "both", "--vectors", source, "--db", distinct_runs / "db"]
    argv += ["--id_column", "doc", "--vector_column", "emb", "--model", MPNET, "--cache_dir", distinct_runs / "cache"]
    assert main([str(a) for a in argv]) == 0
    rows = table_rows(distinct_runs / "db")
    assert list(rows) == ["id", "vector", "lang"] and rows["id"] == columns["doc"]
    assert cosines(np.array(rows["vector"]), adapted(distinct_runs / "both", base, "document")).min() >= 0.9999


def test_index_ann_records_a_refine_factor_that_keeps_every_querys_top10_exact(tmp_path, capsys, fake_model):
    """`index --ann`: an IVF_PQ index, and the refine factor measured on the split's queries; `search --ann`
    with that factor returns, for every query, the top 10 that a brute-force cosine over the stored vectors
    gives (the independent reference)."""
    import lancedb

    from isoadapt.store.lancedb_ann import REFINE_FACTORS, recorded_refine_factor

    data = tiny_dataset(tmp_path / "data", topics=160)  # 320 documents: enough to train IVF_PQ
    cache, db, run = tmp_path / "cache", tmp_path / "db", tmp_path / "run"
    assert main([str(a) for a in train_argv(data, run, cache)]) == 0
    index = ["index", "--run_dir", run, "--data", data["test"], "--db", db, "--cache_dir", cache, "--ann"]
    assert main([str(a) for a in index]) == 0
    table = lancedb.connect(str(db)).open_table("documents")
    assert [i.index_type for i in table.list_indices()] == ["IvfPq"]
    factor = recorded_refine_factor(table, "vector")
    assert factor in REFINE_FACTORS
    stored = table.to_arrow().to_pydict()
    documents = np.asarray(stored["vector"], dtype=np.float64)
    split = load_eval(data["test"])
    capsys.readouterr()
    for query in list(split.queries.values())[:40]:
        vector = adapted(run, FakeEncoder().encode([query]), "query")[0]
        scores = cosines(documents, np.repeat(vector[None, :], len(documents), axis=0))
        expected = [stored["id"][i] for i in np.argsort(-scores, kind="stable")[:10]]
        argv = ["search", query, "--db", db, "--run_dir", run, "--cache_dir", cache, "--ann", "--json"]
        assert main([str(a) for a in argv]) == 0
        found = __import__("json").loads(capsys.readouterr().out)
        assert found["approximate"]["refine_factor"] == factor and not found["exact"]
        assert [h["id"] for h in found["hits"]] == expected


def test_index_ann_needs_enough_documents_and_the_splits_queries(trained, capsys):
    root, data, cache = trained
    argv = ["index", "--run_dir", root / "both", "--data", data["test"], "--db", root / "db", "--cache_dir", cache]
    refused(
        capsys,
        [*argv, "--ann"],
        "--ann: 40 documents are too few for an IVF_PQ index (it trains on at least 256); search them exactly "
        "(index without --ann)",
        root,
    )
    source = write_vectors(root / "base.parquet")
    vectors = ["index", "--run_dir", root / "both", "--vectors", source, "--db", root / "db", "--cache_dir", cache]
    refused(
        capsys, [*vectors, "--ann"], "--ann: only with --data (the split's queries measure the refine factor)", root
    )
