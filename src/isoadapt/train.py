"""A plain PyTorch loop: cached base vectors (frozen encoder) or live encoding (full fine-tuning)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from isoadapt.checkpoint import Position, load_checkpoint, save_checkpoint
from isoadapt.data.formats import TrainExample
from isoadapt.errors import InputError
from isoadapt.losses.objective import LOGGED_TERMS, Batch, IsotropyObjective

log = logging.getLogger(__name__)


class TrainingDiverged(InputError):
    """A loss term became NaN or infinite; the message names the step and the term."""


@dataclass
class TrainTable:
    """Training examples as indices into one list of unique texts."""

    texts: list[str]
    query: torch.Tensor  # (n,) long
    positive: torch.Tensor  # (n,) long
    negative: torch.Tensor  # (n,) long, -1 where the example has none
    relevant_keys: torch.Tensor  # sorted long: query_text_index * len(texts) + relevant_text_index

    @classmethod
    def from_examples(cls, examples: list[TrainExample]) -> TrainTable:
        index: dict[str, int] = {}
        for e in examples:
            for text in (e.query, e.positive, e.negative):
                if text is not None:
                    index.setdefault(text, len(index))
        q = torch.tensor([index[e.query] for e in examples])
        p = torch.tensor([index[e.positive] for e in examples])
        n = torch.tensor([index[e.negative] if e.negative is not None else -1 for e in examples])
        keys = torch.unique(q * len(index) + p)  # every positive counts as relevant to its query text
        return cls(list(index), q, p, n, keys)

    def __len__(self) -> int:
        return len(self.query)

    def is_relevant(self, keys: torch.Tensor) -> torch.Tensor:
        """Membership of pair keys in the sorted relevant_keys by binary search: O(b^2 log n) per batch,
        where torch.isin would cost O(n) and make an epoch quadratic in the data."""
        position = torch.searchsorted(self.relevant_keys, keys).clamp(max=len(self.relevant_keys) - 1)
        return self.relevant_keys[position] == keys


def train(
    table: TrainTable,
    embed: Callable[[torch.Tensor], torch.Tensor],  # text indices (k,) -> projected embeddings (k, d)
    parameters: list[dict],
    objective: IsotropyObjective,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    on_step: Callable[[dict], None] = lambda record: None,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    modules: dict[str, torch.nn.Module] | None = None,
    save_steps: int | None = None,
    resume: bool = False,
) -> list[dict]:
    """Run the loop; every step's weighted loss terms go to `on_step` and into the returned history.

    With `checkpoint_dir`, `modules` (and the optimizer and RNG) are checkpointed after every epoch and
    every `save_steps` steps; `resume` continues from the last checkpoint, replaying the same batches."""
    if batch_size > len(table):
        raise InputError(f"--batch_size {batch_size}: larger than the {len(table)} training examples")
    optimizer = torch.optim.AdamW(
        parameters, weight_decay=0.0, fused=True
    )  # one kernel per step: a quarter faster on CPU
    steps_per_epoch = len(table) // batch_size  # the last partial batch is dropped: in-batch candidates need company
    position = load_checkpoint(checkpoint_dir, modules or {}, optimizer) if resume and checkpoint_dir else None
    history: list[dict] = list(position.history) if position else []
    step = position.step if position else 0
    started = time.perf_counter()
    bar = tqdm(total=epochs * steps_per_epoch, initial=step, desc="training", unit="step", disable=not progress)

    def checkpoint(epoch: int, batch: int, epoch_state: torch.Tensor) -> None:
        if checkpoint_dir is not None:
            save_checkpoint(
                checkpoint_dir, modules or {}, optimizer, Position(step, epoch, batch, epoch_state, history)
            )

    try:
        for epoch in range(position.epoch if position else 0, epochs):
            resuming_here = position is not None and epoch == position.epoch
            if resuming_here:
                generator.set_state(position.epoch_generator_state)
            epoch_state = generator.get_state()
            order = torch.randperm(len(table), generator=generator)
            for batch in range(position.batch if resuming_here else 0, steps_per_epoch):
                parts = batch_loss(table, embed, objective, order[batch * batch_size : (batch + 1) * batch_size])
                total = sum(parts.values())
                record = step_record(step, epoch, total, parts)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                record["seconds"] = round(time.perf_counter() - started, 3)
                history.append(record)
                on_step(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['total']:.4f}")
                step += 1
                if save_steps and step % save_steps == 0 and batch + 1 < steps_per_epoch:
                    checkpoint(epoch, batch + 1, epoch_state)
            checkpoint(epoch + 1, 0, generator.get_state())
    finally:
        bar.close()  # also on Ctrl-C: the error line then starts on a line of its own
    return history


def batch_loss(
    table: TrainTable, embed: Callable[[torch.Tensor], torch.Tensor], objective: IsotropyObjective, rows: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The objective's weighted parts on one batch of training rows; one embed call for all its texts."""
    q_idx, p_idx, n_idx = table.query[rows], table.positive[rows], table.negative[rows]
    has_negative = n_idx >= 0
    relevant = table.is_relevant(q_idx[:, None] * len(table.texts) + p_idx[None, :])  # (b, b)
    vectors = embed(torch.cat([q_idx, p_idx, n_idx[has_negative]]))  # (2b + negatives, d)
    b = len(rows)
    negatives = torch.zeros_like(vectors[:b])  # (b, d)
    negatives[has_negative] = vectors[2 * b :]
    return objective(Batch(vectors[:b], vectors[b : 2 * b], relevant, negatives, has_negative))


def step_record(step: int, epoch: int, total: torch.Tensor, parts: dict[str, torch.Tensor]) -> dict:
    """The logged values of one step; a NaN or infinite term stops training, naming the step and the term."""
    record = {
        "step": step,
        "epoch": epoch,
        "total": float(total.detach()),
        **{k: float(v.detach()) for k, v in parts.items()},
    }
    bad = [name for name in ("total", *parts) if not math.isfinite(record[name])]
    if bad:
        raise TrainingDiverged(
            f"training diverged at step {step} (epoch {epoch}): loss term '{bad[-1]}' is {record[bad[-1]]}"
        )
    return record


def last_epoch_means(history: list[dict]) -> dict[str, float]:
    last = [r for r in history if r["epoch"] == history[-1]["epoch"]]
    return {k: float(np.mean([r[k] for r in last])) for k in LOGGED_TERMS}
