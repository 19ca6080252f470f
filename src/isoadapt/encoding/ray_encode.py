"""Encoding on Ray: Ray Data feeds the texts to a pool of actors, each holding one copy of the model, and
streams (text, vector) batches back to the driver, which alone writes the cache.

Why the driver writes: the cache then needs no shared filesystem, no cross-node lock, and a worker that
dies mid-batch cannot leave half a shard; Ray restarts the actor and retries its batch (Ray Data's
defaults: `max_restarts` and `max_task_retries` -1), and a batch the driver never received is simply not in
the cache. The cost is the driver's write bandwidth and the object store's transfer of every vector
(3 KiB per 768-dim vector), which bench/ray_encode.py measures. Shards are flushed every SHARD_ROWS
texts, so an interrupted encode resumes from what was flushed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

import numpy as np

from isoadapt.encoding.cache import SHARD_ROWS, EmbeddingCache
from isoadapt.errors import InputError, describe
from isoadapt.progress import progress

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


CONNECT_SECONDS = 5  # how long --ray_address may take to answer before the command gives up, with one line


def check_ray_address(address: str | None) -> None:
    """A --ray_address must be HOST:PORT (or ray://HOST:PORT, or auto) and answer a TCP connect within
    CONNECT_SECONDS, checked before any model loads: ray.init on an address where nothing listens waits
    forever."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise InputError(
            f"--ray_address {address!r}: expected HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:PORT or auto"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except (OSError, UnicodeError, ValueError) as err:  # refused, unreachable, or a host name IDNA cannot encode
        reason = "no answer" if isinstance(err, TimeoutError) else (getattr(err, "strerror", None) or describe(err))
        raise InputError(
            f"--ray_address {address}: nothing answers there within {CONNECT_SECONDS} s ({reason}); "
            "start the cluster with `ray start --head`, or leave --ray_address out to start a local one"
        ) from None


def start_ray(address: str | None, workers: int):
    """Join a cluster (`--ray_address`), or start a local one sized to this machine; returns whether we
    started it (and so must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    ours = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), **options)
    if ours is not None:
        signal.signal(signal.SIGTERM, ours)  # ray.init installs sys.exit for SIGTERM: keep the Ctrl-C clean-up
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
            # Ray Data's own defaults restart a killed actor and retry its batch (max_restarts and
            # max_task_retries -1); passing them again is deprecated (RayDeprecationWarning: ray_remote_args)
        )
        pending_texts, pending_vectors = [], []
        with progress(total=len(texts), desc=f"encoding on Ray ({workers} actors)", unit="text") as bar:
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
