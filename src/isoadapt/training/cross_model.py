"""A cross-model run's plumbing (`--query_model NEW` beside `--base_model OLD`, docs/upgrade.md): the query
model opened and checked against the base, the paired texts an alignment is fitted on, and what the loop
trains: a query-only linear head from the NEW model's width to the OLD model's, read by queries (NEW
vectors) and scored against documents that keep their OLD vectors. The settings' rules are in
cross_settings; the closed-form maps in alignment."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from isoadapt.data.formats import TrainExample
from isoadapt.encoding.cache import CachedVectors, cached_embed
from isoadapt.encoding.encoder import Encoder, open_encoder
from isoadapt.encoding.precomputed import PrecomputedEncoder
from isoadapt.encoding.sides import SideVectors
from isoadapt.errors import InputError
from isoadapt.head import LinearHead
from isoadapt.training.alignment import alignment_head
from isoadapt.training.config import TrainConfig
from isoadapt.training.loop import TrainTable
from isoadapt.training.trainable import Trainable


@dataclass
class CrossModel:
    """The query (NEW) model of a run, its cached vectors, and each side's source for evaluation."""

    encoder: Encoder
    vectors: CachedVectors
    sides: SideVectors  # queries from the NEW model, documents from the OLD (base) one


def open_cross_model(
    cfg: TrainConfig, base: Encoder, base_vectors: CachedVectors, encoder: Encoder | None = None, quiet: bool = True
) -> CrossModel | None:
    """The run's query model (None for an ordinary run), refused before any work when it is the base model
    again, when either model has prompts, or when two stores of precomputed vectors do not hold the same texts."""
    if cfg.query_model is None:
        return None
    encoder = encoder or open_query_encoder(cfg, base, quiet)
    check_distinct(base, encoder)
    if base.prompts or encoder.prompts:
        raise InputError(
            f"--query_model {cfg.query_model}: a cross-model run does not take prompts yet (--base_model "
            f"{cfg.base_model} prompts {base.prompts.as_dict()}, --query_model {encoder.prompts.as_dict()})"
        )
    check_paired_stores(base, encoder)
    vectors = CachedVectors(encoder, Path(cfg.cache_dir))
    return CrossModel(encoder, vectors, SideVectors(query=vectors, document=base_vectors))


def open_query_encoder(cfg: TrainConfig, base: Encoder, quiet: bool) -> Encoder:
    """open_encoder for the query model, on the base's backend; its errors name the flag the user gave."""
    try:
        return open_encoder(
            cfg.query_model,
            Path(cfg.cache_dir),
            cfg.device,
            cfg.encode_batch_size,
            show_progress=not quiet,
            backend=base.backend,
        )
    except InputError as err:
        text = str(err)
        if not text.startswith("--base_model "):
            raise
        raise InputError("--query_model " + text.removeprefix("--base_model ")) from None


def check_distinct(base: Encoder, query: Encoder) -> None:
    """The same weights on both sides is an ordinary adapter under another name: said, not trained."""
    weights = base.identity.get("weights_sha256")
    same = bool(weights) and weights == query.identity.get("weights_sha256")
    if isinstance(base, PrecomputedEncoder) and isinstance(query, PrecomputedEncoder):
        same = base.model_name == query.model_name
    if same:
        raise InputError(
            f"--query_model {query.name}: the same model as --base_model {base.name}"
            + (f" (weights sha256 {weights[:16]})" if weights else "")
            + "; a head over one model is an ordinary adapter: drop --query_model"
        )


def check_paired_stores(base, query) -> None:
    """Two providers' precomputed vectors pair up only when both stores hold the same texts: a text one of
    them lacks would have no partner (and a count that differs means the two imports were not the same
    files). Checked on the stores' keys, before anything is trained."""
    if not (isinstance(base, PrecomputedEncoder) and isinstance(query, PrecomputedEncoder)):
        return
    base_keys, query_keys = set(base.cache._rows), set(query.cache._rows)
    if base_keys != query_keys:
        raise InputError(
            f"--query_model {query.name}: its {len(query_keys)} stored texts are not the {len(base_keys)} of "
            f"--base_model {base.name} ({len(base_keys - query_keys)} only in the base's, "
            f"{len(query_keys - base_keys)} only in the query model's): paired vectors must cover the same "
            "texts; import both models' vectors of the same ids"
        )


def paired_texts(judged: list[TrainExample], count: int | None, seed: int) -> list[str]:
    """The texts an alignment is fitted on: the training file's queries and positives, deduplicated (texts
    both models embed; no label is read), or `count` of them drawn with `seed`."""
    texts = list(dict.fromkeys(t for e in judged for t in (e.query, e.positive)))
    if count is None:
        return texts
    if count > len(texts):
        raise InputError(f"--paired_texts {count}: more than the {len(texts)} training texts (queries and positives)")
    return random.Random(seed).sample(texts, count)


def paired_examples(texts: list[str]) -> list[TrainExample]:
    """--train_on paired_texts: each text is its own pair, its NEW vector (the query) mapped onto its OLD one."""
    return [TrainExample(query=t, positive=t) for t in texts]


def start_head(cfg: TrainConfig, cross: CrossModel, base_vectors: CachedVectors, texts: list[str]) -> LinearHead:
    """identity (the rectangular one when the widths differ), or a closed-form alignment on the paired texts."""
    if cfg.head_init == "identity":
        return LinearHead(cross.encoder.dim, base_vectors.encoder.dim, adapt="query")
    return alignment_head(cfg.head_init, cross.vectors(texts), base_vectors(texts))


def cross_trainable(
    cfg: TrainConfig, cross: CrossModel, base_vectors: CachedVectors, table: TrainTable, paired: list[str]
) -> Trainable:
    """The head over cached vectors of both models: queries (NEW model) pass through it, documents keep the
    OLD model's vectors. Every training text is located in both caches (the training documents are encoded by
    the NEW model too: a training set, never the corpus)."""
    head = start_head(cfg, cross, base_vectors, paired).to(cfg.device)
    embed = cached_embed(None, base_vectors, base_vectors.locate(table.texts), cfg.device)
    embed_query = cached_embed(head, cross.vectors, cross.vectors.locate(table.texts), cfg.device)
    group = {"params": list(head.parameters()), "lr": cfg.projection_learning_rate}
    return Trainable(head, embed, [group], {"head": head}, None, embed_query, vectors=cross.sides)
