"""`fit` (train an adapter with `isoadapt train`'s settings and code) and `evaluate` (score one as
`isoadapt evaluate` does), on processed dataset files or on your own vectors as arrays (`Vectors`)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import NamedTuple

from isoadapt.api.adapter import Adapter
from isoadapt.data.layout import DatasetFolder
from isoadapt.encoding.arrays import Vectors, check_split, stage_arrays
from isoadapt.encoding.precomputed import PREFIX
from isoadapt.errors import InputError
from isoadapt.training.config import TrainConfig
from isoadapt.training.evaluate_command import EVALUATION_KIND, evaluate_run, score_head
from isoadapt.training.train_command import run_training


class Fit(NamedTuple):
    """What `fit` returns: the adapter (selected on validation) and its metrics (the run's metrics.json)."""

    adapter: Adapter
    metrics: dict


SETTINGS = {f.name for f in fields(TrainConfig)}
SPLIT_SETTINGS = {"train": "train_data", "val": "val_data", "test": "test_data"}  # a split -> its file setting
ARRAYS = "arrays"  # the model name of vectors given as arrays, unless base_model names it


def fit(
    data: str | Path | Vectors | None = None,
    val: Vectors | None = None,
    test: Vectors | None = None,
    *,
    config: TrainConfig | None = None,
    verbose: bool = False,
    **settings,
) -> Fit:
    """Train an adapter as `isoadapt train` does (the same TrainConfig, the same code, selection on
    validation), on one of:

    - a processed dataset folder (`data/processed/semanlink_smoke`: train.json, dev.json, test.json if there);
    - your own vectors: `data`, `val` (and `test`) as `isoadapt.Vectors`; the base is then
      `vectors:<base_model>` (give `base_model="provider/model"` to name it; default `arrays`), and the
      vectors are staged, with placeholder texts, in a temporary dataset and cache;
    - nothing, with the `train_data` and `val_data` settings, as on the command line.

    `settings` are TrainConfig's fields (`epochs=3`, `contrastive_loss="infonce"`, ...), over `config`.
    Without `output_dir` the run is built in a temporary folder, read back and removed (and the default
    tracker writes nothing); with it, the run folder stays, as the command line leaves it (for arrays, its
    config.json names the temporary files they were staged in). `verbose` shows progress bars and prints
    the command line's summary."""
    values = _settings(config, settings)
    arrays = _splits(data, val, test, values)
    if arrays:
        values["base_model"] = _arrays_model(config, settings)
    with tempfile.TemporaryDirectory(prefix="isoadapt-fit-") as scratch:
        scratch = Path(scratch)
        kept = bool(values.get("output_dir"))
        if not kept:
            values |= {"output_dir": str(scratch / "run"), "tracker": settings.get("tracker", "none")}
        cfg = _checked_config(values, kept)
        if arrays:
            files = stage_arrays(arrays, cfg.base_model.removeprefix(PREFIX), scratch, cfg.seed)
            cfg = replace(
                cfg, cache_dir=str(scratch / "cache"), **{SPLIT_SETTINGS[n]: str(p) for n, p in files.items()}
            )
        result = run_training(cfg, quiet=not verbose)
        adapter = Adapter.load(result.folder, values.get("cache_dir"))
        if not kept:
            adapter.folder = None
    return Fit(adapter, adapter.card)


def _arrays_model(config: TrainConfig | None, settings: dict) -> str:
    """`vectors:<name>` for arrays: the base_model setting names the model that made them (a config's only
    when it is not the default encoder), else they are `vectors:arrays`."""
    default = TrainConfig.settings_only().base_model
    named = settings.get("base_model") or (config.base_model if config and config.base_model != default else "")
    return PREFIX + (named.removeprefix(PREFIX) or ARRAYS)


def _settings(config: TrainConfig | None, settings: dict) -> dict:
    unknown = sorted(set(settings) - SETTINGS)
    if unknown:
        raise InputError(f"fit: unknown settings {unknown}; the settings are TrainConfig's fields")
    given = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}
    return {**(asdict(config) if config is not None else {}), **given}


def _splits(data, val, test, values: dict) -> dict[str, Vectors]:
    """The splits given as arrays (none for files); a dataset folder fills the file settings instead."""
    named = [name for name in SPLIT_SETTINGS.values() if values.get(name)]
    if isinstance(data, Vectors):
        if named or values.get("sts_data"):
            given = named + (["sts_data"] if values.get("sts_data") else [])
            raise InputError(
                f"fit: with isoadapt.Vectors the splits come from the arrays (no texts); leave out {given}"
            )
        if val is None:
            raise InputError("fit: give val (isoadapt.Vectors): the head is selected on validation")
        return {"train": data, "val": val, **({"test": test} if test is not None else {})}
    if val is not None or test is not None:
        raise InputError("fit: val and test take isoadapt.Vectors, with data as isoadapt.Vectors too")
    if data is not None:
        folder = DatasetFolder(Path(data))
        if not folder.holds_training():
            raise InputError(
                f"fit: {folder.path}: not a processed dataset folder (no {folder.train.name} and {folder.dev.name})"
            )
        if named:
            raise InputError(f"fit: the dataset folder {folder.path} gives the splits; leave out {named}")
        values |= {"train_data": str(folder.train), "val_data": str(folder.dev)}
        if folder.test.is_file():
            values["test_data"] = str(folder.test)
    elif not values.get("train_data") or not values.get("val_data"):
        raise InputError(
            "fit: give a processed dataset folder, isoadapt.Vectors, or the train_data and val_data settings"
        )
    return {}


def _checked_config(values: dict, kept: bool) -> TrainConfig:
    """The settings as a TrainConfig, checked before anything is staged or trained (arrays' files are
    filled in after)."""
    cfg = TrainConfig(**{"train_data": "", "val_data": "", **values})
    cfg.validate()
    if not kept and (not cfg.freeze_base or cfg.resume):
        flag = "resume" if cfg.resume else "freeze_base=False"
        raise InputError(f"fit: {flag} needs output_dir (a run folder that stays on disk)")
    return cfg


def evaluate(adapter: Adapter, split: str | Path | Vectors, sts: str | Path | None = None) -> dict:
    """The adapter against its base model on one split: the dict `isoadapt evaluate --output` writes
    (baseline, trained, change_pct; sts_spearman with STS pairs). `split` is a processed split file
    (dev.json, test.json) or your own vectors (`isoadapt.Vectors`, base vectors of the adapter's model)."""
    if isinstance(split, Vectors):
        if sts is not None:
            raise InputError("evaluate: STS pairs are texts; with isoadapt.Vectors leave sts out")
        adapter.check_base_vectors()
        checked = check_split("split", split, adapter.dim)
        scores = score_head(checked.split, checked.lookup, checked.lookup, adapter.head)
        return {"kind": EVALUATION_KIND, "data": "arrays", "run_dir": adapter.folder and str(adapter.folder), **scores}
    if adapter.export is not None and adapter.fine_tuned:
        raise InputError(f"{adapter.where}: exported from a fine-tuned run; evaluate the run folder it came from")
    data, sts_data = Path(split), Path(sts) if sts is not None else None
    return evaluate_run(adapter.run, data, adapter.cache_dir, sts_data, adapter.base_encoder)
