"""Hostile input to `isoadapt index`: each case is one line and exit 2, checked before the corpus is
encoded (or a table started from --vectors), and leaves the folders as they were."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isoadapt.cli import main
from isoadapt.encoding.offline_models import MPNET

from conftest import FakeEncoder
from hostile import (
    RUN_MODEL,
    TEXTS,
    apply_argv,
    one_line,
    record_other_weights,
    refused,
    tree,
    write,
    write_vectors,
)

pytest.importorskip("lancedb")


def index_argv(run, table="documents", db_name="db", **flags):
    args = {"run_dir": run["run"], "data": run["data"]["test"], "db": run["t"] / db_name, "table": table}
    args |= {"cache_dir": run["cache"], **flags}
    return ["index", *[x for k, v in args.items() for x in (f"--{k}", v)]]


@pytest.mark.parametrize("table", ["dokumentë", "../x", "a/b", "", "two words"])
def test_table_names_lancedb_refuses_are_refused_first(run, capsys, table):
    refused(capsys, index_argv(run, table), f"--table {table!r}: use ASCII letters, digits, '-' and '_'", run["t"])


def test_a_users_folder_named_like_the_table_is_not_replaced(run, capsys):
    write(run["t"] / "db" / "documents.lance" / "notes.txt", "mine")
    refused(
        capsys,
        [*index_argv(run), "--overwrite"],
        f"--table documents in {run['t'] / 'db'}: exists and was not written by isoadapt as an index table; "
        "choose a new name",
        run["t"],
    )


def test_a_base_model_whose_weights_changed_is_refused(run, capsys):
    """The run was trained on other weights than the base model has now: its head does not fit."""
    refused(capsys, index_argv(run), record_other_weights(run["run"], "0" * 64), run["t"])


def vectors_argv(w, run, source, *extra):
    argv = ["index", "--run_dir", w / run, "--vectors", source, "--db", w / "db", "--cache_dir", w / "cache"]
    return [*argv, *extra]


def test_a_parquet_without_the_vector_column_is_refused(two_runs, capsys):
    source = two_runs / "ids.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "source": ["x", "y"]}, metadata=RUN_MODEL), source)
    refused(
        capsys, vectors_argv(two_runs, "both", source), f"{source}: no column 'vector' (columns: id, source)", two_runs
    )


def test_vectors_of_another_width_are_refused(two_runs, capsys):
    source = write_vectors(two_runs / "narrow.parquet", FakeEncoder(dim=12).encode(TEXTS))
    refused(
        capsys,
        vectors_argv(two_runs, "both", source),
        f"{source}: row group 0: vectors have 12 values, but the head of {two_runs / 'both'} has 16",
        two_runs,
    )


def test_vectors_another_head_transformed_are_refused(two_runs, capsys):
    """Vectors `apply` put through one run's head are not the document side of another run's index."""
    base = write_vectors(two_runs / "base.parquet")
    out = two_runs / "by-both.parquet"
    assert main([str(a) for a in apply_argv(two_runs / "both", base, out)]) == 0
    sha = hashlib.sha256((two_runs / "both" / "head" / "head.safetensors").read_bytes()).hexdigest()
    refused(
        capsys,
        vectors_argv(two_runs, "query", out),
        f"{out}: was transformed by `isoadapt apply` with another head ({(two_runs / 'both').resolve()}, "
        f"sha256 {sha[:16]}), not the head of {two_runs / 'query'}; index the original vectors",
        two_runs,
    )


def test_a_query_only_heads_query_vectors_are_refused(two_runs, capsys):
    base = write_vectors(two_runs / "base.parquet")
    out = two_runs / "queries.parquet"
    assert main([str(a) for a in apply_argv(two_runs / "query", base, out, "--side", "query")]) == 0
    refused(
        capsys,
        vectors_argv(two_runs, "query", out),
        f"{out}: holds query vectors (`isoadapt apply --side query` with a query-only head); index document vectors",
        two_runs,
    )


def test_vectors_of_another_model_or_of_none_named_are_refused(two_runs, capsys):
    other = write_vectors(two_runs / "other.parquet", metadata={"isoadapt.model": "acme/other"})
    refused(
        capsys,
        vectors_argv(two_runs, "both", other),
        f"{other}: vectors from 'acme/other', but {two_runs / 'both'} was trained on '{MPNET}'; "
        "apply a run trained on the same model's vectors",
        two_runs,
    )
    unnamed = write_vectors(two_runs / "unnamed.parquet", metadata=None)
    refused(
        capsys,
        vectors_argv(two_runs, "both", unnamed),
        f"{unnamed}: does not say which model made its vectors (no isoadapt.model metadata); pass --model "
        f"(the run was trained on '{MPNET}')",
        two_runs,
    )


def test_a_column_named_like_the_tables_own_is_refused(two_runs, capsys):
    source = two_runs / "renamed.parquet"
    vectors = pa.array(list(FakeEncoder().encode(TEXTS[:3])), pa.list_(pa.float32()))
    pq.write_table(pa.table({"doc": ["a", "b", "c"], "id": [1, 2, 3], "vector": vectors}, metadata=RUN_MODEL), source)
    refused(
        capsys,
        vectors_argv(two_runs, "both", source, "--id_column", "doc"),
        f"{source}: column 'id' would clash with the table's own 'id' column (made from --id_column 'doc', "
        "--vector_column 'vector'); rename it",
        two_runs,
    )


def test_data_and_vectors_flags_do_not_mix(run, capsys):
    refused(
        capsys,
        [*index_argv(run), "--vectors", run["t"] / "x.parquet"],
        "isoadapt index: argument --vectors: not allowed with argument --data (see `isoadapt index --help`)",
        run["t"],
    )
    refused(capsys, [*index_argv(run), "--model", "acme/x"], "--model: only with --vectors", run["t"])


def test_an_interrupted_write_drops_the_table_it_started(two_runs, capsys, monkeypatch):
    """Ctrl-C while the second reading streams rows into LanceDB: no half-written table stays behind."""
    import isoadapt.store.lancedb_index as lancedb_index

    source = write_vectors(two_runs / "base.parquet")  # 40 rows in row groups of 16: three batches
    real, calls = lancedb_index.to_space, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(lancedb_index, "to_space", interrupted)
    before = tree(two_runs, ("cache",))
    line = one_line(capsys, vectors_argv(two_runs, "both", source), code=130)
    assert line == "isoadapt: interrupted: stopped (Ctrl-C or SIGTERM) before anything was written"
    assert len(calls) == 2
    assert tree(two_runs, ("cache",)) == before  # no table, and no --db folder: the call made it


@pytest.mark.parametrize("column", ["score", "_distance"])
def test_a_column_named_like_searchs_score_is_refused(two_runs, capsys, column):
    """A user's `score` column once replaced the cosine in `isoadapt search`'s lines and --json."""
    source = two_runs / "scored.parquet"
    vectors = pa.array(list(FakeEncoder().encode(TEXTS[:3])), pa.list_(pa.float32()))
    table = pa.table({"id": ["a", "b", "c"], "vector": vectors, column: [92.0, 96.0, 85.0]}, metadata=RUN_MODEL)
    pq.write_table(table, source)
    refused(
        capsys,
        vectors_argv(two_runs, "both", source),
        f"{source}: column {column!r} would be confused with the cosine that `isoadapt search` gives as its "
        "score; rename it",
        two_runs,
    )


SLOW_FIRST_WRITER = """
import sys, time
import isoadapt.store.lancedb_index as lancedb_index
from isoadapt.cli import main
real = lancedb_index._create
def slow(*args):
    print("writing", flush=True)  # the table lock is held from here until the table is committed
    time.sleep(3)
    return real(*args)
