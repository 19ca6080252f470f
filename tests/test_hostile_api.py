"""Hostile input to the Python API (`isoadapt.fit`, `isoadapt.evaluate`, `isoadapt.Adapter`): malformed
arrays, ids and judgments, settings that do not exist or do not fit together, bad vectors and folders.
Each is one InputError line naming the argument, the row or id and the problem, raised before any
training, leaving nothing behind (neither under the test's folder nor a temporary folder of fit's)."""

from __future__ import annotations

import functools
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
    ("id not a string", {"query_ids": ["a", 1.5, "b", "c"]}, "train.query_ids[1]: ids are non-empty strings or integers, got 1.5"),
    ("id with a tab", {"query_ids": ["a", "b\tc", "d", "e"]}, "train.query_ids: id 'b\\tc' contains a tab or newline"),
    ("qrels and pairs", {"qrels": QRELS}, "train: give qrels or pairs (one of them), to say which documents are relevant"),
    ("neither", {"pairs": None}, "train: give qrels or pairs (one of them), to say which documents are relevant"),
    ("pair row out of range", {"pairs": [(0, 0), (1, 4)]}, "train.pairs[1]: document row 4 is not a row number below 4"),
    ("pair not a pair", {"pairs": [(0, 0), (1,)]}, "train.pairs[1]: expected a (query_row, document_row[, negative_row]) tuple, got (1,)"),
    ("unknown query id", {"pairs": None, "qrels": {"9": {"0": 1}}}, "train.qrels['9']: not a query id"),
    ("unknown document id", {"pairs": None, "qrels": {"0": {"x": 1}}}, "train.qrels['0']['x']: not a document id"),
    ("float grade", {"pairs": None, "qrels": {"0": {"0": 0.5}}}, "train.qrels['0']['0']: grade 0.5 is not an integer"),
    ("nothing relevant", {"pairs": None, "qrels": {"0": {"0": 0}}}, "train: no query has a relevant document (grade > 0)"),
]  # fmt: skip


@pytest.fixture(autouse=True)
def own_temp_folder(tmp_path_factory, monkeypatch):
    """A temp folder of this test's own, so that another process's fit (tests running side by side) cannot
    make or remove an `isoadapt-fit-*` folder while a test counts them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("tmp")))


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
    ("bad setting", lambda t: isoadapt.fit(vectors(), vectors(), epochs=0), "epochs=0: must be between 1 and 10000"),
    ("files with arrays", lambda t: isoadapt.fit(vectors(), vectors(), train_data="x.json"), "fit: with isoadapt.Vectors the splits come from the arrays (no texts); leave out ['train_data']"),
    ("sts with arrays", lambda t: isoadapt.fit(vectors(), vectors(), sts_data="s.json"), "fit: with isoadapt.Vectors the splits come from the arrays (no texts); leave out ['sts_data']"),
    ("fine-tuning arrays", lambda t: isoadapt.fit(vectors(), vectors(), freeze_base=False), "freeze_base=False: vectors:arrays is precomputed vectors; there is no encoder to tune"),
    ("fine-tuning, no output_dir", lambda t: isoadapt.fit(t / "data", freeze_base=False, adapt="both", cache_dir=t / "c"), "fit: freeze_base=False needs output_dir (a run folder that stays on disk)"),
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
    refused(lambda: isoadapt.Adapter.load(tmp_path / "nope"), f"folder='{tmp_path}/nope': not a folder", tmp_path)


def test_a_vectors_base_has_no_model_to_encode_with(tmp_path):
    adapter = isoadapt.fit(vectors(), vectors(), epochs=1, batch_size=2).adapter
    message = (
        "the adapter fitted on vectors:arrays: its base is vectors:arrays, precomputed vectors: there is no model "
        "to encode text with; pass your vectors to transform()"
    )
    refused(lambda: adapter.encode_query(["a text"]), message, tmp_path)
    assert adapter.transform(vectors().queries, "query").shape == (4, 16)  # transform works


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


def stop_at_step(monkeypatch, step: int, error: BaseException) -> None:
    """The optimizer's `step`-th call raises `error`, as Ctrl-C mid-run would."""
    import torch

    real, calls = torch.optim.AdamW.step, {"n": 0}

    def step_or_stop(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_or_stop)


