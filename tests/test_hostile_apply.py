"""Hostile input to `isoadapt apply`: hostile vector files, outputs it must not replace, a crash midway, and
vectors from another model or from this same head, each refused with one line and no output."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isoadapt.cli import main
from isoadapt.encoding.offline_models import MPNET

from conftest import FakeEncoder, tiny_dataset
from hostile import TEXTS, apply_argv, one_line, refused, train_argv, tree, write, write_vectors

MODEL = "isoadapt.model"  # parquet metadata: the model that made the vectors


def test_overwrite_replaces_only_an_apply_output(two_runs, capsys):
    source = write_vectors(two_runs / "in.parquet")
    out = two_runs / "out.parquet"
    assert main([str(a) for a in apply_argv(two_runs / "both", source, out)]) == 0
    refused(
        capsys,
        apply_argv(two_runs / "both", source, out),
        f"--out {out}: exists (an apply output written by isoadapt); pass --overwrite to replace it",
        two_runs,
    )
    assert main([str(a) for a in apply_argv(two_runs / "both", source, out, "--overwrite")]) == 0
    mine = write(two_runs / "mine.parquet", "my own file")
    refused(
        capsys,
        apply_argv(two_runs / "both", source, mine, "--overwrite"),
        f"--out {mine}: exists and was not written by isoadapt as an apply output; choose a new name",
        two_runs,
    )


RAGGED = [np.ones(16, np.float32)] * 20 + [np.ones(15, np.float32)] + [np.ones(16, np.float32)] * 19
NAN = [np.ones(16, np.float32)] * 5 + [np.full(16, np.nan, np.float32)] + [np.ones(16, np.float32)] * 34
HOSTILE = {
    "ragged": (
        lambda p: write_vectors(p, vectors=RAGGED),
        "row group 1, row 20: vector has 15 values, earlier rows 16 (ragged vectors: one width throughout)",
    ),
    "nan": (
        lambda p: write_vectors(p, vectors=NAN),
        "row group 0, row 5: the vector holds NaN or infinity (or a float32 overflow)",
    ),
    "duplicate_id": (
        lambda p: write_vectors(p, ids=[f"p{i}" for i in range(39)] + ["p3"]),
        "row group 2, row 39: duplicate id 'p3'",
    ),
    "wrong_type": (
        lambda p: pq.write_table(pa.table({"id": [1, 2], "vector": ["a", "b"]}), p),
        "column 'vector' is string; vectors must be a (fixed-size) list of floats",
    ),
    "wrong_width": (
        lambda p: write_vectors(p, vectors=[np.ones(8, np.float32)] * 40),
        "row group 0: vectors have 8 values, but the head of {run} has 16",
    ),
    "other_model": (
        lambda p: write_vectors(p, metadata={"isoadapt.model": "openai/text-embedding-3-small"}),
        "vectors from 'openai/text-embedding-3-small', but {run} was trained on 'sentence-transformers/"
        "all-mpnet-base-v2'; apply a run trained on the same model's vectors",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_vectors_are_one_line_and_write_nothing(two_runs, capsys, case):
    make, message = HOSTILE[case]
    source = two_runs / "in.parquet"
    make(source)
    before = tree(two_runs)
    line = one_line(capsys, apply_argv(two_runs / "both", source, two_runs / "out.parquet"))
    assert line.startswith(f"isoadapt: error: {source}"), line
    assert line.endswith(message.format(run=two_runs / "both")), line
    assert tree(two_runs) == before  # no output, no temp file left


def test_a_crash_midway_leaves_no_output(two_runs, capsys, monkeypatch):
    import isoadapt.store.apply

    source = write_vectors(two_runs / "in.parquet")
    calls = []

    def failing(head, vectors):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(head, vectors)

    original = isoadapt.store.apply._transform
    monkeypatch.setattr(isoadapt.store.apply, "_transform", failing)
    before = tree(two_runs)
    one_line(capsys, apply_argv(two_runs / "both", source, two_runs / "out.parquet"), code=130)
    assert tree(two_runs) == before


def test_apply_refuses_a_run_on_other_vectors_named_by_flag(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in train_argv(data, tmp_path / "run", tmp_path / "cache")]) == 0
    source = write_vectors(tmp_path / "in.parquet")
    refused(
        capsys,
        apply_argv(tmp_path / "run", source, tmp_path / "o.parquet", "--model", "cohere/embed-v3"),
        f"{source}: vectors from 'cohere/embed-v3', but {tmp_path / 'run'} was trained on "
        "'sentence-transformers/all-mpnet-base-v2'; apply a run trained on the same model's vectors",
        tmp_path,
    )


def test_a_file_that_names_no_model_needs_model(two_runs, capsys):
    source = write_vectors(two_runs / "in.parquet", metadata=None)
    message = (
        f"{source}: does not say which model made its vectors (no isoadapt.model metadata); "
        f"pass --model (the run was trained on '{MPNET}')"
    )
    refused(capsys, apply_argv(two_runs / "both", source, two_runs / "out.parquet"), message, two_runs, skip=("cache",))
    assert (
        main([str(a) for a in apply_argv(two_runs / "both", source, two_runs / "out.parquet", "--model", MPNET)]) == 0
    )


def test_the_same_head_twice_is_refused(two_runs, capsys):
    source = write_vectors(two_runs / "in.parquet")
    assert main([str(a) for a in apply_argv(two_runs / "both", source, two_runs / "once.parquet")]) == 0
    meta = pq.read_schema(two_runs / "once.parquet").metadata
    digest = meta[b"isoadapt.head_sha256"].decode()
    assert meta[b"isoadapt.run"].decode() == str((two_runs / "both").resolve())
    message = (
        f"{two_runs / 'once.parquet'}: was written by `isoadapt apply` with this same head (sha256 {digest[:16]}); "
        "apply it to the original vectors"
    )
    refused(
        capsys, apply_argv(two_runs / "both", two_runs / "once.parquet", two_runs / "twice.parquet"), message, two_runs
    )
    # a query-only head's documents were copied unchanged: still base vectors, so they may pass again
    assert (
        main([str(a) for a in apply_argv(two_runs / "query", source, two_runs / "docs.parquet", "--side", "document")])
        == 0
    )
    assert (
        main(
            [
                str(a)
                for a in apply_argv(
                    two_runs / "query", two_runs / "docs.parquet", two_runs / "q.parquet", "--side", "query"
                )
            ]
        )
        == 0
    )


def test_a_cross_model_runs_sides_take_only_their_own_models_vectors(tmp_path, capsys, fake_model):
    """Documents stay the base model's vectors (the index is never re-embedded): the query model's vectors
    are refused as documents, and the base model's as queries, each with what to give instead."""
    from cross_model import fake_cross_run

    run = fake_cross_run(tmp_path / "cross")
    new = write_vectors(tmp_path / "new.parquet", FakeEncoder(8, 1).encode(TEXTS), metadata={MODEL: "fake-8-1"})
    old = write_vectors(tmp_path / "old.parquet", FakeEncoder(16, 0).encode(TEXTS), metadata={MODEL: "fake-16-0"})
    out = tmp_path / "out.parquet"
    refused(
        capsys,
        apply_argv(run, new, out, "--side", "document"),
        f"{new}: vectors from 'fake-8-1', the query model of the cross-model run {run}; its documents stay "
        "'fake-16-0''s vectors (the index is not re-embedded): give 'fake-16-0''s document vectors, or train a "
        "run with --base_model fake-8-1 to re-embed the corpus with it",
        tmp_path,
    )
    refused(
        capsys,
        apply_argv(run, old, out, "--side", "query"),
        f"{old}: vectors from 'fake-16-0', the base (index) model of the cross-model run {run}; its queries are "
        "'fake-8-1''s vectors: give those with --side query (documents pass unchanged)",
        tmp_path,
    )
