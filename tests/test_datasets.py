"""prepare msmarco / beir / stsb on fixtures in the real formats, and every validation case by its exact text."""

import json
from pathlib import Path

import pytest

from isoadapt.cli import main
from isoadapt.data.formats import load_eval, load_sts, load_train


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def msmarco_fixture(root: Path, top1000: bool = True) -> Path:
    """Ten passages, four dev queries (one without judgments), three train triples: the official layouts."""
    passages = [f"{pid}\tpassage number {pid} about subject {pid % 5}" for pid in range(10)]
    write(root / "collection.tsv", "\n".join(passages) + "\n")
    write(
        root / "queries.dev.small.tsv",
        "100\twhat is subject 1\n101\twhat is subject 2\n102\twhat is subject 3\n103\tunjudged question\n",
    )
    write(root / "qrels.dev.small.tsv", "100\t0\t1\t1\n100\t0\t6\t1\n101\t0\t2\t1\n102\t0\t3\t1\n102\t0\t999\t1\n")
    write(root / "queries.train.tsv", "1\ttrain q\n")
    write(root / "qrels.train.tsv", "1\t0\t4\t1\n")
    write(
        root / "triples.train.small.tsv",
        "q one\tpos one\tneg one\nq two\tpos two\tneg two\nq three\tpos three\tneg three\n",
    )
    if top1000:
        write(
            root / "top1000.dev",
            "100\t7\twhat is subject 1\tpassage number 7 about subject 2\n101\t8\twhat is subject 2\tpassage number 8 about subject 3\n",
        )
    return root


