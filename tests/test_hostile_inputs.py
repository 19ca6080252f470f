"""Hostile input for every command: each case ends in exactly one line `isoadapt: error: ...`, exit 2,
no traceback and no partial output. The README quotes the number of cases collected here."""

from pathlib import Path

import pytest

from conftest import tiny_dataset
from isoadapt.cli import main

FIFTY_MB = 50 * 1024 * 1024


def run(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("INFO", "WARNING"))]
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("isoadapt: error: "), lines
    return lines[0]


@pytest.fixture
def data(tmp_path):
    return tiny_dataset(tmp_path / "data")


def train_argv(data, tmp_path, **overrides):
    args = {"train_data": data["train"], "val_data": data["dev"], "output_dir": tmp_path / "out", "cache_dir": tmp_path / "cache", "epochs": 1, "batch_size": 4}
    args.update(overrides)
    return ["train", *[x for k, v in args.items() for x in (f"--{k}", v)]]


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# (name, file written into the train/dev slot, content, expected fragment)
TRAIN_FILE_CASES = [
    ("truncated train JSON", "train", '[{"query": "a", "positive": "b"}', "malformed JSON"),
    ("train JSON of the wrong shape", "train", '{"query": "a", "positive": "b"}', "expected a JSON list"),
    ("train record of the wrong shape", "train", '[["a", "b"]]', "record 0: expected an object, got list"),
    ("train text not a string", "train", '[{"query": 5, "positive": "b"}]', "record 0: 'query' must be a string"),
    ("invalid UTF-8 in train", "train", b'[{"query": "caf\xe9", "positive": "b"}]', "not valid UTF-8 at byte offset 15"),
    ("50 MB single-line train file", "train", b"x" * FIFTY_MB, "malformed JSON at line 1 column 1"),
    ("empty train list", "train", "[]", "no training records"),
    ("truncated dev JSON", "dev", '{"queries": {"q": "a"}, "corpus": ', "malformed JSON"),
    ("dev JSON of the wrong shape", "dev", "[1, 2, 3]", "expected an object with 'queries', 'corpus' and 'qrels'"),
    ("dev qrels of the wrong shape", "dev", '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": [["q", "d", 1]]}', "'qrels' must be an object"),
    ("empty corpus", "dev", '{"queries": {"q": "a"}, "corpus": {}, "qrels": {"q": {"d": 1}}}', "'corpus' is empty"),
    ("non-integer grade (string)", "dev", '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": "1"}}}', "grade must be an integer, got '1'"),
    ("non-integer grade (fraction)", "dev", '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 1.5}}}', "grade must be an integer, got 1.5"),
    ("id with a tab", "dev", '{"queries": {"q\\t1": "a"}, "corpus": {"d": "b"}, "qrels": {"q\\t1": {"d": 1}}}', "contains a tab or newline"),
    ("id with a newline", "dev", '{"queries": {"q": "a"}, "corpus": {"d\\n2": "b"}, "qrels": {"q": {"d\\n2": 1}}}', "contains a tab or newline"),
    ("no relevant document at all", "dev", '{"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": 0}}}', "no query has a relevant document"),
]


@pytest.mark.parametrize(("name", "slot", "content", "fragment"), TRAIN_FILE_CASES, ids=[c[0] for c in TRAIN_FILE_CASES])
def test_train_rejects_hostile_files(tmp_path, capsys, data, name, slot, content, fragment):
    bad = write(tmp_path / f"bad_{slot}.json", content)
    line = run(capsys, train_argv(data, tmp_path, **{"train_data" if slot == "train" else "val_data": bad}))
    assert str(bad) in line and fragment in line
    assert not (tmp_path / "out").exists()


ABSURD_FLAGS = [
    ({"epochs": 0}, "--epochs 0: must be at least 1"),
    ({"projection_learning_rate": -1}, "--projection_learning_rate -1.0: must be a finite number > 0"),
    ({"projection_learning_rate": "inf"}, "--projection_learning_rate inf: must be a finite number > 0"),
    ({"batch_size": 10**9}, "--batch_size 1000000000: larger than the 48 training examples"),
    ({"margin": "nan"}, "--margin nan: must be a finite number >= 0"),
    ({"save_steps": 0}, "--save_steps 0: must be at least 1"),
    ({"max_train_examples": 1}, "--max_train_examples 1: must be at least 2"),
]


@pytest.mark.parametrize(("flags", "message"), ABSURD_FLAGS, ids=[str(f) for f, _ in ABSURD_FLAGS])
def test_absurd_flags(tmp_path, capsys, data, flags, message):
    assert message in run(capsys, train_argv(data, tmp_path, **flags))
    assert not (tmp_path / "out").exists()


def msmarco_raw(root: Path) -> Path:
    write(root / "collection.tsv", "0\tpassage zero\n1\tpassage one\n")
    write(root / "queries.dev.small.tsv", "10\tquestion\n")
    write(root / "qrels.dev.small.tsv", "10\t0\t1\t1\n")
    return root


