"""Hostile input to `isoadapt search`: each case is one line and exit 2, and nothing is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from isoadapt.cli import main
from isoadapt.encoding.offline_models import MPNET

from conftest import FakeEncoder, tiny_dataset
from hostile import (
    ERROR,
    PRECOMPUTED_MODEL,
    export_from_cache,
    one_line,
    prepare_argv,
    record_other_weights,
    refused,
    train_argv,
    tree,
)

pytest.importorskip("lancedb")


@pytest.fixture
def indexed(run, capsys):
    db = run["t"] / "db"
    argv = ["index", "--run_dir", run["run"], "--data", run["data"]["test"], "--db", db, "--cache_dir", run["cache"]]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    return {**run, "db": db}


def search_argv(w, table="documents", query="topic3 what is topic3"):
    return ["search", query, "--db", w["db"], "--table", table, "--run_dir", w["run"], "--cache_dir", w["cache"]]


def test_a_table_name_that_is_a_path_is_refused(indexed, capsys):
    refused(
        capsys, search_argv(indexed, "../x"), "--table '../x': use ASCII letters, digits, '-' and '_'", indexed["t"]
    )


def test_a_table_whose_data_files_are_gone(indexed, capsys):
    shutil.rmtree(indexed["db"] / "documents.lance" / "data")
    line = f"--table documents in {indexed['db']}: LanceDB cannot read it ("
    got = one_line(capsys, search_argv(indexed))
    assert got.startswith(ERROR + line) and got.endswith("); write it again with `isoadapt index --overwrite`"), got


def test_a_base_model_whose_weights_changed_is_refused(indexed, capsys):
    refused(capsys, search_argv(indexed), record_other_weights(indexed["run"], "f" * 64), indexed["t"])


@pytest.mark.parametrize("where", ["text = 'x' AND", "topic = 1", "id > 5", "nope(1)"])
def test_a_filter_lancedb_cannot_plan_is_refused_before_the_model_loads(indexed, capsys, where):
    before = tree(indexed["t"], ("cache",))
    line = one_line(capsys, [*search_argv(indexed), "--where", where])
    assert line.startswith(f"{ERROR}--where {where!r}: LanceDB cannot filter --table documents with it ("), line
    assert line.endswith("); its columns: id, text"), line
    assert tree(indexed["t"], ("cache",)) == before


def test_an_empty_filter_is_refused(indexed, capsys):
    refused(
        capsys,
        [*search_argv(indexed), "--where", " "],
        "--where ' ': an empty filter; give a SQL condition such as \"source = 'crawl'\"",
        indexed["t"],
    )


def test_a_filter_that_fails_on_the_rows_names_the_filter(indexed, capsys):
    """Division by zero passes LanceDB's planning and fails only on the data: still one line, naming --where."""
    line = one_line(capsys, [*search_argv(indexed), "--where", "length(id) / 0 > 1"])
    assert line.startswith(
        f"{ERROR}--where 'length(id) / 0 > 1': LanceDB failed on --table documents in {indexed['db']} with it ("
    ), line


def vector_file(w, name: str, content) -> Path:
    path = w["t"] / name
    np.save(path, content) if name.endswith(".npy") else path.write_text(content)
    return path


def vector_argv(w, path):
    return ["search", "--vector", path, "--db", w["db"], "--run_dir", w["run"], "--cache_dir", w["cache"]]


ONE = json.dumps([0.1] * 16)
BAD_VECTORS = {
    "narrow.json": (
        json.dumps([0.1] * 12),
        "has 12 values, but the head of {run} reads 16 (a query vector of {model})",
    ),
    "nan.json": ("[" + ", ".join(["NaN"] * 16) + "]", "holds NaN or infinity (or a float32 overflow)"),
    "zeros.json": (json.dumps([0] * 16), "is all zeros; a cosine needs a direction"),
    "object.json": (json.dumps({"vector": [0.1] * 16}), "expected a JSON list of numbers (one query vector)"),
    "bools.json": (json.dumps([True] * 16), "expected a JSON list of numbers (one query vector)"),
    "two.npy": (np.ones((2, 16), np.float32), "expected one vector of numbers, got shape (2, 16) of float32"),
    "vector.txt": (ONE, "expected a JSON list of numbers (.json) or a NumPy array (.npy)"),
}


@pytest.mark.parametrize("name", sorted(BAD_VECTORS))
def test_a_bad_query_vector_file_is_refused(indexed, capsys, name):
    content, message = BAD_VECTORS[name]
    path = vector_file(indexed, name, content)
    message = message.format(run=indexed["run"], model=MPNET)
    refused(capsys, vector_argv(indexed, path), f"--vector {path}: {message}", indexed["t"])


def test_a_missing_vector_file_and_a_text_with_a_vector_are_refused(indexed, capsys):
    missing = indexed["t"] / "none.json"
    refused(capsys, vector_argv(indexed, missing), f"--vector {missing}: file not found", indexed["t"])
    path = vector_file(indexed, "q.json", ONE)
    both = ["search", "topic1 x", *vector_argv(indexed, path)[1:]]
    refused(capsys, both, "search: give a query text or --vector FILE (one of them)", indexed["t"])
    neither = [a for a in vector_argv(indexed, path) if a not in ("--vector", path)]
    refused(capsys, neither, "search: give a query text or --vector FILE (one of them)", indexed["t"])


