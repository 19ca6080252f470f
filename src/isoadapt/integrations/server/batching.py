"""Dynamic batching: concurrent requests share forward passes of the base model, on `workers` threads.

Requests wait in arrival order. When a worker is free and no planned pass is left, it plans every waiting
request at once: their texts are cut into passes as `Encoder.encode` cuts one call (`length_batches`:
longest first, within the encoder's caps of `max_texts` texts and `max_tokens` padded tokens, cut where
padding would cost more than another pass), and the passes go to a queue that every worker takes from.
A request is answered as soon as its last text has been through a pass, while the workers go on.

Why passes shared by the workers rather than a call per worker: N workers (each with cores/N torch
threads) run N passes side by side, which on this CPU encodes more per second than one pass on every core
(torch then waits on its own threads; bench/README.md, section 14), but only while every worker has a full
pass to run. A worker that took the waiting requests as its own call would leave the others the few
requests that came in meanwhile; one plan shared by all keeps each worker on a full, like-length pass.
When a plan has fewer passes than idle workers (a lone request), the largest pass is halved until each
idle worker has one.

An idle worker first waits `max_wait_s` for company when fewer than `max_texts` texts wait. The
queue is bounded in texts: a request that would overflow it is refused at once (503, Retry-After) rather
than held in memory. A request whose client went away is dropped: its texts not yet in a pass are skipped."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from isoadapt.encoding.encoder import BATCH_OVERHEAD_TOKENS, length_batches

PLAN_TEXTS = 1024  # texts planned at once at most: the cutting is O(texts x max_texts), under the lock


class QueueFull(Exception):
    """The queue cannot take the request's texts now."""


@dataclass(eq=False)
class Job:
    """One request: its texts as the model reads them, and its base vectors as the passes fill them."""

    texts: list[str]
    side: str
    lengths: list[int]  # tokens the model reads of each text (cut at its window): the padding it costs
    future: asyncio.Future = field(repr=False)
    loop: asyncio.AbstractEventLoop = field(repr=False)
    left: int = 0  # texts not through a pass yet
    rows: list = field(default_factory=list, repr=False)  # each text's base vector, once encoded
    dropped: bool = False  # its client went away, or a pass of it failed: its other texts are skipped


@dataclass(frozen=True)
class Waiting:
    job: Job
    index: int  # the text's place in its request

    @property
    def length(self) -> int:
        return self.job.lengths[self.index]


