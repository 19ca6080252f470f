"""Shared fixtures: a seeded fake encoder (fast, deterministic), tiny datasets in the processed format, and a
finished run trained through the CLI on the fake encoder."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from isoadapt.encoding.prompts import NO_PROMPTS, Prompts

pytest.register_assert_rewrite("hostile")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
# What a finished run folder holds (the marker first: it is what --overwrite checks).
RUN_FOLDER_FILES = [
    ".isoadapt-owned.json",
    "config.json",
    "head",
    "metrics.json",
    "status.json",
    "tensorboard",
    "train_log.jsonl",
    "validation.png",
]
CHERCHE_ARCHIVE = REPO / "data" / "raw" / "cherche-2.2.1.tar.gz"


class FakeEncoder:
    """Maps each text to a fixed pseudo-random vector seeded by its hash, plus a shared offset so the
    space is anisotropic like a real encoder's; counts how often it is asked to encode."""

    batch_size = 32  # texts per forward pass, as the real Encoder's default

    def __init__(self, dim: int = 16, seed: int = 0, prompts: Prompts = NO_PROMPTS):
        self.name = f"fake-{dim}-{seed}"
        self.prompts = prompts  # what a real encoder resolves from its model and the prompt settings
        self.folder = Path("/fake")
        self.dim = dim
        self.seed = seed
        self.backend = "torch"  # it stands in for a torch encoder; its fingerprint keeps its vectors apart in the cache
        self.backend_choice = None  # a named backend, not one `--encode_backend auto` chose
        weights = hashlib.sha256(self.name.encode()).hexdigest()  # its "weights" are its width and seed
        self.identity = {"name": self.name, "dim": dim, "seed": seed, "weights_sha256": weights}
        self.fingerprint = hashlib.sha256(json.dumps(self.identity).encode()).hexdigest()
        self.calls = 0
        self.texts_encoded = 0
        self.offset = np.random.default_rng(seed).normal(size=dim).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        topic = text.split()[0] if text.split() else text  # texts sharing a first word are near each other
        topic_seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{topic}".encode()).digest()[:8], "little")
        text_seed = int.from_bytes(hashlib.sha256(f"{self.seed}|{text}".encode()).digest()[:8], "little")
        v = (
            2.0 * self.offset
            + np.random.default_rng(topic_seed).normal(size=self.dim)
            + 0.5 * np.random.default_rng(text_seed).normal(size=self.dim)
        )
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        return np.stack([self.vector(t) for t in texts])

    def encode_pass(self, texts: list[str]) -> np.ndarray:  # one forward pass: each text's vector, as encode
        return self.encode(texts)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def tiny_dataset(root: Path, topics: int = 12, per_topic: int = 4) -> dict[str, Path]:
    """Queries and documents that share a topic word are relevant; written as train/dev/test files."""
    corpus = {f"d{t}_{i}": f"topic{t} document {i} about topic{t}" for t in range(topics) for i in range(2)}
    train, queries, qrels = [], {}, {}
    for t in range(topics):
        for i in range(per_topic):
            train.append(
                {
                    "query": f"topic{t} question {i}",
                    "positive": corpus[f"d{t}_{i % 2}"],
                    "negative": corpus[f"d{(t + 1) % topics}_0"],
                }
            )
        queries[f"q{t}"] = f"topic{t} what is topic{t}"
        qrels[f"q{t}"] = {f"d{t}_0": 1, f"d{t}_1": 2}
    split = {"queries": queries, "corpus": corpus, "qrels": qrels}
    return {
        "train": write_json(root / "train.json", train),
        "dev": write_json(root / "dev.json", split),
        "test": write_json(root / "test.json", split),
    }


def train_config(data: dict[str, Path], tmp_path: Path, **overrides):
    """A TrainConfig on tiny_dataset's files that trains in a second on the fake encoder."""
    from isoadapt.training.config import TrainConfig

    values = dict(
        train_data=str(data["train"]),
        val_data=str(data["dev"]),
        test_data=str(data["test"]),
        output_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        batch_size=8,
        epochs=3,
        lambda_contrastive=1.0,
        projection_learning_rate=1e-2,
    )
    return TrainConfig(**{**values, **overrides})


@pytest.fixture
def tiny_data(tmp_path: Path) -> dict[str, Path]:
    return tiny_dataset(tmp_path / "data")


@pytest.fixture
def fake_model(monkeypatch):
    """Every command that would load a model gets the seeded fake encoder instead (dim 16); a name
    "fake-D-S" gets the fake of width D and seed S (a second, different model for cross-model runs)."""
    import isoadapt.encoding.encode_command
    import isoadapt.experiment.ray_trials
    import isoadapt.experiment.runner
    import isoadapt.store.lancedb_index
    import isoadapt.training.cross_model
    import isoadapt.training.run_folder
    import isoadapt.training.train_command
    import isoadapt.training.trainable
    from isoadapt.encoding.encoder import open_encoder

    def build(name="", *args, query_prompt=None, document_prompt=None, **kwargs):
        if name.startswith("vectors:"):
            return open_encoder(name, *args, query_prompt=query_prompt, document_prompt=document_prompt, **kwargs)
        prompts = Prompts(query_prompt or "", document_prompt or "")  # a model with no prompts
        sized = re.fullmatch(r"fake-(\d+)-(\d+)", name)  # "fake-8-1": another model (width 8, seed 1)
        return FakeEncoder(int(sized[1]), int(sized[2]), prompts) if sized else FakeEncoder(prompts=prompts)

    for module in (
        isoadapt.training.train_command,
        isoadapt.training.trainable,
        isoadapt.training.run_folder,
        isoadapt.training.cross_model,
        isoadapt.experiment.runner,
        isoadapt.experiment.ray_trials,
        isoadapt.encoding.encode_command,
    ):
        for name in ("Encoder", "open_encoder"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, build)
    return build


