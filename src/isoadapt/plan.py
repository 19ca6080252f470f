"""Experiment plans: a TOML file of named configurations over shared defaults, validated on load.

A plan may only set known TrainConfig fields and a few plan keys: it can never name code to import.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from isoadapt.baselines import POSTHOC
from isoadapt.config import TrainConfig
from isoadapt.errors import InputError

KINDS = ("baseline", "train", "posthoc")
PLAN_KEYS = {"name", "kind", "label", "train", "seeds", "transform", "keep", "remove"}
RUN_SPECIFIC = {"train_data", "val_data", "test_data", "sts_data", "output_dir", "overwrite", "seed", "base_model", "cache_dir"}
SETTABLE = {f.name for f in fields(TrainConfig)} - RUN_SPECIFIC
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


@dataclass
class Plan:
    name: str
    path: Path
    seeds: list[int]
    entries: list[PlanEntry]


def _seeds(path: Path, where: str, value) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        raise InputError(f"{path}: {where}: 'seeds' must be a non-empty list of integers")
    return value


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: malformed TOML: {err}") from None
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(f"{path}: plan name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    defaults = data.get("defaults", {})
    unknown = set(defaults) - SETTABLE - {"train"}
    if unknown:
        raise InputError(f"{path}: [defaults]: unknown settings {sorted(unknown)}; known: {sorted(SETTABLE)}")
    raw_entries = data.get("configs")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise InputError(f"{path}: no [[configs]] entries")
    entries, seen = [], set()
    for index, raw in enumerate(raw_entries):
        where = f"configs[{index}]"
        entry_name = raw.get("name")
        if not isinstance(entry_name, str) or not NAME.match(entry_name):
            raise InputError(f"{path}: {where}: 'name' must be lowercase letters, digits, '.', '_' or '-', got {entry_name!r}")
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
        settings = {k: v for k, v in {**defaults, **raw}.items() if k in SETTABLE}
        train = raw.get("train", defaults.get("train", "smoke"))
        if train not in ("smoke", "full"):
            raise InputError(f"{path}: {where}: train must be 'smoke' or 'full', got {train!r}")
        transform = raw.get("transform")
        if kind == "posthoc" and transform not in POSTHOC:
            raise InputError(f"{path}: {where}: transform {transform!r} must be one of {sorted(POSTHOC)}")
        entry = PlanEntry(
            name=entry_name, kind=kind, label=raw.get("label", entry_name), train=train,
            seeds=_seeds(path, where, raw["seeds"]) if "seeds" in raw else None,
            settings=settings if kind == "train" else {}, transform=transform,
            options={k: raw[k] for k in ("keep", "remove") if k in raw},
        )
        if kind == "train":
            try:
                TrainConfig(train_data="", val_data="", output_dir="", **settings).validate()
            except TypeError as err:
                raise InputError(f"{path}: {where}: {err}") from None
            except InputError as err:
                raise InputError(f"{path}: {where}: {err}") from None
        entries.append(entry)
    return Plan(name, path, _seeds(path, "plan", data.get("seeds", [0])), entries)
