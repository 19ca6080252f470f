"""Hostile input to `isoadapt train`: every case ends in exactly one line, the right exit status, no
traceback, and no output or change anywhere outside the cache (checked over the whole temp folder).
The cases from run_train on (once test_bad_input.py) check the last error line, exit 2 and no run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from isoadapt.cli import main
from isoadapt.training.config import MAX_SEED

from conftest import completed_status, tiny_dataset, write_json
from hostile import ERROR, one_line, refused, train_argv, tree, write


@pytest.fixture
def world(tmp_path):
    return {
        "t": tmp_path,
        "data": tiny_dataset(tmp_path / "data"),
        "out": tmp_path / "out",
        "cache": tmp_path / "cache",
    }


FLAG_CASES = [
    ({"epochs": 0}, "--epochs 0: must be between 1 and 10000"),
    ({"projection_learning_rate": -1}, "--projection_learning_rate -1.0: must be a finite number > 0"),
    ({"projection_learning_rate": "inf"}, "--projection_learning_rate inf: must be a finite number > 0"),
    ({"margin": "nan"}, "--margin nan: must be a finite number >= 0"),
    ({"save_steps": 0}, "--save_steps 0: must be at least 1"),
    ({"max_train_examples": 1}, "--max_train_examples 1: must be at least 2"),
    ({"seed": -1}, f"--seed: seed -1 must be an integer between 0 and {MAX_SEED} (NumPy's seed range)"),
    (
        {"seed": 2**32},
        f"--seed: seed 4294967296 must be an integer between 0 and {MAX_SEED} (NumPy's seed range)",
    ),
    ({"epochs": 10**12}, "--epochs 1000000000000: must be between 1 and 10000"),
    ({"epochs": -3}, "--epochs -3: must be between 1 and 10000"),
    ({"batch_size": 1}, "--batch_size 1: must be at least 2 (in-batch candidates need company)"),
    ({"encode_batch_size": 0}, "--encode_batch_size 0: must be between 1 and 65536"),
    ({"device": "cuda"}, "--device cuda: CUDA is not available on this machine; use --device cpu"),
    ({"device": "cuda:3"}, "--device cuda:3: CUDA is not available on this machine; use --device cpu"),
    ({"device": "nonsense"}, "--device nonsense: not a torch device (expected cpu, cuda, cuda:N or mps)"),
    ({"device": "mps"}, "--device mps: MPS is not available on this machine; use --device cpu"),
    ({"device": "meta"}, "--device meta: isoadapt runs on cpu, cuda or mps"),
    ({"lambda_isotropy": -1}, "--lambda_isotropy -1.0: must be a finite number >= 0"),
    (
        {"lambda_contrastive": 0, "lambda_isotropy": 0},
        "--lambda_contrastive, --lambda_isotropy and --lambda_reg are all 0: nothing to train",
    ),
    ({"variance_target": "nan"}, "--variance_target nan: must be a finite number >= 0"),
    ({"base_learning_rate": 0}, "--base_learning_rate 0.0: must be a finite number > 0"),
    ({"projection_learning_rate": "1e309"}, "--projection_learning_rate inf: must be a finite number > 0"),
    ({"margin": -0.5}, "--margin -0.5: must be a finite number >= 0"),
    (
        {"temperature": 0.1},
        "--temperature 0.1: only InfoNCE has a temperature (--contrastive_loss infonce); the margin loss would ignore it",
    ),
    (
        {"encode_backend": "onnx", "freeze_base": "false"},
        "--encode_backend onnx: full fine-tuning needs the torch backend",
    ),
    ({"train_pairs": 1}, "--train_pairs 1: must be at least 2"),
    (
        {"train_pairs": 10, "max_train_examples": 20},
        "--train_pairs 10: a random sample, --max_train_examples the first N: give one",
    ),
    ({"init_texts": "all"}, "--init_texts all: only a fitted start (--head_init whitening or abtt) fits texts"),
    ({"hard_negative_margin": 1.0}, "--hard_negative_margin 1.0: must be >= 0 and < 1"),
    ({"hard_negative_margin": "nan"}, "--hard_negative_margin nan: must be >= 0 and < 1"),
    (
        {"hard_negative_margin": 0.2},
        "--hard_negative_margin 0.2: only mined negatives have a margin (--negatives hard); with the file's "
        "negatives it would be ignored",
    ),
    (
        {"hard_negative_margin": 0.2, "negatives": "file"},
        "--hard_negative_margin 0.2: only mined negatives have a margin (--negatives hard); with the file's "
        "negatives it would be ignored",
    ),
    (
        {"negatives": "mined"},
        "isoadapt train: argument --negatives: invalid choice: 'mined' (choose from 'file', 'hard') (see `isoadapt train --help`)",
    ),
    (
        {"encode_backend": "auto", "freeze_base": "false"},
        "--encode_backend auto: full fine-tuning needs the torch backend",
    ),
    (
        {"encode_backend": "auto", "base_model": "vectors:openai/x"},
        "--encode_backend auto: vectors:openai/x is precomputed, nothing is encoded",
    ),
    ({"epochs": "abc"}, "isoadapt train: argument --epochs: invalid int value: 'abc' (see `isoadapt train --help`)"),
    ({"seed": "1.5"}, "isoadapt train: argument --seed: invalid int value: '1.5' (see `isoadapt train --help`)"),
    (
        {"freeze_base": "maybe"},
        "isoadapt train: argument --freeze_base: expected true or false, got 'maybe' (see `isoadapt train --help`)",
    ),
    (
        {"base_model": "no such/model"},
        "--base_model no such/model: no such folder, and not a Hugging Face hub id (owner/name); available: "
        "sentence-transformers/all-mpnet-base-v2, sentence-transformers/all-MiniLM-L6-v2, a Hugging Face hub id "
        "in the local Hugging Face cache, or a local folder",
    ),
    (
        {"base_model": "vectors:openai/x", "query_prompt": "query: "},
        "--query_prompt/--document_prompt: vectors:openai/x is precomputed, nothing is encoded",
    ),
]


@pytest.mark.parametrize(
    ("flags", "message"), FLAG_CASES, ids=[",".join(f"{k}={v}" for k, v in f.items()) for f, _ in FLAG_CASES]
)
def test_flags(world, capsys, flags, message):
    refused(capsys, train_argv(world["data"], world["out"], world["cache"], **flags), message, world["t"], skip=())


def test_batch_larger_than_the_data(world, capsys):
    message = f"--batch_size 1000000000: larger than the 48 training examples in {world['data']['train']}"
    refused(capsys, train_argv(world["data"], world["out"], world["cache"], batch_size=10**9), message, world["t"])


def test_batch_larger_than_the_truncated_data(world, capsys):
    """--max_train_examples shrinks the data first: the batch is checked against what is used."""
    message = f"--batch_size 8: larger than the 5 training examples in {world['data']['train']}"
    argv = train_argv(world["data"], world["out"], world["cache"], batch_size=8, max_train_examples=5)
    refused(capsys, argv, message, world["t"])


def test_missing_required_flag(world, capsys):
    message = "isoadapt train: the following arguments are required: --train_data, --val_data, --output_dir (see `isoadapt train --help`)"
    refused(capsys, ["train"], message, world["t"])


# Paths: each builds its hostile path under t and names the expected message.
PATH_CASES = [
    (
        "output_dir under a file",
        lambda t: {"output_dir": write(t / "f.txt", "x") / "run"},
        "--output_dir {t}/f.txt/run: {t}/f.txt is a file, not a folder",
    ),
    (
        "output_dir is a file",
        lambda t: {"output_dir": write(t / "f.txt", "x")},
        "--output_dir {t}/f.txt: exists and is a file, not a folder",
    ),
    (
        "cache_dir is a file",
        lambda t: {"cache_dir": write(t / "f.txt", "x")},
        "--cache_dir {t}/f.txt: is a file, not a folder",
    ),
    (
        "cache_dir under a file",
        lambda t: {"cache_dir": write(t / "f.txt", "x") / "c"},
        "--cache_dir {t}/f.txt/c: {t}/f.txt is a file, not a folder",
    ),
    ("train_data is a folder", lambda t: {"train_data": t / "data"}, "{t}/data: is a folder, expected a JSON file"),
    ("val_data missing", lambda t: {"val_data": t / "nope.json"}, "{t}/nope.json: file not found"),
    (
        "sts_data of the wrong shape",
        lambda t: {"sts_data": t / "data" / "dev.json"},
        "{t}/data/dev.json: expected a non-empty JSON list of {{sentence1, sentence2, score}} records",
    ),
    (
        "mlflow store under a file",
        lambda t: {"tracker": "mlflow", "tracking_uri": f"sqlite:///{write(t / 'f.txt', 'x')}/mlflow.db"},
        "--tracking_uri {t}/f.txt/mlflow.db: {t}/f.txt is a file, not a folder",
    ),
    (
        "mlflow store is a folder",
        lambda t: {"tracker": "mlflow", "tracking_uri": f"sqlite:///{t / 'data'}"},
        "--tracking_uri {t}/data: is a folder, expected a file name",
    ),
]


@pytest.mark.parametrize(("name", "flags", "message"), PATH_CASES, ids=[c[0] for c in PATH_CASES])
def test_paths(world, capsys, fake_model, name, flags, message):
    t = world["t"]
    argv = train_argv(world["data"], world["out"], world["cache"], **flags(t))
    refused(capsys, argv, message.format(t=t), t)


# Files with hostile content, written into the train, dev or STS slot.
SURROGATE = '"\\ud800 lone"'
CONTENT_CASES = [
    (
        "truncated train JSON",
        "train",
        '[{"query": "a", "positive": "b"}',
        "{f}: malformed JSON at line 1 column 33: Expecting ',' delimiter",
    ),
    (
        "train JSON of the wrong shape",
        "train",
        '{"query": "a", "positive": "b"}',
        "{f}: expected a JSON list of {{query, positive, negative?}} records, got dict",
    ),
    ("train record of the wrong shape", "train", '[["a", "b"]]', "{f}: record 0: expected an object, got list"),
    (
        "train text not a string",
        "train",
        '[{"query": 5, "positive": "b"}]',
        "{f}: record 0: 'query' must be a string, got int",
    ),
    (
        "invalid UTF-8 in train",
        "train",
        b'[{"query": "caf\xe9", "positive": "b"}]',
        "{f}: not valid UTF-8 at byte offset 15",
    ),
    (
        "50 MB single-line train file",
        "train",
        b"x" * (50 << 20),
        "{f}: malformed JSON at line 1 column 1: Expecting value",
    ),
    ("empty train list", "train", "[]", "{f}: no training records"),
    (
        "truncated dev JSON",
        "dev",
        '{"queries": {"q": "a"}, "corpus": ',
        "{f}: malformed JSON at line 1 column 35: Expecting value",
    ),
    (
        "dev JSON of the wrong shape",
        "dev",
        "[1, 2, 3]",
        "{f}: expected an object with 'queries', 'corpus' and 'qrels', got list",
    ),
    (
        "dev qrels of the wrong shape",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": [["q", "d", 1]]}',
        "{f}: 'qrels' must be an object of {{qid: {{doc_id: grade}}}}",
    ),
    (
        "empty corpus",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {}, "qrels": {"q": {"d": 1}}}',
        "{f}: 'corpus' is empty",
    ),
    (
        "non-integer grade (string)",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": "1"}}}',
        "{f}: qrels['q']['d']: grade '1' is not an integer",
    ),
    (
        "non-integer grade (fraction)",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 1.5}}}',
        "{f}: qrels['q']['d']: grade 1.5 is not an integer",
    ),
    (
        "id with a tab",
        "dev",
        '{"queries": {"q\\t1": "a"}, "corpus": {"d": "b"}, "qrels": {"q\\t1": {"d": 1}}}',
        "{f}: queries: id 'q\\t1' contains a tab or newline",
    ),
    (
        "id with a newline",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d\\n2": "b"}, "qrels": {"q": {"d\\n2": 1}}}',
        "{f}: corpus: id 'd\\n2' contains a tab or newline",
    ),
    (
        "no relevant document at all",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 0}}}',
        "{f}: no query has a relevant document (grade > 0)",
    ),
    (
        "surrogate in a train query",
        "train",
        f'[{{"query": {SURROGATE}, "positive": "b"}}]',
        "{f}: record 0: 'query' has invalid Unicode (lone surrogate at character 0)",
    ),
    (
        "surrogate in a corpus text",
        "dev",
        f'{{"queries": {{"q": "a"}}, "corpus": {{"d": {SURROGATE}}}, "qrels": {{"q": {{"d": 1}}}}}}',
        "{f}: corpus['d']: 'text' has invalid Unicode (lone surrogate at character 0)",
    ),
    (
        "surrogate in a query id",
        "dev",
        '{"queries": {"q\\udc00": "a"}, "corpus": {"d": "b"}, "qrels": {"q\\udc00": {"d": 1}}}',
        "{f}: queries: 'id' has invalid Unicode (lone surrogate at character 1)",
    ),
    ("NUL-only text", "train", '[{"query": "a", "positive": "\\u0000\\u0000"}]', "{f}: record 0: empty 'positive'"),
    ("zero-width-only text", "train", '[{"query": "\\u200b\\u200b", "positive": "b"}]', "{f}: record 0: empty 'query'"),
    (
        "duplicate corpus key",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b", "d": "c"}, "qrels": {"q": {"d": 1}}}',
        "{f}: duplicate key 'd' in one JSON object (the second would silently replace the first)",
    ),
    (
        "duplicate qrels key",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 1, "d": 0}}}',
        "{f}: duplicate key 'd' in one JSON object (the second would silently replace the first)",
    ),
    (
        "grade 1e309",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 1e309}}}',
        "{f}: qrels['q']['d']: grade inf is not an integer",
    ),
    (
        "grade 10**20",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 100000000000000000000}}}',
        "{f}: qrels['q']['d']: grade 100000000000000000000 is out of range (at most 2147483647 in absolute value)",
    ),
    (
        "grade true",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": true}}}',
        "{f}: qrels['q']['d']: grade True is not an integer",
    ),
    (
        "qrels naming an unknown document",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"x": 1}}}',
        "{f}: qrels['q']: doc id 'x' not in corpus",
    ),
    (
        "qrels naming an unknown query",
        "dev",
        '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"z": {"d": 1}}}',
        "{f}: qrels['z']: query id not in queries",
    ),
    ("JSON nested too deeply", "train", "[" * 100_000, "{f}: JSON nested too deeply"),
    (
        "train negative not a string",
        "train",
        '[{"query": "a", "positive": "b", "negative": 3}]',
        "{f}: record 0: 'negative' must be a string, got int",
    ),
    ("train record without positive", "train", '[{"query": "a"}]', "{f}: record 0: missing 'positive'"),
    (
        "STS score 1e309",
        "sts",
        '[{"sentence1": "a", "sentence2": "b", "score": 1e309}]',
        "{f}: record 0: 'score' must be a finite number, got inf",
    ),
    (
        "STS score a string",
        "sts",
        '[{"sentence1": "a", "sentence2": "b", "score": "4"}]',
        "{f}: record 0: 'score' must be a finite number, got '4'",
    ),
    (
        "STS sentence surrogate",
        "sts",
        f'[{{"sentence1": {SURROGATE}, "sentence2": "b", "score": 4}}]',
        "{f}: record 0: 'sentence1' has invalid Unicode (lone surrogate at character 0)",
    ),
]


@pytest.mark.parametrize(("name", "slot", "content", "message"), CONTENT_CASES, ids=[c[0] for c in CONTENT_CASES])
def test_file_content(world, capsys, name, slot, content, message):
    bad = write(world["t"] / f"bad_{slot}.json", content)
    flag = {"train": "train_data", "dev": "val_data", "sts": "sts_data"}[slot]
    refused(
        capsys,
        train_argv(world["data"], world["out"], world["cache"], **{flag: bad}),
        message.format(f=bad),
        world["t"],
    )


def test_byte_order_mark_is_read_not_kept(world, capsys, fake_model):
    """A BOM must not become part of the first key: the split loads and trains as without it."""
    dev = world["data"]["dev"]
    bom = write(world["t"] / "bom_dev.json", b"\xef\xbb\xbf" + dev.read_bytes())
    from isoadapt.cli import main

    assert main([str(a) for a in train_argv(world["data"], world["out"], world["cache"], val_data=bom)]) == 0
    capsys.readouterr()
    assert json.loads((world["out"] / "metrics.json").read_text())["val"]["baseline"]["queries"] == 12


def interrupt_at(monkeypatch, step: int, error: BaseException) -> None:
    """Make the optimizer's `step`-th call raise `error`, as Ctrl-C or a failing disk would mid-run."""
    import torch

    real, calls = torch.optim.AdamW.step, {"n": 0}

    def step_or_fail(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_or_fail)


