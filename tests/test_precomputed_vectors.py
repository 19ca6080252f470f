"""Precomputed vectors as a base: parquet files exported from the cache give the same run as the encoder
that filled it, and hostile files are refused with one line before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval
from isoadapt.training.train_command import run_training

from conftest import FakeEncoder, tiny_dataset, train_config
from hostile import PRECOMPUTED_MODEL as MODEL
from hostile import export_from_cache, one_line, prepare_argv, refused, tree, vector_table, write

EXP1 = dict(
    lambda_contrastive=0.1, lambda_isotropy=1.0, margin=0.1, projection_learning_rate=5e-4, epochs=2, batch_size=16
)


def test_exp1_on_parquet_vectors_matches_the_encoder_run(tmp_path, capsys):
    """Done-when of #11: the research's Exp 1 on vectors exported to parquet equals the encoder's run."""
    data = tiny_dataset(tmp_path / "data")
    encoder = FakeEncoder()
    through_encoder = run_training(train_config(data, tmp_path, **EXP1), encoder=encoder, quiet=True)
    paths = export_from_cache(data, encoder, tmp_path / "cache", tmp_path / "parquet")
    fresh_cache = tmp_path / "vectors-cache"  # nothing of the encoder's cache is reused
    assert main([str(a) for a in prepare_argv(paths, fresh_cache, processed=tmp_path / "data")]) == 0
    cfg = train_config(data, tmp_path, **EXP1, base_model=f"vectors:{MODEL}", cache_dir=str(fresh_cache))
    cfg.output_dir = str(tmp_path / "run-vectors")
    through_vectors = run_training(cfg, quiet=True)
    for split in ("val", "test"):
        for side in ("baseline", "trained"):
            a, b = through_encoder.metrics[split][side], through_vectors.metrics[split][side]
            for metric in ("ndcg@10", "mrr@10", "recall@100", "isoscore"):
                assert abs(a[metric] - b[metric]) <= 1e-4, (split, side, metric)
    config = json.loads((tmp_path / "run-vectors" / "config.json").read_text())["config"]
    assert config["base_model"] == f"vectors:{MODEL}"  # the provider and model name travel with the run


