"""Hostile input to the Python API (`isoadapt.fit`, `isoadapt.evaluate`, `isoadapt.Adapter`): malformed
arrays, ids and judgments, settings that do not exist or do not fit together, bad vectors and folders.
Each is one InputError line naming the argument, the row or id and the problem, raised before any
training, leaving nothing behind (neither under the test's folder nor a temporary folder of fit's)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

import isoadapt
from isoadapt.errors import InputError

from conftest import FakeEncoder, tiny_dataset
from hostile import TEXTS, tree


def vectors(**changes) -> isoadapt.Vectors:
    """Four queries and four documents of width 16; query i is relevant to document i."""
    encoder = FakeEncoder()
    values = dict(
        queries=encoder.encode([f"q{i}" for i in range(4)]),
        documents=encoder.encode([f"d{i}" for i in range(4)]),
        pairs=[(i, i) for i in range(4)],
    )
    return isoadapt.Vectors(**{**values, **changes})


def with_nan(array: np.ndarray, row: int) -> np.ndarray:
    array = array.copy()
    array[row, 2] = np.nan
    return array


QRELS = {"0": {"0": 1}, "1": {"1": 1}}
ARRAY_CASES = [
    ("1-D queries", {"queries": np.ones(16)}, "train.queries: expected a non-empty 2-D array (rows, width), got shape (16,)"),
    ("no rows", {"documents": np.ones((0, 16))}, "train.documents: expected a non-empty 2-D array (rows, width), got shape (0, 16)"),
    ("not numbers", {"queries": [["a"] * 16] * 4}, "train.queries: not an array of numbers"),
    ("other width", {"documents": np.ones((4, 8))}, "train.documents: vectors of width 8, but 16 is expected"),
    ("nan row", {"documents": with_nan(FakeEncoder().encode(list("abcd")), 3)}, "train.documents: row 3 holds NaN or infinite values"),
    ("ids too few", {"query_ids": ["a", "b"]}, "train.query_ids: 2 ids for 4 rows"),
    ("id twice", {"document_ids": ["a", "b", "a", "c"]}, "train.document_ids[2]: id 'a' appears twice"),
    ("id not a string", {"query_ids": ["a", 1, "b", "c"]}, "train.query_ids[1]: ids are non-empty strings, got 1"),
    ("id with a tab", {"query_ids": ["a", "b\tc", "d", "e"]}, "train.query_ids: id 'b\\tc' contains a tab or newline"),
    ("qrels and pairs", {"qrels": QRELS}, "train: give qrels or pairs (one of them), to say which documents are relevant"),
    ("neither", {"pairs": None}, "train: give qrels or pairs (one of them), to say which documents are relevant"),
    ("pair row out of range", {"pairs": [(0, 0), (1, 4)]}, "train.pairs[1]: document row 4 is not a row number below 4"),
    ("pair not a pair", {"pairs": [(0, 0), (1,)]}, "train.pairs[1]: expected a (query_row, document_row) pair, got (1,)"),
    ("unknown query id", {"pairs": None, "qrels": {"9": {"0": 1}}}, "train.qrels['9']: not a query id"),
    ("unknown document id", {"pairs": None, "qrels": {"0": {"x": 1}}}, "train.qrels['0']['x']: not a document id"),
    ("float grade", {"pairs": None, "qrels": {"0": {"0": 0.5}}}, "train.qrels['0']['0']: grade 0.5 is not an integer"),
    ("nothing relevant", {"pairs": None, "qrels": {"0": {"0": 0}}}, "train: no query has a relevant document (grade > 0)"),
]  # fmt: skip


def fit_temporaries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("isoadapt-fit-*")}


def refused(call, message: str, root: Path) -> None:
    """`call` raises exactly InputError(message) and leaves root and the temp folder as they were."""
    before, temporaries = tree(root), fit_temporaries()
    with pytest.raises(InputError) as caught:
        call()
    assert str(caught.value) == message
    assert tree(root) == before and fit_temporaries() == temporaries


@pytest.mark.parametrize(("name", "changes", "message"), ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_bad_arrays_are_one_line_before_any_training(tmp_path, name, changes, message):
    refused(lambda: isoadapt.fit(vectors(**changes), vectors(), output_dir=tmp_path / "run"), message, tmp_path)


def test_a_validation_split_of_another_width(tmp_path):
    other = vectors(queries=np.ones((4, 8)), documents=np.ones((4, 8)))
    refused(lambda: isoadapt.fit(vectors(), other), "val.queries: vectors of width 8, but 16 is expected", tmp_path)


CALL_CASES = [
    ("no validation", lambda t: isoadapt.fit(vectors()), "fit: give val (isoadapt.Vectors): the head is selected on validation"),
    ("val without arrays", lambda t: isoadapt.fit(t / "data", vectors()), "fit: val and test take isoadapt.Vectors, with data as isoadapt.Vectors too"),
    ("unknown setting", lambda t: isoadapt.fit(vectors(), vectors(), epoch=3), "fit: unknown settings ['epoch']; the settings are TrainConfig's fields"),
    ("bad setting", lambda t: isoadapt.fit(vectors(), vectors(), epochs=0), "--epochs 0: must be between 1 and 10000"),
    ("files with arrays", lambda t: isoadapt.fit(vectors(), vectors(), train_data="x.json"), "fit: with isoadapt.Vectors the splits come from the arrays (no texts); leave out ['train_data']"),
    ("sts with arrays", lambda t: isoadapt.fit(vectors(), vectors(), sts_data="s.json"), "fit: with isoadapt.Vectors the splits come from the arrays (no texts); leave out ['sts_data']"),
    ("fine-tuning arrays", lambda t: isoadapt.fit(vectors(), vectors(), freeze_base=False), "--freeze_base false: vectors:arrays is precomputed vectors; there is no encoder to tune"),
    ("fine-tuning, no output_dir", lambda t: isoadapt.fit(t / "data", freeze_base=False, cache_dir=t / "c"), "fit: freeze_base=False needs output_dir (a run folder that stays on disk)"),
    ("not a dataset", lambda t: isoadapt.fit(t / "nope"), "fit: {t}/nope: not a processed dataset folder (no train.json and dev.json)"),
    ("folder and files", lambda t: isoadapt.fit(t / "data", val_data="x.json"), "fit: the dataset folder {t}/data gives the splits; leave out ['val_data']"),
    ("no data", lambda t: isoadapt.fit(epochs=1), "fit: give a processed dataset folder, isoadapt.Vectors, or the train_data and val_data settings"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "message"), CALL_CASES, ids=[c[0] for c in CALL_CASES])
def test_bad_calls_are_one_line_before_any_training(tmp_path, name, call, message):
    tiny_dataset(tmp_path / "data")
    refused(lambda: call(tmp_path), message.format(t=tmp_path), tmp_path)


def test_evaluate_refuses_arrays_of_another_width_and_sts_with_arrays(run):
    adapter = isoadapt.Adapter.load(run["run"])
    other = vectors(queries=np.ones((4, 8)), documents=np.ones((4, 8)))
    refused(
        lambda: isoadapt.evaluate(adapter, other), "split.queries: vectors of width 8, but 16 is expected", run["t"]
    )
    message = "evaluate: STS pairs are texts; with isoadapt.Vectors leave sts out"
    refused(lambda: isoadapt.evaluate(adapter, vectors(), sts="sts.json"), message, run["t"])


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
    (
        "width",
        lambda v: (v[:, :8], "query"),
        "transform: vectors of shape (40, 8); {run} reads 16-dim vectors of {base} (shape (n, 16))",
    ),
    ("nan", lambda v: (np.where(v > 0.3, np.nan, v), "query"), "transform: the vectors hold NaN or infinite values"),
]


@pytest.mark.parametrize(("name", "args", "message"), BAD_TRANSFORMS, ids=[c[0] for c in BAD_TRANSFORMS])
def test_bad_transform_input_is_one_line(run, name, args, message):
    adapter = isoadapt.Adapter.load(run["run"])
    expected = message.format(run=run["run"], base=adapter.base_model)
    refused(lambda: adapter.transform(*args(FakeEncoder().encode(TEXTS))), expected, run["t"])


def test_load_refuses_a_folder_that_is_neither_a_run_nor_an_export(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    message = (
        f"{tmp_path}: a SentenceTransformer folder without adapter/adapter.json; not written by `isoadapt export` "
        "(or by an older one: export the run again)"
    )
    refused(lambda: isoadapt.Adapter.load(tmp_path), message, tmp_path)
    refused(lambda: isoadapt.Adapter.load(tmp_path / "nope"), f"--run_dir {tmp_path}/nope: not a folder", tmp_path)


def test_a_vectors_base_has_no_model_to_encode_with(tmp_path):
    adapter = isoadapt.fit(vectors(), vectors(), epochs=1, batch_size=2).adapter
    message = (
        "the adapter fitted on vectors:arrays: its base is vectors:arrays, precomputed vectors: there is no model "
        "to encode text with; pass your vectors to transform()"
    )
    refused(lambda: adapter.encode_query(["a text"]), message, tmp_path)
    assert adapter.transform(vectors().queries).shape == (4, 16)  # transform works


def test_a_fine_tuned_run_refuses_base_vectors(run):
    """The head of a full fine-tuning run reads its tuned encoder's vectors (the run's encoder/ folder)."""
    import shutil

    shutil.copytree(run["run"], run["t"] / "tuned")
    (run["t"] / "tuned" / "encoder").mkdir()
    adapter = isoadapt.Adapter.load(run["t"] / "tuned")
    message = (
        f"{run['t'] / 'tuned'}: the run fine-tuned its encoder, so the head reads that encoder's vectors, not the "
        "base model's; use encode_query / encode_document"
    )
    refused(lambda: adapter.transform(FakeEncoder().encode(TEXTS)), message, run["t"])
    refused(lambda: isoadapt.evaluate(adapter, vectors()), message, run["t"])
