"""README.md stays what a newcomer reads in five minutes, and its numbers are the committed reports' own: the
results table and the headline sentence are read back and compared with docs/results/*/report.json."""

from __future__ import annotations

import json
import re

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
REPORTS = {
    "all-MiniLM-L6-v2": REPO / "docs" / "results" / "adapters-semanlink-minilm" / "report.json",
    "all-mpnet-base-v2": REPO / "docs" / "results" / "adapters-semanlink-mpnet" / "report.json",
}
ROW = re.compile(
    r"^\| ([\w-]+) \| (.*?)\(`([\w-]+)`\)\** \| \**([\d.]+)\** \| \**([-+–\d.%]+)\** \| \**([-+–\d.%]+)\** \|$"
)


def rows_of(model: str) -> dict[str, dict]:
    report = json.loads(REPORTS[model].read_text(encoding="utf-8"))
    return {row["name"]: row for row in report["rows"]}


def percent(value: float) -> str:
    return f"{value:+.1f}%"


def results_table() -> list[re.Match]:
    section = README.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    return [m for line in section.splitlines() if (m := ROW.match(line))]


def test_the_readme_is_short_and_opens_with_the_two_commands():
    lines = README.splitlines()
    assert len(lines) <= 250
    commands = [line for line in lines[:15] if line.startswith("make ")]
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    assert not any(re.search(r"\b[0-9a-f]{7,40}\b", c) for c in commands)  # no commit hash in the set-up lines
    assert "this round" not in README


def test_the_results_table_is_the_committed_reports():
    table = results_table()
    assert {m[1] for m in table} == set(REPORTS) and len(table) >= 10
    for m in table:
        model, name, ndcg, vs_base, vs_whitening = m[1], m[3], m[4], m[5], m[6]
        rows = rows_of(model)
        row, whitening = rows[name], rows["whitening-256"]["ndcg@10"]
        assert ndcg == f"{row['ndcg@10']:.3f}", (model, name)
        assert vs_base == ("–" if name == "baseline" else percent(row["vs_baseline_pct"])), (model, name)
        expected = "–" if name == "whitening-256" else percent(100 * (row["ndcg@10"] / whitening - 1))
        assert vs_whitening == expected, (model, name)


def test_the_bold_rows_are_the_rows_each_report_recommends():
    for m in results_table():
        recommended = json.loads(REPORTS[m[1]].read_text(encoding="utf-8"))["meta"]["selection"]["picks"]["recommended"]
        assert m[0].count("**") == (8 if m[3] == recommended else 0), (m[1], m[3])


def test_the_headline_sentence_quotes_the_recommended_minilm_row():
    rows = rows_of("all-MiniLM-L6-v2")
    pick = json.loads(REPORTS["all-MiniLM-L6-v2"].read_text(encoding="utf-8"))["meta"]["selection"]["picks"]
    head, base, whitening = rows[pick["recommended"]], rows["baseline"], rows["whitening-256"]
    sentence = " ".join(README.split("\n## ", 1)[0].split())
    expected = (
        f"scores test NDCG@10 {head['ndcg@10']:.3f} against the base model's {base['ndcg@10']:.3f} "
        f"({percent(head['vs_baseline_pct'])}) and whitening-256's {whitening['ndcg@10']:.3f} "
        f"({percent(100 * (head['ndcg@10'] / whitening['ndcg@10'] - 1))})"
    )
    assert expected in sentence
