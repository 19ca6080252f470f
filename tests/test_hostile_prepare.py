"""Hostile input to `isoadapt prepare`: malformed source files, wrong shapes, bad ids and grades, bad
paths and concurrent writers. Every case is one line, exit 2, no traceback and no dataset written."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from isoadapt.cli import main
from isoadapt.training.config import MAX_SEED

from hostile import one_line, refused, write

FIFTY_MB = 50 * 1024 * 1024


def msmarco_raw(root: Path) -> Path:
    write(root / "collection.tsv", "0\tpassage zero\n1\tpassage one\n")
    write(root / "queries.dev.small.tsv", "10\tquestion\n")
    write(root / "qrels.dev.small.tsv", "10\t0\t1\t1\n")
    return root


def beir_raw(root: Path) -> Path:
    write(root / "corpus.jsonl", '{"_id": "d0", "text": "a"}\n{"_id": "d1", "text": "c"}\n')
    write(root / "queries.jsonl", '{"_id": "q0", "text": "b"}\n')
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t1\n")
    return root


def stsb_raw(root: Path) -> Path:
    row = "g\tf\t2012\t1\t4.0\tA man plays.\tA man is playing.\n"
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        write(root / name, row)
    return root


def semanlink_raw(root: Path) -> Path:
    docs = [{"document": f"b{i}", "title": f"topic{i % 3} note {i}", "tag": [f"t{i % 3}"]} for i in range(20)]
    tags = {f"t{i}": {"prefLabel": [f"topic{i}"]} for i in range(3)}
    write(root / "docs.json", json.dumps(docs))
    write(root / "tags.json", json.dumps(tags))
    return root


RAW = {"msmarco": msmarco_raw, "beir": beir_raw, "stsb": stsb_raw, "semanlink": semanlink_raw}


def prepare_argv(source: str, raw: Path, out: Path, *extra) -> list:
    where = ["--source", raw] if source == "semanlink" else ["--raw_dir", raw]
    return ["prepare", source, *where, "--out_root", out, *(["--name", "x"] if source == "beir" else []), *extra]


SURROGATE = '"\\ud800"'
CASES = [
    (
        "msmarco TSV with too many columns",
        "msmarco",
        "collection.tsv",
        "0\ta\tb\n",
        "{f}: line 1: expected 2 tab-separated columns, got 3",
    ),
    (
        "msmarco TSV with too few columns",
        "msmarco",
        "queries.dev.small.tsv",
        "10 question\n",
        "{f}: line 1: expected 2 tab-separated columns, got 1",
    ),
    (
        "msmarco invalid UTF-8",
        "msmarco",
        "queries.dev.small.tsv",
        b"10\tqu\xc3\x28estion\n",
        "{f}: invalid UTF-8 at byte offset 5 (line 1)",
    ),
    (
        "msmarco 50 MB single line",
        "msmarco",
        "collection.tsv",
        b"y" * FIFTY_MB,
        "{f}: line 1: expected 2 tab-separated columns, got 1",
    ),
    (
        "msmarco non-integer grade",
        "msmarco",
        "qrels.dev.small.tsv",
        "10\t0\t1\t0.5\n",
        "{f}: line 1: relevance '0.5' is not an integer",
    ),
    (
        "msmarco grade overflow",
        "msmarco",
        "qrels.dev.small.tsv",
        "10\t0\t1\t100000000000000000000\n",
        "{f}: line 1: relevance '100000000000000000000' is out of range (at most 2147483647 in absolute value)",
    ),
    (
        "msmarco empty collection",
        "msmarco",
        "collection.tsv",
        "",
        "{d}/qrels.dev.small.tsv: no query has a relevant document",
    ),
    ("msmarco empty query id", "msmarco", "queries.dev.small.tsv", "10\tq\n\tq2\n", "{f}: line 2: empty query id"),
    ("msmarco NUL-only passage", "msmarco", "collection.tsv", "0\t\x00\x00\n", "{f}: line 1: empty 'passage'"),
    (
        "msmarco conflicting judgments under --strict",
        "msmarco",
        "qrels.dev.small.tsv",
        "10\t0\t1\t1\n10\t0\t1\t0\n",
        "{f}: 1 conflicting repeated judgments (the first was kept) (--strict)",
    ),
    (
        "beir corpus truncated JSON line",
        "beir",
        "corpus.jsonl",
        '{"_id": "d0", "text": "a"',
        "{f}: line 1: malformed JSON: Expecting ',' delimiter",
    ),
    (
        "beir corpus wrong shape",
        "beir",
        "corpus.jsonl",
        '"just a string"\n',
        "{f}: line 1: expected a JSON object, got str",
    ),
    (
        "beir id with a tab",
        "beir",
        "corpus.jsonl",
        '{"_id": "d\\t0", "text": "a"}\n',
        "{f}: line 1: document id 'd\\t0' contains a tab or newline",
    ),
    ("beir empty corpus", "beir", "corpus.jsonl", "", "{f}: empty corpus"),
    (
        "beir null id",
        "beir",
        "corpus.jsonl",
        '{"_id": null, "text": "a"}\n',
        "{f}: line 1: '_id' must be a string, got null",
    ),
    (
        "beir list id",
        "beir",
        "queries.jsonl",
        '{"_id": ["q0"], "text": "a"}\n',
        "{f}: line 1: '_id' must be a string, got list",
    ),
    (
        "beir surrogate text",
        "beir",
        "corpus.jsonl",
        f'{{"_id": "d0", "text": {SURROGATE}}}\n',
        "{f}: line 1: 'text' has invalid Unicode (lone surrogate at character 0)",
    ),
    (
        "beir surrogate id",
        "beir",
        "queries.jsonl",
        f'{{"_id": {SURROGATE}, "text": "a"}}\n',
        "{f}: line 1: 'query id' has invalid Unicode (lone surrogate at character 0)",
    ),
    (
        "beir title not a string",
        "beir",
        "corpus.jsonl",
        '{"_id": "d0", "title": 5, "text": "a"}\n',
        "{f}: line 1: 'title' and 'text' must be strings",
    ),
    (
        "beir duplicate document id",
        "beir",
        "corpus.jsonl",
        '{"_id": "d0", "text": "a"}\n{"_id": "d0", "text": "b"}\n',
        "{f}: line 2: duplicate document id 'd0' (first at line 1)",
    ),
    (
        "beir qrels wrong columns",
        "beir",
        "qrels/test.tsv",
        "query-id\tcorpus-id\tscore\nq0\td0\t1\textra\n",
        "{f}: line 2: expected 3 tab-separated columns, got 4",
    ),
    (
        "beir non-integer grade",
        "beir",
        "qrels/test.tsv",
        "query-id\tcorpus-id\tscore\nq0\td0\tyes\n",
        "{f}: line 2: score 'yes' is not an integer",
    ),
    (
        "beir grade overflow",
        "beir",
        "qrels/test.tsv",
        "q0\td0\t99999999999\n",
        "{f}: line 1: score '99999999999' is out of range (at most 2147483647 in absolute value)",
    ),
    (
        "beir conflicting judgments under --strict",
        "beir",
        "qrels/test.tsv",
        "q0\td0\t1\nq0\td0\t2\n",
        "{f}: 1 conflicting repeated judgments (the first was kept) (--strict)",
    ),
    ("stsb wrong columns", "stsb", "sts-dev.csv", "a\tb\tc\n", "{f}: line 1: expected 7 tab-separated columns, got 3"),
    (
        "stsb invalid UTF-8",
        "stsb",
        "sts-dev.csv",
        b"g\tf\t2012\t1\t4.0\tA man\xff\tA man.\n",
        "{f}: invalid UTF-8 at byte offset 20 (line 1)",
    ),
    (
        "stsb score out of range",
        "stsb",
        "sts-dev.csv",
        "g\tf\t2012\t1\t7.5\tA\tB\n",
        "{f}: line 1: score 7.5 outside 0..5",
    ),
    ("stsb score nan", "stsb", "sts-dev.csv", "g\tf\t2012\t1\tnan\tA\tB\n", "{f}: line 1: score nan outside 0..5"),
    (
        "semanlink docs an object",
        "semanlink",
        "docs.json",
        '{"b0": {}}',
        "{d}: docs.json: expected a list of bookmarks, got dict",
    ),
    (
        "semanlink tags a list",
        "semanlink",
        "tags.json",
        '[{"prefLabel": ["x"]}]',
        "{d}: tags.json: expected an object of {{uri: tag}}, got list",
    ),
    (
        "semanlink bookmark not an object",
        "semanlink",
        "docs.json",
        '[["b0"]]',
        "{d}: docs.json: record 0: expected an object, got list",
    ),
    (
        "semanlink title a number",
        "semanlink",
        "docs.json",
        '[{"document": "b0", "title": 5, "tag": ["t0"]}]',
        "{d}: docs.json: record 0: 'title' must be a string, got int",
    ),
    (
        "semanlink tag a string",
        "semanlink",
        "docs.json",
        '[{"document": "b0", "title": "x", "tag": "t0"}]',
        "{d}: docs.json: record 0: 'tag' must be a list of strings",
    ),
    (
        "semanlink bookmark without id",
        "semanlink",
        "docs.json",
        '[{"title": "x", "tag": ["t0"]}]',
        "{d}: docs.json: record 0: missing 'document'",
    ),
    (
        "semanlink prefLabel a string",
        "semanlink",
        "tags.json",
        '{"t0": {"prefLabel": "topic"}}',
        "{d}: tags.json: tag 't0': 'prefLabel' must be a list of strings",
    ),
    (
        "semanlink tag not an object",
        "semanlink",
        "tags.json",
        '{"t0": ["topic"]}',
        "{d}: tags.json: tag 't0': expected an object, got list",
    ),
    (
        "semanlink surrogate title",
        "semanlink",
        "docs.json",
        f'[{{"document": "b0", "title": {SURROGATE}, "tag": ["t0"]}}]',
        "{d}: docs.json: record 0: 'title' has invalid Unicode (lone surrogate at character 0)",
    ),
    (
        "semanlink docs malformed",
        "semanlink",
        "docs.json",
        "[{",
        "{d}: docs.json: malformed JSON (Expecting property name enclosed in double quotes: line 1 column 3 (char 2))",
    ),
]


@pytest.mark.parametrize(("name", "source", "file", "content", "message"), CASES, ids=[c[0] for c in CASES])
def test_source_files(tmp_path, capsys, name, source, file, content, message):
    raw = RAW[source](tmp_path / "raw")
    bad = write(raw / file, content)
    refused(
        capsys,
        prepare_argv(source, raw, tmp_path / "out", "--strict")
        if "strict" in name
        else prepare_argv(source, raw, tmp_path / "out"),
        message.format(f=bad, d=raw),
        tmp_path,
    )


PATHS = [
    (
        "out_root a file",
        lambda t: ["--out_root", write(t / "f.txt", "x")],
        "--out_root {t}/f.txt: is a file, not a folder",
    ),
    (
        "out_root under a file",
        lambda t: ["--out_root", write(t / "f.txt", "x") / "o"],
        "--out_root {t}/f.txt/o: {t}/f.txt is a file, not a folder",
    ),
    ("raw_dir missing", lambda t: ["--raw_dir", t / "nope"], "{t}/nope/qrels: no train.tsv, dev.tsv or test.tsv"),
    (
        "seed negative",
        lambda t: ["--seed", "-1"],
        f"--seed: seed -1 must be an integer between 0 and {MAX_SEED} (NumPy's seed range)",
    ),
    (
        "seed too large",
        lambda t: ["--seed", str(2**32)],
        f"--seed: seed 4294967296 must be an integer between 0 and {MAX_SEED} (NumPy's seed range)",
    ),
]


@pytest.mark.parametrize(("name", "extra", "message"), PATHS, ids=[c[0] for c in PATHS])
def test_beir_paths_and_flags(tmp_path, capsys, name, extra, message):
    raw = beir_raw(tmp_path / "raw")
    argv = ["prepare", "beir", "--raw_dir", raw, "--name", "x", "--out_root", tmp_path / "out", *extra(tmp_path)]
    refused(capsys, argv, message.format(t=tmp_path), tmp_path)


def test_msmarco_absurd_sizes(tmp_path, capsys):
    raw = msmarco_raw(tmp_path / "raw")
    refused(
        capsys,
        ["prepare", "msmarco", "--raw_dir", raw, "--smoke", "0", "--out_root", tmp_path / "o"],
        "--smoke 0: must be at least 1",
        tmp_path,
    )
    refused(
        capsys,
        ["prepare", "msmarco", "--raw_dir", raw, "--max_train", "-5", "--out_root", tmp_path / "o"],
        "--max_train -5: must be at least 1",
        tmp_path,
    )


def test_a_second_prepare_on_the_same_out_root_is_refused(tmp_path, capsys):
    from isoadapt.data.formats import prepare_lock

    raw = beir_raw(tmp_path / "raw")
    out = tmp_path / "out"
    with prepare_lock(out):
        refused(
            capsys,
            prepare_argv("beir", raw, out),
            f"--out_root {out}: another isoadapt prepare is writing there; wait for it to finish",
            tmp_path,
        )
    assert main([str(a) for a in prepare_argv("beir", raw, out)]) == 0


def read_split(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_byte_order_marks_do_not_become_part_of_ids(tmp_path, capsys):
    raw = beir_raw(tmp_path / "raw")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        path = raw / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert main([str(a) for a in prepare_argv("beir", raw, tmp_path / "out")]) == 0
    split = read_split(tmp_path / "out" / "x" / "test.json")
    assert split["qrels"] == {"q0": {"d0": 1}} and "d0" in split["corpus"]


def test_qrels_without_a_header_keep_their_first_judgment(tmp_path, capsys):
    raw = beir_raw(tmp_path / "raw")
    write(raw / "qrels" / "test.tsv", "q0\td0\t1\nq0\td1\t2\n")
    assert main([str(a) for a in prepare_argv("beir", raw, tmp_path / "out")]) == 0
    assert "dropped nothing" in capsys.readouterr().out
    assert read_split(tmp_path / "out" / "x" / "test.json")["qrels"] == {"q0": {"d0": 1, "d1": 2}}


def test_repeated_and_conflicting_judgments_are_counted(tmp_path, capsys):
    raw = beir_raw(tmp_path / "raw")
    write(raw / "qrels" / "test.tsv", "q0\td0\t1\nq0\td0\t1\nq0\td0\t2\n")
    assert main([str(a) for a in prepare_argv("beir", raw, tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    path = raw / "qrels" / "test.tsv"
    assert f"dropped 1: conflicting repeated judgments (the first was kept) ({path})" in out
    assert f"dropped 1: repeated identical judgments ({path})" in out
    assert read_split(tmp_path / "out" / "x" / "test.json")["qrels"] == {"q0": {"d0": 1}}


def test_integer_ids_are_kept_as_text(tmp_path, capsys):
    raw = beir_raw(tmp_path / "raw")
    write(raw / "corpus.jsonl", '{"_id": 7, "text": "a"}\n')
    write(raw / "qrels" / "test.tsv", "q0\t7\t1\n")
    assert main([str(a) for a in prepare_argv("beir", raw, tmp_path / "out")]) == 0
    assert read_split(tmp_path / "out" / "x" / "test.json")["corpus"] == {"7": "a"}


def test_prepare_again_replaces_its_own_dataset(tmp_path, capsys):
    raw = beir_raw(tmp_path / "raw")
    for _ in range(2):
        assert main([str(a) for a in prepare_argv("beir", raw, tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x"]


def test_semanlink_fixture_prepares(tmp_path, capsys):
    """The shape checks accept a well-formed folder source: the refusals above are not refusing everything."""
    raw = semanlink_raw(tmp_path / "raw")
    assert main([str(a) for a in prepare_argv("semanlink", raw, tmp_path / "out")]) == 0
    assert one_line.__name__ and (tmp_path / "out" / "semanlink" / "train.json").is_file()


def test_a_truncated_source_archive(tmp_path, capsys):
    """A download cut short: the gzip stream ends early, inside a member."""
    raw = semanlink_raw(tmp_path / "raw")
    write(raw / "docs.json", json.dumps([{"document": f"b{i}", "title": f"t {i} " * 50} for i in range(3000)]))
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as archive:
        archive.add(raw / "docs.json", arcname="cherche-2.2.1/cherche/data/semanlink/docs.json")
    cut = write(tmp_path / "cherche.tar.gz", whole.read_bytes()[: whole.stat().st_size // 2])
    message = f"{cut}: not a readable tar archive (EOFError: Compressed file ended before the end-of-stream marker was reached)"
    refused(capsys, ["prepare", "semanlink", "--source", cut, "--out_root", tmp_path / "out"], message, tmp_path)


# `prepare vectors`: every check before any write, one lock per model name, the dataset id rule.


def id_only_vectors(root: Path, query_ids=("q0", "q1", "q2"), doc_ids=("d0", "d1", "d2", "d3"), seed: int = 0):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conftest import FakeEncoder

    encoder, paths = FakeEncoder(seed=seed), {}
    for name, ids in (("queries", list(query_ids)), ("documents", list(doc_ids))):
        vectors = encoder.encode([i.replace("\t", " ") for i in ids])
        paths[name] = root / f"{name}-{seed}.parquet"
        pq.write_table(
            pa.table({"id": ids, "vector": pa.array(list(vectors), type=pa.list_(pa.float32()))}), paths[name]
        )
    return paths


def vectors_argv(paths: dict, cache: Path, qrels: Path, out_root: Path, name: str = "acme", *extra) -> list:
    return [
        "prepare", "vectors", "--queries", paths["queries"], "--documents", paths["documents"], "--model", "acme/v1",
        "--cache_dir", cache, "--qrels_dir", qrels, "--name", name, "--out_root", out_root, *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "test_tsv, message",
    [
        ("query-id\tcorpus-id\tscore\n", "no query has a relevant document"),
        ("q0\td0\t1.5\n", "line 1: score '1.5' is not an integer"),  # a number on the first line: no header
        ("q0\td0\t1\nq1\td1\t0.5\n", "line 2: score '0.5' is not an integer"),
    ],
    ids=["header only", "a grade written 1.5 on the first line", "a grade written 0.5"],
)
def test_vectors_qrels_are_checked_before_the_cache_is_written(tmp_path, capsys, test_tsv, message):
    paths = id_only_vectors(tmp_path)
    write(tmp_path / "qrels" / "dev.tsv", "q0\td0\t1\n")
    test = write(tmp_path / "qrels" / "test.tsv", test_tsv)
    argv = vectors_argv(paths, tmp_path / "cache", tmp_path / "qrels", tmp_path / "out")
    refused(capsys, argv, f"{test}: {message}", tmp_path, skip=())  # no cache entry, no dataset
    write(test, "q0\td0\t1\nq1\td1\t1\n")  # corrected: the same import goes through
    assert main([str(a) for a in argv]) == 0


def test_vectors_ids_follow_the_dataset_id_rule(tmp_path, capsys):
    paths = id_only_vectors(tmp_path, query_ids=("q0", "q\t1", "q2"))
    write(tmp_path / "qrels" / "test.tsv", "q0\td0\t1\n")
    refused(
        capsys,
        vectors_argv(paths, tmp_path / "cache", tmp_path / "qrels", tmp_path / "out"),
        f"{paths['queries']}: row group 0, row 1: id 'q\\t1' contains a tab or newline",
        tmp_path,
        skip=(),
    )


def test_vectors_replace_a_dataset_only_with_overwrite(tmp_path, capsys):
    paths = id_only_vectors(tmp_path)
    write(tmp_path / "qrels" / "test.tsv", "q0\td0\t1\n")
    argv = vectors_argv(paths, tmp_path / "cache", tmp_path / "qrels", tmp_path / "out")
    assert main([str(a) for a in argv]) == 0
    refused(
        capsys,
        argv,
        f"--out_root {tmp_path / 'out' / 'acme'}: already holds a dataset of isoadapt's; pass --overwrite to replace it",
        tmp_path,
        skip=(),
    )
    assert main([str(a) for a in [*argv, "--overwrite"]]) == 0


def run_cli(argv: list):
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "isoadapt.cli", *map(str, argv)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_an_import_waits_while_another_holds_the_model_name(tmp_path):
    """A real process importing under a model name that another import holds neither checks nor stores
    until that one is done; then it goes through."""
    import subprocess

    from isoadapt.encoding.vector_import import import_lock

    write(tmp_path / "qrels" / "test.tsv", "q0\td0\t1\n")
    argv = vectors_argv(id_only_vectors(tmp_path), tmp_path / "cache", tmp_path / "qrels", tmp_path / "out")
    with import_lock("acme/v1", tmp_path / "cache"):
        proc = run_cli(argv)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=10)  # it starts in ~3 s; without the lock it would be done by now
        assert not (tmp_path / "out").exists() and not list(tmp_path.glob("cache/embeddings/*/*.npy"))
    assert proc.wait(timeout=120) == 0, proc.stderr.read()


def test_two_imports_under_one_model_at_once_never_drop_vectors(tmp_path):
    """Two real processes import different vectors under one model name into one cache (different
    --out_root, so prepare's own lock does not serialise them): one goes through, the other is refused."""
    write(tmp_path / "qrels" / "test.tsv", "q0\td0\t1\n")
    argvs = [
        vectors_argv(
            id_only_vectors(tmp_path, seed=seed), tmp_path / "cache", tmp_path / "qrels", tmp_path / f"o{seed}"
        )
        for seed in (0, 1)
    ]
    procs = [run_cli(argv) for argv in argvs]
    outcomes = sorted((p.wait(timeout=120), p.stderr.read()) for p in procs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert (
        outcomes[1][1]
        .strip()
        .endswith(
            "the cache already holds another vector for this text under 'acme/v1'; give these vectors another --model name"
        )
    ), outcomes[1][1]


# `prepare semanlink --news_source`: gensim's wheel for probe_news.json, checked before anything is written.


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "none.whl", "{p}/none.whl: no such file ({p}/none.whl); `make setup` downloads gensim-4.3.3-"),
        (
            lambda p: write(p / "g.whl", b"not a zip"),
            "{p}/g.whl: not gensim 4.3.3's wheel with gensim/test/test_data/lee.cor",
        ),
    ],
)
def test_news_source_that_is_not_gensims_wheel(tmp_path, capsys, make, message):
    line = refused_news_source(capsys, tmp_path, make(tmp_path))
    assert line.startswith("isoadapt: error: " + message.format(p=tmp_path)), line


