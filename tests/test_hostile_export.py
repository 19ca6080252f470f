"""Hostile input to `isoadapt export`: bad paths and a head that export cannot write. Every case is one line,
exit 2, no traceback, and nothing written or changed. The damaged run folders, refused by export as by
evaluate, are test_damaged_run_folders in test_hostile_evaluate.py."""

from __future__ import annotations

import re

import pytest

from isoadapt.cli import main

from conftest import tiny_dataset
from hostile import export_argv, record_other_weights, refused, train_argv, write

EXPORT_PATHS = [
    ("out a file", lambda t: {"out": write(t / "f.txt", "x")}, "--out {t}/f.txt: exists and is a file, not a folder"),
    (
        "out under a file",
        lambda t: {"out": write(t / "f.txt", "x") / "e"},
        "--out {t}/f.txt/e: {t}/f.txt is a file, not a folder",
    ),
    ("run_dir missing", lambda t: {"run_dir": t / "nope"}, "--run_dir {t}/nope: not a folder"),
]


@pytest.mark.parametrize(("name", "flags", "message"), EXPORT_PATHS, ids=[c[0] for c in EXPORT_PATHS])
def test_export_paths(run, capsys, name, flags, message):
    t = run["t"]
    refused(capsys, export_argv(run, **flags(t)), message.format(t=t), t)


def test_export_refuses_an_mlp_head(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in train_argv(data, tmp_path / "run", tmp_path / "cache", head="mlp")]) == 0
    capsys.readouterr()
    w = {"t": tmp_path, "run": tmp_path / "run", "cache": tmp_path / "cache"}
    message = "export: a mlp head is not a single linear map; export supports linear heads and post-hoc transforms"
    refused(capsys, export_argv(w), message, tmp_path)


def test_a_base_model_whose_weights_changed_since_training(run, capsys):
    """Export opens each side's model as every command does (OpenedRun.side_encoder): other weights than the
    run was trained on are refused before anything is written."""
    refused(capsys, export_argv(run), record_other_weights(run["run"], "b" * 64), run["t"])


def export_copy(minilm, run: str, to):
    """A copy of the MiniLM fixture's export of `run` (made writable), to damage."""
    import shutil

    folder = shutil.copytree(minilm["root"] / f"{run}-export", to / f"{run}-export")
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def refused_load(folder, message: str) -> None:
    import isoadapt
    from isoadapt.errors import InputError

    with pytest.raises(InputError) as err:
        isoadapt.Adapter.load(folder)
    assert str(err.value) == message


@pytest.mark.slow
def test_an_export_whose_modules_lost_the_head_is_refused(minilm, tmp_path):
    """Before, Adapter.load read the head from adapter/ while encode_query answered through modules.json:
    with its Dense module gone, encode_query gave the base model's vectors in silence."""
    import json

    both = export_copy(minilm, "both", tmp_path)
    modules = json.loads((both / "modules.json").read_text())
    (both / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Dense")]))
    refused_load(
        both,
        f"{both}/modules.json: the query route does not end with the head of {both}/adapter (a Dense module, then "
        "Normalize): it would give other vectors than the adapter; export the run again",
    )
    query = export_copy(minilm, "query", tmp_path)
    router = json.loads((query / "router_config.json").read_text())
    router["structure"]["query"] = router["structure"]["document"]
    (query / "router_config.json").write_text(json.dumps(router))
    refused_load(
        query,
        f"{query}/modules.json: the query route does not end with the head of {query}/adapter (a Dense module, then "
        "Normalize): it would give other vectors than the adapter; export the run again",
    )
    (query / "modules.json").write_text("[{]")
    refused_load(
        query,
        f"{query}/modules.json: malformed JSON at line 1 column 3: Expecting property name enclosed in double quotes",
    )


@pytest.mark.slow
def test_an_export_whose_dense_weights_or_head_file_changed_is_refused(minilm, tmp_path):
    import hashlib
    import json

    import torch
    from safetensors.torch import load_file, save_file

    folder = export_copy(minilm, "both", tmp_path)
    dense = folder / "3_Dense" / "model.safetensors"
    state = load_file(str(dense))
    save_file({**state, "linear.bias": state["linear.bias"] + 0.5}, str(dense))
    refused_load(folder, f"{dense}: not the weights of the head in {folder}/adapter; export the run again")
    folder = export_copy(minilm, "query", tmp_path)
    weights = folder / "adapter" / "head.safetensors"
    recorded = json.loads((folder / "adapter" / "adapter.json").read_text())["head_sha256"]
    assert recorded == hashlib.sha256((minilm["root"] / "query" / "head" / "head.safetensors").read_bytes()).hexdigest()
    save_file({k: v * 1.01 for k, v in load_file(str(weights)).items()}, str(weights))
    found = hashlib.sha256(weights.read_bytes()).hexdigest()
    refused_load(
        folder,
        f"{weights}: sha256 {found[:16]} is not the {recorded[:16]} that {folder}/adapter/adapter.json recorded when "
        "it was written; the head file was changed or damaged since",
    )
    assert torch.isfinite(load_file(str(weights))["linear.weight"]).all()  # finite: it would have loaded and scored


class ModelOnAFullDisk:
    """What sentence-transformers' save meets on a full disk or past `ulimit -f`: safetensors' own error."""

    def save(self, folder: str) -> None:
        (__import__("pathlib").Path(folder) / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("Error while serializing: I/O error: File too large (os error 27)")


def test_a_file_size_limit_during_export_is_one_line_and_keeps_nothing(run, capsys, monkeypatch):
    import isoadapt.store.export as export

    monkeypatch.setattr(export, "sentence_transformer", lambda run, cache_dir: ModelOnAFullDisk())
    out = run["t"] / "exported"
    message = f"--out {out}: File too large while writing the export; nothing was kept"
    refused(capsys, export_argv(run), message, run["t"])


class SavesNothing:
    def save(self, folder: str) -> None:
        pass


def test_a_full_disk_in_a_write_names_the_file(run, capsys, monkeypatch):
    """Python's write() on a full disk raises an OSError that names no file; the atomic writer adds it."""
    import isoadapt.fileio as fileio
    import isoadapt.store.export as export

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "sentence_transformer", lambda run, cache_dir: SavesNothing())
    monkeypatch.setattr(fileio.os, "fsync", full)
    before = __import__("hostile").tree(run["t"], ("cache",))
    exit_code = main([str(a) for a in export_argv(run)])
    err = capsys.readouterr().err
    assert exit_code == 2 and "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("isoadapt:")]
    assert len(line) == 1
    named = rf"isoadapt: error: {re.escape(str(run['t']))}/\.exported\.\w+\.partial/\S+\.json: No space left on device"
    assert re.fullmatch(named + " while writing the export; nothing was kept", line[0]), line
    assert __import__("hostile").tree(run["t"], ("cache",)) == before


def test_a_cross_model_run_on_precomputed_query_vectors_is_refused(tmp_path, capsys, fake_model):
    from cross_model import fake_cross_run

    run = fake_cross_run(tmp_path / "cross", query_model="vectors:new")
    refused(
        capsys,
        ["export", "--run_dir", run, "--out", tmp_path / "out", "--cache_dir", tmp_path / "cache"],
        f"export --run_dir {run}: its query side is vectors:new, precomputed vectors: there is no model to "
        "export; `isoadapt apply` takes your vectors through the head",
        tmp_path,
    )