def test_id_only_files_with_qrels_write_a_dataset(tmp_path, capsys):
    encoder = FakeEncoder()
    ids_q, ids_d = ["q0", "q1", "q2"], ["d0", "d1", "d2", "d3"]
    write(tmp_path / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq2\td3\t2\n")
    write(tmp_path / "qrels" / "dev.tsv", "q0\td0\t1\nq2\td3\t1\n")
    paths = {"queries": tmp_path / "q.parquet", "documents": tmp_path / "d.parquet"}
    pq.write_table(vector_table(ids_q, None, encoder.encode(ids_q)), paths["queries"])
    pq.write_table(vector_table(ids_d, None, encoder.encode(ids_d)), paths["documents"])
    argv = prepare_argv(paths, tmp_path / "cache", qrels_dir=tmp_path / "qrels", name="acme", out_root=tmp_path / "out")
    assert main([str(a) for a in argv]) == 0
    assert "3 query and 4 document vectors, width 16" in capsys.readouterr().out
    test = load_eval(tmp_path / "out" / "acme" / "test.json")
    assert test.queries["q2"] == "query:q2" and test.corpus["d3"] == "document:d3"  # ids stand for texts
    from isoadapt.encoding.precomputed import PrecomputedEncoder

    base = PrecomputedEncoder(f"vectors:{MODEL}", tmp_path / "cache")
    assert base.dim == 16
    np.testing.assert_array_equal(base.encode(["document:d3"]), encoder.encode(["d3"]))
    with pytest.raises(Exception, match="1 texts have no stored vector"):
        base.encode(["a text nobody embedded"])


def _hostile_files(tmp_path: Path):
    data = tiny_dataset(tmp_path / "data")
    paths = export_from_cache(data, FakeEncoder(), tmp_path / "cache", tmp_path / "parquet")
    return data, paths


def _rewrite(path: Path, mutate) -> None:
    table = pq.read_table(path)
    pq.write_table(mutate(table), path, row_group_size=7)


def _vector_at(table: pa.Table, row: int, value) -> pa.Table:
    vectors = table.column("vector").to_pylist()
    vectors[row] = value
    return table.set_column(table.schema.get_field_index("vector"), "vector", pa.array(vectors))


HOSTILE = {
    "ragged": (
        lambda t: _vector_at(t, 9, [0.5] * 15),
        "row group 1, row 9: vector has 15 values, earlier rows 16 (ragged vectors: one width throughout)",
    ),
    "nan": (
        lambda t: _vector_at(t, 3, [float("nan")] * 16),
        "row group 0, row 3: the vector holds NaN or infinity (or a float32 overflow)",
    ),
    "duplicate_id": (
        lambda t: t.set_column(0, "id", pa.array(["d0"] + t.column("id").to_pylist()[1:-1] + ["d0"])),
        "duplicate id 'd0'",
    ),
    "wrong_type": (
        lambda t: t.set_column(t.schema.get_field_index("vector"), "vector", pa.array(["x"] * t.num_rows)),
        "column 'vector' is string; vectors must be a (fixed-size) list of floats",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_parquet_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    data, paths = _hostile_files(tmp_path)
    mutate, message = HOSTILE[case]
    _rewrite(paths["documents"], mutate)
    before = tree(tmp_path)
    line = one_line(capsys, prepare_argv(paths, tmp_path / "vcache", processed=tmp_path / "data"))
    assert line.startswith(f"isoadapt: error: {paths['documents']}") and line.endswith(message), line
    assert tree(tmp_path) == before  # no cache folder, no dataset


def test_missing_id_in_qrels_is_refused(tmp_path, capsys):
    _, paths = _hostile_files(tmp_path)
    write(tmp_path / "qrels" / "test.tsv", "q0\td0\t1\nq1\tnowhere\t1\n")
    refused(
        capsys,
        prepare_argv(paths, tmp_path / "vcache", qrels_dir=tmp_path / "qrels", name="x", out_root=tmp_path / "out"),
        f"{tmp_path / 'qrels' / 'test.tsv'}: line 2: document id 'nowhere' is not in {paths['documents']}",
        tmp_path,
        skip=(),
    )


def test_uncovered_text_and_conflicting_vectors_are_refused(tmp_path, capsys):
    data, paths = _hostile_files(tmp_path)
    table = pq.read_table(paths["documents"])
    pq.write_table(table.slice(1), paths["documents"])  # the first document is gone
    line = one_line(capsys, prepare_argv(paths, tmp_path / "vcache", processed=tmp_path / "data"))
    assert "its positive has no vector in" in line or "its text has no vector in" in line, line
    pq.write_table(table, paths["documents"])
    assert main([str(a) for a in prepare_argv(paths, tmp_path / "vcache", processed=tmp_path / "data")]) == 0
    _rewrite(paths["documents"], lambda t: _vector_at(t, 0, [0.25] * 16))  # same text, another vector
    line = one_line(capsys, prepare_argv(paths, tmp_path / "vcache", processed=tmp_path / "data"))
    assert line.endswith(
        f"the cache already holds another vector for this text under {MODEL!r}; give these vectors another --model name"
    )


def test_a_precomputed_base_refuses_fine_tuning_and_unknown_names(tmp_path, capsys, tiny_data):
    from hostile import train_argv

    argv = train_argv(tiny_data, tmp_path / "run", tmp_path / "cache", base_model="vectors:nobody/none")
    refused(
        capsys,
        argv,
        f"--base_model vectors:nobody/none: no vectors stored for 'nobody/none' in {tmp_path / 'cache'}; "
        "run `isoadapt prepare vectors --model nobody/none ...` first",
        tmp_path,
        skip=(),
    )
    argv = train_argv(tiny_data, tmp_path / "run", tmp_path / "cache", base_model="vectors:x", freeze_base="false")
    refused(
        capsys, argv, "--freeze_base false: vectors:x is precomputed vectors; there is no encoder to tune", tmp_path
    )
