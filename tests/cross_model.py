"""A cross-model run on two real models, for the tests of every surface that uses a run.

OLD (the index's model, `--base_model`) is MiniLM. NEW (`--query_model`) is a smaller, different model made
from it: MiniLM's first 3 transformer layers, its pooling, a seeded Dense to 256 dims, Normalize, and a query
prompt of its own ("search query: "). Real and different weights, another width and a prompt: a query that
took OLD's route, skipped the head or lost its prompt gives other vectors, and the tests see it.

The run folder is written with `write_run`, as the contract of a cross-model run has it: `config.query_model`,
`encoder` (OLD's identity) and `query_encoder` (NEW's), and a query-only head reading 256 dims and writing 384,
seeded far from anything trained. `reference` computes the run's vectors without isoadapt: NEW's own
`encode` with its prompt, the head's weights in numpy, a unit norm; OLD's `encode` for documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
NEW_WIDTH = 256
QUERY_PROMPT = "search query: "  # NEW's own prompt for queries (config_sentence_transformers.json)
QUERIES = ["topic1 what is topic1", "python library for knowledge graphs", "topic3 where"]
DOCUMENTS = ["topic1 document 0 about topic1", "Python library for RDF", "topic2 passage about topic2"]


def small_model(folder: Path, cache: Path) -> Path:
    """NEW: MiniLM cut to 3 layers, then Dense 384 -> 256 (seeded), Normalize; saved to `folder`."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    from isoadapt.encoding.offline_models import resolve_model

    model = SentenceTransformer(str(resolve_model(MINILM, cache)), device="cpu", local_files_only=True)
    transformer, pooling, normalize = list(model)
    bert = transformer.auto_model
    bert.encoder.layer = bert.encoder.layer[:3]
    bert.config.num_hidden_layers = 3
    weight = torch.randn(NEW_WIDTH, 384, generator=torch.Generator().manual_seed(7)) / 384**0.5
    dense = Dense(384, NEW_WIDTH, activation_function=torch.nn.Identity(), init_weight=weight)
    dense.linear.bias.data.zero_()
    small = SentenceTransformer(modules=[transformer, pooling, dense, normalize], device="cpu")
    small.prompts = {"query": QUERY_PROMPT, "document": ""}
    small.save(str(folder))
    return folder


def query_head(seed: int = 11):
    """A query-only head from NEW's width to OLD's: W (384, 256), b (384,), seeded."""
    import torch

    from isoadapt.head import LinearHead

    head = LinearHead(NEW_WIDTH, 384, adapt="query")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.linear.weight.copy_(torch.randn(384, NEW_WIDTH, generator=generator) / NEW_WIDTH**0.5)
        head.linear.bias.copy_(0.05 * torch.randn(384, generator=generator))
    return head.eval()


def identity(folder_or_name: str, cache: Path, prompts: dict) -> dict:
    """What a run records of a model (config.json's `encoder` / `query_encoder`)."""
    from isoadapt.encoding.offline_models import model_identity, resolve_model

    return {"name": folder_or_name, **model_identity(resolve_model(folder_or_name, cache), cache), "prompts": prompts}


def cross_run(run_dir: Path, new: Path, cache: Path, seed: int = 11) -> Path:
    """A completed cross-model run folder: documents on MINILM, queries on `new` through a query-only head."""
    from isoadapt.owned_folders import mark_owned
    from isoadapt.training.run_folder import write_run

    config = {
        "base_model": MINILM,
        "query_model": str(new),
        "encode_backend": "torch",
        "query_prompt": None,
        "document_prompt": None,
        "adapt": "query",
        "head": "linear",
    }
    document = {
        "config": config,
        "encoder": identity(MINILM, cache, {"query": "", "document": ""}),
        "query_encoder": identity(str(new), cache, {"query": QUERY_PROMPT, "document": ""}),
    }
    run_dir.mkdir(parents=True)
    write_run(run_dir, document, query_head(seed))
    mark_owned(run_dir, "run")
    return run_dir


def reference(run_dir: Path, new: Path, cache: Path, texts: list[str], side: str) -> np.ndarray:
    """The run's vectors of `texts` on `side`, computed without isoadapt's encoders or head code."""
    from safetensors.numpy import load_file
    from sentence_transformers import SentenceTransformer

    from isoadapt.encoding.offline_models import resolve_model

    if side == "document":
        old = SentenceTransformer(str(resolve_model(MINILM, cache)), device="cpu", local_files_only=True)
        vectors = old.encode(texts, convert_to_numpy=True).astype(np.float64)
    else:
        model = SentenceTransformer(str(new), device="cpu", local_files_only=True)
        base = model.encode([QUERY_PROMPT + t for t in texts], convert_to_numpy=True).astype(np.float64)
        weights = load_file(str(run_dir / "head" / "head.safetensors"))
        vectors = base @ weights["linear.weight"].T.astype(np.float64) + weights["linear.bias"]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(root: Path) -> dict:
    """The session's fixture: NEW, the run, its export (`isoadapt export`), and the reference vectors."""
    from isoadapt.cli import main

    cache = root / "cache"
    new = small_model(root / "new-model", cache)
    run = cross_run(root / "run", new, cache)
    export = root / "export"
    assert main(["export", "--run_dir", str(run), "--out", str(export), "--cache_dir", str(cache)]) == 0
    expected = {
        "query": reference(run, new, cache, QUERIES, "query"),
        "document": reference(run, new, cache, DOCUMENTS, "document"),
    }
    return {"root": root, "cache": cache, "new": new, "run": run, "export": export, "expected": expected}


def fake_cross_run(
    run_dir: Path,
    query_model: str = "fake-8-1",
    query_prompt: str = "",
    mlflow: dict | None = None,
    base_model: str = "fake-16-0",
) -> Path:
    """A cross-model run on the seeded fakes (conftest's `fake_model` opens "fake-D-S" as the fake of width D,
    seed S): documents on fake-16-0 (named `base_model`), queries on `query_model` through a seeded query-only
    head 8 -> 16."""
    import torch

    from isoadapt.encoding.prompts import Prompts
    from isoadapt.head import LinearHead
    from isoadapt.owned_folders import mark_owned
    from isoadapt.training.run_folder import write_run
    from isoadapt.training.run_metrics import encoder_record

    from conftest import FakeEncoder

    base, query = FakeEncoder(16, 0), FakeEncoder(8, 1, Prompts(query_prompt, ""))
    config = {"base_model": base_model, "query_model": query_model, "encode_backend": "torch", "adapt": "query"}
    document = {"config": config, "encoder": encoder_record(base), "query_encoder": encoder_record(query)}
    document |= {"mlflow": mlflow} if mlflow else {}  # the MLflow run it is logged into, as --tracker mlflow records
    head = LinearHead(8, 16, adapt="query")
    with torch.no_grad():
        head.linear.weight.copy_(torch.randn(16, 8, generator=torch.Generator().manual_seed(5)))
    run_dir.mkdir(parents=True)
    write_run(run_dir, document, head)
    mark_owned(run_dir, "run")
    return run_dir