def test_ctrl_c_in_fit_stays_a_keyboard_interrupt_that_except_exception_cannot_swallow(tmp_path, monkeypatch):
    """A grid search's `except Exception: continue` must not start the next fit after Ctrl-C; the message
    does not point at the temporary folder fit removes on the way out."""
    stop_at_step(monkeypatch, 2, KeyboardInterrupt())
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # other processes share the real one
    with pytest.raises(KeyboardInterrupt) as caught:
        try:
            isoadapt.fit(vectors(), vectors(), epochs=3, batch_size=2, save_steps=1)
        except Exception:  # what a grid search writes; Ctrl-C must pass through it
            pytest.fail("Ctrl-C was caught by `except Exception`")
    assert isinstance(caught.value, isoadapt.errors.Interrupted)
    assert str(caught.value) == (
        "fit interrupted: nothing was kept (without output_dir the run lives in a temporary folder, removed on "
        "the way out); give output_dir to keep a checkpoint to resume"
    )
    assert list((tmp_path / "tmp").glob("isoadapt-*")) == []


def test_ctrl_c_in_fit_with_output_dir_gives_the_command_lines_message(tmp_path, monkeypatch):
    stop_at_step(monkeypatch, 2, KeyboardInterrupt())
    out = tmp_path / "run"
    with pytest.raises(isoadapt.errors.Interrupted) as caught:
        isoadapt.fit(vectors(), vectors(), output_dir=out, epochs=3, batch_size=2, save_steps=1)
    staging = tmp_path / ".run.partial"
    assert str(caught.value) == (
        f"training of {out} interrupted: its checkpoint is kept in {staging}; rerun the same command with "
        "--resume to continue"
    )
    assert (staging / "checkpoint" / "checkpoint.json").is_file()


SIGTERM_FIT = """
import sys, time, numpy as np, torch, isoadapt
real = torch.optim.AdamW.step
def slow(self, *a, **k):
    print("step", flush=True)
    time.sleep(0.05)
    return real(self, *a, **k)
torch.optim.AdamW.step = slow
rng = np.random.default_rng(0)
def v():
    return isoadapt.Vectors(rng.normal(size=(8, 16)), rng.normal(size=(8, 16)), pairs=[(i, i) for i in range(8)])
try:
    isoadapt.fit(v(), v(), epochs=10_000, batch_size=4)
except KeyboardInterrupt as err:
    print("caught", type(err).__name__, err, flush=True)
    sys.exit(130)
"""


def test_sigterm_in_fit_on_arrays_leaves_no_staged_copy_in_the_temp_folder(tmp_path):
    """SIGTERM stops fit() as Ctrl-C does: the staged copy of the user's vectors is removed."""
    import os
    import signal
    import subprocess
    import sys

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_FIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline() == "step\n"  # training has started: the arrays are staged
    assert list(scratch.glob("isoadapt-fit-*"))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert out.splitlines()[-1].startswith("caught Interrupted fit interrupted: nothing was kept")
    assert list(scratch.glob("isoadapt-*")) == []  # (torch's own compile cache may stay)


# -- sentence-transformers' habits, refused cleanly -----------------------------------------------------

BAD_TEXTS = [
    ("None", [TEXTS[0], None], "encode_query: sentences[1]: is None, not a string"),
    ("bytes", [b"abc"], "encode_query: sentences[0]: is bytes; decode it to str first (e.g. .decode('utf-8'))"),
    ("number", ["a", "b", 3.5], "encode_query: sentences[2]: is float 3.5, not a string"),
    ("lone surrogate", ["ok", "bad \ud800 text"], "encode_query: sentences[1]: holds a lone surrogate at character 4 (not valid Unicode text)"),
    ("one lone surrogate", "\udfff", "encode_query: sentences: the text holds a lone surrogate at character 0 (not valid Unicode text)"),
    ("not texts", 7, "encode_query: sentences: expected a string or a list of strings, got int"),
    ("a dict", {"text": "a"}, "encode_query: sentences: expected a string or a list of strings, got dict"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "sentences", "message"), BAD_TEXTS, ids=[c[0] for c in BAD_TEXTS])
def test_bad_texts_are_one_line_naming_the_index_before_the_model_loads(run, name, sentences, message, monkeypatch):
    import isoadapt.training.run_folder

    monkeypatch.setattr(isoadapt.training.run_folder, "open_encoder", lambda *a, **k: pytest.fail("model loaded"))
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    refused(lambda: adapter.encode_query(sentences), message, run["t"])


