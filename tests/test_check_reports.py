"""scripts/check_reports.py, which `make reproduce` ends with: a reproduction equal to the committed
report passes; one committed number edited by hand fails, naming the row."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "docs" / "results" / "adapters-semanlink-mpnet" / "report.json"


def check(new_root: Path, committed_root: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "check_reports.py"), "--new", str(new_root)]
    command += ["--committed", str(committed_root), "--plans", "adapters"]
    return subprocess.run(command, capture_output=True, text=True)


def test_a_reproduction_passes_and_an_edited_number_fails_naming_its_row(tmp_path):
    committed = tmp_path / "committed" / "adapters-semanlink-mpnet"
    committed.mkdir(parents=True)
    shutil.copy(COMMITTED, committed / "report.json")
    new = tmp_path / "runs" / "adapters-semanlink-20261130-000000"
    new.mkdir(parents=True)
    shutil.copy(COMMITTED, new / "report.json")
    passed = check(tmp_path / "runs", tmp_path / "committed")
    assert passed.returncode == 0 and "every row reproduces within the seed spread" in passed.stdout, passed.stderr
    report = json.loads((committed / "report.json").read_text())
    row = next(r for r in report["rows"] if r["name"] == "whitening-256")
    row["ndcg@10"] += 0.01  # a hand edit larger than any seed's spread
    (committed / "report.json").write_text(json.dumps(report))
    failed = check(tmp_path / "runs", tmp_path / "committed")
    assert failed.returncode == 1
    assert failed.stderr.strip() == "check_reports: drift beyond the seed spread in adapters/whitening-256"
    assert any(line.startswith("whitening-256") and line.endswith("DRIFT") for line in failed.stdout.splitlines())


def with_rows(change) -> str:
    report = json.loads(COMMITTED.read_text())
    change(report)
    return json.dumps(report)


def first_row(report: dict) -> dict:
    return report["rows"][0]


MALFORMED = [
    ("missing", None, "{f}: file not found"),
    ("not JSON", "{", "{f}: not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("rows not a list", '{"rows": {"a": 1}}', "{f}: expected an object with a 'rows' list, got dict"),
    ("not an object", "[1]", "{f}: expected an object with a 'rows' list, got list"),
    ("row not an object", '{"rows": [3]}', "{f}: rows[0]: expected an object, got int"),
    ("null value", with_rows(lambda r: first_row(r).update({"ndcg@10": None})), "{f}: row 'baseline': 'ndcg@10' must be a finite number, got None"),
    ("missing key", with_rows(lambda r: first_row(r).pop("ndcg@10")), "{f}: row 'baseline': 'ndcg@10' must be a finite number, got missing"),
    ("no name", with_rows(lambda r: first_row(r).pop("name")), "{f}: rows[0]: 'name' must be a non-empty string, got None"),
    ("a row twice", with_rows(lambda r: r["rows"].append(first_row(r))), "{f}: row 'baseline' appears twice"),
]  # fmt: skip


@pytest.mark.parametrize("side", ["committed", "new"])
@pytest.mark.parametrize(("name", "content", "message"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_missing_or_malformed_report_is_one_line_naming_the_file_and_row(tmp_path, side, name, content, message):
    folders = {
        "committed": tmp_path / "committed" / "adapters-semanlink-mpnet",
        "new": tmp_path / "runs" / "adapters-semanlink-20261130-000000",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
        shutil.copy(COMMITTED, folder / "report.json")
    bad = folders[side] / "report.json"
    bad.unlink()
    if content is not None:
        bad.write_text(content)
    result = check(tmp_path / "runs", tmp_path / "committed")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    if side == "new" and content is None:  # the newest reproduction is found by its folder's name
        message = f"no adapters-semanlink-*/report.json under {tmp_path / 'runs'}"
    assert result.stderr.strip() == "check_reports: " + message.format(f=bad)


def test_no_reproduced_report_is_one_line(tmp_path):
    committed = tmp_path / "committed" / "adapters-semanlink-mpnet"
    committed.mkdir(parents=True)
    shutil.copy(COMMITTED, committed / "report.json")
    result = check(tmp_path / "runs", tmp_path / "committed")
    assert result.returncode == 2
    assert result.stderr.strip() == f"check_reports: no adapters-semanlink-*/report.json under {tmp_path / 'runs'}"


def test_the_tolerance_is_the_median_seed_spread_of_the_trained_rows(tmp_path):
    """A report built by hand: trained rows whose test NDCG@10 seeds span 0.03, 0.01 and 0.05 (median
    0.03), a one-seed trained row and a post-hoc row (no spread: left out). A drift of 0.029 holds; 0.031
    does not."""
    per_seed = {
        "a": [0.50, 0.51, 0.53],
        "b": [0.40, 0.40, 0.41],
        "c": [0.30, 0.35],
        "one": [0.90],
        "w": [0.20],
    }
    kinds = {"a": "train", "b": "train", "c": "train", "one": "train", "w": "posthoc"}

    def report(shift: float) -> dict:
        rows = [{"name": n, "kind": kinds[n], "ndcg@10": sum(v) / len(v) + shift} for n, v in per_seed.items()]
        results = {n: [{"test": {"ndcg@10": x}} for x in v] for n, v in per_seed.items()}
        return {"rows": rows, "results": results}

    committed = tmp_path / "committed" / "adapters-semanlink-mpnet"
    committed.mkdir(parents=True)
    (committed / "report.json").write_text(json.dumps(report(0.0)))
    for shift, code in ((0.029, 0), (0.031, 1)):
        new = tmp_path / f"runs{shift}" / "adapters-semanlink-20261130-000000"
        new.mkdir(parents=True)
        (new / "report.json").write_text(json.dumps(report(shift)))
        done = check(new.parent, tmp_path / "committed")
        assert done.returncode == code, done.stderr
        assert "(tolerance 0.0300 NDCG@10, the median seed spread)" in done.stdout
