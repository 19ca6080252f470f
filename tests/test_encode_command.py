"""`isoadapt encode` with the local engine: every text of a dataset lands in the cache once, a second run
(an interrupted one resumed) encodes nothing. Its refusals are in test_hostile_encode.py."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from isoadapt.cli import main
from isoadapt.encoding.cache import EmbeddingCache

from conftest import FakeEncoder, tiny_dataset
from hostile import encode_argv


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
