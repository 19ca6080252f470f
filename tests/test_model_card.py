"""The export's model card, rendered from a fake-encoder run: every figure comes from the run folder."""

from __future__ import annotations

import json

from isoadapt.cli import main
from isoadapt.head import load_head
from isoadapt.store.model_card import model_card, train_command

from conftest import tiny_dataset
from hostile import train_argv


def test_card_carries_the_runs_figures_and_a_command_that_reproduces_it(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    argv = train_argv(data, tmp_path / "run", tmp_path / "cache", test_data=data["test"], adapt="query", margin=0.2)
    assert main([str(a) for a in argv]) == 0
    run = tmp_path / "run"
    card = model_card(run, tmp_path / "out", load_head(run / "head").config())
    metrics = json.loads((run / "metrics.json").read_text())
    for split in ("val", "test"):
        base, trained = metrics[split]["baseline"]["recall@100"], metrics[split]["trained"]["recall@100"]
        assert f"| recall@100 | {base:.4f} | {trained:.4f} |" in card
    assert "| adapts | queries only |" in card and "an index built with the base model stays valid" in card
    assert "`model.encode(texts)` names no side and raises here" in card  # the export's Router has no default
    libraries = card.split("## In LangChain, LlamaIndex and LanceDB")[1].split("##")[0]
    assert 'query_encode_kwargs={"task": "query"}' in libraries and "AdapterEmbedding(model_name=" in libraries
    assert "import isoadapt.integrations.lancedb" in libraries
    assert f"The head was selected on validation at step {metrics['validation']['selected']['step']}" in card
    assert "![Validation NDCG@10 against the training step; the dot is the selected state](validation.png)" in card
    (run / "validation.png").unlink()  # a folder without the picture (a plan's post-hoc transform) links none
    assert "validation.png" not in model_card(run, tmp_path / "out", load_head(run / "head").config())
    config = json.loads((run / "config.json").read_text())["config"]
    command = train_command(config)
    assert "--margin 0.2" in command and "--adapt query" in command and "--epochs 1" in command
    assert "--lambda_isotropy" not in command  # defaults are left out


def test_a_fine_tuned_run_without_test_data_says_what_was_trained_and_nothing_unmeasured(tmp_path, capsys, fake_model):
    """Full fine-tuning changed the encoder: the card must not say "over the frozen base model", and with
    no test split it names none ("test on `None`")."""
    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in train_argv(data, tmp_path / "run", tmp_path / "cache")]) == 0
    run = tmp_path / "run"
    config_file = run / "config.json"
    saved = json.loads(config_file.read_text())
    saved["config"]["freeze_base"] = False  # as a full fine-tuning run records it (the fake cannot be tuned)
    config_file.write_text(json.dumps(saved))
    card = model_card(run, tmp_path / "out", load_head(run / "head").config())
    assert (
        "frozen base model" not in card and "The base model fine-tuned by isoadapt together with a projection" in card
    )
    assert "None" not in card.split("## Training data")[1].split("##")[0]
    assert "test on" not in card and "**Test**" not in card


def test_card_is_hub_ready_with_no_local_paths(tmp_path, capsys, fake_model):
    """YAML front matter a model hub reads (task, library, base, data, test NDCG@10 in model-index) and no
    absolute path of this machine anywhere in the card."""
    data = tiny_dataset(tmp_path / "data")
    argv = train_argv(data, tmp_path / "run", tmp_path / "cache", test_data=data["test"])
    assert main([str(a) for a in argv]) == 0
    run = tmp_path / "run"
    card = model_card(run, tmp_path / "out", load_head(run / "head").config())
    metrics = json.loads((run / "metrics.json").read_text())
    front = card.split("---\n")[1]
    assert "library_name: sentence-transformers\npipeline_tag: sentence-similarity\n" in front
    assert "base_model: sentence-transformers/all-mpnet-base-v2\n" in front and "datasets: [data]\n" in front
    assert f"    - type: ndcg_at_10\n      value: {metrics['test']['trained']['ndcg@10']:.4f}\n" in front
    assert str(tmp_path) not in card
    libraries = card.split("## In LangChain, LlamaIndex and LanceDB")[1].split("##")[0]
    assert 'HuggingFaceEmbeddings(model_name="path/to/out")`.' in libraries  # a both-sides head: stock calls
    assert "task" not in libraries and "raises here" not in card
    assert "--train_data data/train.json" in card and '"output_dir": "' + str(tmp_path) not in card
