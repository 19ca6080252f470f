"""isoadapt's cached training vs the sentence-transformers trainer on the same pairs, loss and epochs.

Two recipes, each against what a sentence-transformers user would build: a SentenceTransformer of the
frozen base, a Dense(d, d) initialised to the identity and a Normalize, trained by SentenceTransformerTrainer.

- `--recipe research` (default): the research's margin objective (Exp 1), wrapped as a sentence-transformers
  loss, so the two differ only in how they get embeddings: the peer encodes every batch, every epoch, every
  configuration; isoadapt encodes each text once. Wall time and test NDCG@10 for one configuration and
  for a 5-configuration sweep.
- `--recipe recommended`: what the product recommends now, plans/adapters.toml's `infonce-identity` row
  (InfoNCE, lr 1e-3, 5 epochs, batch 64, the head kept at its best validation NDCG@10), run as
  `isoadapt train` runs it, against the trainer with its own MultipleNegativesRankingLoss (same
  temperature), its no-duplicates batch sampler, validation scored by its InformationRetrievalEvaluator
  at the start and after every epoch, and its best epoch reloaded (load_best_model_at_end). isoadapt is
  timed twice, before and after the peer, each from a cold cache. Validation and test NDCG@10 of both
  come from isoadapt's evaluator (trec_eval through pytrec_eval).

    .venv/bin/python bench/vs_sentence_transformers.py [--base_model sentence-transformers/all-mpnet-base-v2]
        [--data semanlink_smoke] [--quick]   # --quick: time the peer's sweep as 5 x its measured single run
    .venv/bin/python bench/vs_sentence_transformers.py --recipe recommended [--data semanlink]
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
from isoadapt.encoding.offline_models import MINILM, resolve_model  # noqa: E402
from isoadapt.evaluation import evaluate_split  # noqa: E402
from isoadapt.experiment.plan import load_plan  # noqa: E402
from isoadapt.head import LinearHead  # noqa: E402
from isoadapt.losses.objective import (  # noqa: E402
    INFONCE_TEMPERATURE,  # noqa: E402
    Batch,
    WeightedObjective,
)
from isoadapt.training.config import DEFAULT_CACHE_DIR, TrainConfig  # noqa: E402
from isoadapt.training.loop import TrainTable  # noqa: E402
from isoadapt.training.train_command import run_training  # noqa: E402
from isoadapt.training.trainable import train_head  # noqa: E402

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


def main_research(args: argparse.Namespace, root: Path) -> None:
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


RECOMMENDED = "infonce-identity"  # plans/adapters.toml's InfoNCE row over both sides: what MNRL + a Dense is


def recommended_settings(plan: Path) -> dict:
    """The recommended row's settings as the plan defines them (so the bench follows the plan, not a copy)."""
    return next(e for e in load_plan(plan).entries if e.name == RECOMMENDED).settings


def load_now() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def train_ours_recommended(root: Path, settings: dict, base_model: str, seed: int) -> tuple[dict, float]:
    """`isoadapt train` with the plan's settings from a cold cache: load, encode every text once, score the
    base, train with validation at the start and after each epoch, keep the best, score val and test."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            train_data=str(root / "train.json"),
            val_data=str(root / "dev.json"),
            test_data=str(root / "test.json"),
            output_dir=str(Path(tmp) / "run"),
            base_model=base_model,
            cache_dir=str(Path(tmp) / "cache"),
            seed=seed,
            **{"tracker": "none", **settings},
        )
        started = time.perf_counter()
        result = run_training(cfg, quiet=True)
        return result.metrics, time.perf_counter() - started


def ir_evaluator(split, name: str):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    relevant = {q: {d for d, grade in docs.items() if grade > 0} for q, docs in split.qrels.items()}
    small = {"mrr_at_k": [10], "accuracy_at_k": [1], "precision_recall_at_k": [10], "map_at_k": [10]}
    return InformationRetrievalEvaluator(
        split.queries, split.corpus, relevant, name=name, ndcg_at_k=[10], write_csv=False, **small
    )


def train_peer_mnrl(folder: Path, examples, val, settings: dict, seed: int) -> tuple[object, float, dict]:
    """SentenceTransformerTrainer with MultipleNegativesRankingLoss at the plan's temperature, lr, epochs and
    batch size; validation at the start and after every epoch, the best epoch reloaded at the end."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    temperature = settings.get("temperature") or INFONCE_TEMPERATURE
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        model = peer_model(folder)
        data = Dataset.from_dict(
            {
                "anchor": [e.query for e in examples],
                "positive": [e.positive for e in examples],
                "negative": [e.negative for e in examples],
            }
        )
        args = SentenceTransformerTrainingArguments(
            output_dir=out,
            num_train_epochs=settings["epochs"],
            per_device_train_batch_size=settings["batch_size"],
            learning_rate=settings["projection_learning_rate"],
            warmup_steps=0,
            lr_scheduler_type="constant",  # isoadapt's AdamW: constant lr, no weight decay, no clipping
            weight_decay=0.0,
            max_grad_norm=0.0,
            batch_sampler=BatchSamplers.NO_DUPLICATES,  # what sentence-transformers recommends with MNRL
            eval_strategy="epoch",
            eval_on_start=True,  # scored like isoadapt's start; the trainer selects among epoch ends only
            save_strategy="epoch",
            save_only_model=True,
            load_best_model_at_end=True,
            metric_for_best_model="val_cosine_ndcg@10",
            greater_is_better=True,
            report_to="none",
            seed=seed,
            use_cpu=True,
            dataloader_drop_last=True,
            logging_steps=10_000,
            disable_tqdm=True,
        )
        loss = MultipleNegativesRankingLoss(model, scale=1.0 / temperature)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=data, loss=loss, evaluator=ir_evaluator(val, "val")
        )
        trainer.train()
        seconds = time.perf_counter() - started
        best = trainer.state.best_model_checkpoint
        if best is None:
            raise RuntimeError("the trainer selected no checkpoint")
        sample = list(val.queries.values())[:16]  # the trainer logs, not raises, a failed reload: check it
        if not np.allclose(model.encode(sample), SentenceTransformer(best, device="cpu").encode(sample), atol=1e-6):
            raise RuntimeError(f"the trainer did not reload its best checkpoint {best}")
        key = "eval_val_cosine_ndcg@10"
        curve = [(round(h["epoch"], 2), round(h[key], 4)) for h in trainer.state.log_history if key in h]
        chosen = {"steps": trainer.state.global_step, "best": best.rsplit("-", 1)[-1], "curve": curve}
        return model, seconds, chosen


