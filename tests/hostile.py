"""Helpers of the hostile-input suite: run one command as a user would, and prove that it failed with
exactly one line, the right exit status, no traceback, and no file written, changed or removed; and the argv
and file builders that the hostile files share with the ordinary tests of the same commands."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from isoadapt.cli import main
from isoadapt.data.formats import load_eval, load_train
from isoadapt.encoding.cache import CachedVectors
from isoadapt.encoding.offline_models import MPNET

from conftest import FakeEncoder

ERROR = "isoadapt: error: "
PROGRESS = re.compile(r"^[^:]+:\s+\d+%\|")  # a tqdm bar: "training:  40%|####  | 4/10 ..."
TEXTS = [f"topic{i % 5} passage {i}" for i in range(40)]
RUN_MODEL = {"isoadapt.model": MPNET}  # the model the fake runs are trained as (train_argv's default)


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file (by content hash) and folder under root, except the top-level names in `skip`."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in skip:
            continue
        out[str(rel)] = (
            "link" if path.is_symlink() else "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
    return out


def one_line(capsys, argv, code: int = 2) -> str:
    exit_code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line.split("\r")[-1] for line in err.splitlines()]  # a progress bar redraws its line with \r
    lines = [
        line
        for line in lines
        if line.strip() and not line.startswith(("INFO", "WARNING", "DEBUG")) and not PROGRESS.match(line)
    ]
    assert "Traceback" not in err, err[-3000:]
    assert exit_code == code, err[-2000:]
    assert len(lines) == 1, lines
    return lines[0]


def refused(capsys, argv, message: str, root: Path, code: int = 2, skip: tuple[str, ...] = ("cache",)) -> None:
    """The command prints exactly `isoadapt: error: <message>`, exits `code`, and leaves root as it was."""
    before = tree(root, skip)
    line = one_line(capsys, argv, code)
    assert line == ERROR + message
    assert tree(root, skip) == before


def train_argv(data: dict[str, Path], out: Path, cache: Path, **flags) -> list:
    args = {
        "train_data": data["train"],
        "val_data": data["dev"],
        "output_dir": out,
        "cache_dir": cache,
        "epochs": 1,
        "batch_size": 4,
    }
    args.update(flags)
    argv = ["train"]
    for key, value in args.items():
        argv += [f"--{key}"] if value is True else [f"--{key}", value]
    return argv


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def evaluate_argv(w, **flags):
    args = {"run_dir": w["run"], "data": w["data"]["dev"], "cache_dir": w["cache"], **flags}
    return ["evaluate", *[x for k, v in args.items() for x in (f"--{k}", v)]]


def export_argv(w, **flags):
    args = {"run_dir": w["run"], "out": w["t"] / "exported", "cache_dir": w["cache"], **flags}
    return ["export", *[x for k, v in args.items() for x in (f"--{k}", v)]]


def write_vectors(path, vectors=None, ids=None, metadata=RUN_MODEL, row_group_size=16):
    vectors = FakeEncoder().encode(TEXTS) if vectors is None else vectors
    ids = ids or [f"p{i}" for i in range(len(vectors))]
    table = pa.table(
        {
            "id": pa.array(ids),
            "vector": pa.array([list(v) if v is not None else None for v in vectors], type=pa.list_(pa.float32())),
            "source": pa.array(["crawl"] * len(ids)),
        },
        metadata=metadata,
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def apply_argv(run, vectors, out, *extra):
    return ["apply", "--run_dir", run, "--vectors", vectors, "--out", out, *extra]


def encode_argv(data, cache, *extra):
    return ["encode", "--data", data, "--cache_dir", cache, *extra]


def record_other_weights(run_dir: Path, then: str, base_model: str | None = None) -> str:
    """Make a run folder say it was trained on base weights `then` (and, optionally, another base model), as
    if the model's files changed since; returns the line every command that opens the run must refuse with."""
    config_file = run_dir / "config.json"
    config = json.loads(config_file.read_text())
    now = config["encoder"]["weights_sha256"]
    config["encoder"]["weights_sha256"] = then
    config["config"]["base_model"] = base_model or config["config"]["base_model"]
    config_file.write_text(json.dumps(config))
    return changed_weights_line(run_dir, config["config"]["base_model"], then, now)


def changed_weights_line(run_dir: Path, base_model: str, then: str, now: str) -> str:
    return (
        f"--run_dir {run_dir}: the base model {base_model} has other weights than the run was trained on "
        f"(sha256 {then[:16]} then, {now[:16]} now); its head does not fit these vectors"
    )


PRECOMPUTED_MODEL = "acme/embed-v1"  # the provider model of the parquet vectors in the tests


def vector_table(ids, texts, vectors) -> pa.Table:
    columns = {"id": pa.array(ids), "vector": pa.array(list(vectors), type=pa.list_(pa.float32()))}
    if texts is not None:
        columns["text"] = pa.array(texts)
    return pa.table(columns)


def export_from_cache(data: dict[str, Path], encoder, cache: Path, out: Path, with_text: bool = True) -> dict:
    """Every text of a processed dataset, its vector read back from the cache, as two parquet files."""
    vectors = CachedVectors(encoder, cache)
    queries, documents = {}, {}
    for example in load_train(data["train"]):
        queries[example.query] = None
        documents.update({t: None for t in (example.positive, example.negative) if t})
    for split in (load_eval(data["dev"]), load_eval(data["test"])):
        queries.update(dict.fromkeys(split.queries.values()))
        documents.update(dict.fromkeys(split.corpus.values()))
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, texts in (("queries", list(queries)), ("documents", list(documents))):
        ids = [f"{name[0]}{i}" for i in range(len(texts))]
        paths[name] = out / f"{name}.parquet"
        pq.write_table(vector_table(ids, texts if with_text else None, vectors(texts)), paths[name], row_group_size=7)
    return paths


def prepare_argv(paths: dict, cache: Path, **flags) -> list:
    argv = ["prepare", "vectors", "--queries", paths["queries"], "--documents", paths["documents"]]
    argv += ["--model", PRECOMPUTED_MODEL, "--cache_dir", cache]
    for key, value in flags.items():
        argv += [f"--{key}", value]
    return argv