@pytest.mark.parametrize(
    "articles, matrix, message",
    [
        (
            "a\nb\n",
            "1 0.5 0.2\n0.5 1 0.2\n0.2 0.2 1\n",
            "similarities0-1.txt is 3 x 3 but gensim/test/test_data/lee.cor holds 2 articles",
        ),
        ("a\n\nc\n", "1 0.5 0.2\n0 1 0.2\n0 0 1\n", "lee.cor line 2 is empty"),
        ("a\nb\n", "1 x\n0.5 1\n", "similarities0-1.txt is not a matrix of numbers"),
        ("a\nb\n", "1 nan\n0 1\n", "similarities0-1.txt row 1 column 2 is nan: not in 0-1"),
        ("a\nb\n", "1 0.6\n0.7 1\n", "row 2 column 1 is 0.7 but its mirror is 0.6: the lower triangle must"),
        ("a\nb\n", "1 0.4\n0 1\n", "rates no pair 0.5 or more (a mean rating of 2.5): no relevant pair"),
    ],
)
def test_news_files_that_do_not_line_up(tmp_path, capsys, articles, matrix, message):
    write(tmp_path / "lee" / "lee.cor", articles)
    write(tmp_path / "lee" / "similarities0-1.txt", matrix)
    line = refused_news_source(capsys, tmp_path, tmp_path / "lee")
    assert message in line and line.startswith(f"isoadapt: error: {tmp_path / 'lee'}: "), line


def refused_news_source(capsys, tmp_path: Path, source: Path) -> str:
    """`prepare semanlink --news_source SOURCE` on a good Semanlink folder: its one error line, with
    nothing written."""
    raw = semanlink_raw(tmp_path / "raw")
    line = one_line(capsys, [*prepare_argv("semanlink", raw, tmp_path / "out"), "--news_source", source])
    assert not (tmp_path / "out").exists()
    return line
