"""Which text a side's vector is made from: the base model's query and document prompts, prepended.

sentence-transformers applies a prompt by prepending it to each text (`encode(texts, prompt=...)`,
`encode_query`, `encode_document`). When the model's pooling counts the prompt's tokens (`include_prompt`,
true for every model but Instructor-style ones, which are refused here), the vector of (prompt, text) is
the vector of the string `prompt + text`. So isoadapt prompts the texts once, where they enter (a split,
training pairs, STS pairs, a query to search), and everything after sees plain strings: the embedding
cache is keyed by the text the model saw, so a prompted text never reads the unprompted row; every
backend (PyTorch, ONNX, OpenVINO) sees the same string; and the model's fingerprint is unchanged, so the
caches and reports of models without prompts stay valid.

Which prompt is which side: `--query_prompt` / `--document_prompt` when given (an empty string means no
prompt), else the model's own `prompts` (config_sentence_transformers.json) by sentence-transformers'
names: "query" for queries; "document", "passage" or "corpus" (the first present, the order of
sentence-transformers' `encode_document`) for documents; a side with none of its names takes the model's
`default_prompt_name` prompt, as plain `encode` applies it to every text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from isoadapt.data.formats import EvalSet, StsPairs, TrainExample
from isoadapt.errors import InputError
from isoadapt.fileio import read_json

QUERY_NAMES = ("query",)  # the model's prompt names for the query side, in order of preference
DOCUMENT_NAMES = ("document", "passage", "corpus")  # and for the document side: sentence-transformers' order
MODEL_CONFIG = "config_sentence_transformers.json"  # where a SentenceTransformer folder keeps its prompts


@dataclass(frozen=True)
class Prompts:
    """The text prepended to queries and to documents before they are encoded ("" for none)."""

    query: str = ""
    document: str = ""

    def __bool__(self) -> bool:
        return bool(self.query or self.document)

    def as_dict(self) -> dict[str, str]:
        return {"query": self.query, "document": self.document}

    def texts(self, texts: list[str], side: str) -> list[str]:
        """The texts as the encoder sees them on `side` ("query" or "document")."""
        if side not in ("query", "document"):
            raise InputError(f"side {side!r}: expected 'query' or 'document'")
        prompt = self.query if side == "query" else self.document
        return [prompt + t for t in texts] if prompt else list(texts)

    def both_sides(self, texts: list[str]) -> list[str]:
        """Every text on both sides, once (what `isoadapt encode` caches when it cannot tell the sides apart)."""
        return list(dict.fromkeys([*self.texts(texts, "query"), *self.texts(texts, "document")]))

    def split(self, split: EvalSet) -> EvalSet:
        """Queries prompted as queries, the corpus as documents; ids and judgments unchanged."""
        if not self:
            return split
        queries = dict(zip(split.queries, self.texts(list(split.queries.values()), "query")))
        corpus = dict(zip(split.corpus, self.texts(list(split.corpus.values()), "document")))
        return replace(split, queries=queries, corpus=corpus)

    def examples(self, examples: list[TrainExample]) -> list[TrainExample]:
        """A pair's query as a query; its positive and negative as documents."""
        if not self:
            return examples
        q, d = self.query, self.document
        return [
            TrainExample(q + e.query, d + e.positive, None if e.negative is None else d + e.negative) for e in examples
        ]

    def sts(self, pairs: StsPairs) -> StsPairs:
        """sentence1 as a query, sentence2 as a document: the sides the evaluation routes them through."""
        if not self:
            return pairs
        return replace(
            pairs, sentence1=self.texts(pairs.sentence1, "query"), sentence2=self.texts(pairs.sentence2, "document")
        )


NO_PROMPTS = Prompts()


def model_prompts(folder: Path) -> Prompts:
    """The prompts a SentenceTransformer folder defines for each side (see the module's docstring)."""
    config_file = folder / MODEL_CONFIG
    config = read_json(config_file) if config_file.is_file() else {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    prompts = prompts if isinstance(prompts, dict) else {}
    default = prompts.get(config.get("default_prompt_name"), "") if isinstance(config, dict) else ""

    def first(names: tuple[str, ...]) -> str:
        value = next((prompts[n] for n in names if n in prompts), default)
        if not isinstance(value, str):
            raise InputError(f"{config_file}: prompt {names[0]!r} is {value!r}, not a string")
        return value

    return Prompts(first(QUERY_NAMES), first(DOCUMENT_NAMES))


def resolve_prompts(folder: Path, query_prompt: str | None = None, document_prompt: str | None = None) -> Prompts:
    """The prompts a run applies: each given one (None: not given) over the model's own."""
    own = model_prompts(folder)
    prompts = Prompts(
        own.query if query_prompt is None else query_prompt,
        own.document if document_prompt is None else document_prompt,
    )
    if prompts and not _pooling_includes_prompt(folder):
        raise InputError(
            f"--base_model {folder}: its pooling leaves the prompt's tokens out (include_prompt false, as "
            "Instructor models do); isoadapt supports prompts only for models whose pooling includes them"
        )
    return prompts


def _pooling_includes_prompt(folder: Path) -> bool:
    modules_file = folder / "modules.json"
    modules = read_json(modules_file) if modules_file.is_file() else []
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            pooling_file = folder / str(module.get("path", "")) / "config.json"
            pooling = read_json(pooling_file) if pooling_file.is_file() else {}
            if isinstance(pooling, dict) and pooling.get("include_prompt", True) is False:
                return False
    return True
