"""Hostile input to `isoadapt evaluate` and `isoadapt export`: damaged and hand-edited run folders, bad
paths. Every case is one line, exit 2, no traceback, and nothing written or changed."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from isoadapt.cli import main

from conftest import tiny_dataset
from hostile import refused, train_argv, write


@pytest.fixture
def run(tmp_path, capsys, fake_model):
    """A finished run trained through the CLI on the fake encoder (16 dims)."""
    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in train_argv(data, tmp_path / "run", tmp_path / "cache")]) == 0
    capsys.readouterr()
    return {"t": tmp_path, "run": tmp_path / "run", "data": data, "cache": tmp_path / "cache"}


def evaluate_argv(w, **flags):
    args = {"run_dir": w["run"], "data": w["data"]["dev"], "cache_dir": w["cache"], **flags}
    return ["evaluate", *[x for k, v in args.items() for x in (f"--{k}", v)]]


def export_argv(w, **flags):
    args = {"run_dir": w["run"], "out": w["t"] / "exported", "cache_dir": w["cache"], **flags}
    return ["export", *[x for k, v in args.items() for x in (f"--{k}", v)]]


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


def test_constant_sts_scores_give_null_not_nan(run, capsys, caplog):
    """Spearman of constant gold scores is undefined: the JSON holds null (valid JSON) and the console says why."""
    sts = write(
        run["t"] / "sts.json",
        json.dumps([{"sentence1": f"topic{i} a", "sentence2": f"topic{i} b", "score": 3.0} for i in range(5)]),
    )
    out = run["t"] / "eval.json"
    assert main([str(a) for a in evaluate_argv(run, sts_data=sts, output=out)]) == 0
    result = json.loads(out.read_text())  # strict JSON: a bare NaN would not parse in most readers
    assert result["sts_spearman"]["baseline"] is None and result["sts_spearman"]["trained"] is None
    assert "sts_spearman.baseline, sts_spearman.trained undefined (NaN" in caplog.text
    assert "NaN" not in out.read_text()


def test_evaluate_output_replaces_an_earlier_evaluation(run, capsys):
    out = run["t"] / "eval.json"
    assert main([str(a) for a in evaluate_argv(run, output=out)]) == 0
    assert main([str(a) for a in evaluate_argv(run, output=out)]) == 0
    assert json.loads(out.read_text())["kind"] == "isoadapt-evaluation"
