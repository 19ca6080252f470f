"""A cross-model plan's report section (docs/upgrade.md): the share of the full re-embed's test NDCG@10 that each
row keeps. No torch here: the report is written and checked without it."""

from __future__ import annotations

from isoadapt.experiment.plan import Plan


def reembed_share_lines(plan: Plan, rows: list[dict]) -> list[str]:
    """Each row's mean test NDCG@10 as a share of the full re-embed's (the query model on both sides): what
    a user keeps by mapping new queries into the old index instead of embedding the corpus again."""
    reembed = next((e.name for e in plan.entries if e.kind == "baseline" and e.models == "new"), None)
    by_name = {r["name"]: r for r in rows}
    if reembed is None or not by_name[reembed].get("ndcg@10"):
        return []
    reference = by_name[reembed]["ndcg@10"]
    lines = [
        "## Share of the full re-embed",
        "",
        f"Test NDCG@10 of each row over that of **{by_name[reembed]['label']}** ({reference:.4f}), the reference a",
        "user reaches by embedding the whole corpus again with the new model (mean over seeds).",
        "",
        "Beside it, validation only: each shift probe's NDCG@10 (mean over seeds), as the rule below reads them.",
        "",
    ]
    probes = list(dict.fromkeys(n for r in rows for n in (r.get("probes") or {})))
    head = ["row", "sides", "NDCG@10", "share of the re-embed", *[f"probe {n}" for n in probes]]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    sides = {"old": "old / old", "new": "new / new", "cross": "new queries / old index"}
    for entry in plan.entries:
        row = by_name[entry.name]
        value = row.get("ndcg@10")
        if value is not None:
            cells = [entry.label, sides[entry.models], f"{value:.4f}", f"{100 * value / reference:.1f}%"]
            cells += [_probe(row, n) for n in probes]
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _probe(row: dict, name: str) -> str:
    value = (row.get("probes") or {}).get(name)
    return "–" if value is None else f"{value:.4f}"
