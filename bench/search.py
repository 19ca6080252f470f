"""Exact top-k search throughput: isoadapt's chunked search vs sentence_transformers.util.semantic_search.

Random unit vectors (d = 768), the same queries and corpus for both, top-100. Prints queries/s for each
and, last, the headline ratio at the largest corpus. Both must return the same top-k ids.

    .venv/bin/python bench/search.py [--sizes 100000,1000000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from sentence_transformers.util import semantic_search

from isoadapt.metrics.retrieval import top_k_cosine


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunked: keeps generation memory small
        block = rng.standard_normal((min(100_000, n - start), d), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="corpus sizes")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--top_k", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    queries = unit(rng, args.queries, args.dim)
    print(f"torch threads: {torch.get_num_threads()}; {args.queries} queries, d = {args.dim}, top-{args.top_k}")
    print(f"{'corpus':>10} {'isoadapt q/s':>14} {'semantic_search q/s':>20} {'ratio':>7} {'same ids':>9}")
    ratio = None
    for size in (int(s) for s in args.sizes.split(",")):
        corpus = unit(rng, size, args.dim)
        started = time.perf_counter()
        _, ours = top_k_cosine(queries, corpus, args.top_k)
        ours_qps = args.queries / (time.perf_counter() - started)
        started = time.perf_counter()
        hits = semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=args.top_k)
        peer_qps = args.queries / (time.perf_counter() - started)
        same = all(set(ours[i].tolist()) == {h["corpus_id"] for h in hits[i]} for i in range(args.queries))
        ratio = ours_qps / peer_qps
        print(f"{size:>10} {ours_qps:>14.1f} {peer_qps:>20.1f} {ratio:>6.2f}x {str(same):>9}")
        del corpus
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB (the 1M x 768 float32 corpus alone is {1_000_000 * args.dim * 4 / 2**20:.0f} MiB)")
    print(
        f"headline: isoadapt exact search is {ratio:.2f}x sentence_transformers.util.semantic_search at "
        "the largest corpus"
    )


if __name__ == "__main__":
    main()
