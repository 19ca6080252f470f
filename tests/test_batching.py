"""The server's batcher (integrations/server/batching.py) on its own, with a recording fake pass: how waiting
requests are cut into forward passes, which worker runs them and when, and that each request gets its own
rows, in its own order, whatever passes its texts went through."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from isoadapt.integrations.server.batching import Batcher, QueueFull


class Passes:
    """A fake forward pass: each text "tN" (or "tN ..." ) gives the row [N, N]; it records each pass's texts
    and its span in time, sleeps `seconds`, and fails on a text that says "boom"."""

    def __init__(self, seconds: float = 0.0):
        self.seconds, self.lock = seconds, threading.Lock()
        self.texts: list[list[str]] = []
        self.spans: list[tuple[float, float]] = []

    def __call__(self, side: str, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        time.sleep(self.seconds)
        with self.lock:
            self.texts.append(list(texts))
            self.spans.append((start, time.perf_counter()))
        if any("boom" in t for t in texts):
            raise RuntimeError("the model failed")
        return np.array([[float(t.split()[0][1:])] * 2 for t in texts], dtype=np.float32)


def batcher(passes, finish=lambda base, side: base, **settings) -> Batcher:
    options = {"max_texts": 32, "max_tokens": 512, "max_wait_s": 0.0, "max_queue_texts": 100, **settings}
    return Batcher(passes, finish, **options)


def refused_then_served(b: Batcher, texts: list[str], side: str, error: type, match: str) -> np.ndarray:
    """A request that fails with `error`, then a good one ("t2", a query): the good one's rows."""

    async def scenario():
        b.start()
        with pytest.raises(error, match=match):
            await asyncio.wait_for(b.submit(texts, side, [3] * len(texts)), 10)  # an error, not a hang
        answer = await b.submit(["t2"], "query", [3])
        await b.stop()
        return answer

    return asyncio.run(scenario())


async def running(b: Batcher, passes: int = 1) -> None:
    """Until `passes` workers are running a pass (on a loaded machine a thread may take a while to start)."""
    deadline = time.monotonic() + 10
    while b.busy < passes:
        assert time.monotonic() < deadline, "no worker started a pass"
        await asyncio.sleep(0.005)


def rows(n: int, *numbers: int) -> list[list[float]]:
    return [[float(k), float(k)] for k in (numbers or range(n))]


def test_a_request_whose_texts_go_through_different_passes_gets_its_rows_in_its_order():
    """Lengths 40, 5, 40, 5: the cheapest cuts put the two long texts in one pass and the short ones in
    another, so the request's rows come back from two passes, interleaved."""
    passes = Passes()

    async def scenario():
        b = batcher(passes)
        b.start()
        answer = await b.submit(["t0", "t1", "t2", "t3"], "query", [40, 5, 40, 5])
        await b.stop()
        return answer

    assert asyncio.run(scenario()).tolist() == rows(4)
    assert sorted(map(sorted, passes.texts)) == [["t0", "t2"], ["t1", "t3"]]


def test_the_waiting_requests_are_cut_into_passes_as_one_encode_call_would_cut_them():
    """Two requests that wait together (an idle worker waits max_wait_s for company) share passes by length,
    across requests: a short text beside a long one would be padded by 35 tokens, more than another pass
    costs (32), so the long texts of both go together and the short ones together, at most max_texts a pass.
    The expected cuts are worked out by hand: [40 40] [5 5 5] [5] costs 112 + 47 + 37 = 196, the least."""
    passes = Passes()

    async def scenario():
        b = batcher(passes, max_texts=3, max_wait_s=0.2)
        b.start()
        first = b.submit(["t0", "t1"], "query", [40, 5])
        second = b.submit(["t2", "t3", "t4", "t5"], "query", [5, 40, 5, 5])
        answers = await asyncio.gather(first, second)
        await b.stop()
        return answers

    first, second = asyncio.run(scenario())
    assert first.tolist() == rows(2) and second.tolist() == rows(4, 2, 3, 4, 5)
    assert sorted(map(sorted, passes.texts)) == [["t0", "t3"], ["t1", "t2", "t4"], ["t5"]]
    assert all(len(p) <= 3 for p in passes.texts)


