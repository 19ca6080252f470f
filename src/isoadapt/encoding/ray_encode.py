"""Encoding on Ray: Ray Data feeds the texts to a pool of actors, each holding one copy of the model, and
streams (text, vector) batches back to the driver, which alone writes the cache.

Why the driver writes: the cache then needs no shared filesystem, no cross-node lock, and a worker that
dies mid-batch cannot leave half a shard; Ray restarts the actor and retries its batch (`max_restarts`,
`max_task_retries`), and a batch the driver never received is simply not in the cache. The cost is the
driver's write bandwidth and the object store's transfer of every vector (3 KiB per 768-dim vector),
which bench/ray_encode.py measures. Shards are flushed every SHARD_ROWS texts, so an interrupted encode
resumes from what was flushed.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from tqdm.auto import tqdm

from isoadapt.encoding.cache import SHARD_ROWS, EmbeddingCache

log = logging.getLogger(__name__)

BATCH_ROWS = 256  # texts per actor call: large enough to amortise Ray's per-batch overhead


class EncodeActor:
    """One model per actor, loaded once; torch uses the CPUs Ray gave the actor, not the whole machine."""

    def __init__(self, spec, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.encoder = spec()

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"text": batch["text"], "vector": self.encoder.encode(texts)}


def start_ray(address: str | None, workers: int):
    """Join a cluster (`--ray_address`), or start a local one sized to this machine; returns whether we
    started it (and so must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), **options)
    return True


def encode_on_ray(texts: list[str], spec, cache: EmbeddingCache, workers: int, address: str | None) -> None:
    import ray

    started = start_ray(address, workers)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours below counts what reached the cache
        threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // workers)
        by_length = sorted(texts, key=len, reverse=True)  # a Ray batch holds neighbours in length: little padding
        dataset = ray.data.from_items([{"text": t} for t in by_length]).map_batches(
            EncodeActor,
            fn_constructor_args=(spec, threads),
            batch_size=BATCH_ROWS,
            # one batch at a time per actor: a second one queued in the same actor would run in a thread
            # beside it, and two torch calls would fight over the actor's cores
            compute=ray.data.ActorPoolStrategy(
                size=workers, max_tasks_in_flight_per_actor=1, max_concurrent_calls_per_actor=1
            ),
            num_cpus=threads,
            max_restarts=-1,  # a killed actor process is restarted ...
            max_task_retries=-1,  # ... and its batch retried
        )
        pending_texts, pending_vectors = [], []
        with tqdm(total=len(texts), desc=f"encoding on Ray ({workers} actors)", unit="text") as bar:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                pending_texts += [str(t) for t in batch["text"]]
                pending_vectors.append(np.asarray(batch["vector"], dtype=np.float32))
                bar.update(len(batch["text"]))
                if len(pending_texts) >= SHARD_ROWS:
                    cache.add(pending_texts, np.concatenate(pending_vectors))
                    pending_texts, pending_vectors = [], []
        if pending_texts:
            cache.add(pending_texts, np.concatenate(pending_vectors))
    finally:
        if started:
            ray.shutdown()
