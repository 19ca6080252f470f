"""`--encode_backend auto` on this machine: what it chooses and why, then the demo's texts encoded with its
choice against PyTorch.

1. The choice, measured from scratch (a fresh cache folder, so no earlier choice is reused): every installed
   backend timed on the held slice of Semanlink's dev.json that `isoadapt train` would give it, with each
   one's speed, minimum cosine and NDCG@10 against PyTorch, on the CPU named by its model and flags.
2. The demo's texts (every text of the Semanlink and STS-B files that `make demo`'s adapters plan reads,
   its shift probes included): encoded with PyTorch and with the chosen backend, interleaved in chunks of
   2,048 texts (each chunk by both, the first to run alternating) so that a load spike on the shared
   machine hits both; then the chosen backend's quality on the whole splits: minimum cosine over every
   text, NDCG@10 on Semanlink's test split and on STS-B's test retrieval split.

    .venv/bin/python bench/encode_auto.py [--base_model sentence-transformers/all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isoadapt.data.formats import load_eval  # noqa: E402
from isoadapt.encoding.backend_choice import min_cosine, probe_from_split  # noqa: E402
from isoadapt.encoding.encode_command import collect_texts  # noqa: E402
from isoadapt.encoding.encoder import open_encoder  # noqa: E402
from isoadapt.encoding.offline_models import MINILM  # noqa: E402
from isoadapt.evaluation import evaluate_split  # noqa: E402
from isoadapt.experiment.plan_data import ExperimentData  # noqa: E402
from isoadapt.metrics.retrieval import percent_change  # noqa: E402

CHUNK = 2048


def load_now() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_choice(record: dict) -> None:
    cpu = record["key"]["cpu"]
    print(f"CPU: {cpu['model']}, {cpu['cpus']} CPUs, torch threads {cpu['torch_threads']}")
    print(f"flags: {cpu['flags']}")
    print(f"probe: {record['probe']['source']} ({record['probe']['texts']} texts, best of {record['probe']['rounds']})")
    print(f"{'backend':<11}{'texts/s':>9}{'vs torch':>9}{'min cos':>9}{'NDCG@10':>9}{'vs torch':>10}  verdict")
    for row in record["backends"]:
        change = "–" if row["ndcg_change_pct"] is None else f"{row['ndcg_change_pct']:+.2f}%"
        ndcg = "–" if row["ndcg@10"] is None else f"{row['ndcg@10']:.4f}"
        print(
            f"{row['backend']:<11}{row['texts_per_s']:>9.1f}{row['speedup']:>8.2f}x{row['min_cosine']:>9.5f}"
            f"{ndcg:>9}{change:>10}  {row['verdict']}"
        )
    print(f"auto chose {record['backend']}: {record['why']} (measured at load {record['loadavg']})")


def interleaved_seconds(encoders: dict[str, object], texts: list[str]) -> tuple[dict, dict]:
    """Seconds each encoder takes for all `texts`, chunk by chunk, alternating which runs first."""
    seconds = dict.fromkeys(encoders, 0.0)
    vectors = {name: np.empty((len(texts), e.dim), dtype=np.float32) for name, e in encoders.items()}
    for index, start in enumerate(range(0, len(texts), CHUNK)):
        chunk = texts[start : start + CHUNK]
        order = list(encoders) if index % 2 == 0 else list(reversed(encoders))
        for name in order:
            started = time.perf_counter()
            vectors[name][start : start + len(chunk)] = encoders[name].encode(chunk)
            seconds[name] += time.perf_counter() - started
    return seconds, vectors


def split_ndcg(split, texts: list[str], vectors: np.ndarray) -> float:
    memo = dict(zip(texts, vectors))
    return evaluate_split(split, lambda ts: np.stack([memo[t] for t in ts])).metrics["ndcg@10"]


def demo_texts(data_root: Path) -> list[str]:
    """Every text `make demo`'s adapters plan encodes: the files its runner locates for Semanlink with STS-B."""
    files = ExperimentData.locate(data_root, "semanlink", data_root / "stsb" / "sts_test.json")
    return list(dict.fromkeys(t for path in files.files() for t in collect_texts(path)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument("--data_root", type=Path, default=Path("data/processed"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    dev = args.data_root / "semanlink" / "dev.json"
    texts = demo_texts(args.data_root)
    print(f"{args.base_model}; torch threads {torch.get_num_threads()}; {load_now()}")
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        chosen = open_encoder(
            args.base_model,
            Path(cache),
            show_progress=False,
            backend="auto",
            probe=probe_from_split(load_eval(dev), str(dev)),
        )
        took = time.perf_counter() - started
        print(f"the choice took {took:.1f} s (ONNX export and int8 quantisation included); {load_now()}")
        print_choice(chosen.backend_choice)
        torch_encoder = open_encoder(args.base_model, Path(cache), show_progress=False)
        encoders = (
            {"torch": torch_encoder, chosen.backend: chosen} if chosen.backend != "torch" else {"torch": torch_encoder}
        )
        for encoder in encoders.values():
            encoder.encode(texts[:64])  # warm-up
        seconds, vectors = interleaved_seconds(encoders, texts)
    print(f"\nthe demo's texts: {len(texts)} (the adapters plan's files), chunks of {CHUNK}, interleaved")
    print(f"at the end: {load_now()}")
    for name, value in seconds.items():
        print(f"{name:<11}{value:>8.1f} s{len(texts) / value:>9.1f} texts/s")
    if chosen.backend == "torch":
        print("headline: auto chose torch on this machine: the demo's encode is unchanged")
        return
    splits = {
        "semanlink test": args.data_root / "semanlink" / "test.json",
        "stsb test": args.data_root / "stsb" / "test.json",
    }
    cosine = min_cosine(vectors[chosen.backend], vectors["torch"])
    print(f"{chosen.backend} against torch on every text: min cosine {cosine:.5f}")
    for label, path in splits.items():
        split = load_eval(path)
        base, other = split_ndcg(split, texts, vectors["torch"]), split_ndcg(split, texts, vectors[chosen.backend])
        print(
            f"  NDCG@10 {label}: torch {base:.4f}, {chosen.backend} {other:.4f} ({percent_change(other, base):+.2f}%)"
        )
    print(
        f"headline: auto chose {chosen.backend}; the demo's {len(texts)} texts encoded in "
        f"{seconds[chosen.backend]:.1f} s against torch's {seconds['torch']:.1f} s "
        f"({seconds['torch'] / seconds[chosen.backend]:.2f}x)"
    )


if __name__ == "__main__":
    main()