class Batcher:
    def __init__(
        self,
        encode_pass: Callable[[str, list[str]], np.ndarray],
        finish: Callable[[np.ndarray, str], np.ndarray],
        max_texts: int,
        max_tokens: int,
        max_wait_s: float,
        max_queue_texts: int,
        pass_overhead: float = BATCH_OVERHEAD_TOKENS,
        model_of: Callable[[str], Hashable] = lambda side: None,
        observe_batch: Callable[[int, int], None] = lambda texts, requests: None,
        workers: int = 1,
    ):
        """`encode_pass(side, texts)`: one forward pass, (len(texts), dim) base vectors; texts of every side
        with the same `model_of(side)` may share it. `finish(base, side)`: a request's vectors from its base
        vectors (the adapter's side)."""
        self.encode_pass, self.finish, self.model_of = encode_pass, finish, model_of
        self.max_texts, self.max_tokens, self.pass_overhead = max_texts, max_tokens, pass_overhead
        self.max_wait_s, self.max_queue_texts, self.observe_batch = max_wait_s, max_queue_texts, observe_batch
        self.workers = workers
        self.waiting: list[Job] = []  # requests not planned yet, in arrival order
        self.passes: collections.deque[list[Waiting]] = collections.deque()  # planned, not taken yet
        self.queued_texts = 0  # texts waiting or planned, not taken by a worker yet
        self.busy = 0  # workers running a pass
        self.lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closing = False

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._work, name=f"isoadapt-encode-{n}", daemon=True) for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Finish what is queued (the server has stopped taking requests), then stop the workers."""
        with self.lock:
            self._closing = True
            self.lock.notify_all()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)

    def submit(self, texts: list[str], side: str, lengths: list[int]) -> asyncio.Future:
        """A future for the texts' vectors (len(texts), width); QueueFull when the queue is full. Cancel the
        future to drop the request (a client that went away): its texts still queued are then skipped."""
        loop = asyncio.get_running_loop()
        job = Job(list(texts), side, list(lengths), loop.create_future(), loop, len(texts), [None] * len(texts))
        if not texts:
            raise ValueError("a request with no texts")  # the protocol refuses it first; nothing would answer it
        with self.lock:
            if self._closing:
                raise QueueFull("the server is shutting down")
            if self.queued_texts + len(texts) > self.max_queue_texts:
                raise QueueFull(f"{self.queued_texts} texts are queued; at most {self.max_queue_texts} (--max_queue)")
            self.waiting.append(job)
            self.queued_texts += len(texts)
            self.lock.notify_all()
        job.future.add_done_callback(lambda future: future.cancelled() and self._drop(job))
        return job.future

    def _drop(self, job: Job) -> None:
        """A request whose client went away: out of the queue now if it is still waiting (its room is free for
        others at once), else its planned texts are skipped when a worker reaches them."""
        with self.lock:
            job.dropped = True
            if job in self.waiting:
                self.waiting.remove(job)
                self.queued_texts -= len(job.texts)

    def _work(self) -> None:
        """One worker: pass after pass until the batcher is closed and nothing is left."""
        while True:
            with self.lock:
                taken = self._next_pass()
                if taken is None:
                    return
                self.busy += 1
            try:
                self._run(taken)
            except Exception as err:  # noqa: BLE001 (a bug past the pass itself: fail its requests, keep the worker)
                self._fail({w.job for w in taken}, err)
            finally:
                with self.lock:
                    self.busy -= 1

    def _next_pass(self) -> list[Waiting] | None:
        """(Under the lock.) The next planned pass, planning the waiting requests when none is left; None when
        closing with nothing left. An idle worker waits for a request, then up to `max_wait_s` for a pass's
        worth of texts."""
        idle = False
        while True:
            while self.passes:
                planned = self.passes.popleft()
                self.queued_texts -= len(planned)
                taken = [w for w in planned if not w.job.dropped]
                if taken:
                    return taken
            if self.waiting:
                if idle:
                    self._wait_for_company()
                    idle = False
                    continue  # another worker may have planned meanwhile: take its passes first
                self._plan()
                continue
            if self._closing:
                return None
            idle = True
            self.lock.wait()

    def _wait_for_company(self) -> None:
        """(Under the lock.) Until a pass's worth of texts waits, another worker has planned, or max_wait_s."""
        deadline = time.monotonic() + self.max_wait_s
        while self.waiting and not self.passes and not self._closing:
            if sum(len(job.texts) for job in self.waiting) >= self.max_texts:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.lock.wait(remaining)

    def _plan(self) -> None:
        """(Under the lock.) Every waiting request's texts, oldest requests first up to `PLAN_TEXTS`, cut into
        passes as `Encoder.encode` cuts one call (`length_batches`), one model's texts per pass. Fewer passes
        than idle workers (this one included): the largest is halved until each idle worker has one, so a lone
        request uses every free core; a busy worker's share is not split off for it to run later."""
        jobs, texts = [], 0
        while self.waiting and (not jobs or texts + len(self.waiting[0].texts) <= PLAN_TEXTS):
            jobs.append(self.waiting.pop(0))
            texts += len(jobs[-1].texts)
        items = [Waiting(job, i) for job in jobs for i in range(len(job.texts))]
        planned = []
        for model in dict.fromkeys(self.model_of(job.side) for job in jobs):
            mine = [w for w in items if self.model_of(w.job.side) == model]
            cuts = length_batches([w.length for w in mine], self.max_tokens, self.max_texts, self.pass_overhead)
            planned += [[mine[i] for i in cut] for cut in cuts]
        idle = self.workers - self.busy
        while planned and len(planned) < idle and max(len(p) for p in planned) > 1:
            largest = planned.pop(max(range(len(planned)), key=lambda k: len(planned[k])))
            planned += [largest[: len(largest) // 2], largest[len(largest) // 2 :]]
        self.passes.extend(planned)
        self.lock.notify_all()  # idle workers waiting for company take the other passes now

    def _run(self, taken: list[Waiting]) -> None:
        """One pass on this thread, its vectors into their requests; each finished request answered."""
        jobs = list(dict.fromkeys(w.job for w in taken))
        self.observe_batch(len(taken), len(jobs))
        try:
            base = self.encode_pass(taken[0].job.side, [w.job.texts[w.index] for w in taken])  # (len(taken), dim)
            if len(base) != len(taken):
                raise RuntimeError(f"a forward pass of {len(taken)} texts gave {len(base)} vectors")
        except Exception as err:  # noqa: BLE001 (a bug or a model failure: each request in the pass answers it)
            self._fail(jobs, err)
            return
        with self.lock:
            for row, w in zip(base, taken):
                w.job.rows[w.index] = row
                w.job.left -= 1
            finished = [job for job in jobs if job.left == 0 and not job.dropped]
        for job in finished:
            try:
                vectors, error = self.finish(np.stack(job.rows), job.side), None
            except Exception as err:  # noqa: BLE001
                vectors, error = None, err
            job.loop.call_soon_threadsafe(_settle, job.future, vectors, error)

    def _fail(self, jobs, err: Exception) -> None:
        """Each request answers the error; their texts in other passes are skipped."""
        with self.lock:
            for job in jobs:
                job.dropped = True
        for job in jobs:
            job.loop.call_soon_threadsafe(_settle, job.future, None, err)


def _settle(future: asyncio.Future, vectors: np.ndarray | None, error: Exception | None) -> None:
    """(On the event loop.) A request's answer, unless its client went away meanwhile."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(vectors)