def test_ctrl_c_names_the_checkpoint(world, capsys, fake_model, monkeypatch):
    interrupt_at(monkeypatch, 4, KeyboardInterrupt())
    staging = world["t"] / ".out.partial"
    line = one_line(capsys, train_argv(world["data"], world["out"], world["cache"], save_steps=2), code=130)
    assert (
        line
        == f"isoadapt: interrupted: training of {world['out']} interrupted: its checkpoint is kept in {staging}; rerun the same command with --resume to continue"
    )
    assert (staging / "checkpoint" / "checkpoint.json").is_file() and not world["out"].exists()


def test_ctrl_c_before_any_checkpoint_keeps_nothing(world, capsys, fake_model, monkeypatch):
    import isoadapt.training.train_command

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(isoadapt.training.train_command, "evaluate_split", stop)
    before = tree(world["t"], skip=("cache",))
    line = one_line(capsys, train_argv(world["data"], world["out"], world["cache"]), code=130)
    assert line == f"isoadapt: interrupted: training of {world['out']} interrupted: nothing was kept"
    assert tree(world["t"], skip=("cache",)) == before


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_checkpoint(world, capsys, fake_model, monkeypatch):
    interrupt_at(monkeypatch, 4, OSError(28, "No space left on device", str(world["t"] / "disk")))
    staging = world["t"] / ".out.partial"
    line = one_line(capsys, train_argv(world["data"], world["out"], world["cache"], save_steps=2))
    assert (
        line
        == ERROR
        + f"{world['t']}/disk: No space left on device; its checkpoint is kept in {staging}; rerun the same command with --resume to continue"
    )


