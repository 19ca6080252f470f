"""`isoadapt encode` with the local engine: every text of a dataset lands in the cache once, a second run
(an interrupted one resumed) encodes nothing, and bad input is one line with nothing written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from isoadapt.cli import main
from isoadapt.encoding.cache import EmbeddingCache

from conftest import FakeEncoder, tiny_dataset
from hostile import refused, write


def encode_argv(data, cache, *extra):
    return ["encode", "--data", data, "--cache_dir", cache, *extra]


def test_encode_fills_the_cache_once_and_resumes(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in encode_argv(tmp_path / "data", tmp_path / "cache")]) == 0
    assert "encoded 84 texts (0 of 84 were cached)" in capsys.readouterr().out
    fake = FakeEncoder()
    cache = EmbeddingCache(tmp_path / "cache", fake.fingerprint, fake.identity)
    assert len(cache) == 84  # 48 train queries, 24 documents, 12 dev/test queries
    assert main([str(a) for a in encode_argv(data["test"], tmp_path / "cache")]) == 0
    assert "encoded 0 texts (36 of 36 were cached)" in capsys.readouterr().out


def test_encode_reads_a_parquet_text_column(tmp_path, capsys, fake_model):
    path = tmp_path / "passages.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "body": ["one", "two", "one"]}), path)
    assert main([str(a) for a in encode_argv(path, tmp_path / "cache", "--text_column", "body")]) == 0
    assert "encoded 2 texts (0 of 2 were cached)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--workers", "0"], "--workers 0: must be at least 1"),
        (["--ray_address", "127.0.0.1:6379"], "--ray_address: only with --engine ray"),
        (["--batch_size", "0"], "--batch_size 0: must be between 1 and 65536"),
    ],
)
def test_encode_refuses_bad_settings(tmp_path, capsys, fake_model, extra, message):
    tiny_dataset(tmp_path / "data")
    refused(capsys, encode_argv(tmp_path / "data", tmp_path / "cache", *extra), message, tmp_path, skip=())


def test_encode_refuses_what_is_not_a_dataset(tmp_path, capsys, fake_model):
    write(tmp_path / "notes.txt", "hello")
    refused(
        capsys,
        encode_argv(tmp_path / "notes.txt", tmp_path / "cache"),
        f"--data {tmp_path / 'notes.txt'}: expected a processed dataset folder, a .json, .jsonl or .parquet file",
        tmp_path,
        skip=(),
    )
    (tmp_path / "empty").mkdir()
    refused(
        capsys,
        encode_argv(tmp_path / "empty", tmp_path / "cache"),
        f"--data {tmp_path / 'empty'}: no train.json, dev.json or test.json; not a processed dataset",
        tmp_path,
        skip=(),
    )
