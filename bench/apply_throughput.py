"""`isoadapt apply` at scale: vectors per second and peak memory on N x 768 random vectors (default 1M),
against reading and writing the same file without the head (pyarrow alone, same batches), in one run.
Target: apply >= 0.5x the plain read+write rate, in memory that does not grow with N.

    .venv/bin/python bench/apply_throughput.py [--rows 1000000] [--dim 768]

Each measurement runs in a fresh child process, so its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

WRITE_ROWS = 100_000  # the input is written in row groups of this size


def make_input(path: Path, rows: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(path, pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), dim))])) as w:
        for start in range(0, rows, WRITE_ROWS):
            n = min(WRITE_ROWS, rows - start)
            vectors = rng.standard_normal((n, dim), dtype=np.float32)
            ids = pa.array([f"doc-{i}" for i in range(start, start + n)])
            w.write_table(pa.table({"id": ids, "vector": pa.FixedSizeListArray.from_arrays(vectors.reshape(-1), dim)}))


def make_run(folder: Path, dim: int) -> None:
    """A run folder with a random linear head, as `isoadapt train` writes it (config, head, status)."""
    import torch

    from isoadapt.head import LinearHead
    from isoadapt.owned_folders import mark_owned
    from isoadapt.training.run_folder import write_run

    folder.mkdir()
    head = LinearHead(dim)
    with torch.no_grad():
        head.linear.weight.add_(0.01 * torch.randn(dim, dim, generator=torch.Generator().manual_seed(0)))
    write_run(folder, {"config": {"base_model": "vectors:bench/random"}}, head)
    mark_owned(folder, "run")


def child(mode: str, source: str, out: str, run: str) -> None:
    """One measurement: `plain` reads and writes every batch unchanged, `apply` runs the command's code."""
    from isoadapt.data.vector_files import VectorFile
    from isoadapt.store.apply import apply_run, prefetched  # imports (torch) are not part of either measurement

    started = time.perf_counter()
    if mode == "plain":
        file = VectorFile(Path(source))
        with pq.ParquetWriter(out, file.schema) as writer:
            for batch in prefetched(file.batches(all_columns=True)):  # apply's reads, checks and overlap
                writer.write_batch(batch.table)
    else:
        apply_run(Path(run), Path(source), Path(out), model="bench/random", show_progress=False)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib}))


def measure(mode: str, source: Path, out: Path, run: Path) -> dict:
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(source), str(out), str(run)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(dir=Path.home()) as tmp:
        tmp = Path(tmp)
        make_input(tmp / "in.parquet", args.rows, args.dim)
        make_run(tmp / "run", args.dim)
        size_gib = (tmp / "in.parquet").stat().st_size / 2**30
        print(f"{args.rows} x {args.dim} float32 vectors, input parquet {size_gib:.2f} GiB")
        print(f"{'':<24}{'seconds':>9}{'vectors/s':>12}{'peak MiB':>10}")
        results = {}
        for mode in ("plain", "apply", "plain", "apply"):  # interleaved: drift on a shared VM hits both
            r = measure(mode, tmp / "in.parquet", tmp / "out.parquet", tmp / "run")
            results.setdefault(mode, []).append(r)
            label = "read+write (no head)" if mode == "plain" else "isoadapt apply"
            print(f"{label:<24}{r['seconds']:>9.1f}{args.rows / r['seconds']:>12,.0f}{r['peak_mib']:>10,.0f}")
        best = {m: min(x["seconds"] for x in rs) for m, rs in results.items()}
        peak = max(x["peak_mib"] for x in results["apply"])
        ratio = best["plain"] / best["apply"]
        print(f"apply / plain throughput (best of 2 each): {ratio:.2f}x, apply peak {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