lancedb_index._create = slow
sys.exit(main(sys.argv[1:]))
"""


def isoadapt_process(argv, script: str | None = None, limit_bytes: int | None = None):
    import os
    import resource
    import signal
    import subprocess
    import sys

    def limited():  # `ulimit -f`: a write past the limit fails with EFBIG (SIGXFSZ ignored, as a shell's may be)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    command = [sys.executable, *(["-c", script] if script else ["-m", "isoadapt.cli"]), *map(str, argv)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=limited if limit_bytes else None,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("isoadapt:")]


def test_two_concurrent_index_runs_into_one_new_table_take_turns(two_runs):
    """Neither with --overwrite: the first writes the table, the second waits for the lock, finds the table
    and stops with a clean line; the table holds the first one's rows."""
    from isoadapt.store.lancedb_index import connect

    first_source = write_vectors(two_runs / "first.parquet", ids=[f"first{i}" for i in range(len(TEXTS))])
    second_source = write_vectors(two_runs / "second.parquet", ids=[f"second{i}" for i in range(len(TEXTS))])
    first = isoadapt_process(vectors_argv(two_runs, "both", first_source), script=SLOW_FIRST_WRITER)
    assert first.stdout.readline() == "writing\n"
    second = isoadapt_process(vectors_argv(two_runs, "both", second_source))
    _, first_err = first.communicate(timeout=120)
    _, second_err = second.communicate(timeout=120)
    assert first.returncode == 0, first_err[-2000:]
    assert second.returncode == 2, second_err[-2000:]
    db = two_runs / "db"
    assert error_lines(second_err) == [
        f"isoadapt: error: --table documents in {db}: exists (an index table written by isoadapt); pass "
        "--overwrite to replace it"
    ]
    ids = connect(db).open_table("documents").to_arrow().column("id").to_pylist()
    assert sorted(ids) == sorted(f"first{i}" for i in range(len(TEXTS)))