PREPARE_CASES = [
    ("msmarco TSV with too many columns", "msmarco", "collection.tsv", "0\ta\tb\n", "line 1: expected 2 tab-separated columns, got 3"),
    ("msmarco TSV with too few columns", "msmarco", "queries.dev.small.tsv", "10 question\n", "line 1: expected 2 tab-separated columns, got 1"),
    ("msmarco invalid UTF-8", "msmarco", "queries.dev.small.tsv", b"10\tqu\xc3\x28estion\n", "invalid UTF-8 at byte offset 5 (line 1)"),
    ("msmarco 50 MB single line", "msmarco", "collection.tsv", b"y" * FIFTY_MB, "line 1: expected 2 tab-separated columns, got 1"),
    ("msmarco non-integer grade", "msmarco", "qrels.dev.small.tsv", "10\t0\t1\t0.5\n", "relevance '0.5' is not an integer"),
    ("msmarco empty collection", "msmarco", "collection.tsv", "", "no query has a relevant document"),
    ("msmarco query id with a newline-like break", "msmarco", "queries.dev.small.tsv", "10\tq\n\tq2\n", "line 2: empty query id"),
    ("beir corpus truncated JSON line", "beir", "corpus.jsonl", '{"_id": "d0", "text": "a"', "line 1: malformed JSON"),
    ("beir corpus wrong shape", "beir", "corpus.jsonl", '"just a string"\n', "line 1: expected a JSON object, got str"),
    ("beir id with a tab", "beir", "corpus.jsonl", '{"_id": "d\\t0", "text": "a"}\n', "contains a tab or newline"),
    ("beir empty corpus", "beir", "corpus.jsonl", "", "empty corpus"),
    ("beir qrels wrong columns", "beir", "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t1\textra\n", "line 2: expected 3 tab-separated columns, got 4"),
    ("beir non-integer grade", "beir", "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\tyes\n", "score 'yes' is not an integer"),
    ("stsb wrong columns", "stsb", "sts-dev.csv", "a\tb\tc\n", "line 1: expected 7 tab-separated columns, got 3"),
    ("stsb invalid UTF-8", "stsb", "sts-dev.csv", b"g\tf\t2012\t1\t4.0\tA man\xff\tA man.\n", "invalid UTF-8 at byte offset 20 (line 1)"),
]


def beir_raw(root: Path) -> Path:
    write(root / "corpus.jsonl", '{"_id": "d0", "text": "a"}\n')
    write(root / "queries.jsonl", '{"_id": "q0", "text": "b"}\n')
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    return root


def stsb_raw(root: Path) -> Path:
    row = "g\tf\t2012\t1\t4.0\tA man plays.\tA man is playing.\n"
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        write(root / name, row)
    return root


@pytest.mark.parametrize(("name", "source", "file", "content", "fragment"), PREPARE_CASES, ids=[c[0] for c in PREPARE_CASES])
def test_prepare_rejects_hostile_files(tmp_path, capsys, name, source, file, content, fragment):
    raw = {"msmarco": msmarco_raw, "beir": beir_raw, "stsb": stsb_raw}[source](tmp_path / "raw")
    bad = write(raw / file, content)
    argv = ["prepare", source, "--raw_dir", raw, "--out_root", tmp_path / "out"] + (["--name", "x"] if source == "beir" else [])
    line = run(capsys, argv)
    assert fragment in line and (str(bad) in line or "no query" in line)
    assert not (tmp_path / "out").exists() or not any(p for p in (tmp_path / "out").rglob("*.json"))


OTHER_COMMANDS = [
    ("experiment: truncated TOML", lambda t: ["experiment", "--plan", write(t / "p.toml", 'name = "x"\n[[configs]\n'), "--data", "tiny"], "malformed TOML"),
    ("experiment: absurd seeds", lambda t: ["experiment", "--plan", "plans/research.toml", "--data", "tiny", "--seeds", "a,b"], "--seeds a,b: expected comma-separated integers"),
    ("experiment: missing dataset", lambda t: ["experiment", "--plan", "plans/research.toml", "--data", "nope", "--data_root", t], "file not found (run `isoadapt prepare nope` first)"),
    ("evaluate: not a run folder", lambda t: ["evaluate", "--run_dir", t, "--data", t / "x.json"], "not a completed run folder"),
    ("export: not a run folder", lambda t: ["export", "--run_dir", t, "--out", t / "exported"], "no config.json; not a run folder"),
    ("prepare msmarco: absurd --smoke", lambda t: ["prepare", "msmarco", "--raw_dir", t, "--smoke", "0"], "--smoke 0: must be at least 1"),
    ("prepare msmarco: absurd --max_train", lambda t: ["prepare", "msmarco", "--raw_dir", t, "--max_train", "-5"], "--max_train -5: must be at least 1"),
]


@pytest.mark.parametrize(("name", "argv", "fragment"), OTHER_COMMANDS, ids=[c[0] for c in OTHER_COMMANDS])
def test_other_commands(tmp_path, capsys, name, argv, fragment):
    assert fragment in run(capsys, argv(tmp_path))
    assert not list(tmp_path.glob("exported*")) and not (Path("runs") / "x").exists()
