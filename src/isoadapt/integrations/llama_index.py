"""LlamaIndex over an isoadapt export: `AdapterEmbedding` is LlamaIndex's `HuggingFaceEmbedding` with each
side sent down its own sentence-transformers route.

The stock wrapper calls `model.encode(texts, prompt_name="query")` for queries and `prompt_name="text"` for
documents, and never names a task; its constructor passes extra arguments to `SentenceTransformer(...)`,
not to `encode`, so no setting routes a query-only export (a Router whose query route holds the head): on
ours `encode` without a task raises. This class makes the same call with the task added, so a both-sides
export gives the same vectors as the stock wrapper and a query-only one gives the head's on queries and the
base model's on documents:

    from isoadapt.integrations.llama_index import AdapterEmbedding

    embed_model = AdapterEmbedding(model_name="exports/minilm-query")
    embed_model.get_query_embedding("python library for knowledge graphs")  # through the head
    embed_model.get_text_embedding("Python library")  # the base model's vector: the existing index stays
"""

from __future__ import annotations

import json
from pathlib import Path

from llama_index.embeddings.huggingface import HuggingFaceEmbedding

TASKS = {"query": "query", "text": "document"}  # LlamaIndex's prompt name -> sentence-transformers' task


def _export_prompts(model_name) -> dict:
    """The prompts an export folder's config_sentence_transformers.json holds (isoadapt writes the run's
    query and document prompts there); {} for a hub id or a folder without them."""
    config = Path(str(model_name)) / "config_sentence_transformers.json"
    if model_name is None or not config.is_file():
        return {}
    prompts = json.loads(config.read_text(encoding="utf-8")).get("prompts")
    return prompts if isinstance(prompts, dict) else {}


class AdapterEmbedding(HuggingFaceEmbedding):
    """HuggingFaceEmbedding that names the sentence-transformers task of each side (single process)."""

    def __init__(self, *args, **kwargs):
        if kwargs.get("parallel_process"):
            raise ValueError("AdapterEmbedding: parallel_process is not supported; it encodes in this process")
        super().__init__(*args, **kwargs)
        # LlamaIndex passes SentenceTransformer prompts={"query": ..., "text": ...} (its instructions, "" when
        # not given), which replace the export's own prompts: an export's prompts are put back unless given.
        saved = _export_prompts(kwargs.get("model_name", args[0] if args else None))
        if kwargs.get("query_instruction") is None and "query" in saved:
            self._model.prompts["query"] = saved["query"]
        if kwargs.get("text_instruction") is None and "document" in saved:
            self._model.prompts["text"] = saved["document"]

    @classmethod
    def class_name(cls) -> str:
        return "IsoadaptAdapterEmbedding"

    def _embed(self, inputs: list, prompt_name: str | None = None) -> list[list[float]]:
        if prompt_name not in TASKS:
            raise ValueError(f"AdapterEmbedding: embeds texts as 'query' or 'text', not prompt {prompt_name!r}")
        embeddings = self._model.encode(
            inputs,
            batch_size=self.embed_batch_size,
            prompt_name=prompt_name,
            task=TASKS[prompt_name],
            normalize_embeddings=self.normalize,
            show_progress_bar=self.show_progress_bar,
        )
        return embeddings.tolist()
