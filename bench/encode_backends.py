"""Encoding throughput and retrieval quality per backend: PyTorch fp32, ONNX Runtime fp32, ONNX Runtime
int8 (dynamic, per-channel MatMul weights), and, when the `openvino` package is installed, OpenVINO
running the same ONNX files.

Throughput is texts/s on the same texts (test queries + documents of --data), after one warm-up batch.
Quality is test NDCG@10 with each backend's vectors, and the minimum cosine to the PyTorch vectors.

    .venv/bin/python bench/encode_backends.py [--base_model sentence-transformers/all-MiniLM-L6-v2] [--data semanlink_smoke] [--sample 2000]
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
from isoadapt.encoder import Encoder  # noqa: E402
from isoadapt.evaluate import evaluate_split  # noqa: E402
from isoadapt.models import MINILM  # noqa: E402


class OpenVinoRunner:
    """The same ONNX file compiled by OpenVINO (optional dependency)."""

    def __init__(self, encoder: Encoder, onnx_path: Path):
        import openvino as ov

        self.model = ov.Core().compile_model(str(onnx_path), "CPU")
        self.encoder = encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        runner = self.encoder.runner
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.encoder.dim), dtype=np.float32)
        for start in range(0, len(texts), self.encoder.batch_size):
            picked = order[start : start + self.encoder.batch_size]
            tokens = runner.tokenizer([texts[i] for i in picked], padding=True, truncation=True, max_length=runner.max_length, return_tensors="np")
            result = self.model({"input_ids": tokens["input_ids"].astype(np.int64), "attention_mask": tokens["attention_mask"].astype(np.int64)})
            out[picked] = next(iter(result.values()))
        if runner.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


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
        cosine = float(((vectors * reference).sum(axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(reference, axis=1)).min())
    return {"name": name, "texts_per_s": len(texts) / seconds, "ndcg@10": ndcg, "min_cosine": cosine, "vectors": vectors}


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
        encoders = {b: Encoder(args.base_model, Path(cache), show_progress=False, backend=b) for b in ("torch", "onnx", "onnx-int8")}
        print(f"{args.base_model}; {len(texts)} texts from {args.data}/test.json; torch threads {torch.get_num_threads()}; "
              f"export + int8 quantisation took {time.perf_counter() - started:.1f} s (once, cached)")
        reference = None
        for backend, encoder in encoders.items():
            row = measure(backend, encoder.encode, texts, split, reference)
            reference = row["vectors"] if reference is None else reference
            rows.append(row)
        try:
            for backend in ("onnx", "onnx-int8"):
                onnx_file = next((Path(cache) / "onnx").glob(f"*/model{'-int8' if backend == 'onnx-int8' else ''}.onnx"))
                rows.append(measure(f"openvino ({backend} file)", OpenVinoRunner(encoders[backend], onnx_file).encode, texts, split, reference))
        except ImportError:
            print("(openvino is not installed: its rows are skipped; pip install openvino)")
    base = rows[0]
    print(f"{'backend':<28}{'texts/s':>9}{'vs torch':>9}{'NDCG@10':>9}{'vs torch':>10}{'min cos':>9}")
    for row in rows:
        cos = "–" if row["min_cosine"] is None else f"{row['min_cosine']:.4f}"
        print(f"{row['name']:<28}{row['texts_per_s']:>9.1f}{row['texts_per_s'] / base['texts_per_s']:>8.2f}x{row['ndcg@10']:>9.4f}"
              f"{100 * (row['ndcg@10'] - base['ndcg@10']) / base['ndcg@10']:>+9.2f}%{cos:>9}")
    int8 = next(r for r in rows if r["name"] == "onnx-int8")
    print(f"headline: onnx-int8 encodes {int8['texts_per_s'] / base['texts_per_s']:.2f}x as fast as torch fp32, "
          f"NDCG@10 {100 * (int8['ndcg@10'] - base['ndcg@10']) / base['ndcg@10']:+.2f}% (target: >= 2x at <= 1% loss)")


if __name__ == "__main__":
    main()
