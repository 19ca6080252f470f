"""Embedding cache on disk, keyed by (encoder fingerprint, sha256 of the text).

Each encoder fingerprint owns a folder holding `identity.json` and append-only shards: `<id>.npy`
(float32 vectors, memory-mapped on load) + `<id>.keys.json` (the fingerprint, the shape, the text hashes,
and one sha256 over the keys and the vector file together, so neither can change alone). A shard counts
only once its keys file exists; both are written atomically. A shard whose checksum, shape or fingerprint
does not match is removed and its texts are encoded again: a damaged cache is rebuilt, never used.
Writers take a file lock, so processes can share a cache folder; readers take none, so a read-only cache
that already holds every vector works.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_bytes, atomic_write_json, read_json, sha256_file

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _keys_digest(keys: list[str]):
    """The shard checksum starts from its keys: reordering them changes the sum as surely as a flipped byte."""
    return hashlib.sha256(("\n".join(keys) + "\n").encode("ascii"))


SHARD_FORMAT = 2  # 2: the checksum covers keys and vectors together
SHARD_ROWS = 8_192  # texts per shard: a crash loses at most one shard of work (minutes of mpnet here), and
# no write needs the whole set in RAM
STORAGE = {"float32": np.float32, "float16": np.float16}


class EmbeddingCache:
    def __init__(self, root: Path, fingerprint: str, identity: dict, storage: str = "float32", create: bool = True):
        """`create` False opens a cache that may not exist yet without writing anything: it is empty then."""
        if storage not in STORAGE:
            raise InputError(f"cache storage {storage!r}: expected one of {sorted(STORAGE)}")
        self.fingerprint, self.identity = fingerprint, identity
        self.dtype = STORAGE[storage]
        self.root = Path(root)
        self.folder = self.root / "embeddings" / (fingerprint[:24] + ("" if storage == "float32" else f"-{storage}"))
        self.lock = FileLock(str(self.folder / ".lock"))
        identity_file = self.folder / "identity.json"
        self._rows: dict[str, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._loaded: set[str] = set()
        if not create and not identity_file.is_file():
            return
        if not identity_file.is_file():
            with self._writing(1):
                if not identity_file.is_file():
                    atomic_write_json(identity_file, {"fingerprint": fingerprint, "identity": identity})
        try:
            stored = read_json(identity_file).get("fingerprint")
        except (InputError, AttributeError):
            stored = None
        if stored != fingerprint:
            raise InputError(f"{identity_file}: cache belongs to another encoder or is damaged; remove {self.folder}")
        self._scan()

    @contextmanager
    def _writing(self, missing: int) -> Iterator[None]:
        """The writer's lock; a cache folder we cannot write is an error only when something must be written."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except OSError as err:
            raise InputError(
                f"--cache_dir {self.root}: cannot write there ({err.strerror}), and {missing} texts are not cached yet"
            ) from None
        try:
            yield
        finally:
            self.lock.release()

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: str) -> bool:
        """Whether a text hash (`text_key`) has a vector here."""
        return key in self._rows

    @property
    def dim(self) -> int | None:
        """The vectors' width, read from the first shard; None while the cache is empty."""
        return int(self._shards[0].shape[1]) if self._shards else None

    def refresh(self) -> None:
        """Pick up shards that other processes wrote since this cache was opened."""
        self._scan()

    def _scan(self) -> None:
        """Index every valid shard not loaded yet (other processes may have added some)."""
        for keys_file in sorted(self.folder.glob("*.keys.json")):
            name = keys_file.name.removesuffix(".keys.json")
            if name in self._loaded:
                continue
            vectors_file = self.folder / f"{name}.npy"
            problem = self._check(keys_file, vectors_file)
            if problem:
                log.warning(
                    "embedding cache shard %s is unusable (%s): removed; its texts will be encoded again",
                    vectors_file,
                    problem,
                )
                try:
                    keys_file.unlink(missing_ok=True)
                    vectors_file.unlink(missing_ok=True)
                except OSError:
                    pass  # a read-only cache: the shard is skipped, never used
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
        keys = meta.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) and k.isascii() for k in keys):
            return "keys are not a list of text hashes"
        if meta.get("format") != SHARD_FORMAT or sha256_file(vectors_file, _keys_digest(keys)) != meta.get("sha256"):
            return "checksum mismatch (keys or vectors truncated, reordered or altered)"
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
            self._scan()  # another process may have written them meanwhile
        absent = len({k for k in keys if k not in self._rows})
        if absent:
            with self._writing(absent):
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
                        self._append(
                            [k for k, _ in chunk], np.ascontiguousarray(encode([t for _, t in chunk]), dtype=self.dtype)
                        )
        return [self._rows[k] for k in keys]

    def missing(self, texts: Sequence[str]) -> list[str]:
        """The distinct texts with no vector yet (after picking up other writers' shards), in first-seen order."""
        self._scan()
        return list(dict.fromkeys(t for t in texts if text_key(t) not in self._rows))

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> int:
        """Store vectors encoded elsewhere (Ray workers) as one shard; texts already present are skipped.
        Returns how many were new."""
        with self._writing(len(texts)):
            self._scan()
            new: dict[str, int] = {}
            for row, text in enumerate(texts):
                key = text_key(text)
                if key not in self._rows and key not in new:
                    new[key] = row
            if new:
                self._append(list(new), np.ascontiguousarray(vectors[list(new.values())], dtype=self.dtype))
        return len(new)

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
        digest = _keys_digest(keys)
        digest.update(data)
        meta = {
            "format": SHARD_FORMAT,
            "fingerprint": self.fingerprint,
            "dim": int(vectors.shape[1]),
            "sha256": digest.hexdigest(),
            "keys": keys,
        }
        atomic_write_json(self.folder / f"{name}.keys.json", meta, indent=None)
        shard_id = len(self._shards)
        # the file, not the array: RAM stays bounded
        self._shards.append(np.load(self.folder / f"{name}.npy", mmap_mode="r"))
        self._loaded.add(name)
        for row, key in enumerate(keys):
            self._rows.setdefault(key, (shard_id, row))


