"""Encoding locally vs on Ray (1 and 2 actors) on this machine, Ray's overhead per batch, and the driver's
cache write bandwidth: the measurements behind bench/README.md's MS MARCO estimate.

    .venv/bin/python bench/ray_encode.py [--texts 256] [--base_model sentence-transformers/all-mpnet-base-v2]

Ray rows include starting Ray and loading one model per actor (they are reported apart as well).
The overhead row runs the same Ray pipeline with an encoder that returns zeros at once: its time per
batch is what Ray adds to every batch (scheduling, object transfer, the driver's loop).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from isoadapt.data.formats import load_eval  # noqa: E402
from isoadapt.encoding.cache import EmbeddingCache  # noqa: E402
from isoadapt.encoding.encode_command import EncoderSpec  # noqa: E402
from isoadapt.encoding.offline_models import MPNET  # noqa: E402
from isoadapt.encoding.ray_encode import BATCH_ROWS, encode_on_ray  # noqa: E402
from isoadapt.training.config import DEFAULT_CACHE_DIR  # noqa: E402


class Zeros:
    """An encoder with no cost: what is left of a Ray run is Ray's own overhead."""

    fingerprint = "0" * 64
    identity = {"bench": "zeros"}
    dim = 768

    def encode(self, texts):
        return np.zeros((len(texts), self.dim), dtype=np.float32)


@dataclass(frozen=True)
class ZeroSpec:
    def __call__(self):
        return Zeros()


def ray_run(texts, spec, workers: int, fingerprint: str, identity: dict) -> float:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp), fingerprint, identity)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter()
        try:
            encode_on_ray(texts, spec, cache, workers, None)
        finally:
            seconds = time.perf_counter() - started
            ray.shutdown()
        assert not cache.missing(texts)
    return seconds


def write_bandwidth(dim: int = 768, rows: int = 65_536) -> float:
    vectors = np.random.default_rng(0).standard_normal((rows, dim), dtype=np.float32)
    texts = [f"t{i}" for i in range(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp), "f" * 64, {"bench": "write"})
        started = time.perf_counter()
        cache.add(texts, vectors)
        seconds = time.perf_counter() - started
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MPNET)
    parser.add_argument("--data", default="data/processed/semanlink/test.json")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--overhead_texts", type=int, default=51_200)
    args = parser.parse_args()
    split = load_eval(args.data)
    texts = list(split.queries.values()) + list(split.corpus.values())
    random.Random(0).shuffle(texts)
    texts = texts[: args.texts]
    spec = EncoderSpec(args.base_model, str(DEFAULT_CACHE_DIR))
    encoder = spec()
    load_started = time.perf_counter()
    spec()
    load_seconds = time.perf_counter() - load_started
    encoder.encode(texts[:16])
    started = time.perf_counter()
    encoder.encode(texts)
    local = len(texts) / (time.perf_counter() - started)
    print(f"{args.base_model}: {len(texts)} texts; model load {load_seconds:.1f} s; torch threads as configured")
    print(f"{'engine':<38}{'seconds':>9}{'texts/s':>9}{'vs local':>10}")
    print(f"{'local (this process, warm)':<38}{len(texts) / local:>9.1f}{local:>9.1f}{1.0:>10.2f}")
    half = texts[: len(texts) // 2]
    print(f"{'':<38}(Ray rows: steady rate = the slope between {len(half)} and {len(texts)} texts)")
    ratios = {}
    for workers in (1, 2):
        small = ray_run(half, spec, workers, encoder.fingerprint, encoder.identity)
        seconds = ray_run(texts, spec, workers, encoder.fingerprint, encoder.identity)
        rate = len(texts) / seconds
        print(f"{f'Ray, {workers} actor(s), incl. start and load':<38}{seconds:>9.1f}{rate:>9.1f}{rate / local:>10.2f}")
        steady = (len(texts) - len(half)) / (seconds - small)
        label = f"Ray, {workers} actor(s), steady state"
        startup = seconds - len(texts) / steady
        print(f"{label:<38}{'':>9}{steady:>9.1f}{steady / local:>10.2f}   (start-up {startup:.1f} s)")
        ratios[workers] = rate / local
    # Ray's own cost per batch: the slope between two sizes, so actor start-up cancels out
    small, large = args.overhead_texts // 4, args.overhead_texts
    times = {
        n: ray_run([f"text {i}" for i in range(n)], ZeroSpec(), 2, Zeros.fingerprint, Zeros.identity)
        for n in (small, large)
    }
    per_batch = (times[large] - times[small]) / ((large - small) / BATCH_ROWS)
    print(f"Ray overhead, zero-cost encoder, 2 actors, batches of {BATCH_ROWS}:", end=" ")
    print(f"{small} texts {times[small]:.1f} s, {large} texts {times[large]:.1f} s")
    print(f"  slope: {1000 * per_batch:.1f} ms per batch ({BATCH_ROWS / per_batch:,.0f} texts/s ceiling of one driver)")
    bandwidth = write_bandwidth()
    print(
        f"driver cache writes (768-dim float32): {bandwidth:,.0f} vectors/s ({bandwidth * 768 * 4 / 2**20:,.0f} MiB/s)"
    )
    print(
        f"headline: local {local:.1f} texts/s; Ray with start-up {ratios[1]:.2f}x local (1 actor), "
        f"{ratios[2]:.2f}x (2 actors); Ray per-batch overhead {1000 * per_batch:.1f} ms"
    )


if __name__ == "__main__":
    main()