BAD_OPTIONS = [
    ("no side", lambda a: a.encode(["x"]), "encode: task=None; name the side, task='query' or task='document' (or call encode_query / encode_document): a query-only head treats them differently"),
    ("batch size 0", lambda a: a.encode_query(["x"], batch_size=0), "batch_size=0: expected an integer >= 1"),
    ("batch size bool", lambda a: a.encode_query(["x"], batch_size=True), "batch_size=True: expected an integer >= 1"),
    ("progress 'yes'", lambda a: a.encode_document(["x"], show_progress_bar="yes"), "show_progress_bar='yes': expected True or False"),
    ("not a device", lambda a: a.encode_query(["x"], device="gpu"), "device='gpu': not a torch device (expected cpu, cuda, cuda:N or mps)"),
    ("normalize None", lambda a: a.encode_query(["x"], normalize_embeddings=None), "normalize_embeddings=None: expected True or False"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "message"), BAD_OPTIONS, ids=[c[0] for c in BAD_OPTIONS])
def test_bad_encode_options_are_one_line(run, name, call, message):
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    refused(lambda: call(adapter), message, run["t"])


def with_zero_row(vectors: np.ndarray, row: int) -> np.ndarray:
    vectors = vectors.copy()
    vectors[row] = 0.0
    return vectors


MORE_BAD_TRANSFORMS = [
    ("a string", lambda v: "0.1 0.2", "transform: expected numbers (an array (n, 16) or one vector (16,)), got a string"),
    ("strings", lambda v: ["a", "b"], "transform: not an array of numbers; expected an array (n, 16)"),
    ("ragged", lambda v: [list(v[0]), list(v[1][:15])], "transform: rows of different lengths (row 1 has 15 values, row 0 has 16); expected an array (n, 16)"),
    ("zero row", lambda v: with_zero_row(v, 2), "transform: row 2 is all zeros; a cosine needs a direction"),
    ("zero vector", lambda v: np.zeros(16), "transform: row 0 is all zeros; a cosine needs a direction"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "message"), MORE_BAD_TRANSFORMS, ids=[c[0] for c in MORE_BAD_TRANSFORMS])
def test_transform_refuses_text_ragged_rows_and_zero_vectors(two_runs, name, make, message):
    """Issue #30.13: a zero vector used to come out as the head's bias direction, a unit vector; it is
    refused on both sides, as `search --vector` refuses it."""
    for run in ("both", "query"):
        adapter = isoadapt.Adapter.load(two_runs / run)
        for side in ("query", "document"):
            call = functools.partial(adapter.transform, make(FakeEncoder().encode(TEXTS)), side)
            refused(call, message, two_runs)


def test_evaluate_refuses_what_is_not_a_split_or_not_an_adapter(run):
    adapter = isoadapt.Adapter.load(run["run"], cache_dir=run["cache"])
    message = "evaluate: split=123; expected a processed split file (dev.json, test.json) or isoadapt.Vectors"
    refused(lambda: isoadapt.evaluate(adapter, 123), message, run["t"])
    message = "evaluate: adapter is str; expected an isoadapt.Adapter"
    refused(lambda: isoadapt.evaluate(str(run["run"]), run["data"]["test"]), message, run["t"])


def export_by_hand(run_dir: Path, out: Path) -> Path:
    """What Adapter.load reads of an export, written by hand from a run (no model needed): modules.json whose
    chain ends with the head's Dense module and Normalize, the head and adapter.json (with the head's sha256)
    under adapter/."""
    import hashlib
    import json
    import shutil

    from safetensors.torch import save_file

    from isoadapt.head import load_head
    from isoadapt.store.export import head_as_affine

    shutil.copytree(run_dir / "head", out / "adapter")
    document = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    digest = hashlib.sha256((out / "adapter" / "head.safetensors").read_bytes()).hexdigest()
    adapter = {"run": document, "card": metrics, "fine_tuned": False, "head_sha256": digest}
    (out / "adapter" / "adapter.json").write_text(json.dumps(adapter))
    for folder in ("1_Pooling", "2_Dense", "3_Normalize"):
        (out / folder).mkdir()
    weight, bias = head_as_affine(load_head(run_dir / "head"))
    save_file(
        {"linear.weight": weight.contiguous(), "linear.bias": bias.contiguous()},
        str(out / "2_Dense" / "model.safetensors"),
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "T"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "P"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules))
    return out


