"""LanceDB's ANN indexes against exact search: recall@10 and queries per second, on N unit vectors
(default 100k x 768, synthetic: 1,000 Gaussian clusters plus a shared offset, the anisotropy a real
encoder shows), for the index types `isoadapt index` users would add. Exact search is LanceDB's own
flat scan (no index), checked against isoadapt's exact_search on the first queries.

    .venv/bin/python bench/lancedb_recall.py [--rows 100000] [--dim 768] [--queries 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from isoadapt.metrics.retrieval import top_k_cosine


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(rows: int, queries: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    offset = 3.0 * rng.standard_normal(dim, dtype=np.float32)
    docs = centres[rng.integers(0, 1000, rows)] + offset + 0.8 * rng.standard_normal((rows, dim), dtype=np.float32)
    picked = centres[rng.integers(0, 1000, queries)] + offset
    return unit(docs), unit(picked + 0.8 * rng.standard_normal((queries, dim), dtype=np.float32))


def ranked(table, queries: np.ndarray, k: int, **options) -> tuple[list[list[int]], float]:
    started, found = time.perf_counter(), []
    for q in queries:
        search = table.search(q).metric("cosine").limit(k)
        if options.get("exact"):
            search = search.bypass_vector_index()
        if options.get("nprobes"):
            search = search.nprobes(options["nprobes"])
        if options.get("refine"):
            search = search.refine_factor(options["refine"])
        found.append([row["id"] for row in search.to_list()])
    return found, len(queries) / (time.perf_counter() - started)


def recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def main() -> None:
    import lancedb

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    docs, queries = synthetic(args.rows, args.queries, args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        db = lancedb.connect(str(Path(tmp) / "db"))
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(docs.reshape(-1)), args.dim)
        table = db.create_table("docs", data=pa.table({"id": pa.array(np.arange(args.rows)), "vector": vectors}))
        truth, exact_qps = ranked(table, queries, 10, exact=True)
        _, ours = top_k_cosine(queries[:20], docs, 10)
        assert all(set(t) == set(o.tolist()) for t, o in zip(truth[:20], ours)), "LanceDB flat != exact_search"
        print(f"{args.rows} x {args.dim} unit vectors, {args.queries} queries, cosine, k = 10")
        print(f"{'index':<34}{'build s':>9}{'recall@10':>11}{'queries/s':>11}")
        print(f"{'none (flat scan, exact)':<34}{'-':>9}{1.0:>11.3f}{exact_qps:>11.1f}")
        settings = [
            (
                "IVF_PQ",
                {"num_partitions": 256, "num_sub_vectors": args.dim // 8},
                [{"nprobes": 20}, {"nprobes": 20, "refine": 10}],
            ),
            ("IVF_HNSW_SQ", {"num_partitions": 64}, [{"nprobes": 10}]),
        ]
        for index_type, build, searches in settings:
            started = time.perf_counter()
            table.create_index(metric="cosine", index_type=index_type, **build)
            built = time.perf_counter() - started
            for options in searches:
                found, qps = ranked(table, queries, 10, **options)
                label = f"{index_type} " + " ".join(f"{k}={v}" for k, v in options.items())
                print(f"{label:<34}{built:>9.1f}{recall(found, truth):>11.3f}{qps:>11.1f}")
        print("recall@10 is against LanceDB's exact flat scan of the same table (itself equal to exact_search)")


if __name__ == "__main__":
    main()
