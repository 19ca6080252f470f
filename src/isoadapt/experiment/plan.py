"""Experiment plans: a TOML file of named configurations over shared defaults, validated on load.

A plan may only set known TrainConfig fields and a few plan keys: it can never name code to import.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.experiment.nudge import VARIANTS as NUDGE_VARIANTS
from isoadapt.experiment.nudge import check_installed as check_nudge_installed
from isoadapt.posthoc import POSTHOC
from isoadapt.training.config import ALIGNMENT_INITS as ALIGNMENTS
from isoadapt.training.config import TrainConfig, check_seeds, plan_settable

KINDS = ("baseline", "train", "posthoc", "nudge", "align")
TOP_KEYS = ("name", "seeds", "query_model", "defaults", "configs")  # a plan's own keys: any other is a typo, refused
PLAN_KEYS = {"name", "kind", "label", "train", "seeds", "transform", "keep", "remove", "train_sizes", "models"}
# Which models a row's two sides read (a plan with a query model, docs/upgrade.md): the base (old) model on both
# sides, the query (new) model on both sides (the full re-embed), or new queries against old documents.
MODELS = {"old": KINDS, "new": ("baseline",), "cross": ("train", "align")}
SIZED_KINDS = ("train", "nudge")  # the rows that learn from labels: a learning curve has a point per size
SETTABLE = plan_settable(TrainConfig)  # per-run names, places and inputs come from the command, not the plan
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass
class PlanEntry:
    name: str
    kind: str
    label: str
    train: str  # "smoke" or "full"
    seeds: list[int] | None
    settings: dict = field(default_factory=dict)  # TrainConfig overrides (train entries)
    transform: str | None = None
    options: dict = field(default_factory=dict)  # post-hoc options (keep, remove)
    family: str = ""  # the [[configs]] name a `train_sizes` entry came from (its own name otherwise)
    pairs: int | None = None  # a learning curve's point: train pairs drawn per seed (None: the whole file)
    models: str = "old"  # which model each side reads (MODELS): "cross" rows need the plan's query model

    def __post_init__(self):
        self.family = self.family or self.name


@dataclass
class Plan:
    name: str
    path: Path
    seeds: list[int]
    entries: list[PlanEntry]
    query_model: str | None = None  # the new model of a cross-model plan; `experiment --query_model` overrides it


def _seeds(path: Path, where: str, value) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{path}: {where}: 'seeds' must be a non-empty list of integers")
    return check_seeds(value, f"{path}: {where}")


def _read_toml(path: Path) -> dict:
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a TOML plan file")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: malformed TOML: {err}") from None


def _check_top_keys(path: Path, data: dict) -> None:
    """A misspelt top-level key (`seed = [0, 1, 2]`) would silently run the default seeds and change every
    spread, tie and p-value of the report: refused, with the keys it was probably meant to be."""
    for key in data:
        if key in SETTABLE:
            raise InputError(f"{path}: top-level key {key!r} is a training setting; put it under [defaults]")
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(key, [*TOP_KEYS, *SETTABLE], n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise InputError(
                f"{path}: unknown top-level key {key!r}; {hint}a plan holds {', '.join(TOP_KEYS)} "
                "(training settings go in [defaults] or a [[configs]] entry)"
            )


def _posthoc_options(path: Path, where: str, raw: dict) -> dict:
    """keep (whitening) and remove (all-but-the-top) are whole numbers: keep >= 1, remove >= 0."""
    options = {}
    for key, low in (("keep", 1), ("remove", 0)):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{path}: {where}: '{key}' must be an integer >= {low}, got {value!r}")
            options[key] = value
    return options


def _entry(path: Path, index: int, raw, defaults: dict, seen: set[str]) -> PlanEntry:
    """One [[configs]] table, checked whole: names, kinds, keys, types and every training setting."""
    if not isinstance(raw, dict):
        raise InputError(f"{path}: configs[{index}]: expected a [[configs]] table, got {type(raw).__name__}")
    entry_name = raw.get("name")
    if not isinstance(entry_name, str) or not NAME.match(entry_name):
        raise InputError(
            f"{path}: configs[{index}]: 'name' must be lowercase letters, digits, '.', '_' or '-', got {entry_name!r}"
        )
    where = f"config {entry_name!r}"
    if entry_name in seen:
        raise InputError(f"{path}: {where}: duplicate name")
    seen.add(entry_name)
    kind = raw.get("kind", "train")
    if kind not in KINDS:
        raise InputError(f"{path}: {where}: kind {kind!r} must be one of {list(KINDS)}")
    unknown = set(raw) - SETTABLE - PLAN_KEYS
    if unknown:
        raise InputError(f"{path}: {where}: unknown settings {sorted(unknown)}")
    label = raw.get("label", entry_name)
    if not isinstance(label, str):
        raise InputError(f"{path}: {where}: 'label' must be a string, got {label!r}")
    train = raw.get("train", defaults.get("train", "smoke"))
    if train not in ("smoke", "full"):
        raise InputError(f"{path}: {where}: train must be 'smoke' or 'full', got {train!r}")
    transform = raw.get("transform")
    if kind == "posthoc" and transform not in POSTHOC:
        raise InputError(f"{path}: {where}: transform {transform!r} must be one of {sorted(POSTHOC)}")
    if kind == "nudge" and transform not in NUDGE_VARIANTS:
        raise InputError(f"{path}: {where}: transform {transform!r} must be one of {sorted(NUDGE_VARIANTS)}")
    if kind == "nudge":
        check_nudge_installed(f"{path}: {where}")
    if kind == "align" and transform not in ALIGNMENTS:
        raise InputError(f"{path}: {where}: transform {transform!r} must be one of {list(ALIGNMENTS)}")
    models = _models(path, where, kind, raw.get("models", defaults.get("models", "old")))
    settings = {k: v for k, v in {**defaults, **raw}.items() if k in SETTABLE}
    if kind in ("train", "align"):
        cross = {"query_model": "<the query model>"} if models == "cross" else {}  # the cross-model rules apply
        checked = settings if kind == "train" else {"adapt": "query", "head_init": transform, **_paired(settings)}
        try:
            TrainConfig.settings_only(**checked, **cross).validate()
        except InputError as err:
            raise InputError(f"{path}: {where}: {err}") from None
    return PlanEntry(
        name=entry_name,
        kind=kind,
        label=label,
        train=train,
        seeds=_seeds(path, where, raw["seeds"]) if "seeds" in raw else None,
        settings=settings if kind == "train" else _paired(settings) if kind == "align" else {},
        transform=transform,
        options=_posthoc_options(path, where, raw),
        models=models,
    )


def _paired(settings: dict) -> dict:
    """What an `align` row (a closed-form map, no training) reads of the settings: how many paired texts."""
    return {"paired_texts": settings["paired_texts"]} if settings.get("paired_texts") is not None else {}


def _models(path: Path, where: str, kind: str, models) -> str:
    """Which models a row's sides read; an `align` row is always cross-model."""
    models = "cross" if kind == "align" else models
    if models not in MODELS:
        raise InputError(f"{path}: {where}: models {models!r} must be one of {list(MODELS)}")
    if kind not in MODELS[models]:
        raise InputError(f"{path}: {where}: models = {models!r} is for rows of kind {list(MODELS[models])}")
    return models