def test_ann_needs_an_ann_index_and_a_refine_factor_of_one_or_more(indexed, capsys):
    refused(
        capsys,
        [*search_argv(indexed), "--ann"],
        "--ann: --table documents has no ANN index on its vectors (LanceDB's create_index makes one); "
        "search without --ann is exact",
        indexed["t"],
    )
    refused(
        capsys,
        [*search_argv(indexed), "--ann", "0"],
        "--ann 0: the refine factor must be between 1 and 1000",
        indexed["t"],
    )


def test_a_vectors_run_cannot_search_with_a_text(tmp_path, capsys):
    data = tiny_dataset(tmp_path / "data")
    paths = export_from_cache(data, FakeEncoder(), tmp_path / "fake-cache", tmp_path / "parquet")
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert main([str(a) for a in prepare_argv(paths, cache, processed=tmp_path / "data")]) == 0
    assert main([str(a) for a in train_argv(data, run, cache, base_model=f"vectors:{PRECOMPUTED_MODEL}")]) == 0
    index = ["index", "--run_dir", run, "--vectors", paths["documents"], "--model", PRECOMPUTED_MODEL]
    assert main([str(a) for a in [*index, "--db", tmp_path / "db", "--cache_dir", cache]]) == 0
    refused(
        capsys,
        search_argv({"db": tmp_path / "db", "run": run, "cache": cache}),
        f"--run_dir {run}: was trained on precomputed vectors (vectors:{PRECOMPUTED_MODEL}), which cannot embed "
        "a query text; give the query's vector with --vector FILE",
        tmp_path,
    )


PARTIAL = (
    "LanceDB would apply only its first condition and ignore the rest (its parser stops at ';' or at anything "
    "after a complete condition); give one condition, joined with AND / OR"
)


@pytest.mark.parametrize(
    "where",
    [
        "text = 'x'; id = 'y'",  # LanceDB filtered on the first half and --json recorded both as applied
        "id = 'd1_0';",
        "id = 'd1_0' garbage",
        "id = 'd1_0' )",
        "id = 'd1_0' LIMIT 1",
        "id = 'd1_0') OR (id = 'd2_0'",
    ],
)
def test_a_filter_lancedb_would_apply_only_in_part_is_refused(indexed, capsys, where):
    refused(capsys, [*search_argv(indexed), "--where", where], f"--where {where!r}: {PARTIAL}", indexed["t"])


def test_an_empty_npy_file_is_one_line(indexed, capsys):
    path = indexed["t"] / "empty.npy"
    path.write_bytes(b"")
    refused(
        capsys,
        vector_argv(indexed, path),
        f"--vector {path}: is an empty file; expected one query vector",
        indexed["t"],
    )
    np.save(path, np.zeros(0, np.float32))
    message = f"--vector {path}: has 0 values, but the head of {indexed['run']} reads 16 (a query vector of {MPNET})"
    refused(capsys, vector_argv(indexed, path), message, indexed["t"])


def test_a_table_with_a_column_named_score_is_refused(indexed, capsys):
    """A table an older `isoadapt index` wrote with a user's `score` column: search would print that column
    where the cosine belongs."""
    from isoadapt.store.lancedb_index import connect

    table = connect(indexed["db"]).open_table("documents")
    table.add_columns({"score": "CAST(92.0 AS DOUBLE)"})
    refused(
        capsys,
        search_argv(indexed),
        "--table documents: has a column named 'score', which would hide or replace search's own; rename it in "
        "the parquet file and index again",
        indexed["t"],
        skip=("cache", "db"),
    )


def test_a_table_of_another_base_model_is_refused_naming_both(indexed, capsys, tmp_path):
    """A cross-model run scores its queries against its base model's documents: a table of another model's
    vectors (here the same-model run's, trained as mpnet) is refused before any model loads."""
    from cross_model import fake_cross_run

    run = fake_cross_run(tmp_path / "cross")
    table_model = "sentence-transformers/all-mpnet-base-v2"
    refused(
        capsys,
        [*search_argv(indexed)[:-4], "--run_dir", run, "--cache_dir", indexed["cache"]],
        f"--table documents: holds document vectors of {table_model}, but {run} scores queries against "
        f"fake-16-0's; search it with a run whose base model is {table_model}, or index fake-16-0's document "
        "vectors with this run",
        indexed["t"],
    )


def test_a_cross_model_runs_query_vector_is_the_query_models(tmp_path, capsys, fake_model):
    """--vector takes the query model's vector (8 values here), not the base model's (16)."""
    from conftest import tiny_dataset
    from cross_model import fake_cross_run

    run, data, cache, db = (
        fake_cross_run(tmp_path / "cross"),
        tiny_dataset(tmp_path / "data"),
        tmp_path / "c",
        tmp_path / "db",
    )
    argv = ["index", "--run_dir", run, "--data", data["test"], "--db", db, "--cache_dir", cache]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    w = {"t": tmp_path, "db": db, "run": run, "cache": cache}
    refused(
        capsys,
        vector_argv(w, vector_file(w, "base.json", ONE)),
        f"--vector {tmp_path / 'base.json'}: has 16 values, but the head of {run} reads 8 (a query vector of fake-8-1)",
        tmp_path,
    )
    assert main([str(a) for a in vector_argv(w, vector_file(w, "new.json", json.dumps([0.1] * 8)))]) == 0