def test_an_unexpected_failure_before_a_checkpoint_keeps_nothing(world, capsys, fake_model, monkeypatch):
    interrupt_at(monkeypatch, 1, RuntimeError("boom"))
    before = tree(world["t"], skip=("cache",))
    line = one_line(capsys, train_argv(world["data"], world["out"], world["cache"]), code=1)
    assert line == ERROR + "RuntimeError: boom; nothing was kept (rerun with --debug for the traceback and report it)"
    assert tree(world["t"], skip=("cache",)) == before


def test_debug_shows_the_traceback(world, capsys, fake_model, monkeypatch):
    from isoadapt.cli import main

    interrupt_at(monkeypatch, 1, RuntimeError("boom"))
    assert main([str(a) for a in train_argv(world["data"], world["out"], world["cache"])] + ["--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


@pytest.fixture
def interrupted(world, capsys, fake_model, monkeypatch):
    """A run stopped by Ctrl-C at step 4, with checkpoints every 2 steps."""
    import torch

    real = torch.optim.AdamW.step
    interrupt_at(monkeypatch, 4, KeyboardInterrupt())
    one_line(capsys, train_argv(world["data"], world["out"], world["cache"], save_steps=2, epochs=2), code=130)
    monkeypatch.setattr(torch.optim.AdamW, "step", real)
    return world


def test_resume_with_other_settings_is_refused(interrupted, capsys):
    w = interrupted
    argv = train_argv(w["data"], w["out"], w["cache"], save_steps=2, epochs=3, batch_size=8, resume=True)
    message = "--resume: the interrupted run used other settings (batch_size 4 -> 8; epochs 2 -> 3); resume continues the same run: rerun with its settings or without --resume"
    refused(capsys, argv, message, w["t"])


def test_resume_after_the_training_file_changed_is_refused(interrupted, capsys):
    """Same flags, other data: the file was edited between the crash and the resume."""
    import hashlib

    w = interrupted
    train = w["data"]["train"]
    before = hashlib.sha256(train.read_bytes()).hexdigest()
    records = json.loads(train.read_text())
    write(train, json.dumps(records[::-1]))
    after = hashlib.sha256(train.read_bytes()).hexdigest()
    argv = train_argv(w["data"], w["out"], w["cache"], save_steps=2, epochs=2, resume=True)
    message = (
        f"--resume: the interrupted run used other settings (train_data sha256 {before!r} -> {after!r}); "
        "resume continues the same run: rerun with its settings or without --resume"
    )
    refused(capsys, argv, message, w["t"], skip=("cache", "data"))


def test_resume_from_a_damaged_checkpoint_is_refused(interrupted, capsys):
    w = interrupted
    checkpoint = w["t"] / ".out.partial" / "checkpoint"
    write(checkpoint / "checkpoint.safetensors", b"\x00garbage" * 10)
    line = one_line(capsys, train_argv(w["data"], w["out"], w["cache"], save_steps=2, epochs=2, resume=True))
    assert line.startswith(ERROR + f"{checkpoint}: damaged checkpoint (SafetensorError: ")
    assert line.endswith("); rerun without --resume to start over")
    assert not w["out"].exists()


def test_resume_from_a_hand_edited_checkpoint_state_is_refused(interrupted, capsys):
    w = interrupted
    state = write(w["t"] / ".out.partial" / "checkpoint" / "checkpoint.json", "[1, 2]")
    line = one_line(capsys, train_argv(w["data"], w["out"], w["cache"], save_steps=2, epochs=2, resume=True))
    assert line == ERROR + f"{state}: damaged checkpoint (no step history); rerun without --resume to start over"


def test_resume_with_the_same_settings_finishes(interrupted, capsys):
    from isoadapt.cli import main

    w = interrupted
    assert main([str(a) for a in train_argv(w["data"], w["out"], w["cache"], save_steps=2, epochs=2, resume=True)]) == 0
    assert json.loads((w["out"] / "status.json").read_text()) == completed_status(w["out"])
    assert not (w["t"] / ".out.partial").exists()


def test_a_second_writer_of_the_same_run_is_refused(world, capsys, fake_model):
    from isoadapt.training.run_folder import RunFolder

    first = RunFolder(world["out"], overwrite=False)
    first.open({"who": "first"})
    try:
        message = f"--output_dir {world['out']}: another isoadapt process is writing this run ({world['t'] / '.out.partial'}); wait for it or choose another folder"
        refused(capsys, train_argv(world["data"], world["out"], world["cache"]), message, world["t"])
    finally:
        first.close_failed(keep=False)


def test_bad_input_that_stops_work_midway_names_what_was_kept():
    from isoadapt.errors import NOTHING_KEPT, InputError, failure

    err = InputError("dev.json: malformed JSON")
    assert failure(err, NOTHING_KEPT) is err
    assert (
        str(failure(err, "the finished runs are kept in runs/.p"))
        == "dev.json: malformed JSON; the finished runs are kept in runs/.p"
    )


def run_train(tmp_path: Path, data: dict[str, Path], **overrides) -> tuple[int, Path]:
    out = tmp_path / "run"
    args = {
        "train_data": data["train"],
        "val_data": data["dev"],
        "output_dir": out,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "cache_dir": tmp_path / "cache",
        "batch_size": 4,
        "epochs": 1,
    }
    args.update(overrides)
    argv = ["train"]
    for key, value in args.items():
        argv += [f"--{key}", str(value)]
    return main(argv), out


def assert_one_line_error(capsys, code: int, expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"isoadapt: error: {expected}"


def test_missing_file(tmp_path, tiny_data, capsys):
    missing = tmp_path / "nope.json"
    code, out = run_train(tmp_path, tiny_data, train_data=missing)
    assert_one_line_error(capsys, code, f"{missing}: file not found")
    assert not out.exists()


def test_malformed_json(tmp_path, tiny_data, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"query": "a", "positive": "b"},', encoding="utf-8")
    code, out = run_train(tmp_path, tiny_data, train_data=bad)
    assert_one_line_error(capsys, code, f"{bad}: malformed JSON at line 1 column 34: Expecting value")
    assert not out.exists()


@pytest.mark.parametrize("field", ["query", "positive"])
def test_record_missing_a_field(tmp_path, tiny_data, capsys, field):
    records = json.loads(tiny_data["train"].read_text())
    del records[3][field]
    bad = write_json(tmp_path / "train_missing.json", records)
    code, out = run_train(tmp_path, tiny_data, train_data=bad)
    assert_one_line_error(capsys, code, f"{bad}: record 3: missing '{field}'")
    assert not out.exists()


def test_empty_text_in_train(tmp_path, tiny_data, capsys):
    records = json.loads(tiny_data["train"].read_text())
    records[5]["positive"] = "   "
    bad = write_json(tmp_path / "train_empty.json", records)
    code, _ = run_train(tmp_path, tiny_data, train_data=bad)
    assert_one_line_error(capsys, code, f"{bad}: record 5: empty 'positive'")


def test_empty_text_in_corpus(tmp_path, tiny_data, capsys):
    split = json.loads(tiny_data["dev"].read_text())
    split["corpus"]["d3_1"] = ""
    bad = write_json(tmp_path / "dev_empty.json", split)
    code, _ = run_train(tmp_path, tiny_data, val_data=bad)
    assert_one_line_error(capsys, code, f"{bad}: corpus['d3_1']: empty 'text'")


def test_qrels_naming_an_unknown_doc(tmp_path, tiny_data, capsys):
    split = json.loads(tiny_data["dev"].read_text())
    split["qrels"]["q2"]["ghost"] = 1
    bad = write_json(tmp_path / "dev_ghost.json", split)
    code, out = run_train(tmp_path, tiny_data, val_data=bad)
    assert_one_line_error(capsys, code, f"{bad}: qrels['q2']: doc id 'ghost' not in corpus")
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("lambda_contrastive", "-0.5", "--lambda_contrastive -0.5: must be a finite number >= 0"),
        ("lambda_isotropy", "nan", "--lambda_isotropy nan: must be a finite number >= 0"),
        ("lambda_reg", "-1", "--lambda_reg -1.0: must be a finite number >= 0"),
        ("batch_size", "1", "--batch_size 1: must be at least 2 (in-batch candidates need company)"),
        ("batch_size", "0", "--batch_size 0: must be at least 2 (in-batch candidates need company)"),
        ("epochs", "0", "--epochs 0: must be between 1 and 10000"),
        ("projection_learning_rate", "-1", "--projection_learning_rate -1.0: must be a finite number > 0"),
    ],
)
def test_bad_flags(tmp_path, tiny_data, capsys, flag, value, message):
    code, out = run_train(tmp_path, tiny_data, **{flag: value})
    assert_one_line_error(capsys, code, message)
    assert not out.exists()


def test_output_dir_holding_a_run_is_refused(tmp_path, tiny_data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code, _ = run_train(tmp_path, tiny_data)
    assert_one_line_error(
        capsys,
        code,
        f"--output_dir {out}: is not empty and was not made by isoadapt (no .isoadapt-owned.json); --overwrite replaces only isoadapt's own output",
    )
    assert (out / "metrics.json").read_text() == "{}"


def test_uncached_hub_model_says_where_it_looked_and_how_to_fetch_it(tmp_path, tiny_data, capsys, monkeypatch):
    """Any hub id is looked up in the Hugging Face cache (HF_HUB_CACHE); offline, one that is not there is
    one line naming the cache and the command that fetches it, before anything is written."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    code, out = run_train(tmp_path, tiny_data, base_model="BAAI/bge-small-en-v1.5")
    assert_one_line_error(
        capsys,
        code,
        f"--base_model BAAI/bge-small-en-v1.5: not in the Hugging Face cache at {tmp_path / 'hf'}; fetch it on a "
        "connected machine with `hf download BAAI/bge-small-en-v1.5` (or `huggingface-cli download "
        "BAAI/bge-small-en-v1.5`) and copy that cache here, or point HF_HUB_CACHE at a cache that holds it",
    )
    assert not out.exists()


def test_placeholder_texts_train_only_with_their_own_vectors(world, capsys):
    """A dataset imported from vectors without a text column holds `query:<id>` placeholders: a real
    encoder must not train on them."""
    write_json(world["data"]["train"].parent / "placeholder_texts.json", {"model": "acme/v1"})
    message = (
        f"{world['data']['train']}: its texts are placeholders ('query:<id>', 'document:<id>') from vectors "
        "imported without a text column; use it with --base_model vectors:acme/v1"
    )
    refused(capsys, train_argv(world["data"], world["out"], world["cache"]), message, world["t"], skip=())


def test_sigterm_stops_a_run_like_ctrl_c(world, tmp_path):
    """A real process (trained on stored vectors, so it needs no model) gets SIGTERM once it has a
    checkpoint: exit 130, the Ctrl-C line, the checkpoint kept for --resume, no run folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_precomputed_vectors import MODEL, export_from_cache, prepare_argv

    from conftest import FakeEncoder

    paths = export_from_cache(world["data"], FakeEncoder(), tmp_path / "fake", tmp_path / "parquet")
    assert main([str(a) for a in prepare_argv(paths, world["cache"], processed=world["data"]["train"].parent)]) == 0
    argv = train_argv(
        world["data"], world["out"], world["cache"], base_model=f"vectors:{MODEL}", epochs=10_000, save_steps=1
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "isoadapt.cli", *map(str, argv), "--tracker", "none"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    staging = world["t"] / ".out.partial"
    deadline = time.monotonic() + 120
    while not (staging / "checkpoint" / "checkpoint.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    last = [line for line in proc.stderr.read().splitlines() if line.startswith("isoadapt:")][-1]
    assert last == (
        f"isoadapt: interrupted: training of {world['out']} interrupted: its checkpoint is kept in {staging}; "
        "rerun the same command with --resume to continue"
    )
    assert (staging / "checkpoint" / "checkpoint.json").is_file() and not world["out"].exists()


@pytest.mark.parametrize("pairs", [49, 1000, 9223372036854775807])
def test_more_train_pairs_than_the_file_holds_is_refused(world, capsys, fake_model, pairs):
    """48 pairs in the file: training on all of them while config.json and the label keep the asked-for
    number would lie."""
    message = (
        f"--train_pairs {pairs}: more than the 48 training pairs in {world['data']['train']}; give at most 48, "
        "or leave it out to train on every pair"
    )
    argv = train_argv(world["data"], world["out"], world["cache"], train_pairs=pairs)
    refused(capsys, argv, message, world["t"], skip=())


# Cross-model runs (--query_model, docs/upgrade.md): each refusal is one line before any work.
OLD, NEW = "fake-16-0", "fake-8-1"


def cross_argv(world, **flags):
    flags = {"base_model": OLD, "query_model": NEW, "adapt": "query", **flags}
    return [str(a) for a in train_argv(world["data"], world["out"], world["cache"], **flags)]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"query_model": OLD},
            f"--query_model {OLD}: the same model as --base_model; a head over one model is an ordinary "
            "adapter: drop --query_model",
        ),
        (
            {"adapt": "both"},
            f"--query_model {NEW}: a cross-model head is query-only (the documents keep the vectors of "
            f"--base_model {OLD}, so nothing is re-embedded): add --adapt query",
        ),
        (
            {"paired_texts": 1000, "head_init": "procrustes"},
            "--paired_texts 1000: more than the 72 training texts (queries and positives)",
        ),
    ],
)
def test_cross_model_settings_that_cannot_work_are_refused(world, capsys, fake_model, flags, message):
    refused(capsys, cross_argv(world, **flags), message, world["t"])


