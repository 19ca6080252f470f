"""The run folder (training/run_folder.py), the one module that writes and reads it: every writer (train,
`Adapter.save`, a plan's post-hoc folders) records the sha256 of the head file in status.json, checked here
against hashlib; every reader (`open_run`, so every command and `Adapter.load`) refuses a run that did not
complete, and a head file that changed since, even with finite weights that would load and score."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

import isoadapt
from isoadapt.errors import InputError

from conftest import FakeEncoder, completed_status
from hostile import TEXTS, evaluate_argv, refused


def test_every_writer_records_the_heads_digest(run):
    assert json.loads((run["run"] / "status.json").read_text()) == completed_status(run["run"])  # train
    copy = isoadapt.Adapter.load(run["run"]).save(run["t"] / "copy")  # Adapter.save
    assert json.loads((copy / "status.json").read_text()) == completed_status(copy)
    vectors = FakeEncoder().encode(TEXTS)
    again = isoadapt.Adapter.load(copy).transform(vectors)
    assert torch.equal(torch.from_numpy(again), torch.from_numpy(isoadapt.Adapter.load(run["run"]).transform(vectors)))


def corrupt_finite(run_dir) -> str:
    """Rewrite the head file with other, finite weights of the right shapes: it loads and scores."""
    weights = run_dir / "head" / "head.safetensors"
    save_file({"linear.weight": 2 * torch.eye(16), "linear.bias": torch.ones(16)}, str(weights))
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_head_file_changed_since_the_run_completed_is_refused(run, capsys):
    recorded = json.loads((run["run"] / "status.json").read_text())["head_sha256"]
    found = corrupt_finite(run["run"])
    message = (
        f"{run['run']}/head/head.safetensors: sha256 {found[:16]} is not the {recorded[:16]} that "
        f"{run['run']}/status.json recorded when it was written; the head file was changed or damaged since"
    )
    with pytest.raises(InputError) as err:
        isoadapt.Adapter.load(run["run"])
    assert str(err.value) == message
    refused(capsys, evaluate_argv(run), message, run["t"])


@pytest.mark.parametrize(
    ("status", "said"),
    [({"completed": False}, "False"), ({"completed": "yes"}, "'yes'"), ([True], "[True]")],
)
def test_a_run_that_did_not_complete_is_refused(run, capsys, status, said):
    (run["run"] / "status.json").write_text(json.dumps(status))
    said = f"not a completed run folder ({run['run']}/status.json says completed: {said})"
    message = f"--run_dir {run['run']}: {said}"  # the command line names its flag, Python its argument
    with pytest.raises(InputError) as refused_in_python:
        isoadapt.Adapter.load(run["run"])
    assert str(refused_in_python.value) == f"folder='{run['run']}': {said}"
    refused(capsys, evaluate_argv(run), message, run["t"])


def test_a_status_without_a_digest_is_refused(run):
    (run["run"] / "status.json").write_text(json.dumps({"completed": True}))
    with pytest.raises(
        InputError, match=r"status.json: records no head_sha256 for .*head.safetensors; written by an older"
    ):
        isoadapt.Adapter.load(run["run"])


def write_cross_model_run(folder, base: FakeEncoder, query: FakeEncoder):
    """A cross-model run as write_run writes it: a query-only head from the query model's width to the base's."""
    from isoadapt.head import LinearHead
    from isoadapt.training.run_folder import write_run
    from isoadapt.training.run_metrics import encoder_record

    folder.mkdir(parents=True)
    config = {"base_model": base.name, "query_model": query.name, "encode_backend": "torch", "adapt": "query"}
    document = {"config": config, "encoder": encoder_record(base), "query_encoder": encoder_record(query)}
    write_run(folder, document, LinearHead(query.dim, base.dim, adapt="query"))
    return folder


def test_a_cross_model_run_opens_each_side_on_its_model(tmp_path, fake_model):
    from isoadapt.training.run_folder import open_run

    run = open_run(write_cross_model_run(tmp_path / "cross", FakeEncoder(16, 0), FakeEncoder(8, 1)))
    assert run.query_model == "fake-8-1"
    assert (run.head.dim, run.head.out_dim, run.head.adapt) == (8, 16, "query")
    assert run.side_encoder("query", tmp_path / "cache").name == "fake-8-1"
    assert run.side_encoder("document", tmp_path / "cache").name == "fake-16-0"
    with pytest.raises(InputError, match="the head gives 16-dim query vectors but the base model fake-16-0 gives 8"):
        run.check_width(8)


def test_an_ordinary_run_has_no_query_model(run):
    from isoadapt.training.run_folder import open_run

    opened = open_run(run["run"])
    assert opened.query_model is None
    assert opened.side_encoder("query", run["cache"]).name == opened.side_encoder("document", run["cache"]).name