def _train_sizes(path: Path, where: str, kind: str, value) -> list[int]:
    if kind not in SIZED_KINDS:
        raise InputError(f"{path}: {where}: train_sizes is for rows that learn from labels ({list(SIZED_KINDS)})")
    if not isinstance(value, list) or not value:
        raise InputError(f"{path}: {where}: 'train_sizes' must be a non-empty list of integers >= 2")
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or size < 2:
            raise InputError(f"{path}: {where}: train size {size!r} must be an integer >= 2")
    if len(set(value)) != len(value):
        raise InputError(f"{path}: {where}: a train size is listed twice in {value}")
    return sorted(value)


def sized_entries(path: Path, raw: dict, entry: PlanEntry) -> list[PlanEntry]:
    """One entry per `train_sizes` value (a learning curve), or the entry itself."""
    if "train_sizes" not in raw:
        return [entry]
    sizes = _train_sizes(path, f"config {entry.name!r}", entry.kind, raw["train_sizes"])
    if "train_pairs" in entry.settings:
        raise InputError(f"{path}: config {entry.name!r}: give train_sizes or train_pairs, not both")
    expanded = []
    for size in sizes:
        settings = {**entry.settings, "train_pairs": size} if entry.kind == "train" else {}
        label = f"{entry.label}, {size} pairs"
        expanded.append(replace(entry, name=f"{entry.name}.n{size}", label=label, settings=settings, pairs=size))
    return expanded


def load_plan(path: str | Path) -> Plan:
    """Read and check the whole plan before anything runs: a wrong type in the last entry must not
    surface after hours of training."""
    path = Path(path)
    data = _read_toml(path)
    _check_top_keys(path, data)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"{path}: plan name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(f"{path}: 'defaults' must be a [defaults] table, got {type(defaults).__name__}")
    unknown = set(defaults) - SETTABLE - {"train", "models"}
    if unknown:
        raise InputError(f"{path}: [defaults]: unknown settings {sorted(unknown)}; known: {sorted(SETTABLE)}")
    raw_entries = data.get("configs")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise InputError(f"{path}: no [[configs]] entries")
    seeds = _seeds(path, "plan", data.get("seeds", [0]))
    seen: set[str] = set()
    entries = [
        entry
        for index, raw in enumerate(raw_entries)
        for entry in sized_entries(path, raw, _entry(path, index, raw, defaults, seen))
    ]
    if next((e.models for e in entries if e.kind == "baseline"), None) != "old":
        raise InputError(f"{path}: no entry of kind 'baseline': the report compares every row with the base model")
    query_model = data.get("query_model")
    if query_model is not None and (not isinstance(query_model, str) or not query_model):
        raise InputError(f"{path}: query_model must be a model name, got {query_model!r}")
    return Plan(name, path, seeds, entries, query_model)