def test_an_alignment_without_a_query_model_is_refused(world, capsys, fake_model):
    argv = [str(a) for a in train_argv(world["data"], world["out"], world["cache"], head_init="procrustes")]
    message = (
        "--head_init least_squares / procrustes, --train_on paired_texts and --paired_texts align one model onto "
        "another: they need --query_model (see docs/upgrade.md)"
    )
    refused(capsys, argv, message, world["t"])


def test_a_query_model_with_the_base_models_weights_is_refused(world, capsys, fake_model, monkeypatch):
    """Another name, the same weights (a copy of the old model's folder): an ordinary adapter, said so."""
    import isoadapt.training.cross_model

    from conftest import FakeEncoder

    def build(name="", *args, **kwargs):
        encoder = fake_model(OLD)
        if name == "old-copy":
            encoder.name = "old-copy"  # same width, seed and weights sha256 as the old model
        return encoder if name != NEW else FakeEncoder(8, 1)

    monkeypatch.setattr(isoadapt.training.cross_model, "open_encoder", build)
    weights = fake_model(OLD).identity["weights_sha256"]
    message = (
        f"--query_model old-copy: the same model as --base_model {OLD} (weights sha256 {weights[:16]}); a head "
        "over one model is an ordinary adapter: drop --query_model"
    )
    refused(capsys, cross_argv(world, query_model="old-copy"), message, world["t"])