class CachedVectors:
    """The frozen encoder's vectors through the disk cache: call it with texts, or locate texts once and
    gather rows later (training reads only each batch's rows from the memory-mapped shards)."""

    def __init__(self, encoder, cache_dir: Path, storage: str = "float32"):
        self.encoder = encoder
        self.cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.identity, storage)

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.cache.get(texts, self.encoder.encode)

    def locate(self, texts: list[str]) -> list[tuple[int, int]]:
        return self.cache.ensure(texts, self.encoder.encode)

    def gather(self, locations: list[tuple[int, int]]) -> np.ndarray:
        return self.cache.gather(locations)


IN_MEMORY_BYTES = 1 << 30  # training vectors up to 1 GiB are gathered into RAM once; larger sets stay memory-mapped


def cached_embed(
    head: torch.nn.Module | None, vectors: CachedVectors, locations: list[tuple[int, int]], device: str = "cpu"
):
    """text indices (k,) -> projected embeddings (k, d), from cached base vectors: gathered into RAM once
    when they fit in IN_MEMORY_BYTES, else read batch by batch from the memory-mapped shards. A None head
    gives the base vectors themselves (documents under a query-only head)."""
    import torch  # here, not at the top: the command line imports this module and starts without torch

    head = head if head is not None else torch.nn.Identity()
    if len(locations) * vectors.encoder.dim * 4 <= IN_MEMORY_BYTES:
        table = torch.from_numpy(vectors.gather(locations)).to(device)  # (texts, d)
        return lambda indices: head(table[indices])
    return lambda indices: head(torch.from_numpy(vectors.gather([locations[i] for i in indices.tolist()])).to(device))


def memoized(
    encode: Callable[[list[str]], np.ndarray], memo: dict[str, np.ndarray] | None = None
) -> Callable[[list[str]], np.ndarray]:
    """In-memory memo for vectors that must not enter the disk cache (a fine-tuned encoder's), optionally
    seeded with vectors that encoder already gave for the same weights."""
    memo = memo if memo is not None else {}

    def vectors(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in memo))
        if missing:
            memo.update(zip(missing, encode(missing)))
        return np.stack([memo[t] for t in texts])

    return vectors
