"""What a run trains: the head (with its fitted or identity start) over cached vectors, or the head and a
fresh encoder copy for full fine-tuning; and `train_head`, the bare recipe the benches time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from isoadapt.encoding.cache import CachedVectors, cached_embed
from isoadapt.encoding.encoder import Encoder
from isoadapt.errors import InputError
from isoadapt.head import build_head
from isoadapt.posthoc import initial_head
from isoadapt.training.config import TrainConfig
from isoadapt.training.loop import LoopSettings, TrainTable, train
from isoadapt.training.seeding import seed_everything

log = logging.getLogger(__name__)


@dataclass
class Trainable:
    """What the loop updates, and how it turns text indices into projected embeddings."""

    head: torch.nn.Module
    embed: object  # text indices (k,) -> (k, d)
    parameters: list[dict]
    modules: dict[str, torch.nn.Module]
    tuned: Encoder | None  # the fine-tuned encoder (full fine-tuning only)
    embed_query: object = None  # queries' own path (a query-only head); None: the same as documents
    vectors: object = None  # what the head is scored on, per side (a cross-model run's SideVectors); None: the base


def build_trainable(
    cfg: TrainConfig,
    encoder: Encoder,
    base_vectors: CachedVectors,
    table: TrainTable,
    quiet: bool,
    unlabelled: list[str] | None = None,
) -> Trainable:
    """A frozen encoder trains the head on cached vectors; full fine-tuning trains a fresh encoder copy too.
    A fitted start sees the pairs' texts, or with --init_texts all the `unlabelled` texts of the whole file."""
    locations = base_vectors.locate(table.texts)  # encodes what the cache lacks, once
    if cfg.head == "linear":
        head = _linear_start(cfg, encoder, base_vectors, locations, unlabelled)
    else:
        head = build_head({"type": cfg.head, "dim": encoder.dim}).to(cfg.device)
    head_group = {"params": list(head.parameters()), "lr": cfg.projection_learning_rate}
    if cfg.freeze_base:
        embed = cached_embed(head, base_vectors, locations, cfg.device)
        embed_query = None
        if cfg.adapt == "query":  # documents keep their base vectors: only queries pass through the head
            embed, embed_query = cached_embed(None, base_vectors, locations, cfg.device), embed
        return Trainable(head, embed, [head_group], {"head": head}, None, embed_query)
    return _fine_tuned(cfg, head, head_group, table, quiet)


def _linear_start(cfg: TrainConfig, encoder: Encoder, base_vectors: CachedVectors, locations, unlabelled):
    """The linear head's start: identity, or fitted on the pairs' texts (or every text, --init_texts all)."""
    fit_on = None
    if cfg.head_init != "identity":
        fit_on = base_vectors(unlabelled) if cfg.init_texts == "all" else base_vectors.gather(locations)
    if fit_on is not None and len(fit_on) < encoder.dim:
        log.warning(
            "--head_init %s: fitted on %d texts, fewer than the %d dimensions: the start is a poor estimate "
            "(it can score far below the base model); use more texts or --head_init identity",
            cfg.head_init,
            len(fit_on),
            encoder.dim,
        )
    return initial_head(cfg.head_init, encoder.dim, fit_on, cfg.out_dim, cfg.adapt).to(cfg.device)


def _fine_tuned(cfg: TrainConfig, head: torch.nn.Module, head_group: dict, table: TrainTable, quiet: bool):
    """Full fine-tuning: a fresh copy, since fine-tuning must never touch the encoder whose vectors fill the cache."""
    tuned = Encoder(cfg.base_model, Path(cfg.cache_dir), cfg.device, cfg.encode_batch_size, show_progress=not quiet)
    tuned.model.train()

    def embed(indices: torch.Tensor) -> torch.Tensor:
        features = tuned.model.preprocess([table.texts[i] for i in indices.tolist()])
        features = {k: v.to(cfg.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        return head(tuned.model(features)["sentence_embedding"])

    groups = [head_group, {"params": list(tuned.model.parameters()), "lr": cfg.base_learning_rate}]
    return Trainable(head, embed, groups, {"head": head, "encoder": tuned.model}, tuned)


def train_head(
    cfg: TrainConfig, vectors: CachedVectors, table: TrainTable, progress: bool = False, wrap=None
) -> tuple[torch.nn.Module, list[dict]]:
    """One frozen-encoder head trained with `cfg`'s head, objective, learning rate, epochs, batch size and
    seed, and nothing else: no run folder, no selection, no evaluation. What the benches time and compare,
    so their recipe is the product's. `wrap` (embed -> embed) lets a bench alter the head's outputs."""
    generator = seed_everything(cfg.seed)  # before the head is built, as run_training does
    if cfg.init_texts != "pairs" or cfg.negatives != "file" or cfg.train_pairs is not None:
        raise InputError(
            "train_head trains on the table it is given: --init_texts, --negatives, --train_pairs need a run"
        )
    trainable = build_trainable(cfg, vectors.encoder, vectors, table, quiet=True)
    embed = wrap(trainable.embed) if wrap else trainable.embed
    settings = LoopSettings(cfg.epochs, cfg.batch_size, progress=progress)
    history = train(
        table, embed, trainable.parameters, cfg.objective(), settings, generator, embed_query=trainable.embed_query
    )
    return trainable.head.eval(), history
