"""`fit` (train an adapter with `isoadapt train`'s code, by default with the recipe the reports recommend)
and `evaluate` (score one as `isoadapt evaluate` does), on pairs of texts, processed dataset files or your
own vectors as arrays (`Vectors`)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from isoadapt.api.adapter import Adapter
from isoadapt.api.training_data import is_texts, stage_texts
from isoadapt.api.wording import speaks_python
from isoadapt.data.layout import DatasetFolder
from isoadapt.encoding.arrays import Vectors, check_split, stage_arrays
from isoadapt.encoding.offline_models import MINILM, object_folder
from isoadapt.encoding.precomputed import PREFIX
from isoadapt.errors import NOTHING_KEPT, Failed, InputError, Interrupted, sigterm_as_ctrl_c
from isoadapt.training.config import DEFAULT_CACHE_DIR, TrainConfig
from isoadapt.training.evaluate_command import EVALUATION_KIND, evaluate_run, score_head
from isoadapt.training.train_command import run_training


class Fit(NamedTuple):
    """What `fit` returns: the adapter (selected on validation) and its metrics (the run's metrics.json)."""

    adapter: Adapter
    metrics: dict


SETTINGS = {f.name for f in fields(TrainConfig)}
SPLIT_SETTINGS = {"train": "train_data", "val": "val_data", "test": "test_data"}  # a split -> its file setting
ARRAYS = "arrays"  # the model name of vectors given as arrays, unless base_model names it
# fit's defaults: the recommended row of docs/results/adapters-semanlink-minilm (`infonce-identity-iso1-hard` of
# plans/adapters.toml: that plan's [defaults] plus head_init = "identity", lambda_isotropy = 1.0, negatives =
# "hard"), on the model that report measured. tests/test_api.py checks them against the plan and the report.
RECOMMENDED = {
    "base_model": MINILM,
    "contrastive_loss": "infonce",
    "lambda_contrastive": 1.0,
    "lambda_isotropy": 1.0,
    "lambda_reg": 0.0,
    "projection_learning_rate": 1e-3,
    "epochs": 5,
    "batch_size": 64,
    "head_init": "identity",
    "negatives": "hard",
}


@speaks_python()
def fit(
    data: str | Path | Vectors | list | None = None,
    val: Vectors | str | Path | dict | list | None = None,
    test: Vectors | str | Path | dict | list | None = None,
    *,
    config: TrainConfig | None = None,
    verbose: bool = False,
    show_progress_bar: bool = True,
    **settings,
) -> Fit:
    """Train an adapter with `isoadapt train`'s code (selection on validation), on one of:

    - pairs of texts: `data` a list of (anchor, positive[, negative]) tuples or of {"anchor" (or "query"),
      "positive", "negative"?} dicts, or a `datasets.Dataset` (first column anchor, second positive, optional
      third negative, as sentence-transformers reads one); `val` (required: the head is selected on it) and
      `test` as pairs too, as {"queries", "corpus", "qrels"} dicts (InformationRetrievalEvaluator's
      arguments), or processed split files;
    - a processed dataset folder (`data/processed/semanlink_smoke`: train.json, dev.json, test.json if there);
    - your own vectors: `data`, `val` (and `test`) as `isoadapt.Vectors`; the base is then
      `vectors:<base_model>` (give `base_model="provider/model"` to name it; default `arrays`), and the
      vectors are staged, with placeholder texts, in a temporary dataset and cache;
    - nothing, with the `train_data` and `val_data` settings, as on the command line.

    The defaults are the recipe the MiniLM report recommends (RECOMMENDED: the identity-started InfoNCE
    head with isotropy 1.0 and hard negatives, on both sides, over all-MiniLM-L6-v2, 5 epochs of 64 pairs at
    lr 1e-3; docs/results/adapters-semanlink-minilm): the best head that holds every shift probe, another
    domain's documents as queries included. It moves documents too: embed them with `encode_document`. Where
    only queries may change, `adapt="query", lambda_isotropy=0.0` is that report's in-domain pick.
    `isoadapt train` keeps the research note's defaults (TrainConfig's); pass
    `config=TrainConfig.settings_only()` to train with those.
    On all-mpnet-base-v2 the report recommends `head_init="whitening", out_dim=256, lambda_isotropy=0.0`
    instead (its identity starts lose another domain's documents as queries: docs/results/README.md).
    `settings` are TrainConfig's fields (`epochs=3`, ...), over `config`, else over these defaults.

    Without `output_dir` the run is built in a temporary folder, read back and removed (and the default
    tracker writes nothing); with it, the run folder stays, as the command line leaves it (for arrays, its
    config.json names the temporary files they were staged in). Progress bars show on a terminal
    (`show_progress_bar=False` hides them); `verbose` also prints the command line's summary."""
    values = _settings(config, settings)
    values = _model_object(values, isinstance(data, Vectors))
    with sigterm_as_ctrl_c(), tempfile.TemporaryDirectory(prefix="isoadapt-fit-") as scratch:
        scratch = Path(scratch)
        arrays = _splits(data, val, test, values, scratch / "texts")
        if arrays:
            values["base_model"] = _arrays_model(config, settings)
        kept = bool(values.get("output_dir"))
        if not kept:
            values |= {"output_dir": str(scratch / "run"), "tracker": settings.get("tracker", "none")}
        cfg = _checked_config(values, kept)
        _check_flag("verbose", verbose)
        _check_flag("show_progress_bar", show_progress_bar)
        try:
            if arrays:
                files = stage_arrays(arrays, cfg.base_model.removeprefix(PREFIX), scratch, cfg.seed)
                _check_given_negatives(arrays["train"], cfg)  # after the arrays' own checks
                cfg = replace(
                    cfg, cache_dir=str(scratch / "cache"), **{SPLIT_SETTINGS[n]: str(p) for n, p in files.items()}
                )
            result = run_training(cfg, quiet=not (verbose or show_progress_bar), summary=verbose)
        except (Interrupted, Failed, InputError) as err:
            if kept or str(scratch) not in str(err):
                raise
            raise _in_scratch(err) from None
        adapter = Adapter.load(result.folder, values.get("cache_dir"))
        if not kept:
            adapter.folder = None
    return Fit(adapter, adapter.metrics)


def _check_given_negatives(train: Vectors, cfg: TrainConfig) -> None:
    """Triples exist to train on their negatives; hard negatives would replace them without a word."""
    if cfg.negatives == "hard" and train.pairs is not None and any(len(p) == 3 for p in train.pairs):
        raise InputError(
            "fit: the training pairs give negatives (triples), but negatives='hard' mines others in their "
            "place; pass negatives='file' to train on yours"
        )


def _check_flag(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InputError(f"fit: {name}={value!r}: expected True or False")


SCRATCH_GONE = f"{NOTHING_KEPT} (without output_dir the run lives in a temporary folder, removed on the way out)"


def _in_scratch(err: Exception) -> Exception:
    """The error of a run built in fit's temporary folder, without pointing into it: that folder (and any
    checkpoint in it) is removed as the error leaves `fit`. Ctrl-C stays a KeyboardInterrupt."""
    if isinstance(err, Interrupted):
        return Interrupted(f"fit interrupted: {SCRATCH_GONE}; give output_dir to keep a checkpoint to resume")
    reason = str(err).split("; its checkpoint is kept in ")[0]
    return type(err)(f"fit: {reason}; {SCRATCH_GONE}")


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
    if config is not None and not isinstance(config, TrainConfig):
        raise InputError(f"fit: config is {type(config).__name__}; expected an isoadapt.TrainConfig")
    given = {k: _plain(v) for k, v in settings.items()}
    chosen = {**(asdict(config) if config is not None else RECOMMENDED), **given}
    if config is None and given.get("query_model") and "adapt" not in given:
        chosen["adapt"] = "query"  # the one head a cross-model run can have (training/cross_settings.py)
    return chosen


def _plain(value: object) -> object:
    """A setting as TrainConfig holds it: a path as a string, a NumPy scalar (`np.int64(1)`, what
    `np.arange` and pandas hand out) as the Python number it is."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value.item() if isinstance(value, np.generic) else value


def _model_object(values: dict, arrays: bool) -> dict:
    """`base_model` given as a SentenceTransformer object: saved once into the cache as a folder (its path is
    what the run records and every command reopens)."""
    model = values.get("base_model")
    if model is None or isinstance(model, str):
        return values
    if arrays:
        raise InputError("fit: with isoadapt.Vectors, base_model is the name of the model that made them")
    from sentence_transformers import SentenceTransformer

    if not isinstance(model, SentenceTransformer):
        raise InputError(
            f"fit: base_model is a {type(model).__name__}; give a model name, a hub id, a folder or a "
            "SentenceTransformer object"
        )
    cache_dir = Path(values.get("cache_dir") or DEFAULT_CACHE_DIR)
    return {**values, "base_model": str(object_folder(model, cache_dir))}


def _splits(data, val, test, values: dict, staging: Path) -> dict[str, Vectors]:
    """The splits given as arrays (none for files); a dataset folder or pairs of texts (staged as one) fill
    the file settings instead."""
    named = [name for name in SPLIT_SETTINGS.values() if values.get(name)]
    if is_texts(data):
        if named:
            raise InputError(f"fit: the pairs in data give the training split; leave out {named}")
        if val is None:
            raise InputError(
                "fit: give val (pairs, a {queries, corpus, qrels} dict or a split file): the head is "
                "selected on validation"
            )
        splits = {"val": val, **({"test": test} if test is not None else {})}
        for name, value in splits.items():
            if isinstance(value, Vectors):
                raise InputError(f"fit: {name} is isoadapt.Vectors but data is texts; give both as texts or as Vectors")
        files = stage_texts(data, splits, staging)
        values |= {SPLIT_SETTINGS[name]: str(path) for name, path in files.items()}
        return {}
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
        if not isinstance(data, (str, os.PathLike)):
            raise InputError(
                f"fit: data is {type(data).__name__}; expected pairs of texts (a list or a datasets.Dataset), "
                "a processed dataset folder, or isoadapt.Vectors"
            )
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


@speaks_python({"data": "split", "run_dir": "adapter"})
def evaluate(adapter: Adapter, split: str | Path | Vectors, sts: str | Path | None = None) -> dict:
    """The adapter against its base model on one split: the dict `isoadapt evaluate --output` writes
    (baseline, trained, change_pct; sts_spearman with STS pairs). `split` is a processed split file
    (dev.json, test.json) or your own vectors (`isoadapt.Vectors`, base vectors of the adapter's model)."""
    if not isinstance(adapter, Adapter):
        raise InputError(f"evaluate: adapter is {type(adapter).__name__}; expected an isoadapt.Adapter")
    if not isinstance(split, (str, os.PathLike, Vectors)):
        raise InputError(
            f"evaluate: split={split!r:.40}; expected a processed split file (dev.json, test.json) or isoadapt.Vectors"
        )
    if sts is not None and not isinstance(sts, (str, os.PathLike)):
        raise InputError(f"evaluate: sts={sts!r:.40}; expected an STS pairs file (sts_*.json)")
    if isinstance(split, Vectors):
        if sts is not None:
            raise InputError("evaluate: STS pairs are texts; with isoadapt.Vectors leave sts out")
        adapter.check_base_vectors()
        if adapter.query_model:  # Vectors holds one model's vectors for queries and documents alike
            raise InputError(
                f"evaluate: {adapter.where} is a cross-model run (queries from {adapter.query_model}, documents "
                f"from {adapter.base_model}); isoadapt.Vectors holds one model's vectors: evaluate it on a split file"
            )
        checked = check_split("split", split, adapter.dim)
        scores = score_head(checked.split, checked.lookup, checked.lookup, adapter.head)
        return {"kind": EVALUATION_KIND, "data": "arrays", "run_dir": adapter.folder and str(adapter.folder), **scores}
    if adapter.export_folder is not None and adapter.fine_tuned:
        raise InputError(f"{adapter.where}: exported from a fine-tuned run; evaluate the run folder it came from")
    data, sts_data = Path(split), Path(sts) if sts is not None else None
    return evaluate_run(adapter.run, data, adapter.cache_dir, sts_data, adapter.base_encoder)