def beir_fixture(root: Path) -> Path:
    corpus = [{"_id": f"d{i}", "title": f"Title {i}", "text": f"body of document {i}"} for i in range(6)]
    write(root / "corpus.jsonl", "\n".join(json.dumps(d) for d in corpus) + "\n")
    queries = [{"_id": f"q{i}", "text": f"question {i}"} for i in range(4)]
    write(root / "queries.jsonl", "\n".join(json.dumps(q) for q in queries) + "\n")
    write(root / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t1\nq0\td1\t2\n")
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td3\t2\nq2\tghost\t1\nq3\td4\t0\n")
    return root


def prepare(capsys, *argv) -> tuple[int, str, str]:
    code = main(["prepare", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def test_msmarco_full_and_smoke_with_top1000(tmp_path, capsys):
    raw = msmarco_fixture(tmp_path / "raw")
    code, out, _ = prepare(
        capsys, "msmarco", "--raw_dir", raw, "--out_root", tmp_path / "out", "--smoke", 2, "--corpus_size", 3
    )
    assert code == 0
    dev = load_eval(tmp_path / "out" / "msmarco" / "dev.json")
    assert set(dev.queries) == {"100", "101", "102"}
    assert {"1", "6", "2", "3"} <= set(dev.corpus) and len(dev.corpus) == 4 + 3
    assert "dropped 1: judgments naming an unknown query or document id" in out
    assert "dropped 1: queries without a relevant document" in out
    assert len(load_train(tmp_path / "out" / "msmarco" / "train.json")) == 3
    smoke = load_eval(tmp_path / "out" / "msmarco_smoke" / "dev.json")
    assert len(smoke.queries) == 2
    judged = {d for q in smoke.qrels.values() for d in q}
    candidates = {"7"} if "100" in smoke.queries else set()
    candidates |= {"8"} if "101" in smoke.queries else set()
    assert set(smoke.corpus) == judged | candidates
    assert "judged + top-1000 candidates" in out


def test_msmarco_smoke_without_top1000_samples_the_collection(tmp_path, capsys):
    raw = msmarco_fixture(tmp_path / "raw", top1000=False)
    code, out, _ = prepare(
        capsys,
        "msmarco",
        "--raw_dir",
        raw,
        "--out_root",
        tmp_path / "out",
        "--smoke",
        3,
        "--smoke_corpus",
        2,
        "--max_train",
        2,
    )
    assert code == 0
    smoke = load_eval(tmp_path / "out" / "msmarco_smoke" / "dev.json")
    judged = {d for q in smoke.qrels.values() for d in q}
    assert judged < set(smoke.corpus) and len(smoke.corpus) <= len(judged) + 2
    assert len(load_train(tmp_path / "out" / "msmarco" / "train.json")) == 2
    again_code, _, _ = prepare(
        capsys,
        "msmarco",
        "--raw_dir",
        raw,
        "--out_root",
        tmp_path / "again",
        "--smoke",
        3,
        "--smoke_corpus",
        2,
        "--max_train",
        2,
    )
    assert (tmp_path / "again" / "msmarco_smoke" / "dev.json").read_bytes() == (
        tmp_path / "out" / "msmarco_smoke" / "dev.json"
    ).read_bytes()


def test_msmarco_strict_fails_on_unknown_ids(tmp_path, capsys):
    raw = msmarco_fixture(tmp_path / "raw")
    code, _, err = prepare(capsys, "msmarco", "--raw_dir", raw, "--out_root", tmp_path / "out", "--strict")
    assert code == 2
    assert (
        err
        == f"isoadapt: error: {raw / 'qrels.dev.small.tsv'}: 1 judgments naming an unknown query or document id (--strict)"
    )
    assert not (tmp_path / "out" / "msmarco").exists()


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        (
            "queries.dev.small.tsv",
            "100\tq\n101\tq2\n100\tagain\n",
            "{path}: line 3: duplicate query id '100' (first at line 1)",
        ),
        ("queries.dev.small.tsv", "100\tq\n101\t \n", "{path}: line 2: empty 'query text'"),
        ("queries.dev.small.tsv", "100\tq\textra\n", "{path}: line 1: expected 2 tab-separated columns, got 3"),
        ("collection.tsv", "0\tfirst\n1\tsecond\n0\tagain\n", "{path}: line 3: duplicate passage id '0'"),
        ("collection.tsv", "0\tfirst\n1\t\n", "{path}: line 2: empty 'passage'"),
        ("collection.tsv", b"0\tfirst\n1\tbad \xff byte\n", "{path}: invalid UTF-8 at byte offset 14 (line 2)"),
        ("qrels.dev.small.tsv", "100 0 1\n", "{path}: line 1: expected 4 columns (qid 0 pid rel), got 3"),
        ("qrels.dev.small.tsv", "100\t0\t1\thigh\n", "{path}: line 1: relevance 'high' is not an integer"),
        ("triples.train.small.tsv", "q\tp\n", "{path}: line 1: expected 3 tab-separated columns, got 2"),
    ],
)
def test_msmarco_validation_errors(tmp_path, capsys, file, content, expected):
    raw = msmarco_fixture(tmp_path / "raw")
    path = write(raw / file, content)
    code, _, err = prepare(capsys, "msmarco", "--raw_dir", raw, "--out_root", tmp_path / "out")
    assert code == 2
    assert err == "isoadapt: error: " + expected.format(path=path)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_beir_splits_train_and_title_join(tmp_path, capsys):
    raw = beir_fixture(tmp_path / "scifake")
    code, out, _ = prepare(capsys, "beir", "--raw_dir", raw, "--name", "scifake", "--out_root", tmp_path / "out")
    assert code == 0
    test = load_eval(tmp_path / "out" / "scifake" / "test.json")
    assert test.corpus["d2"] == "Title 2 body of document 2"
    assert set(test.queries) == {"q1", "q2"} and test.qrels["q2"] == {"d3": 2}
    train = load_train(tmp_path / "out" / "scifake" / "train.json")
    assert [(e.query, e.positive) for e in train] == [
        ("question 0", "Title 0 body of document 0"),
        ("question 0", "Title 1 body of document 1"),
    ]
    assert all(e.negative not in {"Title 0 body of document 0", "Title 1 body of document 1"} for e in train)
    assert not (tmp_path / "out" / "scifake" / "dev.json").exists()
    assert "dropped 1: judgments naming an unknown query or document id" in out
    assert "dropped 1: queries without a relevant document" in out


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        (
            "corpus.jsonl",
            '{"_id": "d0", "text": "a"}\n{"_id": "d0", "text": "b"}\n',
            "{path}: line 2: duplicate document id 'd0' (first at line 1)",
        ),
        (
            "corpus.jsonl",
            '{"_id": "d0", "text": "a"}\n{"_id": "d1", "title": "", "text": "  "}\n',
            "{path}: line 2: empty 'text'",
        ),
        (
            "corpus.jsonl",
            '{"_id": "d0", "text": "a"}\n{"_id": "d1", "text": \n',
            "{path}: line 2: malformed JSON: Expecting value",
        ),
        ("corpus.jsonl", "", "{path}: empty corpus"),
        ("queries.jsonl", '["q0", "text"]\n', "{path}: line 1: expected a JSON object, got list"),
        ("queries.jsonl", b'{"_id": "q0", "text": "caf\xe9"}\n', "{path}: invalid UTF-8 at byte offset 26 (line 1)"),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nq1\td2\t0.5\n",
            "{path}: line 2: score '0.5' is not an integer",
        ),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nq1\td2\n",
            "{path}: line 2: expected 3 tab-separated columns, got 2",
        ),
    ],
)
def test_beir_validation_errors(tmp_path, capsys, file, content, expected):
    raw = beir_fixture(tmp_path / "scifake")
    path = write(raw / file, content)
    code, _, err = prepare(capsys, "beir", "--raw_dir", raw, "--name", "scifake", "--out_root", tmp_path / "out")
    assert code == 2
    assert err == "isoadapt: error: " + expected.format(path=path)
    assert not (tmp_path / "out" / "scifake").exists()


