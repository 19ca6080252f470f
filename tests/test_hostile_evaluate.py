"""Hostile input to `isoadapt evaluate`: damaged and hand-edited run folders, bad paths. Every case is one
line, exit 2, no traceback, and nothing written or changed. test_damaged_run_folders runs each damaged folder
through both evaluate and export (they open a run the same way) and lives here; export's own cases are in
test_hostile_export.py."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from isoadapt.training.run_folder import mark_completed

from hostile import evaluate_argv, export_argv, record_other_weights, refused, write


def damage(run, relative: str, content) -> None:
    path = run / relative
    if isinstance(content, dict):
        save_file(content, str(path))
    else:
        write(path, content)


HEAD = "head/head.safetensors"
HEAD_CONFIG = "head/head_config.json"
DAMAGE = [
    ("config.json missing", "config.json", None, "--run_dir {run}: no config.json; not a run folder"),
    (
        "config.json a list",
        "config.json",
        "[1]",
        "{run}/config.json: expected an object with a 'config' object; not a run's config",
    ),
    (
        "config.json without base_model",
        "config.json",
        '{"config": {"seed": 0}}',
        "{run}/config.json: config has no 'base_model' string",
    ),
    (
        "config.json with an unknown backend",
        "config.json",
        '{"config": {"base_model": "m", "encode_backend": "gpu"}}',
        "{run}/config.json: encode_backend 'gpu': expected one of ['torch', 'onnx', 'onnx-int8', 'openvino']",
    ),
    (
        "config.json truncated",
        "config.json",
        '{"config": {',
        "{run}/config.json: malformed JSON at line 1 column 13: Expecting property name enclosed in double quotes",
    ),
    (
        "head weights random bytes",
        HEAD,
        b"\x13\x37" * 64,
        "{run}/head/head.safetensors: not a readable safetensors file (SafetensorError: Error while deserializing header: header too large)",
    ),
    (
        "head weights a pickle",
        HEAD,
        pickle.dumps({"linear.weight": [[1.0]]}),
        "{run}/head/head.safetensors: not a readable safetensors file (SafetensorError: Error while deserializing header: header too large)",
    ),
    (
        "head weights empty",
        HEAD,
        b"",
        "{run}/head/head.safetensors: not a readable safetensors file (SafetensorError: Error while deserializing header: header too small)",
    ),
    ("head weights missing", HEAD, None, "{run}/head/head.safetensors: file not found"),
    (
        "head weights of another shape",
        HEAD,
        {"linear.weight": torch.zeros(8, 8), "linear.bias": torch.zeros(8)},
        "{run}/head/head.safetensors: holds tensors {{'linear.bias': (8,), 'linear.weight': (8, 8)}}, but {run}/head/head_config.json describes {{'linear.weight': (16, 16), 'linear.bias': (16,)}}",
    ),
    (
        "head weights NaN",
        HEAD,
        {"linear.weight": torch.full((16, 16), float("nan")), "linear.bias": torch.zeros(16)},
        "{run}/head/head.safetensors: holds NaN or infinite weights",
    ),
    (
        "head config with an extra key",
        HEAD_CONFIG,
        '{"type": "linear", "dim": 16, "evil": "os.system"}',
        "{run}/head/head_config.json: a linear head takes ['adapt', 'dim', 'out_dim']; unknown ['evil']",
    ),
    (
        "head config without dim",
        HEAD_CONFIG,
        '{"type": "linear"}',
        "{run}/head/head_config.json: a linear head takes ['adapt', 'dim', 'out_dim']; missing ['dim']",
    ),
    (
        "head config of an unknown type",
        HEAD_CONFIG,
        '{"type": "conv", "dim": 16}',
        "{run}/head/head_config.json: unknown type 'conv'; expected one of ['affine', 'linear', 'mlp']",
    ),
    (
        "head config dim a string",
        HEAD_CONFIG,
        '{"type": "linear", "dim": "16"}',
        "{run}/head/head_config.json: 'dim' must be an integer from 1 to 65536, got '16'",
    ),
    (
        "head config dim huge",
        HEAD_CONFIG,
        '{"type": "linear", "dim": 1000000000}',
        "{run}/head/head_config.json: 'dim' must be an integer from 1 to 65536, got 1000000000",
    ),
    ("head config a list", HEAD_CONFIG, "[]", "{run}/head/head_config.json: expected an object, got list"),
]


@pytest.mark.parametrize(("name", "relative", "content", "message"), DAMAGE, ids=[c[0] for c in DAMAGE])
@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_damaged_run_folders(run, capsys, command, name, relative, content, message):
    if content is None:
        (run["run"] / relative).unlink()
    else:
        damage(run["run"], relative, content)
    argv = evaluate_argv(run) if command == "evaluate" else export_argv(run)
    refused(capsys, argv, message.format(run=run["run"]), run["t"])


def test_a_head_for_another_width(run, capsys):
    damage(run["run"], HEAD_CONFIG, '{"type": "linear", "dim": 8}')
    damage(run["run"], HEAD, {"linear.weight": torch.eye(8), "linear.bias": torch.zeros(8)})
    mark_completed(run["run"])  # a consistent run folder, its head made for 8-dim vectors
    refused(
        capsys,
        evaluate_argv(run),
        f"{run['run']}/head/head_config.json: head expects 8-dim inputs but the encoder gives 16",
        run["t"],
    )


def test_evaluate_without_a_completed_status(run, capsys):
    (run["run"] / "status.json").unlink()
    refused(
        capsys, evaluate_argv(run), f"--run_dir {run['run']}: not a completed run folder (no status.json)", run["t"]
    )


EVALUATE_PATHS = [
    ("run_dir missing", lambda t: {"run_dir": t / "nope"}, "--run_dir {t}/nope: not a folder"),
    ("run_dir a file", lambda t: {"run_dir": write(t / "f.txt", "x")}, "--run_dir {t}/f.txt: not a folder"),
    ("output a folder", lambda t: {"output": t / "data"}, "--output {t}/data: is a folder, expected a file name"),
    (
        "output under a file",
        lambda t: {"output": write(t / "f.txt", "x") / "e.json"},
        "--output {t}/f.txt/e.json: {t}/f.txt is a file, not a folder",
    ),
    (
        "cache_dir a file",
        lambda t: {"cache_dir": write(t / "f.txt", "x")},
        "--cache_dir {t}/f.txt: is a file, not a folder",
    ),
    ("data missing", lambda t: {"data": t / "nope.json"}, "{t}/nope.json: file not found"),
    (
        "data a train file",
        lambda t: {"data": t / "data" / "train.json"},
        "{t}/data/train.json: expected an object with 'queries', 'corpus' and 'qrels', got list",
    ),
    (
        "sts a dev file",
        lambda t: {"sts_data": t / "data" / "dev.json"},
        "{t}/data/dev.json: expected a non-empty JSON list of {{sentence1, sentence2, score}} records",
    ),
]


@pytest.mark.parametrize(("name", "flags", "message"), EVALUATE_PATHS, ids=[c[0] for c in EVALUATE_PATHS])
def test_evaluate_paths(run, capsys, name, flags, message):
    t = run["t"]
    refused(capsys, evaluate_argv(run, **flags(t)), message.format(t=t), t)


def test_a_base_model_whose_weights_changed_since_training(run, capsys):
    """evaluate, like index and search, refuses a base model whose weights are not the ones the run was
    trained on (its head would report numbers for vectors it never saw)."""
    refused(capsys, evaluate_argv(run), record_other_weights(run["run"], "a" * 64), run["t"])
