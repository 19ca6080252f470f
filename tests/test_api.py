"""isoadapt's Python API (api.py): Adapter.load on runs (and, in the slow tests, exports), transform against
`isoadapt apply` and the head itself, encode through the run's encoder, save -> load round trips."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

import isoadapt
from isoadapt.cli import main
from isoadapt.errors import InputError
from isoadapt.head import apply_head, load_head

from conftest import FakeEncoder
from hostile import TEXTS, apply_argv, tree, write_vectors


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_transform_gives_what_isoadapt_apply_writes(two_runs, capsys):
    """Both sides of a both-sides head, and the query side of a query-only head, equal `apply`'s output."""
    source = write_vectors(two_runs / "in.parquet")
    base = FakeEncoder().encode(TEXTS)
    for run, side in (("both", "document"), ("both", "query"), ("query", "query")):
        out = two_runs / f"{run}-{side}.parquet"
        assert main([str(a) for a in apply_argv(two_runs / run, source, out, "--side", side)]) == 0
        written = np.stack(pq.read_table(out).column("vector").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(isoadapt.Adapter.load(two_runs / run).transform(base, side), written, atol=1e-6)
    capsys.readouterr()


def test_a_query_only_head_leaves_documents_in_the_base_space_normalised(two_runs):
    adapter = isoadapt.Adapter.load(two_runs / "query")
    assert adapter.adapt == "query"
    raw = 3.0 * FakeEncoder().encode(TEXTS)  # not unit length: the output is
    np.testing.assert_allclose(adapter.transform(raw, side="document"), unit(raw), atol=1e-6)
    queries = adapter.transform(raw, side="query")
    np.testing.assert_allclose(queries, unit(apply_head(load_head(two_runs / "query" / "head"), raw)), atol=1e-6)
    assert not np.allclose(queries, unit(raw))


def test_one_vector_in_one_vector_out(run):
    adapter = isoadapt.Adapter.load(run["run"])
    vectors = FakeEncoder().encode(TEXTS[:3])
    assert adapter.transform(vectors[1]).shape == (adapter.out_dim,)
    np.testing.assert_allclose(adapter.transform(vectors[1]), adapter.transform(vectors)[1], atol=1e-7)


def test_encode_goes_through_the_runs_encoder_then_the_head(run):
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    base = FakeEncoder().encode(TEXTS)
    np.testing.assert_allclose(adapter.encode_query(TEXTS), adapter.transform(base, "query"), atol=1e-6)
    np.testing.assert_allclose(adapter.encode_document(TEXTS), adapter.transform(base, "document"), atol=1e-6)


def test_the_card_holds_the_metrics_it_was_selected_with(run):
    adapter = isoadapt.Adapter.load(run["run"])
    selected = adapter.card["validation"]["selected"]
    assert selected["ndcg@10"] == pytest.approx(adapter.card["val"]["trained"]["ndcg@10"])
    assert adapter.base_model == adapter.config["base_model"] and adapter.dim == 16


def test_save_then_load_gives_identical_outputs_and_a_run_every_command_reads(run, capsys):
    adapter = isoadapt.Adapter.load(run["run"])
    saved = adapter.save(run["t"] / "copy")
    again = isoadapt.Adapter.load(saved)
    vectors = FakeEncoder().encode(TEXTS)
    for side in ("query", "document"):
        np.testing.assert_array_equal(again.transform(vectors, side), adapter.transform(vectors, side))
    assert again.card == adapter.card and again.config == adapter.config
    argv = ["evaluate", "--run_dir", saved, "--data", run["data"]["dev"], "--cache_dir", run["cache"]]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()


def test_save_refuses_a_folder_it_did_not_make_and_writes_nothing(run):
    adapter = isoadapt.Adapter.load(run["run"])
    (run["t"] / "mine").mkdir()
    (run["t"] / "mine" / "notes.txt").write_text("keep me")
    before = tree(run["t"], ("cache",))
    with pytest.raises(InputError) as caught:
        adapter.save(run["t"] / "mine", overwrite=True)
    assert str(caught.value).startswith(f"save {run['t'] / 'mine'}: is not empty and was not made by isoadapt")
    with pytest.raises(InputError) as caught:
        adapter.save(run["run"], overwrite=True)
    assert str(caught.value) == f"save {run['run']}: is the folder this adapter was loaded from"
    assert tree(run["t"], ("cache",)) == before


BAD_TRANSFORMS = [
    ("side", lambda v: (v, "queries"), "side 'queries': expected one of ['query', 'document']"),
    ("width", lambda v: (v[:, :8], "query"), "transform: vectors of shape (40, 8);"),
    ("nan", lambda v: (np.where(v > 0.3, np.nan, v), "query"), "transform: the vectors hold NaN or infinite values"),
]


@pytest.mark.parametrize(("name", "args", "message"), BAD_TRANSFORMS, ids=[c[0] for c in BAD_TRANSFORMS])
def test_bad_transform_input_is_one_line(run, name, args, message):
    adapter = isoadapt.Adapter.load(run["run"])
    with pytest.raises(InputError) as caught:
        adapter.transform(*args(FakeEncoder().encode(TEXTS)))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_load_refuses_a_folder_that_is_neither_a_run_nor_an_export(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    with pytest.raises(InputError, match="without adapter/adapter.json; not written by `isoadapt export`"):
        isoadapt.Adapter.load(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        isoadapt.Adapter.load(tmp_path / "nope")
