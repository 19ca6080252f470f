"""LanceDB's embedding function `isoadapt`, registered on import: `table.search("text")` on a table written by
`isoadapt index` then embeds the query on the run's query side, and `table.add(...)` new documents on its
document side (the function itself is `isoadapt.store.lancedb_function`, which `isoadapt index` records in
the tables it writes, under a name that tells a process without this import what to import).

    import lancedb
    import isoadapt.integrations.lancedb  # noqa: F401  (registers the function)

    table = lancedb.connect("runs/lancedb").open_table("documents")
    hits = table.search("python library for knowledge graphs").distance_type("cosine").limit(10).to_list()
"""

from __future__ import annotations

from isoadapt.store.lancedb_function import LEGACY_NAME, NAME, AdapterEmbeddings, embedding_config

__all__ = ["LEGACY_NAME", "NAME", "AdapterEmbeddings", "embedding_config"]
