"""The run folder, the one module that writes and reads it. A run folder holds config.json (the settings,
the encoder's identity, versions), head/ (head_config.json + head.safetensors), metrics.json, optionally
encoder/ (a fine-tuned encoder), and status.json, written last: `{"completed": true, "head_sha256": ...}`,
the digest of the head's weights as saved. `isoadapt train` builds it in a hidden sibling (RunFolder) and
renames it into place when complete, so --output_dir never holds half a run; `Adapter.save` and a plan's
post-hoc folders write it with `write_run`; `open_run` is the one way every command (evaluate, export,
apply, index, search) and `Adapter.load` read it, and refuses a run that did not complete or whose head
file changed since (corrupted but finite weights load without a word otherwise).

A cross-model run (`config["query_model"]`, see docs/upgrade.md) also records its query model's identity as
`query_encoder`, like `encoder` for the base; its query-only head reads the query model's vectors and gives
the base's width: `side_encoder` says which model a side's texts go to."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from isoadapt.encoding.backend_choice import BACKENDS
from isoadapt.encoding.encoder import Encoder, open_encoder
from isoadapt.errors import NOTHING_KEPT, InputError
from isoadapt.fileio import atomic_write_bytes, atomic_write_json, read_json, sha256_file
from isoadapt.head import CONFIG_FILE, WEIGHTS_FILE, load_head, save_head
from isoadapt.head_options import SIDES
from isoadapt.owned_folders import MARKER, check_output_folder, install, mark_owned, owned_kind, remove_owned

LOCK = ".lock"
SETTINGS = "settings.json"  # what the run was started with; --resume must match it
STATUS = "status.json"  # written last: completed, and the head's digest
HEAD = "head"  # the head's folder in a run
LIBRARIES = (
    "isoadapt",
    "torch",
    "sentence-transformers",
    "transformers",
    "numpy",
    "pytrec-eval-terrier",
    "safetensors",
)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


PACKAGE = Path(__file__).resolve().parents[1]  # src/isoadapt


def source_digest(package: Path = PACKAGE) -> str:
    """sha256 over the package's Python source (relative path and bytes of every file): what a stored
    result was computed by. Unlike __version__ it changes with every edit, committed or not."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit() -> dict[str, str | bool | None]:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


class RunFolder:
    """A run is built in a hidden `.NAME.partial` sibling, locked against a second writer, marked as
    isoadapt's own, and renamed into place when complete; an interrupted run leaves the sibling with its
    checkpoint for --resume. --overwrite replaces only a run folder isoadapt made."""

    def __init__(self, output_dir: str | Path, overwrite: bool, resume: bool = False):
        self.final = Path(output_dir)
        self.staging = self.final.parent / f".{self.final.name}.partial"
        self.overwrite, self.resume = overwrite, resume
        if resume and owned_kind(self.final) == "run":
            raise InputError(f"--output_dir {self.final}: the run already completed; nothing to resume")
        check_output_folder(self.final, "--output_dir", "run", overwrite)
        if (self.staging.exists() or self.staging.is_symlink()) and owned_kind(self.staging) != "staging":
            raise InputError(
                f"--output_dir {self.final}: {self.staging} exists and was not made by isoadapt; move it away first"
            )
        self.lock: FileLock | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.staging / "checkpoint"

    def has_checkpoint(self) -> bool:
        return (self.checkpoint_dir / "checkpoint.json").is_file()

    def open(self, settings: dict) -> Path:
        """Lock the staging folder (a second `train` on the same folder is refused), then start it fresh,
        or, with --resume, continue it, but only with the settings it was started with."""
        self.staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.staging.mkdir()
            mark_owned(self.staging, "staging")
        except FileExistsError:
            pass
        self.lock = FileLock(str(self.staging / LOCK))
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            self.lock = None
            raise InputError(
                f"--output_dir {self.final}: another isoadapt process is writing this run "
                f"({self.staging}); wait for it or choose another folder"
            ) from None
        resuming = self.resume and (self.staging / SETTINGS).is_file()
        if resuming:
            try:
                _check_same_settings(read_json(self.staging / SETTINGS), settings)
            except InputError:
                self._release(
                    self.staging / LOCK
                )  # the interrupted run stays as it was, for a resume with its settings
                raise
        else:
            for child in self.staging.iterdir():
                if child.name not in (LOCK, MARKER):
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            atomic_write_json(self.staging / SETTINGS, settings)
        atomic_write_json(self.staging / STATUS, {"completed": False})
        return self.staging

    def write_json(self, name: str, obj) -> None:
        atomic_write_json(self.staging / name, obj)

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write_bytes(self.staging / name, data)

    def commit(self) -> Path:
        """The head is saved: drop the optimizer state, mark the folder a run, and move it into place."""
        if self.checkpoint_dir.is_dir():
            shutil.rmtree(self.checkpoint_dir)
        mark_completed(self.staging)
        (self.staging / SETTINGS).unlink(missing_ok=True)  # config.json holds them all now
        try:
            check_output_folder(self.final, "--output_dir", "run", self.overwrite)
        except InputError as err:
            self._release(self.staging / LOCK)
            raise InputError(f"{err}; the finished run is kept in {self.staging}") from None
        mark_owned(self.staging, "run")
        install(self.staging, self.final)
        self._release(self.final / LOCK)
        return self.final

    def close_failed(self, keep: bool) -> str:
        """After a failure: keep the staging folder when its checkpoint is worth resuming, else remove it.
        Returns a sentence for the error line."""
        lock_file = self.staging / LOCK
        if keep and self.has_checkpoint():
            self._release(lock_file)
            return f"its checkpoint is kept in {self.staging}; rerun the same command with --resume to continue"
        if self.staging.is_dir() and owned_kind(self.staging) == "staging":
            remove_owned(self.staging)
        self._release(lock_file)
        return NOTHING_KEPT

    def _release(self, lock_file: Path) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        lock_file.unlink(missing_ok=True)