@pytest.fixture
def run(tmp_path, capsys, fake_model):
    """A finished run trained through the CLI on the fake encoder (16 dims)."""
    from isoadapt.cli import main

    from hostile import train_argv

    data = tiny_dataset(tmp_path / "data")
    assert main([str(a) for a in train_argv(data, tmp_path / "run", tmp_path / "cache")]) == 0
    capsys.readouterr()
    return {"t": tmp_path, "run": tmp_path / "run", "data": data, "cache": tmp_path / "cache"}


@pytest.fixture
def two_runs(tmp_path, capsys, fake_model):
    """Two finished runs on the fake encoder, trained through the CLI: `both` (a both-sides head) and
    `query` (a query-only head), under tmp_path, which is returned."""
    from isoadapt.cli import main

    from hostile import train_argv

    data = tiny_dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    assert main([str(a) for a in train_argv(data, tmp_path / "both", cache)]) == 0
    assert main([str(a) for a in train_argv(data, tmp_path / "query", cache, adapt="query")]) == 0
    capsys.readouterr()
    return tmp_path


def move_head_off_identity(run_dir: Path, seed: int, scale: float = 0.5) -> None:
    """Give a run's linear head the weight I + scale * R (R seeded Gaussian / sqrt(d)), far from the identity,
    so that a test can tell the adapter's vectors from the base model's: on tiny data, selection on
    validation often keeps the identity start, and a routing mistake would then go unseen."""
    import torch

    from isoadapt.head import load_head, save_head
    from isoadapt.training.run_folder import mark_completed

    head = load_head(run_dir / "head")
    dim = head.linear.weight.shape[1]
    noise = torch.randn(head.linear.weight.shape, generator=torch.Generator().manual_seed(seed)) / dim**0.5
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(*head.linear.weight.shape) + scale * noise)
    save_head(head, run_dir / "head")
    mark_completed(run_dir)  # as training it again into the folder would record it


@pytest.fixture
def distinct_runs(two_runs):
    """two_runs with both heads moved off the identity (move_head_off_identity)."""
    for seed, name in enumerate(("both", "query")):
        move_head_off_identity(two_runs / name, seed)
    return two_runs


def adapted(run_dir: Path, vectors: np.ndarray, side: str) -> np.ndarray:
    """The adapter's vectors on one side ("query" or "document"), the reference every integration is held
    to (compared by cosine): `isoadapt.Adapter.transform`."""
    from isoadapt import Adapter

    return Adapter.load(run_dir).transform(vectors, side)


def completed_status(run_dir: Path) -> dict:
    """What status.json of a completed run holds: the digest of its head file, by hashlib."""
    digest = hashlib.sha256((run_dir / "head" / "head.safetensors").read_bytes()).hexdigest()
    return {"completed": True, "head_sha256": digest}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # row by row
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_TEXTS = ["topic1 what is topic1", "topic2 document 0 about topic2", "a library for knowledge graphs in Python"]


@pytest.fixture(scope="session")
def minilm(tmp_path_factory):
    """Two MiniLM runs on tiny data (one epoch; a both-sides and a query-only head), their heads moved off
    the identity so that each side's vectors are told apart, and their exports; plus MiniLM's base vectors
    of MINILM_TEXTS and each run's LanceDB table of the test corpus."""
    from isoadapt.cli import main
    from isoadapt.encoding.encoder import Encoder

    from hostile import train_argv

    root = tmp_path_factory.mktemp("minilm")
    data, cache = tiny_dataset(root / "data", topics=4), root / "cache"
    for seed, (run, flags) in enumerate((("both", {}), ("query", {"adapt": "query"}))):
        assert main([str(a) for a in train_argv(data, root / run, cache, base_model=MINILM, **flags)]) == 0
        move_head_off_identity(root / run, seed)
        assert (
            main(
                [
                    "export",
                    "--run_dir",
                    str(root / run),
                    "--out",
                    str(root / f"{run}-export"),
                    "--cache_dir",
                    str(cache),
                ]
            )
            == 0
        )
        index = [
            "index",
            "--run_dir",
            root / run,
            "--data",
            data["test"],
            "--db",
            root / f"db-{run}",
            "--cache_dir",
            cache,
        ]
        assert main([str(a) for a in index]) == 0
    return {"root": root, "cache": cache, "base": Encoder(MINILM, cache, show_progress=False).encode(MINILM_TEXTS)}


@pytest.fixture(scope="session")
def cross_model(tmp_path_factory):
    """A cross-model run (queries on a smaller copy of MiniLM, documents on MiniLM), its export and the
    reference vectors of its two sides, built once (tests/cross_model.py)."""
    from cross_model import build

    return build(tmp_path_factory.mktemp("cross-model"))