def export_provider(world, encoder, model: str, extra: bool = False) -> None:
    """One provider's vectors of every text of the dataset, imported as vectors:<model>."""
    from hostile import export_from_cache, vector_table

    paths = export_from_cache(world["data"], encoder, world["t"] / "encoded", world["t"] / model.replace("/", "_"))
    if extra:  # one document more than the other provider's files: the two do not cover the same ids
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(paths["documents"])
        row = vector_table(["extra"], ["a text only this provider embedded"], encoder.encode(["extra text"]))
        pq.write_table(pa.concat_tables([table, row.cast(table.schema)]), paths["documents"])
    argv = ["prepare", "vectors", "--queries", paths["queries"], "--documents", paths["documents"]]
    argv += ["--model", model, "--cache_dir", world["cache"], "--processed", world["data"]["train"].parent]
    assert main([str(a) for a in argv]) == 0


def test_two_providers_vectors_that_do_not_line_up_are_refused(world, capsys):
    from conftest import FakeEncoder

    export_provider(world, FakeEncoder(16, 0), "acme/old")
    export_provider(world, FakeEncoder(8, 1), "acme/new", extra=True)
    capsys.readouterr()
    argv = cross_argv(world, base_model="vectors:acme/old", query_model="vectors:acme/new")
    message = (
        "--query_model vectors:acme/new: its 85 stored texts are not the 84 of --base_model vectors:acme/old "
        "(0 only in the base's, 1 only in the query model's): paired vectors must cover the same texts; "
        "import both models' vectors of the same ids"
    )
    refused(capsys, argv, message, world["t"], skip=("cache", "encoded", "acme_old", "acme_new"))


@pytest.mark.parametrize("model", ["encoder", "query_encoder"])
def test_a_cross_model_run_whose_models_weights_changed_is_refused(world, capsys, fake_model, model):
    """The recorded sha256 of the old (encoder) or new (query_encoder) model stands for the weights the head
    was trained on; a model with other weights now is refused before any vector is read."""
    from hostile import evaluate_argv

    assert main(cross_argv(world)) == 0
    config_file = world["out"] / "config.json"
    document = json.loads(config_file.read_text())
    found = document[model]["weights_sha256"]
    document[model]["weights_sha256"] = "0" * 64  # what the run was trained on, as far as it knows
    config_file.write_text(json.dumps(document))
    capsys.readouterr()
    which = f"base model {OLD}" if model == "encoder" else f"query model {NEW}"
    message = (
        f"--run_dir {world['out']}: the {which} has other weights than the run was trained on "
        f"(sha256 {'0' * 16} then, {found[:16]} now); its head does not fit these vectors"
    )
    run = {"run": world["out"], "data": world["data"], "cache": world["cache"]}
    refused(capsys, evaluate_argv(run), message, world["t"])
