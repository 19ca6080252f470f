"""Embedding cache on disk, keyed by (encoder fingerprint, sha256 of the text).

Each encoder fingerprint owns a folder holding `identity.json` and append-only shards: `<id>.npy`
(float32 vectors, memory-mapped on load) + `<id>.keys.json` (the fingerprint, the shape, the sha256 of the
vector file, and the text hashes). A shard counts only once its keys file exists; both are written
atomically. A shard whose checksum, shape or fingerprint does not match is removed and its texts are
encoded again: a damaged cache is rebuilt, never used. Writers take a file lock, so processes can share
a cache folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_bytes, atomic_write_json, read_json

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


SHARD_ROWS = 65_536  # texts per shard: a crash loses at most one shard of work, and no write needs the whole set in RAM
STORAGE = {"float32": np.float32, "float16": np.float16}


class EmbeddingCache:
    def __init__(self, root: Path, fingerprint: str, identity: dict, storage: str = "float32"):
        if storage not in STORAGE:
            raise InputError(f"cache storage {storage!r}: expected one of {sorted(STORAGE)}")
        self.fingerprint = fingerprint
        self.dtype = STORAGE[storage]
        self.folder = Path(root) / "embeddings" / (fingerprint[:24] + ("" if storage == "float32" else f"-{storage}"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.folder / ".lock"))
        identity_file = self.folder / "identity.json"
        with self.lock:
            if identity_file.is_file():
                try:
                    stored = read_json(identity_file).get("fingerprint")
                except InputError:
                    stored = None
                if stored != fingerprint:
                    raise InputError(f"{identity_file}: cache belongs to another encoder or is damaged; remove {self.folder}")
            else:
                atomic_write_json(identity_file, {"fingerprint": fingerprint, "identity": identity})
            self._rows: dict[str, tuple[int, int]] = {}
            self._shards: list[np.ndarray] = []
            self._loaded: set[str] = set()
            self._scan()

    def __len__(self) -> int:
        return len(self._rows)

    def _scan(self) -> None:
        """Index every valid shard not loaded yet (other processes may have added some)."""
        for keys_file in sorted(self.folder.glob("*.keys.json")):
            name = keys_file.name.removesuffix(".keys.json")
            if name in self._loaded:
                continue
            vectors_file = self.folder / f"{name}.npy"
            problem = self._check(keys_file, vectors_file)
            if problem:
                log.warning("embedding cache shard %s is unusable (%s): removed; its texts will be encoded again", vectors_file, problem)
                keys_file.unlink(missing_ok=True)
                vectors_file.unlink(missing_ok=True)
                continue
            meta = json.loads(keys_file.read_text(encoding="utf-8"))
            shard_id = len(self._shards)
            self._shards.append(np.load(vectors_file, mmap_mode="r"))
            for row, key in enumerate(meta["keys"]):
                self._rows.setdefault(key, (shard_id, row))
            self._loaded.add(name)

    def _check(self, keys_file: Path, vectors_file: Path) -> str | None:
        try:
            meta = json.loads(keys_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return "unreadable keys file"
        if not isinstance(meta, dict) or meta.get("fingerprint") != self.fingerprint:
            return "fingerprint mismatch"
        if not vectors_file.is_file():
            return "vector file missing"
        if _file_sha256(vectors_file) != meta.get("sha256"):
            return "checksum mismatch (truncated or altered)"
        try:
            vectors = np.load(vectors_file, mmap_mode="r")
        except (ValueError, OSError) as err:
            return f"unreadable vector file ({err})"
        if list(vectors.shape) != [len(meta.get("keys", [])), meta.get("dim")]:
            return f"shape {vectors.shape} does not match {len(meta.get('keys', []))} keys"
        return None

    def ensure(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> list[tuple[int, int]]:
        """Encode the texts never seen before (shard by shard) and return every text's (shard, row)."""
        keys = [text_key(t) for t in texts]
        if any(k not in self._rows for k in keys):
            with self.lock:
                self._scan()
                missing: dict[str, str] = {}
                for key, text in zip(keys, texts):
                    if key not in self._rows and key not in missing:
                        missing[key] = text
                if missing:
                    log.info("Encoding %d new texts (%d cached)", len(missing), len(set(keys)) - len(missing))
                    pending = list(missing.items())
                    for start in range(0, len(pending), SHARD_ROWS):
                        chunk = pending[start : start + SHARD_ROWS]
                        self._append([k for k, _ in chunk], np.ascontiguousarray(encode([t for _, t in chunk]), dtype=self.dtype))
        return [self._rows[k] for k in keys]

    def get(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors for `texts`, in order, as float32; only texts never seen before are passed to `encode`."""
        return self.gather(self.ensure(texts, encode))

    def gather(self, locations: Sequence[tuple[int, int]]) -> np.ndarray:  # -> (len(locations), d) float32
        """Read rows from the memory-mapped shards; only the rows asked for are touched."""
        if not locations:
            return np.zeros((0, 0), dtype=np.float32)
        where = np.asarray(locations, dtype=np.int64)  # (n, 2): shard, row
        out = np.empty((len(where), self._shards[where[0, 0]].shape[1]), dtype=np.float32)
        for shard in np.unique(where[:, 0]):
            picked = np.flatnonzero(where[:, 0] == shard)
            out[picked] = self._shards[shard][where[picked, 1]]  # one fancy-index read per shard
        return out

    def _append(self, keys: list[str], vectors: np.ndarray) -> None:
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:20]  # content-named
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        data = buffer.getvalue()
        atomic_write_bytes(self.folder / f"{name}.npy", data)
        meta = {"fingerprint": self.fingerprint, "dim": int(vectors.shape[1]), "sha256": hashlib.sha256(data).hexdigest(), "keys": keys}
        atomic_write_json(self.folder / f"{name}.keys.json", meta, indent=None)
        shard_id = len(self._shards)
        self._shards.append(np.load(self.folder / f"{name}.npy", mmap_mode="r"))  # the file, not the array: RAM stays bounded
        self._loaded.add(name)
        for row, key in enumerate(keys):
            self._rows.setdefault(key, (shard_id, row))
