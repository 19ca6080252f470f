"""The grade rule (data/grades.py), through every reader that takes relevance grades: a BEIR qrels file, an
MS MARCO qrels file, a processed split's JSON, and `isoadapt.Vectors` qrels. Each accepts the same grades
(2, 2.0, numpy's 2.0 are grade 2) and refuses the same ones (1.5, True, NaN, beyond trec_eval's C int)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from isoadapt.data.beir import read_qrels
from isoadapt.data.formats import load_eval
from isoadapt.data.grades import MAX_GRADE, grade, spells_a_number, text_grade
from isoadapt.data.msmarco import read_trec_qrels
from isoadapt.data.prepare_report import PrepareReport
from isoadapt.encoding.arrays import Vectors, check_split
from isoadapt.errors import InputError


def via_beir(tmp_path: Path, text: str) -> int:
    path = tmp_path / "test.tsv"
    path.write_text(f"query-id\tcorpus-id\tscore\nq\td\t{text}\n")
    return read_qrels(path, PrepareReport("beir"))["q"]["d"]


def via_msmarco(tmp_path: Path, text: str) -> int:
    path = tmp_path / "qrels.tsv"
    path.write_text(f"q 0 d {text}\n")
    return read_trec_qrels(path, PrepareReport("msmarco"))["q"]["d"]


def via_json(tmp_path: Path, value) -> int:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"queries": {"q": "a"}, "corpus": {"d": "b"}, "qrels": {"q": {"d": value}}}))
    return load_eval(path).qrels["q"]["d"]


def via_arrays(tmp_path: Path, value) -> int:
    given = Vectors(np.ones((1, 4)), np.ones((1, 4)), qrels={"0": {"0": value}})
    return next(iter(check_split("train", given).split.qrels["0"].values()))


@pytest.mark.parametrize(
    "text, value",
    [("2", 2), ("2.0", 2.0), ("+2", 2), ("2e0", np.float64(2.0))],
    ids=["2", "2.0", "+2", "2e0"],
)
def test_every_reader_reads_the_same_integer_grades(tmp_path, text, value):
    assert via_beir(tmp_path, text) == via_msmarco(tmp_path, text) == 2
    assert via_json(tmp_path, value) == via_arrays(tmp_path, value) == 2
    assert via_arrays(tmp_path, np.int32(2)) == via_arrays(tmp_path, np.float32(2.0)) == 2


@pytest.mark.parametrize(
    "text, value, reason",
    [
        ("1.5", 1.5, "is not an integer"),
        ("nan", float("nan"), "is not an integer"),
        ("high", "high", "is not an integer"),
        (str(2**40), 2**40, f"is out of range (at most {MAX_GRADE} in absolute value)"),
    ],
    ids=["fraction", "nan", "word", "beyond a C int"],
)
def test_every_reader_refuses_the_same_grades_with_the_same_reason(tmp_path, text, value, reason):
    for read in (via_beir, via_msmarco):
        with pytest.raises(InputError) as err:
            read(tmp_path, text)
        assert str(err.value).endswith(f"{text!r} {reason}"), str(err.value)
    for read in (via_json, via_arrays):
        with pytest.raises(InputError) as err:
            read(tmp_path, value)
        assert str(err.value).endswith(f"grade {value!r} {reason}"), str(err.value)


def test_a_boolean_and_a_string_are_not_grades_in_json_or_arrays(tmp_path):
    for value in (True, "1"):
        for read in (via_json, via_arrays):
            with pytest.raises(InputError, match="is not an integer"):
                read(tmp_path, value)


def test_the_rule_by_hand():
    assert grade(-1, "x") == -1 and grade(MAX_GRADE, "x") == MAX_GRADE and grade(3.0, "x") == 3
    assert text_grade(" 0 ", "f: line 1", "score") == 0
    with pytest.raises(InputError, match=r"^f: line 1: score '0.5' is not an integer$"):
        text_grade("0.5", "f: line 1", "score")
    with pytest.raises(InputError, match=r"is out of range"):
        grade(-(MAX_GRADE + 1), "x")
    assert [spells_a_number(t) for t in ("score", "1", "-1.5", ".5", "1e3", "nan", "")] == [
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
