#!/usr/bin/env python
"""Check reproduced plan reports against the committed ones: every row's test NDCG@10 within a tolerance
derived from the committed report's own seed spread (the median, over its trained rows, of each row's
seed spread as isoadapt.experiment.spread defines it: max - min of test NDCG@10 over seeds; a drift larger
than what reseeding changes is not a reproduction). Prints a table of the
differences; exits 1 naming each row that drifts or is missing, 0 when all hold, 2 with one line naming
the file and the row when a report is missing or malformed.

    python scripts/check_reports.py --new runs/reproduce --committed docs/results --suffix semanlink-mpnet \\
        --plans research adapters
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from isoadapt.experiment.spread import seed_spread


class ReportError(Exception):
    """A report that cannot be compared: one line naming the file, the row and what is wrong."""


def newest_report(root: Path, plan: str, data: str) -> Path:
    found = sorted(root.glob(f"{plan}-{data}-*/report.json"))
    if not found:
        raise ReportError(f"no {plan}-{data}-*/report.json under {root}")
    return found[-1]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_row(path: Path, index: int, row) -> None:
    if not isinstance(row, dict):
        raise ReportError(f"{path}: rows[{index}]: expected an object, got {type(row).__name__}")
    name = row.get("name")
    if not isinstance(name, str) or not name:
        raise ReportError(f"{path}: rows[{index}]: 'name' must be a non-empty string, got {name!r}")
    where = f"{path}: row {name!r}"
    if not isinstance(row.get("kind"), str):
        raise ReportError(f"{where}: 'kind' must be a string, got {row.get('kind')!r}")
    if not _number(row.get("ndcg@10")):
        got = "missing" if "ndcg@10" not in row else repr(row["ndcg@10"])
        raise ReportError(f"{where}: 'ndcg@10' must be a finite number, got {got}")
    if row.get("ndcg@10_std") is not None and not _number(row["ndcg@10_std"]):
        raise ReportError(f"{where}: 'ndcg@10_std' must be a finite number or null, got {row['ndcg@10_std']!r}")


def load_report(path: Path) -> dict:
    """A plan's report.json, checked for what the comparison reads: a `rows` list of named rows, each with a
    kind and a finite NDCG@10, every name once."""
    if not path.is_file():
        raise ReportError(f"{path}: file not found")
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list):
        got = type(report.get("rows") if isinstance(report, dict) else report).__name__
        raise ReportError(f"{path}: expected an object with a 'rows' list, got {got}")
    seen = set()
    for index, row in enumerate(report["rows"]):
        _check_row(path, index, row)
        if row["name"] in seen:
            raise ReportError(f"{path}: row {row['name']!r} appears twice")
        seen.add(row["name"])
    _check_results(path, report)
    return report


def _check_results(path: Path, report: dict) -> None:
    """The per-seed results the tolerance reads: for each trained row, a list of seeds' test NDCG@10."""
    results = report.get("results")
    if not isinstance(results, dict):
        raise ReportError(
            f"{path}: expected a 'results' object (per-seed results by row), got {type(results).__name__}"
        )
    for row in report["rows"]:
        seeds = results.get(row["name"], [])
        if row["kind"] != "train":
            continue
        if not isinstance(seeds, list):
            raise ReportError(f"{path}: results[{row['name']!r}]: expected a list of seeds, got {type(seeds).__name__}")
        for index, seed in enumerate(seeds):
            value = (
                seed.get("test", {}).get("ndcg@10")
                if isinstance(seed, dict) and isinstance(seed.get("test"), dict)
                else None
            )
            if not _number(value):
                raise ReportError(
                    f"{path}: results[{row['name']!r}][{index}]: 'test' must hold a finite 'ndcg@10', got {value!r}"
                )


def tolerance(report: dict) -> float:
    """The median seed spread of test NDCG@10 over the trained rows with more than one seed, from the
    per-seed results the report stores."""
    per_seed = report["results"]
    spreads = [
        seed_spread(r["test"]["ndcg@10"] for r in per_seed[row["name"]])
        for row in report["rows"]
        if row["kind"] == "train" and len(per_seed.get(row["name"], [])) > 1
    ]
    return statistics.median(spreads) if spreads else 1e-4


def compare(committed: dict, new: dict) -> tuple[list[str], list[str], float]:
    """(table lines, drifting row names, tolerance)."""
    tol = tolerance(committed)
    fresh = {r["name"]: r for r in new["rows"]}
    lines, drifting = [f"{'row':<34}{'committed':>10}{'new':>10}{'diff':>10}  verdict"], []
    for row in committed["rows"]:
        name, old = row["name"], row["ndcg@10"]
        if name not in fresh:
            lines.append(f"{name:<34}{old:>10.4f}{'-':>10}{'-':>10}  MISSING")
            drifting.append(name)
            continue
        diff = fresh[name]["ndcg@10"] - old
        verdict = "ok" if abs(diff) <= tol else "DRIFT"
        lines.append(f"{name:<34}{old:>10.4f}{fresh[name]['ndcg@10']:>10.4f}{diff:>+10.4f}  {verdict}")
        if verdict != "ok":
            drifting.append(name)
    return lines, drifting, tol


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--new", type=Path, required=True, help="runs root of the reproduction")
    parser.add_argument("--committed", type=Path, default=Path("docs/results"))
    parser.add_argument("--suffix", default="semanlink-mpnet", help="committed folders are PLAN-SUFFIX")
    parser.add_argument("--plans", nargs="+", default=["research", "adapters"])
    args = parser.parse_args()
    try:
        return check_plans(args)
    except ReportError as err:
        print(f"check_reports: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def check_plans(args: argparse.Namespace) -> int:
    data = args.suffix.split("-")[0]
    failed = []
    for plan in args.plans:
        committed_file = args.committed / f"{plan}-{args.suffix}" / "report.json"
        new_file = newest_report(args.new, plan, data)
        lines, drifting, tol = compare(load_report(committed_file), load_report(new_file))
        print(f"{plan}: {new_file} against {committed_file} (tolerance {tol:.4f} NDCG@10, the median seed spread)")
        print("\n".join(lines))
        failed += [f"{plan}/{name}" for name in drifting]
    if failed:
        print(f"check_reports: drift beyond the seed spread in {', '.join(failed)}", file=sys.stderr)
        return 1
    print("check_reports: every row reproduces within the seed spread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
