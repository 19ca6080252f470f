"""Why a served encode costs more than one in-process call on the same texts, and what cutting batches at the
cheapest places changes. No server: the bench's texts (bench/serve.py's Semanlink texts and requests of 1 to
32) are encoded in process, once as one call (what bench/serve.py's in-process line does) and once grouped
as the server grouped them before commit 6191486, one encode call per group of requests (the server now
plans passes from every waiting request; bench/README.md, section 14, measures that with bench/serve_ab.py):

- `[1]`: one request per call (1 client);
- `[1,15]`: calls of 1 and 15 requests in turn (16 clients: the pattern that server settled in, where one
  request comes back while the other fifteen wait for the encoder);
- `[16]`: every request in flight in one call.

Each grouping is encoded with `length_batches` filling each batch to its caps (32 texts, 512 padded
tokens: before) and with the cheapest cuts (now), in interleaved rounds, best of the rounds kept. With
`--threads 1` the clock is the thread's CPU time, which other processes on the machine barely move; with 2 it
is wall time (what a quiet machine's throughput shows). Printed: seconds, and the speed against the one-call
encode with the batches filled to the caps (bench/serve.py's ratio before this change).

    .venv/bin/python bench/serve_batches.py [--texts 2000] [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import isoadapt.encoding.encoder as encoder_module  # noqa: E402
from isoadapt.encoding.offline_models import MINILM  # noqa: E402
from isoadapt.training.config import DEFAULT_CACHE_DIR  # noqa: E402
from serve import REPO, requests_of, semanlink_texts  # noqa: E402

CHEAPEST = encoder_module.length_batches


def filled(lengths, max_tokens, max_texts):
    """The batches before: longest first, each filled until the next text would pass a cap."""
    order, batches = sorted(range(len(lengths)), key=lambda i: -lengths[i]), []
    for index in order:
        batch = batches[-1] if batches else None
        if batch is None or len(batch) == max_texts or (len(batch) + 1) * lengths[batch[0]] > max_tokens:
            batches.append([index])
        else:
            batch.append(index)
    return batches


def grouped(requests: list[list[str]], pattern: list[int]) -> list[list[str]]:
    """One encode call's texts per group of requests, group sizes cycling through `pattern`."""
    calls, start, turn = [], 0, 0
    while start < len(requests):
        size = pattern[turn % len(pattern)]
        calls.append([text for request in requests[start : start + size] for text in request])
        start, turn = start + size, turn + 1
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data/processed/semanlink")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads: 1 times CPU, more times wall")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    texts = semanlink_texts(args.data, args.texts)
    requests = requests_of(texts)
    cases = {"one call": [texts], "[1]": grouped(requests, [1])}
    cases |= {"[1,15]": grouped(requests, [1, 15]), "[16]": grouped(requests, [16])}
    encoder = encoder_module.Encoder(MINILM, DEFAULT_CACHE_DIR, show_progress=False)
    encoder.encode(texts[:64])  # warm
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.rounds):
        for name, calls in cases.items():
            for batches, cut in (("filled", filled), ("cheapest", CHEAPEST)):
                encoder_module.length_batches = cut
                start = clock()
                for call in calls:
                    encoder.encode(call)
                seconds = clock() - start
                best[name, batches] = min(best.get((name, batches), seconds), seconds)
    encoder_module.length_batches = CHEAPEST
    unit = "thread CPU s" if args.threads == 1 else "wall s"
    print(f"{len(texts)} texts in {len(requests)} requests; torch threads {args.threads}; best of {args.rounds} rounds")
    print(f"{'grouping':10s} {'filled':>8s} {'cheapest':>9s} ({unit})  speed vs one call, filled: filled  cheapest")
    reference = best["one call", "filled"]
    for name in cases:
        old, new = best[name, "filled"], best[name, "cheapest"]
        ratios = f"{reference / old:6.3f} {reference / new:8.3f}"
        print(f"{name:10s} {old:8.2f} {new:9.2f} {'':33s} {ratios}")


if __name__ == "__main__":
    main()