def _check_same_settings(saved: dict, current: dict) -> None:
    """Resume continues the same run; it never changes it."""
    changed = [
        f"{k} {saved.get(k)!r} -> {current.get(k)!r}"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k)
    ]
    if changed:
        raise InputError(
            f"--resume: the interrupted run used other settings ({'; '.join(changed)}); resume continues "
            "the same run: rerun with its settings or without --resume"
        )


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


def mark_completed(folder: Path) -> None:
    """status.json, the last file a writer writes: the run is complete, and its head is the one saved now."""
    atomic_write_json(folder / STATUS, {"completed": True, "head_sha256": sha256_file(folder / HEAD / WEIGHTS_FILE)})


def write_run(folder: Path, document: dict, head, metrics: dict | None = None, encoder: Path | None = None) -> None:
    """A complete run folder in `folder` (already made, and owned by the caller): what `open_run` reads.
    For the writers that do not train: `Adapter.save` (a copy) and a plan's post-hoc transforms."""
    save_head(head, folder / HEAD)
    atomic_write_json(folder / "config.json", document)
    if metrics:
        atomic_write_json(folder / "metrics.json", metrics)
    if encoder is not None:
        shutil.copytree(encoder, folder / "encoder")
    mark_completed(folder)


def check_head_digest(weights: Path, recorded, where: Path) -> str:
    """The head file's sha256, refused unless it is the one `where` recorded when the head was written."""
    found = sha256_file(weights)
    if not isinstance(recorded, str):
        raise InputError(f"{where}: records no head_sha256 for {weights}; written by an older isoadapt: make it again")
    if found != recorded:
        raise InputError(
            f"{weights}: sha256 {found[:16]} is not the {recorded[:16]} that {where} recorded when it was written; "
            "the head file was changed or damaged since"
        )
    return found


def check_completed(run_dir: Path) -> dict:
    """status.json of a run that completed (`{"completed": false}` is a run still training, or stopped)."""
    status_file = run_dir / STATUS
    if not status_file.is_file():
        raise InputError(f"--run_dir {run_dir}: not a completed run folder (no {STATUS})")
    status = read_json(status_file)
    if not isinstance(status, dict) or status.get("completed") is not True:
        said = status.get("completed") if isinstance(status, dict) else status
        raise InputError(f"--run_dir {run_dir}: not a completed run folder ({status_file} says completed: {said!r})")
    return status


def read_run_document(run_dir: Path) -> dict:
    """A run folder's (or a plan's post-hoc folder's) config.json, its `config` checked enough to rebuild
    the encoder: a hand-edited or foreign config.json stops here with one line, not deep inside loading."""
    if not run_dir.is_dir():
        raise InputError(f"--run_dir {run_dir}: not a folder")
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise InputError(f"--run_dir {run_dir}: no config.json; not a run folder")
    data = read_json(config_file)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise InputError(f"{config_file}: expected an object with a 'config' object; not a run's config")
    if not isinstance(config.get("base_model"), str) or not config["base_model"]:
        raise InputError(f"{config_file}: config has no 'base_model' string")
    backend = config.setdefault("encode_backend", "torch")
    if backend not in BACKENDS:
        raise InputError(f"{config_file}: encode_backend {backend!r}: expected one of {list(BACKENDS)}")
    return data


