"""A run's inputs: every file it reads, loaded and checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

from isoadapt.data.formats import EvalSet, StsPairs, TrainExample, check_texts_are_real, load_eval, load_sts, load_train
from isoadapt.data.sampling import sample_pairs
from isoadapt.errors import InputError
from isoadapt.training.config import TrainConfig


@dataclass
class Inputs:
    examples: list[TrainExample]  # the pairs trained on
    unlabelled: list[str]  # every text of the training file, labels unused (what --init_texts all fits on)
    judged: list[TrainExample]  # every pair of the file: what hard-negative mining must never call negative
    val: EvalSet  # selection's split, always loaded
    splits: dict[str, EvalSet]  # the splits reported in metrics.json
    sts: StsPairs | None


def load_inputs(cfg: TrainConfig, splits_to_report: tuple[str, ...]) -> Inputs:
    """Every input file, loaded and checked before anything is written."""
    for path in (cfg.train_data, cfg.val_data, cfg.test_data):
        if path:
            check_texts_are_real(path, cfg.base_model)
    examples = load_train(cfg.train_data)
    val = load_eval(cfg.val_data)
    splits = {"val": val, **({"test": load_eval(cfg.test_data)} if cfg.test_data else {})}
    splits = {name: split for name, split in splits.items() if name in splits_to_report} or splits
    sts = load_sts(cfg.sts_data) if cfg.sts_data else None
    unlabelled = list(dict.fromkeys(t for e in examples for t in (e.query, e.positive, e.negative) if t))
    judged = examples
    examples = examples[: cfg.max_train_examples] if cfg.max_train_examples else examples
    if cfg.train_pairs is not None:  # the run's own sample, from its seed
        check_train_pairs(cfg, len(examples))
        examples = sample_pairs(examples, cfg.train_pairs, cfg.seed)
    if cfg.batch_size > len(examples):  # checked here, before the run folder is opened
        raise InputError(
            f"--batch_size {cfg.batch_size}: larger than the {len(examples)} training examples in {cfg.train_data}"
        )
    return Inputs(examples, unlabelled, judged, val, splits, sts)


def check_train_pairs(cfg: TrainConfig, have: int) -> None:
    """More pairs than the file holds would train on all of them while config.json and the row's label
    keep the larger number: refused."""
    if cfg.train_pairs > have:
        raise InputError(
            f"--train_pairs {cfg.train_pairs}: more than the {have} training pairs in {cfg.train_data}; "
            f"give at most {have}, or leave it out to train on every pair"
        )


def prompted_inputs(inputs: Inputs, prompts) -> Inputs:
    """Every text as the encoder sees it on its side (encoding/prompts.py): queries and documents of the
    pairs, the splits and the STS pairs. Without prompts nothing changes."""
    if not prompts:
        return inputs
    judged = prompts.examples(inputs.judged)
    unlabelled = list(dict.fromkeys(t for e in judged for t in (e.query, e.positive, e.negative) if t))
    val = prompts.split(inputs.val)
    splits = {name: val if split is inputs.val else prompts.split(split) for name, split in inputs.splits.items()}
    sts = prompts.sts(inputs.sts) if inputs.sts else None
    return Inputs(prompts.examples(inputs.examples), unlabelled, judged, val, splits, sts)
