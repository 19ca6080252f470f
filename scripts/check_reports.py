#!/usr/bin/env python
"""Check reproduced plan reports against the committed ones: every row's test NDCG@10 within a tolerance
derived from the committed report's own seed spread (the median, over its trained rows, of each row's
seed spread as isoadapt.experiment.spread defines it: max - min of test NDCG@10 over seeds; a drift larger
than what reseeding changes is not a reproduction). Prints a table of the
differences; exits 1 naming each row that drifts or is missing, 0 when all hold.

    python scripts/check_reports.py --new runs/reproduce --committed docs/results --suffix semanlink-mpnet \\
        --plans research adapters
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from isoadapt.experiment.spread import seed_spread


def newest_report(root: Path, plan: str, data: str) -> Path:
    found = sorted(root.glob(f"{plan}-{data}-*/report.json"))
    if not found:
        raise SystemExit(f"check_reports: no {plan}-{data}-*/report.json under {root}")
    return found[-1]


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
    data = args.suffix.split("-")[0]
    failed = []
    for plan in args.plans:
        committed_file = args.committed / f"{plan}-{args.suffix}" / "report.json"
        new_file = newest_report(args.new, plan, data)
        lines, drifting, tol = compare(json.loads(committed_file.read_text()), json.loads(new_file.read_text()))
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
