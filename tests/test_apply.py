"""`isoadapt apply` (store/apply.py): stored vectors through a run's head, checked against the head itself; a
query-only head copies the documents and adapts the queries. Its refusals are in test_hostile_apply.py."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import torch

from isoadapt.cli import main
from isoadapt.head import load_head

from conftest import FakeEncoder
from hostile import TEXTS, apply_argv, write_vectors


def test_apply_matches_the_head_and_keeps_other_columns(two_runs, capsys):
    source = write_vectors(two_runs / "in.parquet")
    assert main([str(a) for a in apply_argv(two_runs / "both", source, two_runs / "out.parquet")]) == 0
    assert "applied: 40 vectors" in capsys.readouterr().out
    result = pq.read_table(two_runs / "out.parquet")
    assert result.column("id").to_pylist() == [f"p{i}" for i in range(40)]
    assert result.column("source").to_pylist() == ["crawl"] * 40
    head = load_head(two_runs / "both" / "head").eval()
    with torch.no_grad():
        expected = torch.nn.functional.normalize(head(torch.from_numpy(FakeEncoder().encode(TEXTS))), dim=1).numpy()
    got = np.stack(result.column("vector").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert result.schema.metadata[b"isoadapt.kind"] == b"isoadapt-apply"


def test_a_query_only_head_copies_documents_and_adapts_queries(two_runs, capsys):
    source = write_vectors(two_runs / "in.parquet")
    argv = apply_argv(two_runs / "query", source, two_runs / "docs.parquet", "--side", "document")
    assert main([str(a) for a in argv]) == 0
    assert "copied: 40 document vectors unchanged" in capsys.readouterr().out
    copied = pq.read_table(two_runs / "docs.parquet").column("vector").to_pylist()
    assert copied == pq.read_table(source).column("vector").to_pylist()
    assert (
        main([str(a) for a in apply_argv(two_runs / "query", source, two_runs / "q.parquet", "--side", "query")]) == 0
    )
    queries = np.stack(pq.read_table(two_runs / "q.parquet").column("vector").to_numpy(zero_copy_only=False))
    assert not np.allclose(queries, np.stack(copied))
