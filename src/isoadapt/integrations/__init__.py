"""isoadapt's heads in the libraries users retrieve with, each side on its own path.

A both-sides export has one path, so every stock wrapper gives the adapter's vectors on both sides. A
query-only export is a sentence-transformers Router with no default route: `model.encode(texts)` without a
task raises instead of silently answering queries with base vectors, and a wrapper must name the side:

- LangChain: `isoadapt.integrations.langchain.AdapterEmbeddings(isoadapt.Adapter.load(DIR))` routes each
  side. The stock `HuggingFaceEmbeddings(model_name=DIR, encode_kwargs={"task": "document"},
  query_encode_kwargs={"task": "query"})` works only with both set: it falls back to `encode_kwargs` for
  queries, and the export cannot tell the two calls apart.
- LlamaIndex: `isoadapt.integrations.llama_index.AdapterEmbedding(model_name=DIR)`; the stock
  `HuggingFaceEmbedding` passes a prompt name to `model.encode`, never a task.
- LanceDB: `import isoadapt.integrations.lancedb`, then `table.search("text")` on a table written by
  `isoadapt index`; the stock `sentence-transformers` function calls `model.encode` for both sides.
- MLflow: the model `--tracker mlflow` logs (store/mlflow_export.py) takes `params={"task": "query"}` (or
  "document"); a query-only model's predict without a task raises.
"""
