"""`isoadapt search` never lies: exact by default, marked approximate with --ann (each score still the true
cosine), --where filtering before the search, --json, and --vector for runs that cannot encode text (a
`vectors:` run); every answer is checked against an exact search in numpy on the adapter's vectors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval

from conftest import FakeEncoder, adapted, cosines, tiny_dataset
from hostile import PRECOMPUTED_MODEL, RUN_MODEL, export_from_cache, prepare_argv, train_argv

pytest.importorskip("lancedb")
QUERY = "topic3 what is topic3"


def corpus_parquet(path, data, metadata=RUN_MODEL):
    """The test split's corpus as base vectors of the run's model, with its texts and a `topic` column."""
    corpus = load_eval(data["test"]).corpus
    texts = list(corpus.values())
    table = pa.table(
        {
            "id": list(corpus),
            "text": texts,
            "vector": pa.array(list(FakeEncoder().encode(texts)), pa.list_(pa.float32())),
            "topic": [int(t.split()[0].removeprefix("topic")) for t in texts],
        },
        metadata=metadata,
    )
    pq.write_table(table, path, row_group_size=16)
    return path


def run_cli(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err[-2000:]
    return capsys.readouterr().out


def search_json(capsys, db, run_dir, *extra) -> dict:
    argv = ["search", *extra, "--db", db, "--run_dir", run_dir, "--cache_dir", run_dir.parent / "cache", "--json"]
    return json.loads(run_cli(capsys, argv))


def exact_answer(run_dir, data, query_vector, k, keep=lambda topic: True):
    """[(id, cosine)] of the exact top k in numpy: the query on the adapter's query side, the corpus (rows
    whose topic `keep` accepts) on its document side."""
    corpus = load_eval(data["test"]).corpus
    ids = [i for i, t in corpus.items() if keep(int(t.split()[0].removeprefix("topic")))]
    documents = adapted(run_dir, FakeEncoder().encode([corpus[i] for i in ids]), "document")
    query = adapted(run_dir, query_vector[None, :], "query")
    scores = cosines(np.repeat(query, len(ids), axis=0), documents)
    order = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in order]


@pytest.fixture
def indexed(distinct_runs, capsys):
    """Both runs of distinct_runs, each with its own LanceDB folder (db-both, db-query) written from parquet."""
    two_runs = distinct_runs
    data = {"test": two_runs / "data" / "test.json"}
    source = corpus_parquet(two_runs / "corpus.parquet", data)
    for run in ("both", "query"):
        argv = ["index", "--run_dir", two_runs / run, "--vectors", source, "--db", two_runs / f"db-{run}"]
        run_cli(capsys, [*argv, "--cache_dir", two_runs / "cache"])
    return two_runs, data


@pytest.mark.parametrize("run", ["both", "query"])
def test_where_filters_before_the_search_and_answers_exactly(indexed, capsys, run):
    root, data = indexed
    db = root / f"db-{run}"
    found = search_json(capsys, db, root / run, QUERY, "--where", "topic >= 6 AND topic < 10", "-k", "5")
    expected = exact_answer(root / run, data, FakeEncoder().vector(QUERY), 5, keep=lambda t: 6 <= t < 10)
    assert [h["id"] for h in found["hits"]] == [i for i, _ in expected]
    assert [h["score"] for h in found["hits"]] == pytest.approx([s for _, s in expected], abs=1e-5)
    assert all(6 <= h["topic"] < 10 for h in found["hits"])  # the parquet's own column came through
    unfiltered = search_json(capsys, db, root / run, QUERY, "-k", "5")["hits"]
    assert [h["id"] for h in unfiltered] == [
        i for i, _ in exact_answer(root / run, data, FakeEncoder().vector(QUERY), 5)
    ]
    assert not all(6 <= h["topic"] < 10 for h in unfiltered)  # the filter changed the answer


def test_json_and_lines_give_the_same_answer(indexed, capsys):
    root, _ = indexed
    found = search_json(capsys, root / "db-both", root / "both", QUERY, "-k", "4")
    assert found["exact"] is True and found["approximate"] is None and found["query"] == QUERY
    assert {"id", "score", "text", "topic"} == set(found["hits"][0])  # no vector, no LanceDB distance
    argv = ["search", QUERY, "--db", root / "db-both", "--run_dir", root / "both", "--cache_dir", root / "cache"]
    lines = run_cli(capsys, [*argv, "-k", "4"]).splitlines()
    assert [line.split()[:3] for line in lines] == [
        [str(rank), f"{h['score']:.4f}", h["id"]] for rank, h in enumerate(found["hits"], start=1)
    ]


@pytest.mark.parametrize("run", ["both", "query"])
@pytest.mark.parametrize("suffix", [".json", ".npy"])
def test_a_query_vector_file_gives_the_text_querys_answer(indexed, capsys, run, suffix):
    root, data = indexed
    db, run_dir = root / f"db-{run}", root / run
    vector = FakeEncoder().vector(QUERY)  # the base model's vector of the query text
    path = root / f"query{suffix}"
    path.write_text(json.dumps(vector.tolist())) if suffix == ".json" else np.save(path, vector[None, :])
    by_vector = search_json(capsys, db, run_dir, "--vector", path)
    by_text = search_json(capsys, db, run_dir, QUERY)
    assert by_vector["hits"] == by_text["hits"] and by_vector["vector_file"] == str(path)
    assert [h["id"] for h in by_vector["hits"]] == [i for i, _ in exact_answer(run_dir, data, vector, 10)]


def test_a_vectors_run_indexes_parquet_and_searches_with_a_vector_file(tmp_path, capsys):
    """A run on precomputed vectors has no model: `index --vectors` and `search --vector` need none."""
    data = tiny_dataset(tmp_path / "data")
    paths = export_from_cache(data, FakeEncoder(), tmp_path / "fake-cache", tmp_path / "parquet")
    cache = tmp_path / "cache"
    run_cli(capsys, prepare_argv(paths, cache, processed=tmp_path / "data"))
    run_cli(capsys, train_argv(data, tmp_path / "run", cache, base_model=f"vectors:{PRECOMPUTED_MODEL}"))
    index = ["index", "--run_dir", tmp_path / "run", "--vectors", paths["documents"], "--db", tmp_path / "db"]
    documents = pq.read_table(paths["documents"]).to_pydict()
    printed = run_cli(capsys, [*index, "--model", PRECOMPUTED_MODEL, "--cache_dir", cache])
    assert f"indexed: {len(documents['id'])} documents" in printed
    vector = FakeEncoder().vector(QUERY)
    (tmp_path / "q.json").write_text(json.dumps(vector.tolist()))
    found = search_json(capsys, tmp_path / "db", tmp_path / "run", "--vector", tmp_path / "q.json", "-k", "3")
    stored = adapted(tmp_path / "run", np.array(documents["vector"], dtype=np.float32), "document")
    scores = cosines(np.repeat(adapted(tmp_path / "run", vector[None, :], "query"), len(stored), axis=0), stored)
    best = np.argsort(-scores, kind="stable")[:3]
    assert [h["id"] for h in found["hits"]] == [documents["id"][i] for i in best]
    assert [h["score"] for h in found["hits"]] == pytest.approx(scores[best], abs=1e-5)


def test_ann_answers_are_marked_approximate_and_every_score_is_the_true_cosine(tmp_path, capsys, fake_model):
    import lancedb

    data = tiny_dataset(tmp_path / "data", topics=160)
    run_cli(capsys, train_argv(data, tmp_path / "run", tmp_path / "cache"))
    index = ["index", "--run_dir", tmp_path / "run", "--data", data["test"], "--db", tmp_path / "db"]
    run_cli(capsys, [*index, "--cache_dir", tmp_path / "cache"])
    table = lancedb.connect(str(tmp_path / "db")).open_table("documents")
    table.create_index(
        metric="cosine", index_type="IVF_PQ", num_partitions=4, num_sub_vectors=4, vector_column_name="vector"
    )
    stored = {row["id"]: np.array(row["vector"]) for row in table.to_arrow().to_pylist()}
    query = adapted(tmp_path / "run", FakeEncoder().vector(QUERY)[None, :], "query")[0]
    exact = search_json(capsys, tmp_path / "db", tmp_path / "run", QUERY)
    for refine in ("1", "40"):  # 40 x 10 candidates cover the 320 rows: the ANN answer is then the exact one
        found = search_json(capsys, tmp_path / "db", tmp_path / "run", QUERY, "--ann", refine)
        assert found["exact"] is False and found["approximate"] == {"index_type": "IvfPq", "refine_factor": int(refine)}
        true = [float(cosines(query[None, :], stored[h["id"]][None, :])[0]) for h in found["hits"]]
        assert [h["score"] for h in found["hits"]] == pytest.approx(true, abs=1e-6)
        assert true == sorted(true, reverse=True)
    assert found["hits"] == exact["hits"]
    argv = ["search", QUERY, "--db", tmp_path / "db", "--run_dir", tmp_path / "run", "--cache_dir", tmp_path / "cache"]
    lines = run_cli(capsys, [*argv, "--ann", "-k", "3"]).splitlines()
    assert lines[0] == (
        "approximate: ANN index IvfPq, refine factor 10; each score is the exact cosine of a candidate it found"
    )
    assert len(lines) == 4
