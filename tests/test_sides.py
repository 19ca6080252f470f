"""The one side-routing rule (head.side_head, head.to_side) by hand, and as its callers apply it: the API's
transform, `isoadapt apply`, a run's space for index and search. A query-only head needs the side named
everywhere; a both-sides head maps both alike and takes none."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import isoadapt
from isoadapt.cli import main
from isoadapt.errors import InputError
from isoadapt.head import LinearHead, load_head, side_head, to_side

from conftest import FakeEncoder
from hostile import TEXTS, apply_argv, refused, write_vectors


def head(adapt: str) -> LinearHead:
    made = LinearHead(2, adapt=adapt)
    with torch.no_grad():
        made.linear.weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 1.0]]))
    return made


def test_a_query_only_head_needs_the_side_named():
    query_only = head("query")
    assert side_head(query_only, "query") is query_only and side_head(query_only, "document") is None
    with pytest.raises(
        InputError, match=r"^--side: this adapter's head is query-only .* one of \['query', 'document'\]"
    ):
        side_head(query_only, None, "--side")
    with pytest.raises(InputError, match=r"^side 'doc': expected one of \['query', 'document'\]$"):
        side_head(query_only, "doc")


def test_a_both_sides_head_maps_both_alike_and_takes_no_side():
    both = head("both")
    assert side_head(both, None) is side_head(both, "query") is side_head(both, "document") is both
    with pytest.raises(InputError, match="expected one of"):
        side_head(both, "queries")


def test_to_side_by_hand():
    """[3, 4] through W = [[2, 1], [0, 1]] is [10, 4], normalised [0.928, 0.371]; a query-only head's document
    side is [3, 4] normalised; a zero vector's document side stays zero."""
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(to_side(head("query"), vectors, "query")[0], np.array([10, 4]) / np.sqrt(116), rtol=1e-6)
    np.testing.assert_allclose(to_side(head("query"), vectors, "document"), [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(to_side(head("both"), vectors, None), to_side(head("both"), vectors, "document"))


def test_transform_of_a_query_only_adapter_needs_the_side(distinct_runs):
    """Before: transform(vectors) gave the query side in silence while `apply` defaulted to the document side."""
    vectors = FakeEncoder().encode(TEXTS)
    query_only = isoadapt.Adapter.load(distinct_runs / "query")
    with pytest.raises(InputError, match=r"^side: this adapter's head is query-only"):
        query_only.transform(vectors)
    raw = load_head(distinct_runs / "query" / "head")
    with torch.no_grad():
        expected = torch.nn.functional.normalize(raw(torch.from_numpy(vectors)), dim=-1).numpy()
    np.testing.assert_allclose(query_only.transform(vectors, "query"), expected, atol=1e-6)
    both = isoadapt.Adapter.load(distinct_runs / "both")
    np.testing.assert_array_equal(both.transform(vectors), both.transform(vectors, "document"))


def test_apply_of_a_query_only_head_needs_side(distinct_runs, capsys):
    source = write_vectors(distinct_runs / "in.parquet")
    message = (
        "--side: this adapter's head is query-only (queries pass through it, documents keep the base vectors), "
        "so the side must be named: one of ['query', 'document']"
    )
    refused(capsys, apply_argv(distinct_runs / "query", source, distinct_runs / "out.parquet"), message, distinct_runs)
    assert main([str(a) for a in apply_argv(distinct_runs / "both", source, distinct_runs / "b.parquet")]) == 0
    assert (
        main(
            [
                str(a)
                for a in apply_argv(distinct_runs / "both", source, distinct_runs / "d.parquet", "--side", "document")
            ]
        )
        == 0
    )
    capsys.readouterr()
    for name in ("b", "d"):
        got = np.stack(pq.read_table(distinct_runs / f"{name}.parquet").column("vector").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(
            got, isoadapt.Adapter.load(distinct_runs / "both").transform(FakeEncoder().encode(TEXTS)), atol=1e-6
        )


def test_a_runs_space_normalises_as_torch_does(distinct_runs):
    """Index and search's path (store/run_space.py): before, its floor was float32's tiny, not torch's 1e-12, so a
    near-zero vector became a unit vector there and a 1e-8-long one everywhere else."""
    from isoadapt.store.run_space import to_space
    from isoadapt.training.run_folder import open_run

    run = open_run(distinct_runs / "query")
    tiny = np.full((1, 16), 1e-22, dtype=np.float32)
    expected = torch.nn.functional.normalize(torch.from_numpy(tiny), dim=-1).numpy()
    np.testing.assert_allclose(to_space(run, tiny, "document"), expected, rtol=1e-6)
    assert np.linalg.norm(to_space(run, tiny, "document")) < 1e-6
