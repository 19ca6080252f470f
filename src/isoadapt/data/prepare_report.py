"""What a `prepare` command did: counts per split and everything it dropped, with the reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from isoadapt.data.formats import EvalSet, TrainExample
from isoadapt.errors import InputError


@dataclass
class PrepareReport:
    name: str
    strict: bool = False
    lines: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, where: str, reason: str, count: int, strict_applies: bool = False) -> None:
        """Count dropped items; with --strict, dropping an item `strict_applies` to is an error instead."""
        if count <= 0:
            return
        if self.strict and strict_applies:
            raise InputError(f"{where}: {count} {reason} (--strict)")
        key = f"{reason} ({where})"
        self.dropped[key] = self.dropped.get(key, 0) + count

    def repeated_judgments(self, where: str, judgments) -> None:
        """Repeated qrels lines keep the first judgment; a conflicting repeat is an error under --strict."""
        self.drop(
            where, "conflicting repeated judgments (the first was kept)", judgments.conflicting, strict_applies=True
        )
        self.drop(where, "repeated identical judgments", judgments.repeated - judgments.conflicting)

    def split(self, name: str, split: EvalSet) -> None:
        judgments = sum(len(j) for j in split.qrels.values())
        self.lines.append(
            f"  {name}: {len(split.queries)} queries, {len(split.corpus)} documents, {judgments} judgments"
        )

    def train(self, name: str, examples: list[TrainExample]) -> None:
        self.lines.append(f"  {name}: {len(examples)} train examples")

    def render(self) -> str:
        out = [f"{self.name}:", *self.lines]
        for reason, count in self.dropped.items():
            out.append(f"  dropped {count}: {reason}")
        if not self.dropped:
            out.append("  dropped nothing")
        return "\n".join(out)


def finish_split(
    report: PrepareReport, where: str, queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]]
) -> EvalSet:
    """Drop judgments naming unknown ids and queries left without a relevant document, counting both."""
    unknown = 0
    clean: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        if qid not in queries:
            unknown += len(judged)
            continue
        for doc_id, grade in judged.items():
            if doc_id in corpus:
                clean.setdefault(qid, {})[doc_id] = grade
            else:
                unknown += 1
    report.drop(where, "judgments naming an unknown query or document id", unknown, strict_applies=True)
    relevant = {qid for qid, judged in clean.items() if any(g > 0 for g in judged.values())}
    kept = {qid: text for qid, text in queries.items() if qid in relevant}
    report.drop(where, "queries without a relevant document", len(queries) - len(kept))
    if not kept:
        raise InputError(f"{where}: no query has a relevant document")
    return EvalSet(kept, corpus, {qid: clean[qid] for qid in kept})
