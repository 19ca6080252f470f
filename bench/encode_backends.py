"""Encoding throughput and retrieval quality per --encode_backend: PyTorch fp32, ONNX Runtime fp32, ONNX
Runtime int8 (dynamic, per-channel MatMul weights), and, when the `openvino` package is installed,
OpenVINO compiling the fp32 ONNX export.

Throughput is texts/s on the same texts (test queries + documents of --data), after one warm-up batch.
Quality is test NDCG@10 with each backend's vectors, and the minimum cosine to the PyTorch vectors.

    .venv/bin/python bench/encode_backends.py [--base_model sentence-transformers/all-MiniLM-L6-v2] \
        [--data semanlink_smoke] [--sample 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isoadapt.data.formats import load_eval  # noqa: E402
from isoadapt.encoding.encoder import Encoder  # noqa: E402
from isoadapt.encoding.offline_models import MINILM  # noqa: E402
from isoadapt.evaluation import evaluate_split  # noqa: E402
from isoadapt.metrics.retrieval import percent_change  # noqa: E402


def measure(name: str, encode, texts: list[str], split, reference: np.ndarray | None) -> dict:
    encode(texts[:32])  # warm-up
    started = time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - started
    memo = dict(zip(texts, vectors))
    missing = [t for t in {*split.queries.values(), *split.corpus.values()} if t not in memo]
    if missing:
        memo.update(zip(missing, encode(missing)))
    ndcg = evaluate_split(split, lambda ts: np.stack([memo[t] for t in ts])).metrics["ndcg@10"]
    cosine = None
    if reference is not None:
        cosine = float(
            (
                (vectors * reference).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)
            ).min()
        )
    return {
        "name": name,
        "texts_per_s": len(texts) / seconds,
        "ndcg@10": ndcg,
        "min_cosine": cosine,
        "vectors": vectors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument("--data", default="semanlink_smoke")
    parser.add_argument("--sample", type=int, default=2000, help="texts timed (test queries first, then documents)")
    args = parser.parse_args()
    split = load_eval(Path("data/processed") / args.data / "test.json")
    texts = (list(split.queries.values()) + list(split.corpus.values()))[: args.sample]
    with tempfile.TemporaryDirectory() as cache:
        rows = []
        started = time.perf_counter()
        backends = ["torch", "onnx", "onnx-int8"]
        try:
            import openvino  # noqa: F401

            backends.append("openvino")
        except ImportError:
            print("(openvino is not installed: its row is skipped; pip install openvino)")
        encoders = {b: Encoder(args.base_model, Path(cache), show_progress=False, backend=b) for b in backends}
        print(
            f"{args.base_model}; {len(texts)} texts from {args.data}/test.json; torch threads "
            f"{torch.get_num_threads()}; "
            f"export + int8 quantisation took {time.perf_counter() - started:.1f} s (once, cached)"
        )
        reference = None
        for backend, encoder in encoders.items():
            row = measure(backend, encoder.encode, texts, split, reference)
            reference = row["vectors"] if reference is None else reference
            rows.append(row)
    base = rows[0]
    print(f"{'backend':<28}{'texts/s':>9}{'vs torch':>9}{'NDCG@10':>9}{'vs torch':>10}{'min cos':>9}")
    for row in rows:
        cos = "–" if row["min_cosine"] is None else f"{row['min_cosine']:.4f}"
        speedup = row["texts_per_s"] / base["texts_per_s"]
        print(
            f"{row['name']:<28}{row['texts_per_s']:>9.1f}{speedup:>8.2f}x{row['ndcg@10']:>9.4f}"
            f"{percent_change(row['ndcg@10'], base['ndcg@10']):>+9.2f}%{cos:>9}"
        )
    int8 = next(r for r in rows if r["name"] == "onnx-int8")
    print(
        f"onnx-int8 encodes {int8['texts_per_s'] / base['texts_per_s']:.2f}x as fast as torch fp32, "
        f"NDCG@10 {percent_change(int8['ndcg@10'], base['ndcg@10']):+.2f}% (target: >= 2x at <= 1% loss)"
    )
    best = max(
        rows[1:], key=lambda r: r["texts_per_s"] if abs(r["ndcg@10"] - base["ndcg@10"]) <= 0.01 * base["ndcg@10"] else 0
    )
    print(
        f"headline: fastest backend within 1% NDCG@10 of torch: {best['name']} at "
        f"{best['texts_per_s'] / base['texts_per_s']:.2f}x torch fp32 "
        f"(NDCG@10 {percent_change(best['ndcg@10'], base['ndcg@10']):+.2f}%)"
    )


if __name__ == "__main__":
    main()
