"""LangChain over an isoadapt adapter: `AdapterEmbeddings` is a LangChain `Embeddings` whose `embed_query`
sends each query down the adapter's query side and `embed_documents` each document down its document side,
so no setting can mix them up:

    import isoadapt
    from isoadapt.integrations.langchain import AdapterEmbeddings

    embeddings = AdapterEmbeddings(isoadapt.Adapter.load("runs/minilm-query"))  # a run or an export folder
    embeddings.embed_query("python library for knowledge graphs")  # through the head
    embeddings.embed_documents(["Python library"])  # a query-only head: the base vectors, normalised

The stock `HuggingFaceEmbeddings` calls the same `model.encode` for both methods and takes the side from its
kwargs: on a query-only export, `encode_kwargs={"task": "document"}` alone (no `query_encode_kwargs`) gives
queries the document route, the base vectors, and the export cannot tell the two calls apart (both are
`encode(texts, task="document")`). Naming no task at all raises (the export's Router has no default route).

It wraps an object, not a path: `isoadapt.Adapter` lives above the integrations (it is the API every command
calls), so this module takes one built by the caller, or anything with sentence-transformers'
`encode_query` / `encode_document` (a `SentenceTransformer` loaded from an export works too)."""

from __future__ import annotations

import numpy as np
from langchain_core.embeddings import Embeddings

from isoadapt.errors import InputError


class AdapterEmbeddings(Embeddings):
    """LangChain's `Embeddings` over an adapter's two sides; outputs are L2-normalised, as the run scores."""

    def __init__(self, adapter) -> None:
        missing = [name for name in ("encode_query", "encode_document") if not callable(getattr(adapter, name, None))]
        if missing:
            raise InputError(
                f"AdapterEmbeddings: expected an isoadapt.Adapter (or a SentenceTransformer), got "
                f"{type(adapter).__name__} without {' / '.join(missing)}"
            )
        self.adapter = adapter

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Each text on the adapter's document side (a query-only head: the base model's vector)."""
        texts = list(texts)
        if not texts:
            return []
        return np.asarray(self.adapter.encode_document(texts), dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The text on the adapter's query side."""
        if not isinstance(text, str):
            raise InputError(f"AdapterEmbeddings.embed_query: expected one text (a str), got {type(text).__name__}")
        return np.asarray(self.adapter.encode_query([text]), dtype=np.float32)[0].tolist()
