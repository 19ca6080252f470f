"""The report's "recommendations per use" (rule 4 of experiment/recommend.py), as JSON and as lines.

A query-only head can lead in-domain and still move whole documents asked as queries away from the space the
documents live in; the documents-as-queries probes measure that. When it refuses the in-domain leader, a
user with in-domain queries only and a user with mixed traffic need different heads, each told its cost."""

from __future__ import annotations

from dataclasses import asdict

from isoadapt.experiment.recommend import Candidate, PerUse, per_use


def per_use_section(found: list[Candidate], by_name: dict) -> tuple[dict | None, list[str]]:
    """Rule 4 over the rule's candidates: its JSON record (None without the probe) and its report lines."""
    uses = per_use(found)
    if uses is None:
        return None, []
    return {**asdict(uses), "one_head": uses.one_head}, per_use_lines(uses, by_name)


def per_use_lines(uses: PerUse, by_name: dict) -> list[str]:
    """Rule 4 in words: one head for every use, or the head for each use with what it costs."""
    names = ", ".join(f"`probe_{p}`" for p in uses.probes)
    probe = f"the documents-as-queries probe{'s' if len(uses.probes) > 1 else ''} ({names})"
    if uses.one_head:
        label = by_name[uses.mixed]["label"]
        return [
            f"One head serves both uses: {label} (`{uses.mixed}`) is the rule's pick with and without {probe}.",
            "",
        ]
    lines = ["Recommendations per use: no head both leads in-domain and holds " + probe + ".", ""]
    if uses.in_domain:
        home = by_name[uses.in_domain]
        change = uses.in_domain_documents_change
        shown = "not scored" if change is None else f"{change:+.1f}% NDCG@10 against the base model"
        shown += f" on `probe_{uses.worst_probe}`" if uses.worst_probe and len(uses.probes) > 1 else ""
        lines.append(
            f"- In-domain queries only: {home['label']} (`{uses.in_domain}`), test NDCG@10 "
            f"{home['ndcg@10']:.4f}; its cost: documents as queries {shown} (validation probe)."
        )
    if uses.mixed:
        mixed, cost = by_name[uses.mixed], uses.mixed_val_cost
        home_test = by_name[uses.in_domain]["ndcg@10"] if uses.in_domain else None
        test_cost = "" if home_test is None else f", test {mixed['ndcg@10'] - home_test:+.4f}"
        lines.append(
            f"- Mixed traffic (queries that may be whole documents): {mixed['label']} (`{uses.mixed}`), test NDCG@10 "
            f"{mixed['ndcg@10']:.4f}; its cost: in-domain validation NDCG@10 "
            f"{'n/a' if cost is None else f'{-cost:+.4f}'}{test_cost} against the in-domain head."
        )
    else:
        lines.append("- Mixed traffic: no trained head holds every probe; keep the base model or a post-hoc row.")
    return lines + [""]
