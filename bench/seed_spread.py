"""How much isoadapt's Exp 1 test NDCG@10 moves with the seed, with the head's output used raw (as
isoadapt does) or L2-normalised before the losses (as the sentence-transformers peer in
vs_sentence_transformers.py does). Cached MiniLM vectors: seconds per run.

    .venv/bin/python bench/seed_spread.py [--seeds 0,1,2] [--data semanlink_smoke]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from isoadapt.data.formats import load_eval, load_train
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.encoder import Encoder
from isoadapt.encoding.offline_models import MINILM
from isoadapt.evaluation import evaluate_split
from isoadapt.training.config import DEFAULT_CACHE_DIR, TrainConfig
from isoadapt.training.loop import TrainTable
from isoadapt.training.trainable import train_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="semanlink_smoke")
    parser.add_argument("--base_model", default=MINILM)
    args = parser.parse_args()
    encoder = Encoder(args.base_model, DEFAULT_CACHE_DIR, show_progress=False)
    vectors = CachedVectors(encoder, DEFAULT_CACHE_DIR)
    examples = load_train(Path("data/processed") / args.data / "train.json")
    test = load_eval(Path("data/processed") / args.data / "test.json")
    table = TrainTable.from_examples(examples)
    print(f"{'head output':<12}{'seed':>6}{'test NDCG@10':>14}")
    for normalise in (False, True):
        scores = []
        for seed in (int(s) for s in args.seeds.split(",")):
            wrap = (lambda raw: lambda i: torch.nn.functional.normalize(raw(i), dim=-1)) if normalise else None
            head, _ = train_head(TrainConfig.settings_only(seed=seed), vectors, table, wrap=wrap)
            scores.append(evaluate_split(test, vectors, head.eval()).metrics["ndcg@10"])
            print(f"{'normalised' if normalise else 'raw':<12}{seed:>6}{scores[-1]:>14.4f}")
        print(
            f"{'normalised' if normalise else 'raw':<12}{'mean':>6}{np.mean(scores):>14.4f}  (range "
            f"{min(scores):.4f} to {max(scores):.4f})"
        )


if __name__ == "__main__":
    main()
