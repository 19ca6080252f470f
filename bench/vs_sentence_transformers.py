"""isoadapt's cached training vs the sentence-transformers trainer on the same pairs, loss and epochs.

The peer is what a user would build: a SentenceTransformer of the frozen base, a Dense(d, d) initialised
to the identity and a Normalize, trained by SentenceTransformerTrainer with isoadapt's own objective
wrapped as a sentence-transformers loss (so the two differ only in how they get embeddings: the peer
encodes every batch, every epoch, every configuration; isoadapt encodes each text once). Prints wall
time and test NDCG@10 for one configuration (the research's Exp 1) and for a 5-configuration sweep.

    .venv/bin/python bench/vs_sentence_transformers.py [--base_model sentence-transformers/all-mpnet-base-v2]
        [--data semanlink_smoke] [--quick]   # --quick: time the peer's sweep as 5 x its measured single run
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from isoadapt.data.formats import load_eval, load_train  # noqa: E402
from isoadapt.encoding.cache import CachedVectors  # noqa: E402
from isoadapt.encoding.encoder import Encoder  # noqa: E402
from isoadapt.encoding.offline_models import MINILM  # noqa: E402
from isoadapt.evaluation import evaluate_split  # noqa: E402
from isoadapt.head import LinearHead  # noqa: E402
from isoadapt.losses.objective import Batch, WeightedObjective  # noqa: E402
from isoadapt.training.config import TrainConfig  # noqa: E402
from isoadapt.training.loop import TrainTable  # noqa: E402
from isoadapt.training.train_command import train_head  # noqa: E402

SWEEP = {
    "exp1": (0.1, 1.0),
    "exp2": (0.5, 1.0),
    "exp3": (0.1, 2.0),
    "pure-isotropy": (0.0, 1.0),
    "contrastive-only": (1.0, 0.0),
}


class ObjectiveLoss(torch.nn.Module):
    """isoadapt's objective as a sentence-transformers loss over (anchor, positive, negative) columns."""

    def __init__(self, model, objective: WeightedObjective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, sentence_features, labels=None):
        q, p, n = (self.model(features)["sentence_embedding"] for features in sentence_features)
        b = len(q)
        batch = Batch(q, p, torch.eye(b, dtype=torch.bool), n, torch.ones(b, dtype=torch.bool))
        return sum(self.objective(batch).values())


def peer_model(folder: Path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    base = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    for parameter in base.parameters():
        parameter.requires_grad_(False)
    d = base.get_embedding_dimension()
    dense = Dense(
        d, d, bias=True, activation_function=torch.nn.Identity(), init_weight=torch.eye(d), init_bias=torch.zeros(d)
    )
    return SentenceTransformer(modules=[*base, dense, Normalize()], device="cpu")


def train_peer(folder: Path, examples, weights: tuple[float, float], epochs: int, seed: int) -> tuple[object, float]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    model = peer_model(folder)
    data = Dataset.from_dict(
        {
            "anchor": [e.query for e in examples],
            "positive": [e.positive for e in examples],
            "negative": [e.negative for e in examples],
        }
    )
    recipe = TrainConfig.settings_only(lambda_contrastive=weights[0], lambda_isotropy=weights[1])
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            per_device_train_batch_size=recipe.batch_size,
            learning_rate=recipe.projection_learning_rate,
            warmup_steps=0,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            save_strategy="no",
            report_to="none",
            seed=seed,
            use_cpu=True,
            dataloader_drop_last=True,
            logging_steps=10_000,
            disable_tqdm=True,
        )
        loss = ObjectiveLoss(model, recipe.objective())
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
        started = time.perf_counter()
        trainer.train()
        return model, time.perf_counter() - started


RECIPE = TrainConfig.settings_only()  # batch size and learning rate: the product's defaults, for both sides


def train_isoadapt(vectors, examples, weights: tuple[float, float], epochs: int, seed: int) -> tuple[LinearHead, float]:
    """Locating the texts encodes those the cache lacks (all of them, the first time): that is timed too."""
    started = time.perf_counter()
    table = TrainTable.from_examples(examples)
    cfg = TrainConfig.settings_only(lambda_contrastive=weights[0], lambda_isotropy=weights[1], epochs=epochs, seed=seed)
    head, _ = train_head(cfg, vectors, table)
    return head, time.perf_counter() - started


def peer_ndcg(model, split) -> float:
    return evaluate_split(
        split, lambda texts: np.asarray(model.encode(texts, batch_size=64, convert_to_numpy=True))
    ).metrics["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument("--data", default="semanlink_smoke", help="name under data/processed (train.json, test.json)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="time the peer's sweep as 5 x its measured single run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path("data/processed") / args.data
    examples = load_train(root / "train.json")
    test = load_eval(root / "test.json")
    torch.manual_seed(args.seed)

    with tempfile.TemporaryDirectory() as cache_dir:  # a cold cache: isoadapt pays for its one encode pass
        encoder = Encoder(args.base_model, Path(cache_dir), show_progress=False)
        vectors = CachedVectors(encoder, Path(cache_dir))
        unique = len(TrainTable.from_examples(examples).texts)
        print(
            f"{args.base_model}: {len(examples)} pairs ({unique} unique texts), {args.epochs} epochs, "
            f"batch {RECIPE.batch_size}, lr {RECIPE.projection_learning_rate}, torch threads {torch.get_num_threads()}"
        )
        head, ours_seconds = train_isoadapt(vectors, examples, SWEEP["exp1"], args.epochs, args.seed)
        ours_ndcg = evaluate_split(test, vectors, head).metrics["ndcg@10"]
        model, peer_seconds = train_peer(encoder.folder, examples, SWEEP["exp1"], args.epochs, args.seed)
        theirs_ndcg = peer_ndcg(model, test)
        print(f"{'':<24}{'train wall s':>14}{'test NDCG@10':>14}")
        print(f"{'peer (ST trainer)':<24}{peer_seconds:>14.1f}{theirs_ndcg:>14.4f}")
        print(f"{'isoadapt (cold cache)':<24}{ours_seconds:>14.1f}{ours_ndcg:>14.4f}")
        single_ratio = peer_seconds / ours_seconds

        sweep_ours = ours_seconds
        sweep_peer = peer_seconds
        for weights in list(SWEEP.values())[1:]:
            head, seconds = train_isoadapt(vectors, examples, weights, args.epochs, args.seed)
            sweep_ours += seconds
            if not args.quick:
                sweep_peer += train_peer(encoder.folder, examples, weights, args.epochs, args.seed)[1]
        if args.quick:
            sweep_peer = 5 * peer_seconds
        how = "5 x the single run (--quick)" if args.quick else "measured, 5 trainer runs"
        print(
            f"sweep of 5 configurations: peer {sweep_peer:.1f} s ({how}), isoadapt {sweep_ours:.1f} s (one "
            "encode pass, then cached)"
        )
        print(f"one configuration: {single_ratio:.1f}x faster, NDCG@10 {ours_ndcg:.4f} vs {theirs_ndcg:.4f}")
        print(
            f"headline: isoadapt is {single_ratio:.1f}x faster for one configuration and "
            f"{sweep_peer / sweep_ours:.1f}x for the 5-configuration sweep"
        )


if __name__ == "__main__":
    main()
