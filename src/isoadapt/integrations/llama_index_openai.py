"""LlamaIndex against `isoadapt serve`: `ServedEmbedding` is LlamaIndex's `OpenAIEmbedding` with each side
sent to its own model id (`NAME:query`, `NAME:document`), so a query-only head's two sides never mix.

The stock class sends one model id for queries and texts alike (its `model_name` sets both), and no side
field: with a head on both sides that is enough (the server's default side), with a query-only head the
server refuses it. This class changes only the two model ids:

    from isoadapt.integrations.llama_index_openai import ServedEmbedding

    embed_model = ServedEmbedding(model_name="minilm-query", api_base="http://127.0.0.1:8080/v1", api_key="-")
"""

from __future__ import annotations

from llama_index.embeddings.openai import OpenAIEmbedding


class ServedEmbedding(OpenAIEmbedding):
    """OpenAIEmbedding whose queries go to `NAME:query` and whose texts go to `NAME:document`."""

    def __init__(self, model_name: str, **kwargs):
        super().__init__(model_name=model_name, **kwargs)
        self._query_engine, self._text_engine = f"{model_name}:query", f"{model_name}:document"

    @classmethod
    def class_name(cls) -> str:
        return "IsoadaptServedEmbedding"
