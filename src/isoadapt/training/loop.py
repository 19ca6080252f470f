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

from isoadapt.data.formats import TrainExample
from isoadapt.errors import InputError
from isoadapt.losses import LOGGED_TERMS
from isoadapt.losses.objective import Batch, WeightedObjective
from isoadapt.progress import progress
from isoadapt.training.checkpoint import Position, load_checkpoint, save_checkpoint
from isoadapt.training.selection import ValidationSelector

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


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    save_steps: int | None = None  # also checkpoint every N steps (always after each epoch)
    eval_steps: int | None = None  # also score validation every N steps (always at the start and after each epoch)
    checkpoint_dir: Path | None = None
    resume: bool = False
    progress: bool = True


Embed = Callable[[torch.Tensor], torch.Tensor]  # text indices (k,) -> projected embeddings (k, d)


def train(
    table: TrainTable,
    embed: Embed,
    parameters: list[dict],
    objective: WeightedObjective,
    settings: LoopSettings,
    generator: torch.Generator,
    modules: dict[str, torch.nn.Module] | None = None,
    selector: ValidationSelector | None = None,
    on_step: Callable[[dict], None] = lambda record: None,
    embed_query: Embed | None = None,
) -> list[dict]:
    """Run the loop; every step's weighted loss terms go to `on_step` and into the returned history.

    `modules` (with the optimizer, the RNG and the selection so far) are checkpointed after every epoch and
    every `save_steps` steps; `resume` continues from the last checkpoint, replaying the same batches. With a
    `selector`, validation is scored at the start, after each epoch and every `eval_steps` steps, and the
    modules end at their best-scoring state. `embed_query` embeds queries when they take another path than
    documents (a query-only head)."""
    if settings.batch_size > len(table):
        raise InputError(f"--batch_size {settings.batch_size}: larger than the {len(table)} training examples")
    loop = _Loop(table, parameters, settings, modules or {}, selector, on_step)
    loop.run(generator, lambda rows: batch_loss(table, embed, objective, rows, embed_query))
    if selector is not None:
        selector.restore()
    return loop.history


class _Loop:
    """The state of one training loop: optimizer, position, history, progress bar, checkpoints."""

    def __init__(self, table, parameters, settings: LoopSettings, modules, selector, on_step):
        self.table, self.settings, self.modules, self.selector, self.on_step = (
            table,
            settings,
            modules,
            selector,
            on_step,
        )
        self.optimizer = torch.optim.AdamW(parameters, weight_decay=0.0, fused=True)  # one kernel per step on CPU
        self.steps_per_epoch = len(table) // settings.batch_size  # the last partial batch is dropped
        resume = settings.resume and settings.checkpoint_dir
        self.position = load_checkpoint(settings.checkpoint_dir, modules, self.optimizer, selector) if resume else None
        self.history: list[dict] = list(self.position.history) if self.position else []
        self.step = self.position.step if self.position else 0
        self.started = time.perf_counter()

    def checkpoint(self, epoch: int, batch: int, epoch_state: torch.Tensor) -> None:
        if self.settings.checkpoint_dir is not None:
            position = Position(self.step, epoch, batch, epoch_state, self.history)
            save_checkpoint(self.settings.checkpoint_dir, self.modules, self.optimizer, position, self.selector)

    def validate(self) -> bool:
        """Score validation now (when selecting); True when early stopping says stop."""
        if self.selector is None:
            return False
        return self.selector.observe(self.step, self.step / self.steps_per_epoch)

    def run(self, generator: torch.Generator, loss_of: Callable[[torch.Tensor], dict]) -> None:
        total_steps = self.settings.epochs * self.steps_per_epoch
        bar = progress(total=total_steps, initial=self.step, desc="training", unit="step", show=self.settings.progress)
        try:
            if self.position is None and self.validate():
                return
            for epoch in range(self.position.epoch if self.position else 0, self.settings.epochs):
                if self.run_epoch(epoch, generator, loss_of, bar):
                    return
        finally:
            bar.close()  # also on Ctrl-C: the error line then starts on a line of its own

    def run_epoch(self, epoch: int, generator: torch.Generator, loss_of, bar) -> bool:
        """One epoch from where it stands; True when early stopping ends training."""
        resuming_here = self.position is not None and epoch == self.position.epoch
        if resuming_here:
            generator.set_state(self.position.epoch_generator_state)
        epoch_state = generator.get_state()
        order = torch.randperm(len(self.table), generator=generator)
        size, eval_steps = self.settings.batch_size, self.settings.eval_steps
        for batch in range(self.position.batch if resuming_here else 0, self.steps_per_epoch):
            self.take_step(epoch, loss_of(order[batch * size : (batch + 1) * size]), bar)
            last = batch + 1 == self.steps_per_epoch
            if eval_steps and self.step % eval_steps == 0 and not last and self.validate():
                self.checkpoint(epoch, batch + 1, epoch_state)
                return True
            if self.settings.save_steps and self.step % self.settings.save_steps == 0 and not last:
                self.checkpoint(epoch, batch + 1, epoch_state)
        stop = self.validate()
        self.checkpoint(epoch + 1, 0, generator.get_state())
        return stop

    def take_step(self, epoch: int, parts: dict[str, torch.Tensor], bar) -> None:
        total = sum(parts.values())
        record = step_record(self.step, epoch, total, parts)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        record["seconds"] = round(time.perf_counter() - self.started, 3)
        self.history.append(record)
        self.on_step(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['total']:.4f}")
        self.step += 1


def batch_loss(
    table: TrainTable, embed: Embed, objective: WeightedObjective, rows: torch.Tensor, embed_query: Embed | None = None
) -> dict[str, torch.Tensor]:
    """The objective's weighted parts on one batch of training rows; one embed call for all its texts (two
    when queries take their own path through a query-only head)."""
    q_idx, p_idx, n_idx = table.query[rows], table.positive[rows], table.negative[rows]
    has_negative = n_idx >= 0
    n = len(table.texts)
    relevant = table.is_relevant(q_idx[:, None] * n + p_idx[None, :])  # (b, b)
    relevant_negatives = table.is_relevant(q_idx[:, None] * n + n_idx.clamp(min=0)[None, :])  # (b, b)
    b = len(rows)
    if embed_query is None:
        vectors = embed(torch.cat([q_idx, p_idx, n_idx[has_negative]]))  # (2b + negatives, d)
        queries, documents = vectors[:b], vectors[b:]
    else:
        queries, documents = embed_query(q_idx), embed(torch.cat([p_idx, n_idx[has_negative]]))  # (b, d), (b + neg, d)
    negatives = torch.zeros_like(documents[:b])  # (b, d)
    negatives[has_negative] = documents[b:]
    return objective(Batch(queries, documents[:b], relevant, negatives, has_negative, relevant_negatives))


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
