"""Dynamic batching: requests that arrive together share one encode call.

Each of `workers` threads runs the encoder (one by default: torch then spreads one call over every core;
with N workers each call gets cores/N torch threads, so N small batches run side by side instead of one
small batch leaving cores idle while torch waits on its own threads). While a worker encodes, new requests
queue; when it is free it takes the queued requests up to a token budget at once (continuous batching: the
next call starts before the last one's responses are written); an idle encoder first waits `max_wait_s`
for company when the queue holds less than that budget. The queue is bounded in texts: a request that
would overflow it is refused at once (503, Retry-After) rather than held in memory."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The queue cannot take the request's texts now."""


@dataclass
class Job:
    texts: list[str]
    side: str
    tokens: int  # what the model reads of them: each text's tokens, cut at the window
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(
        self,
        encode: Callable[[list[tuple[list[str], str]]], list[np.ndarray]],
        max_batch_tokens: int,
        max_wait_s: float,
        max_queue_texts: int,
        observe_batch: Callable[[int, int], None] = lambda texts, requests: None,
        workers: int = 1,
    ):
        self.encode, self.max_batch_tokens, self.max_wait_s = encode, max_batch_tokens, max_wait_s
        self.max_queue_texts, self.observe_batch = max_queue_texts, observe_batch
        self.pending: collections.deque[Job] = collections.deque()
        self.queued_texts = 0
        self.executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="isoadapt-encode") for _ in range(workers)
        ]
        self.executor = self.executors[0]  # the warm-up runs here
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(executor)) for executor in self.executors]

    async def stop(self) -> None:
        """Finish what is queued (the server has stopped taking requests), then stop the worker."""
        self._closing = True
        self._wake.set()
        await asyncio.gather(*self._tasks)
        for executor in self.executors:
            executor.shutdown(wait=True)

    def submit(self, texts: list[str], side: str, tokens: int) -> asyncio.Future:
        """A future for the texts' vectors (len(texts), width); QueueFull when the queue is full. Cancel the
        future to drop the request (a client that went away): a queued job is then skipped."""
        if self._closing:
            raise QueueFull("the server is shutting down")
        if self.queued_texts + len(texts) > self.max_queue_texts:
            raise QueueFull(f"{self.queued_texts} texts are queued; at most {self.max_queue_texts} (--max_queue)")
        job = Job(texts, side, tokens, asyncio.get_running_loop().create_future())
        self.pending.append(job)
        self.queued_texts += len(texts)
        self._wake.set()
        return job.future

    async def _run(self, executor: ThreadPoolExecutor) -> None:
        """One worker: encode batch after batch on its thread. When a batch ends, the next one (what
        queued meanwhile) goes to the encoder before the finished batch's requests are answered, so the
        encoder never waits while the event loop writes those responses; only an idle encoder waits
        `max_wait_s` for company."""
        running: tuple[list[Job], asyncio.Future] | None = None
        while True:
            if running is None:
                if not self.pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if self.max_wait_s > 0 and sum(j.tokens for j in self.pending) < self.max_batch_tokens:
                    await asyncio.sleep(self.max_wait_s)  # the encoder was idle: give concurrent requests a moment
                running = self._start(self._take(), executor)
                continue
            batch, encoding = running
            try:
                outcome = await encoding
            except Exception as err:  # noqa: BLE001 (a bug or a model failure: each waiting request answers it)
                outcome = err
            running = self._start(self._take(), executor)  # the encoder is free: no wait, the queue waited already
            self._answer(batch, outcome)

    def _start(self, batch: list[Job], executor: ThreadPoolExecutor) -> tuple[list[Job], asyncio.Future] | None:
        """The batch handed to the encode thread (None for no batch)."""
        if not batch:
            return None
        self.observe_batch(sum(len(j.texts) for j in batch), len(batch))
        requests = [(j.texts, j.side) for j in batch]
        return batch, asyncio.get_running_loop().run_in_executor(executor, self.encode, requests)

    @staticmethod
    def _answer(batch: list[Job], outcome: list[np.ndarray] | Exception) -> None:
        for index, job in enumerate(batch):
            if job.future.done():  # cancelled: its client went away
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome[index])

    def _take(self) -> list[Job]:
        """Queued jobs, oldest first, up to the token budget (one job at least, whatever its size)."""
        batch, tokens = [], 0
        while self.pending:
            job = self.pending[0]
            if job.future.cancelled():
                self.pending.popleft()
                self.queued_texts -= len(job.texts)
                continue
            if batch and tokens + job.tokens > self.max_batch_tokens:
                break
            self.pending.popleft()
            self.queued_texts -= len(job.texts)
            batch.append(job)
            tokens += job.tokens
        return batch
