"""The run folder: built in a hidden sibling and renamed into place when complete, so --output_dir never
holds half a run; records versions and the git commit."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import subprocess
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_bytes, atomic_write_json

LIBRARIES = ("isoadapt", "torch", "sentence-transformers", "transformers", "numpy", "pytrec-eval-terrier", "safetensors")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> dict[str, str | bool | None]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


class RunFolder:
    """Refuses an --output_dir that already holds something unless overwrite; works in a hidden
    `.NAME.partial` sibling that an interrupted run leaves behind for --resume."""

    def __init__(self, output_dir: str | Path, overwrite: bool, resume: bool = False):
        self.final = Path(output_dir)
        if self.final.exists() and not self.final.is_dir():
            raise InputError(f"--output_dir {self.final}: exists and is not a folder")
        if resume and (self.final / "status.json").is_file():
            raise InputError(f"--output_dir {self.final}: the run already completed; nothing to resume")
        if self.final.is_dir() and any(self.final.iterdir()) and not overwrite:
            raise InputError(f"--output_dir {self.final}: already holds a run; pass --overwrite to replace it")
        self.staging = self.final.parent / f".{self.final.name}.partial"
        self.resume = resume

    @property
    def checkpoint_dir(self) -> Path:
        return self.staging / "checkpoint"

    def open(self) -> Path:
        """A fresh staging folder, or the interrupted one when resuming."""
        if self.resume and self.staging.is_dir():
            return self.staging
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        atomic_write_json(self.staging / "status.json", {"completed": False})
        return self.staging

    def write_json(self, name: str, obj) -> None:
        atomic_write_json(self.staging / name, obj)

    def commit(self) -> Path:
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)  # the head is saved; the optimizer state is not needed
        atomic_write_json(self.staging / "status.json", {"completed": True})
        if self.final.exists():
            shutil.rmtree(self.final)
        self.staging.rename(self.final)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class StepLog:
    """JSON-lines log of training steps, flushed every line; on resume it restarts from the checkpoint's history."""

    def __init__(self, path: Path, history: list[dict] | None = None):
        atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in history or []).encode("utf-8"))
        self.handle = path.open("a", encoding="utf-8")

    def __call__(self, record: dict) -> None:
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()