def test_an_idle_worker_waits_for_company_and_a_busy_one_plans_what_queued_at_once():
    """Two requests 50 ms apart share the idle worker's first pass (max_wait 0.5 s); a request queued while
    that pass runs starts as soon as it ends, with no second wait; the first requests are answered then."""
    passes, answered = Passes(seconds=0.3), {}

    async def scenario():
        b = batcher(passes, max_wait_s=0.5)
        b.start()
        answered["start"] = time.perf_counter()
        first = b.submit(["t1"], "query", [3])
        first.add_done_callback(lambda _: answered.setdefault("first", time.perf_counter()))
        await asyncio.sleep(0.05)
        second = b.submit(["t2", "t3"], "query", [3, 3])
        await asyncio.sleep(0.6)  # the first pass (0.5 s to 0.8 s) is running
        third = b.submit(["t4"], "query", [3])
        answers = await asyncio.gather(first, second, third)
        await b.stop()
        return answers

    first, second, third = asyncio.run(scenario())
    assert passes.texts == [["t1", "t2", "t3"], ["t4"]]
    (a_start, a_end), (b_start, _) = passes.spans
    assert a_start - answered["start"] > 0.4  # the idle worker waited for company
    assert b_start - a_end < 0.2  # the busy one did not: no max_wait between its passes
    assert answered["first"] < b_start + 0.15  # answered when its pass ended, not after the next
    assert first.tolist() == rows(1, 1) and second.tolist() == rows(2, 2, 3) and third.tolist() == rows(1, 4)


def overlapped(spans) -> bool:
    """Whether the second pass to start began before the first one ended."""
    (a_start, a_end), (b_start, _) = sorted(spans)[:2]
    return b_start < a_end


def test_two_workers_run_two_passes_side_by_side_and_one_worker_does_not():
    """--encode_workers 2: a request queued while one worker's pass runs starts on the other at once."""

    def run(workers: int):
        passes = Passes(seconds=0.3)

        async def scenario():
            b = batcher(passes, workers=workers)
            b.start()
            first = b.submit(["t1"], "query", [3])
            await running(b)  # the first pass is running
            second = b.submit(["t2", "t2"], "query", [3, 3])
            answers = await asyncio.gather(first, second)
            await b.stop()
            return answers

        first, second = asyncio.run(scenario())
        assert first.tolist() == rows(1, 1) and second.tolist() == rows(2, 2, 2)
        return overlapped(passes.spans)

    assert run(2) is True
    assert run(1) is False


def test_a_lone_request_is_halved_over_two_idle_workers():
    """Four texts of one length fit one pass, but with two idle workers they run as two passes of two, at
    once; with one worker, as one pass."""
    for workers, expected in ((2, [["t0", "t1"], ["t2", "t3"]]), (1, [["t0", "t1", "t2", "t3"]])):
        passes = Passes(seconds=0.2)

        async def scenario():
            b = batcher(passes, workers=workers)  # noqa: B023 (run at once, in this iteration)
            b.start()
            answer = await b.submit(["t0", "t1", "t2", "t3"], "query", [3, 3, 3, 3])
            await b.stop()
            return answer

        assert asyncio.run(scenario()).tolist() == rows(4)
        assert sorted(passes.texts) == expected
        assert workers == 1 or overlapped(passes.spans)


def test_texts_of_two_models_never_share_a_pass_and_of_one_model_do():
    """A cross-model run: queries on one model, documents on another; sides of one model share passes."""
    for model_of, expected in ((lambda side: side, [["t1"], ["t2"]]), (lambda side: None, [["t1", "t2"]])):
        passes = Passes()

        async def scenario():
            b = batcher(passes, max_wait_s=0.2, model_of=model_of)  # noqa: B023
            b.start()
            answers = await asyncio.gather(b.submit(["t1"], "query", [3]), b.submit(["t2"], "document", [3]))
            await b.stop()
            return answers

        query, document = asyncio.run(scenario())
        assert query.tolist() == rows(1, 1) and document.tolist() == rows(1, 2)
        assert sorted(passes.texts) == expected


def test_a_cancelled_request_is_skipped_and_the_queue_empties():
    """A client that goes away while its request waits: its texts never reach a pass, and the queue's count
    of waiting texts goes back to zero."""
    passes = Passes(seconds=0.2)

    async def scenario():
        b = batcher(passes)
        b.start()
        busy = b.submit(["t1"], "query", [3])
        await running(b)
        gone, kept = b.submit(["t2", "t3"], "query", [3, 3]), b.submit(["t4"], "query", [3])
        gone.cancel()
        answers = await asyncio.gather(busy, kept)
        await b.stop()
        return answers, b.queued_texts

    (busy, kept), queued = asyncio.run(scenario())
    assert busy.tolist() == rows(1, 1) and kept.tolist() == rows(1, 4)
    assert passes.texts == [["t1"], ["t4"]] and queued == 0


def test_a_failing_pass_answers_its_requests_with_the_error_and_the_batcher_goes_on():
    served = refused_then_served(batcher(Passes()), ["t1 boom"], "query", RuntimeError, "the model failed")
    assert served.tolist() == rows(1, 2)


