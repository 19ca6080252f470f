"""Embedding cache on disk, keyed by (encoder fingerprint, sha256 of the text).

Each encoder fingerprint owns a folder holding `identity.json` and append-only shards: `<id>.npy`
(float32 vectors) + `<id>.keys.json` (their text hashes). A shard counts only once its keys file exists;
both are written atomically, so a crash leaves at most an ignored orphan vector file.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_bytes, atomic_write_json, read_json

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, root: Path, fingerprint: str, identity: dict):
        self.folder = Path(root) / "embeddings" / fingerprint[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        identity_file = self.folder / "identity.json"
        record = {"fingerprint": fingerprint, "identity": identity}
        if identity_file.is_file():
            if read_json(identity_file).get("fingerprint") != fingerprint:
                raise InputError(f"{identity_file}: cache belongs to another encoder; remove {self.folder}")
        else:
            atomic_write_json(identity_file, record)
        self._rows: dict[str, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        for keys_file in sorted(self.folder.glob("*.keys.json")):
            shard_id = len(self._shards)
            vectors = np.load(keys_file.with_name(keys_file.name.replace(".keys.json", ".npy")), mmap_mode="r")
            self._shards.append(vectors)
            for row, key in enumerate(read_json(keys_file)):
                self._rows.setdefault(key, (shard_id, row))

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors for `texts`, in order; only texts never seen before are passed to `encode`."""
        keys = [text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts):
            if key not in self._rows and key not in missing:
                missing[key] = text
        if missing:
            log.info("Encoding %d new texts (%d cached)", len(missing), len(set(keys)) - len(missing))
            vectors = np.ascontiguousarray(encode(list(missing.values())), dtype=np.float32)
            self._append(list(missing), vectors)
        return np.stack([self._shards[s][r] for s, r in (self._rows[k] for k in keys)]).astype(np.float32, copy=False)

    def _append(self, keys: list[str], vectors: np.ndarray) -> None:
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:20]  # content-named: concurrent writers never clash
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        atomic_write_bytes(self.folder / f"{name}.npy", buffer.getvalue())
        atomic_write_json(self.folder / f"{name}.keys.json", keys, indent=None)
        shard_id = len(self._shards)
        self._shards.append(vectors)
        for row, key in enumerate(keys):
            self._rows.setdefault(key, (shard_id, row))
