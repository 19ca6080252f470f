"""Small file helpers: JSON that fails with a one-line error, atomic writes (temp file + rename), and the
one file hasher everything else uses."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from isoadapt.errors import InputError

log = logging.getLogger(__name__)


def sha256_file(path: str | Path, digest=None) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks (model weights are hundreds of MB)."""
    digest = digest or hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _unique_keys(path: Path):
    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise InputError(
                    f"{path}: duplicate key {key!r} in one JSON object (the second would silently replace the first)"
                )
            out[key] = value
        return out

    return hook


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, turning every failure into an InputError that names the file. A UTF-8 byte-order
    mark is skipped; duplicate keys in an object are refused rather than silently keeping the last."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a JSON file")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid UTF-8 at byte offset {err.start}") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp file beside `path` to write (a whole file or a stream); on success it is made readable by
    everyone (0644) and renamed onto `path`, on any failure or stop it is removed: readers never see half
    a file, and nothing is left behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)  # the temp file this call made, never anything else
        if err.filename is None:  # a write() on a full disk names no file: this one is `path`
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def json_safe(obj: Any, where: str = "", found: list[str] | None = None) -> Any:
    """Replace NaN and infinities by None (JSON has no NaN), remembering where, so the caller can say why."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if found is not None:
            found.append(where or "value")
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    return obj


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Strict JSON: a NaN (a one-query split, constant STS scores) is written as null and reported."""
    found: list[str] = []
    safe = json_safe(obj, found=found)
    if found:
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        log.warning("%s: %s undefined (NaN, e.g. a single query or constant scores): written as null", path, shown)
    atomic_write_bytes(
        path, (json.dumps(safe, indent=indent, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    )


@contextmanager
def machine_lock(kind: str, identity: str, waiting: str, mode: int = -1) -> Iterator[None]:
    """One holder at a time across this machine's processes, per `identity` (a resolved path): a file lock in
    the temp folder (nothing is written beside the user's files), taken at once, or after logging `waiting`,
    waited for. `kind` names the lock file (`isoadapt-<kind>-<hash>.lock`); `mode` is filelock's."""
    from filelock import FileLock, Timeout

    key = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
    lock = FileLock(str(Path(tempfile.gettempdir()) / f"isoadapt-{kind}-{key}.lock"), mode=mode)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.warning(waiting)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