def test_a_request_that_would_overflow_the_queue_is_refused_and_nothing_of_it_is_held():
    passes = Passes(seconds=0.2)

    async def scenario():
        b = batcher(passes, max_queue_texts=3)
        b.start()
        busy = b.submit(["t1"], "query", [3])
        await running(b)  # taken by the worker: no longer queued
        waiting = b.submit(["t2", "t3"], "query", [3, 3])
        with pytest.raises(QueueFull, match="2 texts are queued; at most 3"):
            b.submit(["t4", "t5"], "query", [3, 3])
        queued = b.queued_texts
        answers = await asyncio.gather(busy, waiting)
        await b.stop()
        return answers, queued, b.queued_texts

    (busy, waiting), queued, after = asyncio.run(scenario())
    assert waiting.tolist() == rows(2, 2, 3) and (queued, after) == (2, 0)
    assert ["t4"] not in passes.texts and all("t4" not in p for p in passes.texts)


def test_stop_finishes_the_queue_then_refuses():
    passes = Passes(seconds=0.1)

    async def scenario():
        b = batcher(passes)
        b.start()
        pending = [b.submit([f"t{i}"], "query", [3]) for i in range(3)]
        await b.stop()
        with pytest.raises(QueueFull, match="shutting down"):
            b.submit(["t9"], "query", [3])
        return [p.result() for p in pending]

    assert [a.tolist() for a in asyncio.run(scenario())] == [rows(1, i) for i in range(3)]


def test_a_request_cancelled_after_it_was_planned_is_skipped_in_its_later_passes():
    """Its long texts' pass runs; it is cancelled; its short texts are dropped from the pass they share."""
    passes = Passes(seconds=0.2)

    async def scenario():
        b = batcher(passes)
        b.start()
        busy = b.submit(["t1"], "query", [3])
        await running(b)
        gone = b.submit(["t2", "t3", "t4", "t5"], "query", [40, 40, 5, 5])
        kept = b.submit(["t6"], "query", [5])
        while b.waiting or not passes.spans or b.busy == 0:  # planned, and its first pass, [t2 t3], is running
            await asyncio.sleep(0.005)
        gone.cancel()
        answers = await asyncio.gather(busy, kept)
        await b.stop()
        return answers, b.queued_texts

    (busy, kept), queued = asyncio.run(scenario())
    assert kept.tolist() == rows(1, 6) and queued == 0
    assert passes.texts == [["t1"], ["t2", "t3"], ["t6"]]


def test_a_failing_pass_fails_its_requests_whole_and_their_other_passes_are_skipped():
    """A request over two passes whose first fails gets the error, and its second pass runs without it."""
    passes = Passes()

    async def scenario():
        b = batcher(passes, max_wait_s=0.2)
        b.start()
        failing = b.submit(["t2 boom", "t3"], "query", [40, 5])
        kept = b.submit(["t6"], "query", [5])
        with pytest.raises(RuntimeError, match="the model failed"):
            await failing
        answer = await kept
        await b.stop()
        return answer, b.queued_texts

    answer, queued = asyncio.run(scenario())
    assert answer.tolist() == rows(1, 6) and queued == 0
    assert passes.texts == [["t2 boom"], ["t6"]]


def test_a_failing_side_of_the_head_answers_the_error_and_the_batcher_goes_on():
    def finish(base, side):
        if side == "document":
            raise ValueError("no document side")
        return base

    served = refused_then_served(batcher(Passes(), finish), ["t1"], "document", ValueError, "no document side")
    assert served.tolist() == rows(1, 2)


def test_a_pass_that_gives_the_wrong_number_of_vectors_is_an_error_not_a_hang():
    def short_by_one(side, texts):  # one vector too few for the two-text request; right for "t2"
        return Passes()(side, texts)[: max(1, len(texts) - 1)]

    served = refused_then_served(
        batcher(short_by_one), ["t1", "t3"], "query", RuntimeError, "a forward pass of 2 texts gave 1 vectors"
    )
    assert served.tolist() == rows(1, 2)


def test_a_request_is_not_halved_for_a_worker_that_is_busy():
    """Two workers, one on a long pass: a request of four like texts is one pass on the free worker, not
    two halves of which one would wait for the busy worker."""
    passes = Passes(seconds=0.3)

    async def scenario():
        b = batcher(passes, workers=2)
        b.start()
        first = b.submit(["t1"], "query", [3])
        await running(b)
        second = b.submit(["t2", "t3", "t4", "t5"], "query", [3, 3, 3, 3])
        answers = await asyncio.gather(first, second)
        await b.stop()
        return answers

    first, second = asyncio.run(scenario())
    assert second.tolist() == rows(4, 2, 3, 4, 5)
    assert passes.texts == [["t1"], ["t2", "t3", "t4", "t5"]]
