"""Reading an export folder (`isoadapt export`, `Adapter.export`) for `Adapter.load`: every file it relies on
is checked when it is loaded, so a hand-edited or damaged `modules.json` or `adapter/adapter.json` is one
InputError naming the file and the field, not an AttributeError now or a JSONDecodeError at the first encode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from isoadapt.errors import InputError
from isoadapt.fileio import read_json
from isoadapt.head import WEIGHTS_FILE, load_head
from isoadapt.store.export import ADAPTER_FILE, EXPORT_ADAPTER, check_modules
from isoadapt.training.run_folder import check_head_digest

MODULES_FILE = "modules.json"  # sentence-transformers' list of the model's modules, in order


@dataclass
class SavedExport:
    document: dict  # the run's config.json: config, encoder identity, versions
    head: nn.Module
    head_sha256: str
    weights: str | None  # the base model's weights sha256 the run recorded, if any
    metrics: dict  # the run's metrics.json ({} for a plan's post-hoc transform)
    fine_tuned: bool


def check_modules_file(folder: Path) -> None:
    """modules.json is a non-empty list of {"path", "type"} objects whose folders exist, as
    sentence-transformers reads it when the model loads."""
    path = folder / MODULES_FILE
    modules = read_json(path)
    if not isinstance(modules, list) or not modules:
        raise InputError(f"{path}: expected a non-empty list of modules, got {type(modules).__name__}")
    for index, module in enumerate(modules):
        if not isinstance(module, dict) or not all(isinstance(module.get(k), str) for k in ("path", "type")):
            raise InputError(f"{path}: module {index}: expected an object with 'path' and 'type' strings")
        if module["path"] and not (folder / module["path"]).is_dir():
            raise InputError(f"{path}: module {index}: its folder {module['path']!r} is missing")


def _object(recorded: Path, saved: dict, key: str, required: bool = False) -> dict:
    value = saved.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{recorded}: '{key}' must be an object, got {type(value).__name__}")
    return value


def read_export(folder: Path) -> SavedExport:
    recorded = folder / EXPORT_ADAPTER / ADAPTER_FILE
    if not recorded.is_file():
        raise InputError(
            f"{folder}: a SentenceTransformer folder without {EXPORT_ADAPTER}/{ADAPTER_FILE}; "
            "not written by `isoadapt export` (or by an older one: export the run again)"
        )
    check_modules_file(folder)
    saved = read_json(recorded)
    if not isinstance(saved, dict):
        raise InputError(f"{recorded}: expected an object with a 'run' object holding the run's 'config'")
    document = _object(recorded, saved, "run", required=True)
    config = _object(recorded, document, "config", required=True)
    if not isinstance(config.get("base_model"), str) or not config["base_model"]:
        raise InputError(f"{recorded}: run.config has no 'base_model' string")
    encoder = _object(recorded, document, "encoder")
    metrics = _object(recorded, saved, "card")
    fine_tuned = saved.get("fine_tuned", False)
    if not isinstance(fine_tuned, bool):
        raise InputError(f"{recorded}: 'fine_tuned' must be true or false, got {fine_tuned!r}")
    head = load_head(folder / EXPORT_ADAPTER)
    digest = check_head_digest(folder / EXPORT_ADAPTER / WEIGHTS_FILE, saved.get("head_sha256"), recorded)
    check_modules(folder, head)  # encode_* answers through the export's modules: they must carry this head
    weights = encoder.get("weights_sha256")
    return SavedExport(document, head, digest, weights if isinstance(weights, str) else None, metrics, fine_tuned)