def ours_row(name: str, metrics: dict, seconds: float) -> tuple:
    selected = f"step {metrics['validation']['selected']['step']} of {metrics['train']['steps']}"
    return name, seconds, metrics["val"]["trained"]["ndcg@10"], metrics["test"]["trained"]["ndcg@10"], selected


def main_recommended(args: argparse.Namespace, root: Path) -> None:
    settings = recommended_settings(args.plan)
    examples, val, test = load_train(root / "train.json"), load_eval(root / "dev.json"), load_eval(root / "test.json")
    folder = resolve_model(args.base_model, DEFAULT_CACHE_DIR)
    print(f"{args.base_model}: {len(examples)} pairs from {root}; plan row {RECOMMENDED}: {settings}")
    print(f"torch threads {torch.get_num_threads()}; {load_now()}")
    rows = []
    ours_a, seconds_a = train_ours_recommended(root, settings, args.base_model, args.seed)
    rows.append((*ours_row("isoadapt (cold cache), 1st", ours_a, seconds_a), load_now()))
    model, peer_seconds, chosen = train_peer_mnrl(folder, examples, val, settings, args.seed)
    peer_load = load_now()
    peer_test = peer_ndcg(model, test)
    selected = f"step {chosen['best']} of {chosen['steps']}"
    rows.append(("peer (ST trainer, MNRL)", peer_seconds, peer_ndcg(model, val), peer_test, selected, peer_load))
    ours_b, seconds_b = train_ours_recommended(root, settings, args.base_model, args.seed)
    rows.append((*ours_row("isoadapt (cold cache), 2nd", ours_b, seconds_b), load_now()))
    print(f"{'':<28}{'wall s':>8}{'val NDCG@10':>13}{'test NDCG@10':>14}  {'selected':<18}at the end")
    for name, seconds, val_ndcg, test_ndcg, selected, load in rows:
        print(f"{name:<28}{seconds:>8.1f}{val_ndcg:>13.4f}{test_ndcg:>14.4f}  {selected:<18}{load}")
    print(f"peer's validation (its evaluator; epoch, NDCG@10): {chosen['curve']}")
    ours_curve = [(point["epoch"], round(point["ndcg@10"], 4)) for point in ours_a["validation"]["curve"]]
    print(f"isoadapt's validation (epoch, NDCG@10): {ours_curve}")
    ratio = peer_seconds / ((seconds_a + seconds_b) / 2)
    print(
        f"headline: isoadapt's recommended InfoNCE run is {ratio:.1f}x faster than the trainer's MNRL run "
        f"({peer_seconds / seconds_a:.1f}x and {peer_seconds / seconds_b:.1f}x against each isoadapt run); "
        f"test NDCG@10 {ours_a['test']['trained']['ndcg@10']:.4f} vs {peer_test:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", choices=("research", "recommended"), default="research")
    parser.add_argument("--base_model", default=MINILM)
    parser.add_argument(
        "--data", help="name under data/processed (default: semanlink_smoke for research, semanlink for recommended)"
    )
    parser.add_argument("--plan", type=Path, default=Path("plans/adapters.toml"), help="the recommended recipe's plan")
    parser.add_argument("--epochs", type=int, default=2, help="research recipe only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="time the peer's sweep as 5 x its measured single run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = args.data or ("semanlink" if args.recipe == "recommended" else "semanlink_smoke")
    (main_recommended if args.recipe == "recommended" else main_research)(args, Path("data/processed") / data)


if __name__ == "__main__":
    main()