BROKEN_EXPORTS = [
    ("modules.json not JSON", "modules.json", "[{", "{e}/modules.json: malformed JSON at line 1 column 3: Expecting property name enclosed in double quotes"),
    ("modules.json an object", "modules.json", '{"a": 1}', "{e}/modules.json: expected a non-empty list of modules, got dict"),
    ("a module without a type", "modules.json", '[{"path": ""}]', "{e}/modules.json: module 0: expected an object with 'path' and 'type' strings"),
    ("a module's folder gone", "modules.json", '[{"path": "4_Gone", "type": "D"}]', "{e}/modules.json: module 0: its folder '4_Gone' is missing"),
    ("adapter.json not JSON", "adapter/adapter.json", "{", "{e}/adapter/adapter.json: malformed JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
    ("adapter.json a list", "adapter/adapter.json", "[]", "{e}/adapter/adapter.json: expected an object with a 'run' object holding the run's 'config'"),
    ("run a string", "adapter/adapter.json", '{"run": "x"}', "{e}/adapter/adapter.json: 'run' must be an object, got str"),
    ("no base model", "adapter/adapter.json", '{"run": {"config": {}}}', "{e}/adapter/adapter.json: run.config has no 'base_model' string"),
    ("encoder a string", "adapter/adapter.json", '{"run": {"config": {"base_model": "m"}, "encoder": "x"}}', "{e}/adapter/adapter.json: 'encoder' must be an object, got str"),
    ("card a list", "adapter/adapter.json", '{"run": {"config": {"base_model": "m"}}, "card": []}', "{e}/adapter/adapter.json: 'card' must be an object, got list"),
    ("fine_tuned a string", "adapter/adapter.json", '{"run": {"config": {"base_model": "m"}}, "fine_tuned": "no"}', "{e}/adapter/adapter.json: 'fine_tuned' must be true or false, got 'no'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "file", "content", "message"), BROKEN_EXPORTS, ids=[c[0] for c in BROKEN_EXPORTS])
def test_a_damaged_export_is_one_line_at_load(run, name, file, content, message):
    """Issue #30.15: AttributeError at load, or a JSONDecodeError at the first encode, before."""
    exported = export_by_hand(run["run"], run["t"] / "export")
    assert isoadapt.Adapter.load(exported).metrics  # the hand-made export loads while intact
    (exported / file).write_text(content)
    refused(lambda: isoadapt.Adapter.load(exported), message.format(e=exported), run["t"])


PAIRS = [("topic1 question", "topic1 document"), ("topic2 question", "topic2 document")]
BAD_PAIRS = [
    ("no validation", lambda t: isoadapt.fit(PAIRS), "fit: give val (pairs, a {queries, corpus, qrels} dict or a split file): the head is selected on validation"),
    ("no pairs", lambda t: isoadapt.fit([], PAIRS), "data: no training pairs"),
    ("a one-tuple", lambda t: isoadapt.fit([*PAIRS, ("q",)], PAIRS), "data[2]: expected an (anchor, positive[, negative]) tuple or a dict, got ('q',)"),
    ("a None positive", lambda t: isoadapt.fit([("q", None)], PAIRS), "data[0] positive: is None, not a string"),
    ("an empty anchor", lambda t: isoadapt.fit([(" ", "d")], PAIRS), "data[0] anchor: is empty"),
    ("bytes", lambda t: isoadapt.fit([("q", "d", b"n")], PAIRS), "data[0] negative: is bytes; decode it to str first (e.g. .decode('utf-8'))"),
    ("other keys", lambda t: isoadapt.fit([{"question": "q", "positive": "d"}], PAIRS), "data[0]: a dict with keys ['positive', 'question']; expected 'anchor' (or 'query'), 'positive' and optionally 'negative'"),
    ("bad val pair", lambda t: isoadapt.fit(PAIRS, [("q", 1)]), "val[0] positive: is int 1, not a string"),
    ("val dict keys", lambda t: isoadapt.fit(PAIRS, {"queries": {}}), "val: a dict with keys ['queries']; expected 'queries' {id: text}, 'corpus' {id: text} and 'qrels' {query_id: {document_id: grade}}"),
    ("val as Vectors", lambda t: isoadapt.fit(PAIRS, vectors()), "fit: val is isoadapt.Vectors but data is texts; give both as texts or as Vectors"),
    ("data a number", lambda t: isoadapt.fit(123), "fit: data is int; expected pairs of texts (a list or a datasets.Dataset), a processed dataset folder, or isoadapt.Vectors"),
    ("verbose 'yes'", lambda t: isoadapt.fit(t / "data", verbose="yes"), "fit: verbose='yes': expected True or False"),
    ("a device flag", lambda t: isoadapt.fit(t / "data", device="gpu"), "device='gpu': not a torch device (expected cpu, cuda, cuda:N or mps)"),
    ("config not a TrainConfig", lambda t: isoadapt.fit(t / "data", config={"epochs": 1}), "fit: config is dict; expected an isoadapt.TrainConfig"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "call", "message"), BAD_PAIRS, ids=[c[0] for c in BAD_PAIRS])
def test_bad_pairs_are_one_line_naming_the_row_before_any_training(tmp_path, name, call, message):
    tiny_dataset(tmp_path / "data")
    refused(lambda: call(tmp_path), message, tmp_path)
    assert "--" not in message  # Python argument names, never command-line flags


def test_a_dataset_with_four_columns_is_refused(tmp_path):
    import datasets

    four = datasets.Dataset.from_dict({"a": ["q"], "p": ["d"], "n": ["e"], "score": [1.0]})
    message = (
        "data: a Dataset with columns ['a', 'p', 'n', 'score']; expected (anchor, positive) or (anchor, positive, "
        "negative), by position as sentence-transformers reads them"
    )
    refused(lambda: isoadapt.fit(four, PAIRS), message, tmp_path)


def test_a_vectors_negative_for_some_pairs_only_or_outside_training_is_refused(tmp_path):
    partial = vectors(pairs=[(0, 0, 1), (1, 1), (2, 2, 3), (3, 3, 0)])
    message = "train.pairs: give a negative with every pair or with none (3 of 4)"
    refused(lambda: isoadapt.fit(partial, vectors()), message, tmp_path)
    message = "val.pairs[0]: expected a (query_row, document_row) pair, got (0, 0, 1)"
    refused(lambda: isoadapt.fit(vectors(), vectors(pairs=[(0, 0, 1)])), message, tmp_path)
    message = "train.pairs[1]: negative row 9 is not a row number below 4"
    refused(lambda: isoadapt.fit(vectors(pairs=[(0, 0, 1), (1, 1, 9)]), vectors()), message, tmp_path)


def test_the_same_check_names_a_flag_on_the_command_line_and_an_argument_in_python(tmp_path, capsys):
    """One check, two wordings: `isoadapt train --epochs 0` says `--epochs 0`, `fit(epochs=0)` `epochs=0`."""
    from hostile import one_line, train_argv

    data = tiny_dataset(tmp_path / "data")
    line = one_line(capsys, train_argv(data, tmp_path / "run", tmp_path / "cache", epochs=0))
    assert line == "isoadapt: error: --epochs 0: must be between 1 and 10000"
    refused(lambda: isoadapt.fit(tmp_path / "data", epochs=0), "epochs=0: must be between 1 and 10000", tmp_path)


def test_vectors_triples_with_hard_negatives_are_refused(tmp_path):
    """Triples exist to train on their negatives: mining would replace them silently."""
    triples = vectors(pairs=[(i, i, (i + 1) % 4) for i in range(4)])
    message = (
        "fit: the training pairs give negatives (triples), but negatives='hard' mines others in their place; "
        "pass negatives='file' to train on yours"
    )
    refused(lambda: isoadapt.fit(triples, vectors(), batch_size=2), message, tmp_path)


def test_a_cross_model_adapter_refuses_vectors_of_one_model_and_the_wrong_sides_width(tmp_path, fake_model):
    """Vectors holds one model's vectors on both sides; a cross-model run reads two models. And transform
    takes each side's model's width (the query model's 8 on queries, the base's 16 on documents)."""
    from cross_model import fake_cross_run

    run = fake_cross_run(tmp_path / "cross")
    adapter = isoadapt.Adapter.load(run)
    message = (
        f"evaluate: {run} is a cross-model run (queries from fake-8-1, documents from fake-16-0); isoadapt.Vectors "
        "holds one model's vectors: evaluate it on a split file"
    )
    refused(lambda: isoadapt.evaluate(adapter, vectors()), message, tmp_path)
    refused(
        lambda: adapter.transform(np.ones((2, 16)), "query"),
        f"transform: vectors of shape (2, 16); {run} reads 8-dim vectors of fake-8-1 (shape (n, 8))",
        tmp_path,
    )
    refused(
        lambda: adapter.transform(np.ones((2, 8)), "document"),
        f"transform: vectors of shape (2, 8); {run} reads 16-dim vectors of fake-16-0 (shape (n, 16))",
        tmp_path,
    )
    assert adapter.transform(np.ones((2, 8)), "query").shape == (2, 16)
