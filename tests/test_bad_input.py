"""Every bad input ends in one line naming the file/flag, the record and the problem, exit 2, no output."""

import json
from pathlib import Path

import pytest

from isoadapt.cli import main

from conftest import write_json


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


def test_unknown_model_lists_the_available_ones(tmp_path, tiny_data, capsys):
    code, out = run_train(tmp_path, tiny_data, base_model="bert-base-uncased")
    assert_one_line_error(
        capsys,
        code,
        "--base_model bert-base-uncased: unknown model; available: sentence-transformers/all-mpnet-base-v2, "
        "sentence-transformers/all-MiniLM-L6-v2, or a local SentenceTransformer folder",
    )
    assert not out.exists()
