"""Training time per epoch and memory for N = 10K, 100K and 1M cached pairs at d = 768 (synthetic).

Each size runs in its own process, through the product's path: vectors are written to an EmbeddingCache
(64K-row shards, float32 or float16), then one epoch of the Exp 1 objective runs on them the way
`isoadapt train` does: gathered into RAM when the training vectors fit in 1 GiB, else read batch by batch
from the memory-mapped shards. Prints seconds per epoch, time per pair, bytes per vector, and peak memory:
RssAnon (private memory; what the process itself holds) and the whole RSS (which also counts cache-file
pages the kernel has mapped in; those are reclaimable page cache).

    .venv/bin/python bench/scaling.py [--sizes 10000,100000,1000000] [--storage float32|float16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_memory_mib() -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    import resource

    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    anon_now = int(status.get("RssAnon", "0 kB").split()[0]) / 1024
    return rss_peak, anon_now


class SyntheticEncoder:
    """Stands in for the frozen encoder: random unit vectors, fast, with the identity the cache needs."""

    def __init__(self, dim: int):
        self.dim, self.rng = dim, np.random.default_rng(0)
        self.identity = {"synthetic": dim}
        self.fingerprint = f"synthetic-{dim}".ljust(64, "0")

    def encode(self, texts: list[str]) -> np.ndarray:
        v = self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def one_size(pairs: int, storage: str, dim: int, cache_root: Path) -> dict:
    import torch

    from isoadapt.encoding.cache import IN_MEMORY_BYTES, CachedVectors
    from isoadapt.training.config import TrainConfig
    from isoadapt.training.loop import TrainTable
    from isoadapt.training.trainable import train_head

    vectors = CachedVectors(SyntheticEncoder(dim), cache_root, storage)
    texts = [f"q{i}" for i in range(pairs)] + [f"p{i}" for i in range(pairs)]
    started = time.perf_counter()
    vectors.locate(texts)  # writes the cache in its own shards
    write_seconds = time.perf_counter() - started
    table = TrainTable(
        texts,
        torch.arange(pairs),
        torch.arange(pairs, 2 * pairs),
        torch.full((pairs,), -1),
        torch.unique(torch.arange(pairs) * (2 * pairs) + torch.arange(pairs, 2 * pairs)),
    )
    started = time.perf_counter()  # the product's recipe; cached_embed keeps vectors in RAM when they fit
    _, history = train_head(TrainConfig.settings_only(epochs=1), vectors, table)
    epoch_seconds = time.perf_counter() - started
    rss_peak, anon = peak_memory_mib()
    bytes_per_vector = np.dtype(storage).itemsize * dim
    return {
        "pairs": pairs,
        "storage": storage,
        "steps": len(history),
        "epoch_seconds": round(epoch_seconds, 2),
        "us_per_pair": round(1e6 * epoch_seconds / pairs, 1),
        "cache_write_seconds": round(write_seconds, 1),
        "bytes_per_vector": bytes_per_vector,
        "cache_mib": round(2 * pairs * bytes_per_vector / 2**20, 1),
        "peak_rss_mib": round(rss_peak, 1),
        "rss_anon_mib": round(anon, 1),
        "path": "RAM" if 2 * pairs * dim * 4 <= IN_MEMORY_BYTES else "memory-mapped",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--storage", default="float32", choices=["float32", "float16"])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--shard_rows", type=int, help="texts per cache shard (default: the cache's own)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size in this process
    parser.add_argument("--cache_root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        if args.shard_rows:
            import isoadapt.encoding.cache

            isoadapt.encoding.cache.SHARD_ROWS = args.shard_rows  # what the shard-size A/B in bench/README.md varies
        print(json.dumps(one_size(args.one, args.storage, args.dim, Path(args.cache_root))))
        return
    rows = []
    print(
        f"{'pairs':>9} {'storage':>8} {'path':>14} {'s/epoch':>8} {'us/pair':>8} {'B/vector':>9} "
        f"{'cache MiB':>10} {'RssAnon MiB':>12} {'peak RSS MiB':>13}"
    )
    for pairs in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="isoadapt-scaling-") as tmp:  # outside the working tree
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    str(pairs),
                    "--storage",
                    args.storage,
                    "--dim",
                    str(args.dim),
                    "--cache_root",
                    tmp,
                    *(["--shard_rows", str(args.shard_rows)] if args.shard_rows else []),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['pairs']:>9} {row['storage']:>8} {row['path']:>14} {row['epoch_seconds']:>8} "
            f"{row['us_per_pair']:>8} {row['bytes_per_vector']:>9} {row['cache_mib']:>10} "
            f"{row['rss_anon_mib']:>12} {row['peak_rss_mib']:>13}"
        )
    growth = rows[-1]["epoch_seconds"] / rows[0]["epoch_seconds"]
    size_growth = rows[-1]["pairs"] / rows[0]["pairs"]
    print(
        f"headline: {size_growth:.0f}x the pairs took {growth:.1f}x the time per epoch (linear = {size_growth:.0f}x); "
        f"private memory at the largest size {rows[-1]['rss_anon_mib']} MiB for a {rows[-1]['cache_mib']} MiB cache"
    )


if __name__ == "__main__":
    main()
