"""Any SentenceTransformer model: hub ids through the Hugging Face cache, local folders, objects, and the
model's query / document prompts on the right side. Fast tests use the shipped MiniLM's files without
loading it (or the seeded fake encoder); the few that load MiniLM are marked slow and compare with plain
sentence-transformers on the shipped folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from isoadapt.cli import main
from isoadapt.encoding.cache import EmbeddingCache, text_key
from isoadapt.encoding.offline_models import MINILM, model_identity, resolve_model
from isoadapt.encoding.prompts import Prompts, model_prompts, resolve_prompts
from isoadapt.errors import InputError
from isoadapt.training.train_command import run_training

from conftest import REPO, FakeEncoder, tiny_dataset, train_config, write_json
from hostile import one_line

COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a snapshot's folder name: the commit it holds
E5 = {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None}  # e5's convention


def shipped_minilm(tmp_path: Path) -> Path:
    return resolve_model(MINILM, tmp_path / "cache")


def linked_copy(source: Path, target: Path, skip: tuple[str, ...] = ()) -> Path:
    """`source`'s files as links under `target` (a model folder costs nothing to copy this way)."""
    for path in source.rglob("*"):
        if path.is_file() and path.name not in skip:
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(source)).symlink_to(path)
    return target


def fake_hub(hub: Path, repo_id: str, source: Path) -> Path:
    """The Hugging Face cache's layout for one model repo: models--owner--name/{refs/main, snapshots/COMMIT}."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return linked_copy(source, repo / "snapshots" / COMMIT)


def prompted_model(folder: Path, source: Path, config: dict) -> Path:
    """The shipped model with its own config_sentence_transformers.json (prompts)."""
    linked_copy(source, folder, skip=("config_sentence_transformers.json",))
    write_json(folder / "config_sentence_transformers.json", config)
    return folder


# -- where a model comes from --------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_a_hub_id_resolves_to_its_snapshot_in_the_hugging_face_cache(tmp_path, monkeypatch, variable):
    source = shipped_minilm(tmp_path)
    hub = tmp_path / "hf" / ("hub" if variable == "HF_HOME" else "")
    snapshot = fake_hub(hub, "acme/tiny-minilm", source)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "hf"))
    folder = resolve_model("acme/tiny-minilm", tmp_path / "cache")
    assert folder == snapshot
    identity = model_identity(folder, tmp_path / "cache")
    assert identity["name"] == "acme/tiny-minilm"  # the repo id, not the snapshot's commit
    assert identity["weights_sha256"] == model_identity(source, tmp_path / "cache")["weights_sha256"]


def test_a_snapshot_without_weights_is_a_partial_download(tmp_path, monkeypatch):
    snapshot = fake_hub(tmp_path / "hf", "acme/partial", tmp_path / "nothing")
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")  # what an interrupted download may leave
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(InputError) as err:
        resolve_model("acme/partial", tmp_path / "cache")
    assert str(err.value) == (
        f"--base_model acme/partial: {snapshot} holds no weights (.safetensors or .bin): a partial download; "
        "fetch it again with `hf download acme/partial`"
    )


def test_an_uncached_hub_id_on_the_encode_command_is_one_line(tmp_path, monkeypatch, capsys):
    data = tiny_dataset(tmp_path / "data")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    argv = ["encode", "--data", data["dev"], "--base_model", "intfloat/e5-small-v2", "--cache_dir", tmp_path / "c"]
    line = one_line(capsys, argv)
    assert line.startswith(
        f"isoadapt: error: --base_model intfloat/e5-small-v2: not in the Hugging Face cache at {tmp_path / 'hf'}"
    )
    assert "`hf download intfloat/e5-small-v2`" in line
    assert not (tmp_path / "c" / "embeddings").exists()


def test_the_shipped_models_fingerprint_is_the_committed_reports(tmp_path):
    """No prompts, no change: the identity (and so the fingerprint and the cache rows) of the shipped MiniLM
    is the one the committed report was measured with."""
    report = json.loads((REPO / "docs/results/adapters-semanlink-minilm/report.json").read_text())
    recorded = report.get("meta", report)["encoder"]
    identity = {**model_identity(shipped_minilm(tmp_path), tmp_path / "cache"), "backend": "torch"}
    assert identity == recorded


# -- which prompt is which side ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, Prompts("", "")),
        (E5, Prompts("query: ", "passage: ")),
        ({"prompts": {"query": "q: ", "document": "d: ", "passage": "p: "}}, Prompts("q: ", "d: ")),
        ({"prompts": {"query": "q: ", "corpus": "c: "}}, Prompts("q: ", "c: ")),
        ({"prompts": {"query": "Represent this query: "}}, Prompts("Represent this query: ", "")),
        ({"prompts": {"retrieval": "r: "}, "default_prompt_name": "retrieval"}, Prompts("r: ", "r: ")),
        ({"prompts": {"query": "q: ", "s": "s: "}, "default_prompt_name": "s"}, Prompts("q: ", "s: ")),
    ],
)
def test_the_models_own_prompts_map_to_sides_by_sentence_transformers_names(tmp_path, config, expected):
    write_json(tmp_path / "config_sentence_transformers.json", config)
    assert model_prompts(tmp_path) == expected


def test_given_prompts_override_the_models_and_an_empty_one_turns_it_off(tmp_path):
    write_json(tmp_path / "config_sentence_transformers.json", E5)
    assert resolve_prompts(tmp_path, "Q: ", None) == Prompts("Q: ", "passage: ")
    assert resolve_prompts(tmp_path, None, "") == Prompts("query: ", "")


def test_prompts_are_refused_when_the_pooling_leaves_them_out(tmp_path):
    write_json(tmp_path / "modules.json", [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "x.Pooling"}])
    write_json(tmp_path / "1_Pooling" / "config.json", {"pooling_mode_mean_tokens": True, "include_prompt": False})
    assert resolve_prompts(tmp_path) == Prompts()  # no prompts: nothing to leave out
    with pytest.raises(InputError, match="include_prompt false"):
        resolve_prompts(tmp_path, "Represent the query: ")


# -- prompts on the right side, through training and evaluation (the fake encoder) ---------------------------


def prefixed_dataset(data: dict[str, Path], root: Path, query: str, document: str) -> dict[str, Path]:
    """The reference: the same files with the prompts written into the texts by hand."""
    train = [
        {"query": query + e["query"], "positive": document + e["positive"], "negative": document + e["negative"]}
        for e in json.loads(data["train"].read_text())
    ]
    out = {"train": write_json(root / "train.json", train)}
    for name in ("dev", "test"):
        split = json.loads(data[name].read_text())
        split["queries"] = {q: query + t for q, t in split["queries"].items()}
        split["corpus"] = {d: document + t for d, t in split["corpus"].items()}
        out[name] = write_json(root / f"{name}.json", split)
    return out


def test_a_prompted_run_equals_a_run_on_texts_prompted_by_hand(tmp_path):
    """Train, validation, test and the baseline all see queries with the query prompt and documents with
    the document prompt: the metrics equal those of an unprompted encoder on hand-prompted files."""
    data = tiny_dataset(tmp_path / "data")
    reference_data = prefixed_dataset(data, tmp_path / "reference_data", "query: ", "passage: ")
    prompted = run_training(
        train_config(data, tmp_path / "a"), encoder=FakeEncoder(prompts=Prompts("query: ", "passage: ")), quiet=True
    )
    reference = run_training(train_config(reference_data, tmp_path / "b"), encoder=FakeEncoder(), quiet=True)
    for split in ("val", "test"):
        assert prompted.metrics[split] == reference.metrics[split]
    assert prompted.metrics["validation"] == reference.metrics["validation"]
    recorded = json.loads((prompted.folder / "config.json").read_text())["encoder"]["prompts"]
    assert recorded == {"query": "query: ", "document": "passage: "}


def test_prompted_texts_never_read_the_unprompted_rows(tmp_path):
    """The cache is keyed by the text the model saw: one fingerprint, separate rows per side."""
    data = tiny_dataset(tmp_path / "data")
    encoder = FakeEncoder(prompts=Prompts("query: ", "passage: "))
    run_training(train_config(data, tmp_path), encoder=encoder, quiet=True)
    cache = EmbeddingCache(tmp_path / "cache", encoder.fingerprint, encoder.identity, create=False)
    split = json.loads(data["test"].read_text())
    query, document = next(iter(split["queries"].values())), next(iter(split["corpus"].values()))
    assert text_key("query: " + query) in cache and text_key("passage: " + document) in cache
    assert text_key(query) not in cache and text_key(document) not in cache
    assert text_key("passage: " + query) not in cache  # a query is never encoded as a document


def test_evaluate_applies_the_runs_recorded_prompts(tmp_path, capsys, fake_model):
    """`isoadapt evaluate` reopens the encoder with the prompts the run recorded: its numbers equal the
    training run's own test metrics (which the run scored with the same prompts)."""
    from hostile import train_argv

    data = tiny_dataset(tmp_path / "data")
    argv = train_argv(data, tmp_path / "run", tmp_path / "cache", query_prompt="query: ", document_prompt="passage: ")
    assert main([str(a) for a in [*argv, "--test_data", data["test"]]]) == 0
    out = tmp_path / "evaluation.json"
    argv = ["evaluate", "--run_dir", tmp_path / "run", "--data", data["test"], "--cache_dir", tmp_path / "cache"]
    assert main([str(a) for a in [*argv, "--output", out]]) == 0
    capsys.readouterr()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    evaluation = json.loads(out.read_text())
    assert evaluation["baseline"] == metrics["baseline"]
    assert evaluation["trained"] == metrics["trained"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["config"]["query_prompt"] == "query: "
    assert config["encoder"]["prompts"] == {"query": "query: ", "document": "passage: "}


def test_a_prompted_plan_equals_a_plan_on_texts_prompted_by_hand(tmp_path):
    """Plans prompt every split, the training pairs and the post-hoc fits as a run does."""
    from isoadapt.experiment.runner import run_experiment

    plan = tmp_path / "mini.toml"
    plan.write_text(
        'name = "mini"\nseeds = [0]\n[defaults]\nepochs = 2\nbatch_size = 8\n'
        '[[configs]]\nname = "baseline"\nkind = "baseline"\n[[configs]]\nname = "trained"\n'
        '[[configs]]\nname = "whitening"\nkind = "posthoc"\ntransform = "whitening"\n'
    )
    data = tiny_dataset(tmp_path / "processed" / "tiny")
    prefixed_dataset(data, tmp_path / "reference" / "tiny", "query: ", "passage: ")
    reports = {}
    for name, root, encoder in (
        ("prompted", tmp_path / "processed", FakeEncoder(prompts=Prompts("query: ", "passage: "))),
        ("reference", tmp_path / "reference", FakeEncoder()),
    ):
        folder = run_experiment(
            plan, "tiny", None, encoder.name, tmp_path / "cache", root, tmp_path / name, encoder=encoder
        )
        reports[name] = json.loads((folder / "report.json").read_text())
    for row, reference in zip(reports["prompted"]["rows"], reports["reference"]["rows"]):
        assert (row["name"], row["ndcg@10"]) == (reference["name"], reference["ndcg@10"])
    assert reports["prompted"]["meta"]["prompts"] == {"query": "query: ", "document": "passage: "}
    assert "prompts" not in reports["reference"]["meta"]


def test_encode_fills_the_cache_for_both_sides(tmp_path, capsys, fake_model):
    data = tiny_dataset(tmp_path / "data")
    argv = ["encode", "--data", data["dev"], "--base_model", "m", "--cache_dir", tmp_path / "cache"]
    assert main([str(a) for a in [*argv, "--query_prompt", "q: ", "--document_prompt", "d: "]]) == 0
    capsys.readouterr()
    encoder = FakeEncoder()
    cache = EmbeddingCache(tmp_path / "cache", encoder.fingerprint, encoder.identity, create=False)
    split = json.loads(data["dev"].read_text())
    texts = [*split["queries"].values(), *split["corpus"].values()]
    assert all(text_key("q: " + t) in cache and text_key("d: " + t) in cache for t in texts)
    assert len(cache) == 2 * len(set(texts))


def test_the_server_encodes_each_side_with_the_runs_prompts(tmp_path, capsys, fake_model, monkeypatch):
    """`isoadapt serve` opens the base with the run's recorded prompts and prompts each request by its side:
    its vectors equal the head on an unprompted fake's vectors of hand-prompted texts."""
    import isoadapt.integrations.server.model as served
    from isoadapt import Adapter

    from hostile import train_argv
    from serving import TokenizingFake

    data = tiny_dataset(tmp_path / "data")
    argv = train_argv(data, tmp_path / "run", tmp_path / "cache", query_prompt="q: ", document_prompt="d: ")
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()

    def open_fake(*args, query_prompt=None, document_prompt=None, **kwargs):
        return TokenizingFake(prompts=Prompts(query_prompt or "", document_prompt or ""))

    monkeypatch.setattr(served, "open_encoder", open_fake)
    adapter = Adapter.load(tmp_path / "run", tmp_path / "cache")
    model = served.open_served(adapter, tmp_path / "cache")
    texts = ["topic1 what is topic1", "topic2 document 0 about topic2"]
    query, document = (
        model.finish(model.encode_pass(side, model.read(texts, side)[0]), side) for side in ("query", "document")
    )
    assert np.allclose(query, adapter.transform(FakeEncoder().encode(["q: " + t for t in texts]), "query"))
    assert np.allclose(document, adapter.transform(FakeEncoder().encode(["d: " + t for t in texts]), "document"))


# -- the real model (slow): vectors equal plain sentence-transformers on the shipped folder --------------------


def reference_model(tmp_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(shipped_minilm(tmp_path)), device="cpu", local_files_only=True)


def texts_of(data: dict[str, Path]) -> tuple[list[str], list[str]]:
    split = json.loads(data["test"].read_text())
    return list(split["queries"].values())[:6], list(split["corpus"].values())[:6]


@pytest.mark.slow
def test_a_model_from_the_hub_cache_trains_and_encodes_like_the_shipped_one(tmp_path, monkeypatch, capsys):
    from isoadapt import Adapter

    fake_hub(tmp_path / "hf", "acme/tiny-minilm", shipped_minilm(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    data = tiny_dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    assert (
        main(["encode", "--data", str(data["dev"]), "--base_model", "acme/tiny-minilm", "--cache_dir", str(cache)]) == 0
    )
    argv = ["train", "--train_data", data["train"], "--val_data", data["dev"], "--output_dir", tmp_path / "run"]
    argv += ["--base_model", "acme/tiny-minilm", "--cache_dir", cache, "--epochs", "1", "--batch_size", "4"]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    queries, documents = texts_of(data)
    reference = reference_model(tmp_path)
    adapter = Adapter.load(tmp_path / "run", cache)
    for texts, side in ((queries, "query"), (documents, "document")):
        expected = adapter.transform(reference.encode(texts), side)
        assert np.allclose(getattr(adapter, f"encode_{side}")(texts), expected, atol=1e-5)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["encoder"]["name"] == "acme/tiny-minilm"


@pytest.mark.slow
def test_a_folder_with_e5_prompts_prompts_each_side_everywhere(tmp_path, capsys):
    """Training, the Adapter, the cache and the export all apply "query: " to queries and "passage: " to
    documents, as sentence-transformers' encode(texts, prompt=...) does on the shipped folder."""
    from sentence_transformers import SentenceTransformer

    from isoadapt import Adapter
    from isoadapt.encoding.encoder import Encoder
    from isoadapt.integrations.llama_index import AdapterEmbedding

    model = prompted_model(tmp_path / "e5-minilm", shipped_minilm(tmp_path), E5)
    data = tiny_dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    argv = ["train", "--train_data", data["train"], "--val_data", data["dev"], "--output_dir", tmp_path / "run"]
    argv += ["--base_model", model, "--cache_dir", cache, "--epochs", "1", "--batch_size", "4"]
    assert main([str(a) for a in argv]) == 0
    assert (
        main(
            ["export", "--run_dir", str(tmp_path / "run"), "--out", str(tmp_path / "export"), "--cache_dir", str(cache)]
        )
        == 0
    )
    capsys.readouterr()
    queries, documents = texts_of(data)
    reference = reference_model(tmp_path)
    adapter = Adapter.load(tmp_path / "run", cache)
    expected = {
        "query": adapter.transform(reference.encode(queries, prompt="query: "), "query"),
        "document": adapter.transform(reference.encode(documents, prompt="passage: "), "document"),
    }
    assert np.allclose(adapter.encode_query(queries), expected["query"], atol=1e-5)
    assert np.allclose(adapter.encode_document(documents), expected["document"], atol=1e-5)
    assert not np.allclose(
        adapter.encode_query(queries), adapter.transform(reference.encode(queries), "query"), atol=1e-3
    )
    exported = SentenceTransformer(str(tmp_path / "export"), device="cpu", local_files_only=True)
    assert np.allclose(exported.encode_query(queries), expected["query"], atol=1e-5)
    assert np.allclose(exported.encode_document(documents), expected["document"], atol=1e-5)
    llama = AdapterEmbedding(model_name=str(tmp_path / "export"), device="cpu")  # LlamaIndex blanks the prompts
    assert np.allclose(llama.get_query_embedding(queries[0]), expected["query"][0], atol=1e-5)
    assert np.allclose(llama.get_text_embedding(documents[0]), expected["document"][0], atol=1e-5)
    encoder = Encoder(str(model), cache)
    rows = EmbeddingCache(cache, encoder.fingerprint, encoder.identity, create=False)
    assert text_key("query: " + queries[0]) in rows and text_key(queries[0]) not in rows
    assert text_key("passage: " + documents[0]) in rows and text_key(documents[0]) not in rows


@pytest.mark.slow
def test_fit_takes_a_sentence_transformer_object(tmp_path):
    from sentence_transformers import SentenceTransformer

    import isoadapt

    model = SentenceTransformer(str(shipped_minilm(tmp_path)), device="cpu", prompts={"query": "query: "})
    tiny_dataset(tmp_path / "data")
    settings = {"base_model": model, "cache_dir": str(tmp_path / "cache"), "epochs": 1, "batch_size": 4}
    adapter, _ = isoadapt.fit(tmp_path / "data", **settings)
    assert Path(adapter.base_model).parent == tmp_path / "cache" / "models"
    queries = ["topic1 what is topic1", "topic2 what is topic2"]
    expected = adapter.transform(model.encode(queries, prompt="query: "), "query")
    assert np.allclose(adapter.encode_query(queries), expected, atol=1e-5)
    again, _ = isoadapt.fit(tmp_path / "data", **settings)
    assert again.base_model == adapter.base_model  # the same object is saved once
    assert os.path.isdir(adapter.base_model)