def test_a_file_size_limit_while_writing_is_one_line_and_leaves_no_db(two_runs):
    source = write_vectors(two_runs / "base.parquet")
    before = tree(two_runs, ("cache",))
    proc = isoadapt_process(vectors_argv(two_runs, "both", source), limit_bytes=2000)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    assert "Traceback" not in err
    folder = two_runs / "db" / "documents.lance"
    assert error_lines(err) == [f"isoadapt: error: {folder}: File too large; --table documents was not written"]
    assert tree(two_runs, ("cache",)) == before  # no table, no --db folder


class FailingConnection:
    """LanceDB's connection whose create_table fails as lance does (a RuntimeError naming the os error)."""

    def __init__(self, real, message: str):
        self.real, self.message = real, message

    def create_table(self, *args, **kwargs):
        raise RuntimeError(self.message)

    def __getattr__(self, name):
        return getattr(self.real, name)


LANCE_FAILURES = [
    (
        "lance error: LanceError(IO): Permission denied (os error 13), lance-io/src/object_store.rs:1",
        "{folder}: Permission denied; --table documents was not written",
    ),
    (
        "lance error: LanceError(IO): No space left on device (os error 28), lance-file/src/writer.rs:191:9",
        "{folder}: No space left on device; --table documents was not written",
    ),
    (
        "lance error: Retryable commit conflict for version 2: This Overwrite transaction was preempted",
        "{folder}: another program wrote to --table documents at the same time (LanceDB: commit conflict); it was "
        "not written by this run: run it again",
    ),
]


@pytest.mark.parametrize(("lance", "message"), LANCE_FAILURES, ids=["read-only", "full", "conflict"])
def test_a_read_only_db_a_full_disk_and_a_commit_conflict_are_one_line(two_runs, capsys, monkeypatch, lance, message):
    """The --db already holds a table (replaced with --overwrite) that LanceDB cannot write over."""
    import isoadapt.store.lancedb_index as lancedb_index

    source = write_vectors(two_runs / "base.parquet")
    assert main([str(a) for a in vectors_argv(two_runs, "both", source)]) == 0
    capsys.readouterr()
    real = lancedb_index.connect
    monkeypatch.setattr(lancedb_index, "connect", lambda db: FailingConnection(real(db), lance))
    folder = two_runs / "db" / "documents.lance"
    refused(capsys, vectors_argv(two_runs, "both", source, "--overwrite"), message.format(folder=folder), two_runs)


def test_a_stop_right_after_the_db_folder_is_made_leaves_no_empty_db(two_runs, capsys, monkeypatch):
    """SIGTERM (as Ctrl-C) between making --db and starting the table: the folder this call made goes."""
    import isoadapt.store.lancedb_index as lancedb_index

    def stopped(db):
        raise KeyboardInterrupt

    monkeypatch.setattr(lancedb_index, "connect", stopped)
    source = write_vectors(two_runs / "base.parquet")
    before = tree(two_runs, ("cache",))
    line = one_line(capsys, vectors_argv(two_runs, "both", source), code=130)
    assert line == "isoadapt: interrupted: stopped (Ctrl-C or SIGTERM) before anything was written"
    assert tree(two_runs, ("cache",)) == before


def test_a_cross_model_runs_documents_from_its_query_model_are_refused(tmp_path, capsys, fake_model):
    """The index of a cross-model run holds the base model's documents: its query model's vectors would be a
    re-embedded corpus, which the run was not trained against."""
    from cross_model import fake_cross_run

    run = fake_cross_run(tmp_path / "cross")
    source = write_vectors(
        tmp_path / "new.parquet", FakeEncoder(8, 1).encode(TEXTS), metadata={"isoadapt.model": "fake-8-1"}
    )
    refused(
        capsys,
        ["index", "--run_dir", run, "--vectors", source, "--db", tmp_path / "db", "--cache_dir", tmp_path / "cache"],
        f"{source}: vectors from 'fake-8-1', the query model of the cross-model run {run}; its documents stay "
        "'fake-16-0''s vectors (the index is not re-embedded): give 'fake-16-0''s document vectors, or train a "
        "run with --base_model fake-8-1 to re-embed the corpus with it",
        tmp_path,
    )