def test_beir_strict(tmp_path, capsys):
    raw = beir_fixture(tmp_path / "scifake")
    code, _, err = prepare(
        capsys, "beir", "--raw_dir", raw, "--name", "scifake", "--out_root", tmp_path / "out", "--strict"
    )
    assert code == 2 and err.endswith("1 judgments naming an unknown query or document id (--strict)")


def test_stsb_counts_from_the_shipped_files(tmp_path, capsys):
    code, out, _ = prepare(capsys, "stsb", "--out_root", tmp_path)
    assert code == 0
    assert "pairs: train 5749, dev 1500, test 1379" in out
    assert len(load_sts(tmp_path / "stsb" / "sts_train.json").scores) == 5749
    test = load_eval(tmp_path / "stsb" / "test.json")
    assert all(grade >= 3 for judged in test.qrels.values() for grade in judged.values())
    assert all(e.negative for e in load_train(tmp_path / "stsb" / "train.json"))


def test_stsb_rows_with_trailing_columns_and_bad_scores(tmp_path, capsys):
    row = "main-captions\tMSRvid\t2012test\t0001\t{score}\tA man plays.\tA man is playing.{extra}\n"
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        write(
            tmp_path / "raw" / name,
            row.format(score="4.5", extra="\tsource-a\tsource-b") + row.format(score="3.0", extra=""),
        )
    code, out, _ = prepare(capsys, "stsb", "--raw_dir", tmp_path / "raw", "--out_root", tmp_path / "out")
    assert code == 0 and "pairs: train 2, dev 2, test 2" in out
    bad = write(tmp_path / "raw" / "sts-dev.csv", row.format(score="five", extra=""))
    code, _, err = prepare(capsys, "stsb", "--raw_dir", tmp_path / "raw", "--out_root", tmp_path / "out2")
    assert code == 2 and err == f"isoadapt: error: {bad}: line 1: score 'five' is not a number"


def test_search_never_returns_the_query_itself():
    import numpy as np

    from isoadapt.metrics.retrieval import exact_search

    vectors = np.eye(3, dtype=np.float32) + 0.1
    run = exact_search(vectors[:1], vectors, ["s0"], ["s0", "s1", "s2"], top_k=2)
    assert set(run["s0"]) == {"s1", "s2"}
