"""Folders isoadapt made, and the only ones it will ever replace or remove.

Every output folder (a run, an export, a processed dataset, a plan's report) is built in a hidden
sibling, marked as isoadapt's own with a small marker file, and renamed into place when complete.
`--overwrite` may replace a folder only when it carries that marker and holds the same kind of output.
Nothing here will ever remove the current folder, one of its parents, the home folder, `/`, the folder
holding isoadapt's source, or a folder without the marker: a user's data is never ours to delete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json

MARKER = ".isoadapt-owned.json"
KINDS = {
    "run": "a run",
    "export": "an export",
    "dataset": "a dataset",
    "report": "a plan report",
    "model": "a model",
    "staging": "a staging folder",
}
SOURCE = Path(__file__).resolve().parent


def mark_owned(folder: Path, kind: str) -> None:
    """Claim a folder this process just created."""
    if kind not in KINDS:
        raise ValueError(f"unknown owned-folder kind {kind!r}")
    atomic_write_json(folder / MARKER, {"kind": kind})


def owned_kind(folder: Path) -> str | None:
    """The kind recorded in the folder's marker; None when the folder is not isoadapt's (or is a link)."""
    if folder.is_symlink() or not folder.is_dir() or not (folder / MARKER).is_file():
        return None
    try:
        kind = read_json(folder / MARKER).get("kind")
    except (InputError, AttributeError):
        return None
    return kind if kind in KINDS else None


def _protected(path: Path) -> str | None:
    """Why `path` may never be an output folder, or None."""
    resolved = path.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return "is the current folder or one of its parents"
    if resolved == home or resolved in home.parents:
        return "is the home folder or one of its parents"
    if resolved == SOURCE or resolved in SOURCE.parents:
        return "holds isoadapt's source code"
    return None


def check_parents(path: Path, flag: str) -> None:
    """Refuse a path that lies under a regular file (mkdir would fail half-way)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{flag} {path}: {parent} is a file, not a folder")


def check_folder_path(path: Path, flag: str) -> None:
    """A folder isoadapt may create or use (a cache, a parent of outputs): not a file and not under one."""
    check_parents(path, flag)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: is a file, not a folder")


def check_output_folder(path: Path, flag: str, kind: str, overwrite: bool) -> None:
    """Refuse, before any work, an output folder that isoadapt could not create or must not replace."""
    check_parents(path, flag)
    if path.is_symlink():
        raise InputError(f"{flag} {path}: is a symbolic link; give the real folder")
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: exists and is a file, not a folder")
    reason = _protected(path)
    if reason:
        raise InputError(f"{flag} {path}: {reason}; isoadapt writes only into a new folder of its own")
    if not path.is_dir() or not any(path.iterdir()):
        return
    found = owned_kind(path)
    if found is None:
        raise InputError(
            f"{flag} {path}: is not empty and was not made by isoadapt (no {MARKER}); --overwrite replaces "
            "only isoadapt's own output"
        )
    if found != kind:
        raise InputError(
            f"{flag} {path}: holds {KINDS[found]} of isoadapt's, not {KINDS[kind]}; --overwrite replaces "
            f"only {KINDS[kind]}"
        )
    if not overwrite:
        raise InputError(f"{flag} {path}: already holds {KINDS[kind]} of isoadapt's; pass --overwrite to replace it")


def check_replaceable(target: str, found_kind: str | None, kind: str, what: str, overwrite: bool = True) -> None:
    """The one rule for an output that already exists (a JSON file, a parquet file, a LanceDB table): it may
    be replaced only if isoadapt wrote it as `kind` (read from its own marker or metadata: `found_kind`),
    and only with --overwrite where the command has that flag."""
    if found_kind != kind:
        raise InputError(f"{target}: exists and was not written by isoadapt as {what}; choose a new name")
    if not overwrite:
        raise InputError(f"{target}: exists ({what} written by isoadapt); pass --overwrite to replace it")


def check_output_file(path: Path, flag: str) -> None:
    """A file isoadapt may write: not a folder, not under a file, not a link pointing elsewhere."""
    check_parents(path, flag)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder, expected a file name")
    if path.is_symlink():
        raise InputError(f"{flag} {path}: is a symbolic link; give a plain file name")


def remove_owned(folder: Path) -> None:
    """rmtree, only for a folder carrying isoadapt's marker and not protected; anything else is a bug."""
    if owned_kind(folder) is None or _protected(folder):
        raise RuntimeError(f"refusing to remove {folder}: not a folder isoadapt made")
    shutil.rmtree(folder)


def install(staging: Path, final: Path) -> Path:
    """Put a complete staging folder at `final`, replacing an owned folder there (already checked). An
    empty folder the user made for the output is taken as the place to put it (rmdir fails if not empty)."""
    if final.is_dir() and not final.is_symlink() and owned_kind(final) is None and not any(final.iterdir()):
        final.rmdir()
    if final.exists() or final.is_symlink():
        if owned_kind(final) is None:
            raise InputError(f"{final}: appeared while isoadapt was working and is not isoadapt's; left as it is")
        trash = final.parent / f".{final.name}.replaced-{os.getpid()}"
        final.rename(trash)
        staging.rename(final)
        remove_owned(trash)
    else:
        staging.rename(final)
    return final


def new_staging(final: Path) -> Path:
    """A fresh hidden sibling of `final`, marked as staging (so a failure can remove it)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial"))
    try:
        mark_owned(staging, "staging")
    except BaseException:  # a full disk: the folder just made, still empty (the marker's temp file is gone)
        staging.rmdir()
        raise
    return staging


@contextmanager
def staged_folder(final: Path, kind: str) -> Iterator[Path]:
    """Yield a hidden staging folder beside `final`; on success it replaces `final` whole (readers see the
    old folder or the complete new one), on failure it is removed."""
    staging = new_staging(final)
    try:
        yield staging
        staging.chmod(0o755)
        mark_owned(staging, kind)
        install(staging, final)
    except BaseException:
        if staging.exists():
            remove_owned(staging)
        raise