@dataclass
class OpenedRun:
    """A finished run folder (or a plan's post-hoc folder), read once: its config, its head and where its
    encoder comes from. Every command that uses a run (evaluate, export, index, search, apply) opens it here."""

    folder: Path
    config: dict
    head: object  # the loaded head (torch.nn.Module)
    head_sha256: str
    recorded_weights: str | None  # the base model's weights sha256 when the run was made, if recorded
    document: dict  # the whole config.json: config, encoder identity, versions, git commit

    @property
    def fine_tuned(self) -> Path | None:
        """The fine-tuned encoder saved with a full fine-tuning run, else None (the base model is frozen)."""
        folder = self.folder / "encoder"
        return folder if folder.is_dir() else None

    @property
    def prompts(self) -> dict:
        """The prompts the run applied, as open_encoder's arguments: those recorded with its encoder, else
        its settings (a run made before prompts were recorded: None, the model's own)."""
        recorded = (self.document.get("encoder") or {}).get("prompts")
        if isinstance(recorded, dict):
            return {"query_prompt": recorded.get("query", ""), "document_prompt": recorded.get("document", "")}
        return {"query_prompt": self.config.get("query_prompt"), "document_prompt": self.config.get("document_prompt")}

    @property
    def query_model(self) -> str | None:
        """A cross-model run's query model (the head reads its vectors on the query side; the documents keep
        the base model's), else None: an ordinary run, one model on both sides."""
        return self.config.get("query_model") or None

    @property
    def recorded_query_weights(self) -> str | None:
        return (self.document.get("query_encoder") or {}).get("weights_sha256")

    def query_encoder(self, cache_dir: Path, show_progress: bool = False):
        """A cross-model run's query model, refused when its weights are not the ones the run was trained on."""
        if self.query_model is None:
            raise InputError(f"--run_dir {self.folder}: not a cross-model run (its config has no query_model)")
        recorded = (self.document.get("query_encoder") or {}).get("prompts") or {}
        encoder = open_encoder(
            self.query_model,
            cache_dir,
            show_progress=show_progress,
            backend=self.config["encode_backend"],
            query_prompt=recorded.get("query", ""),
            document_prompt=recorded.get("document", ""),
        )
        self.check_query_weights(encoder.identity.get("weights_sha256"))
        self.check_width(encoder.dim, model="query")
        return encoder

    def side_model(self, side: str) -> str:
        """The model whose vectors a side starts from, by name: a query goes to the query model of a
        cross-model run, everything else to the base model. The one rule `side_encoder` opens by, and what
        messages, vector files and "one model or two" decisions name."""
        if side not in SIDES:
            raise InputError(f"side {side!r}: expected one of {list(SIDES)}")
        return self.query_model if side == "query" and self.query_model is not None else self.config["base_model"]

    def side_encoder(self, side: str, cache_dir: Path, show_progress: bool = False):
        """The encoder of `side_model(side)`: the query model's, or the encoder the head was trained over
        (the base, or its fine-tuned copy)."""
        if self.side_model(side) == self.query_model:
            return self.query_encoder(cache_dir, show_progress)
        return self.trained_encoder(cache_dir, show_progress)

    def base_encoder(self, cache_dir: Path, show_progress: bool = False):
        """The frozen base, refused when its weights are not the ones the run was trained on."""
        encoder = open_encoder(
            self.config["base_model"],
            cache_dir,
            show_progress=show_progress,
            backend=self.config["encode_backend"],
            **self.prompts,
        )
        self.check_weights(encoder.identity.get("weights_sha256"))
        self.check_width(encoder.dim)
        return encoder

    def trained_encoder(self, cache_dir: Path, show_progress: bool = False):
        """The encoder whose vectors the head reads: the fine-tuned one if the run tuned it, else the base."""
        if self.fine_tuned is None:
            return self.base_encoder(cache_dir, show_progress)
        encoder = Encoder(str(self.fine_tuned), cache_dir, show_progress=show_progress, **self.prompts)
        self.check_width(encoder.dim)
        return encoder

    def check_weights(self, found: str | None) -> None:
        if self.recorded_weights and found and found != self.recorded_weights:
            raise InputError(
                f"--run_dir {self.folder}: the base model {self.config['base_model']} has other weights than "
                f"the run was trained on (sha256 {self.recorded_weights[:16]} then, {found[:16]} now); "
                "its head does not fit these vectors"
            )

    def check_query_weights(self, found: str | None) -> None:
        recorded = self.recorded_query_weights
        if recorded and found and found != recorded:
            raise InputError(
                f"--run_dir {self.folder}: the query model {self.query_model} has other weights than "
                f"the run was trained on (sha256 {recorded[:16]} then, {found[:16]} now); "
                "its head does not fit these vectors"
            )

    def check_width(self, dim: int, model: str = "base") -> None:
        """`dim` is the width of the run's base model (`model="base"`) or of its query model ("query"). The
        head reads the base's vectors in an ordinary run; in a cross-model run it reads the query model's
        and must give the base's width, the width of the documents it is scored against."""
        head_file = self.folder / "head" / CONFIG_FILE
        if self.query_model is not None and model == "base":
            if self.head.out_dim != dim:
                raise InputError(
                    f"{head_file}: the head gives {self.head.out_dim}-dim query vectors but the base model "
                    f"{self.config['base_model']} gives {dim}-dim documents"
                )
            return
        if self.head.dim != dim:
            raise InputError(f"{head_file}: head expects {self.head.dim}-dim inputs but the encoder gives {dim}")


def open_run(run_dir: Path) -> OpenedRun:
    """Read a completed run folder: config checked, head loaded and its digest checked (a damaged head fails
    here, before any model)."""
    document = read_run_document(run_dir)
    status = check_completed(run_dir)
    head = load_head(run_dir / HEAD)
    digest = check_head_digest(run_dir / HEAD / WEIGHTS_FILE, status.get("head_sha256"), run_dir / STATUS)
    recorded = document.get("encoder") or {}
    return OpenedRun(run_dir, document["config"], head, digest, recorded.get("weights_sha256"), document)
