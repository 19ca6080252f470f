"""Helpers of the server tests: a fake encoder with a tokenizer, two fake runs (a head on both sides and a
query-only head, both moved off the identity so a routing mistake shows), and a real server on a free
loopback port, in a thread (fast; the fake patched in) or in its own process (`tests/fake_serve.py`:
SIGTERM, and "is it still alive")."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from isoadapt.encoding.prompts import Prompts

from conftest import REPO, FakeEncoder, move_head_off_identity, tiny_dataset
from hostile import train_argv

WINDOW = 12  # the fake's max_seq_length, in tokens: words plus [CLS] and [SEP]


class WordTokenizer:
    """A whitespace tokenizer with the call shape of a Hugging Face one: one id per word, plus two special
    tokens, cut at max_length when asked to truncate."""

    def __call__(self, texts, truncation=False, max_length=None, verbose=True):
        ids = [[101, *(hash(w) % 30000 for w in text.split()), 102] for text in texts]
        if truncation and max_length:
            ids = [row[: max_length - 1] + [102] if len(row) > max_length else row for row in ids]
        return {"input_ids": ids}


class TokenizingFake(FakeEncoder):
    """The seeded fake, with a `model` that has what the server reads of a SentenceTransformer: its
    tokenizer and its window."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model = SimpleNamespace(tokenizer=WordTokenizer(), max_seq_length=WINDOW)


def fake_for(query_prompt=None, document_prompt=None, kind=FakeEncoder, **ignored):
    """The fake a run's settings open (open_encoder's prompt arguments honoured, the rest ignored)."""
    return kind(prompts=Prompts(query_prompt or "", document_prompt or ""))


def fake_runs(root: Path) -> dict[str, Path]:
    """Three runs trained through the CLI on the fake: `both`, `query` (query-only) and `prompted` (both
    sides, trained with a query and a document prompt); heads moved off the identity."""
    import isoadapt.training.run_folder
    import isoadapt.training.train_command
    import isoadapt.training.trainable
    from isoadapt.cli import main
    from isoadapt.encoding.encoder import open_encoder

    def build(name="", *args, **kwargs):
        return open_encoder(name, *args, **kwargs) if name.startswith("vectors:") else fake_for(**kwargs)

    data, cache = tiny_dataset(root / "data"), root / "cache"
    prompts = {"query_prompt": "query: ", "document_prompt": "passage: "}
    with pytest.MonkeyPatch.context() as patch:
        for module in (isoadapt.training.train_command, isoadapt.training.trainable, isoadapt.training.run_folder):
            for name in ("Encoder", "open_encoder"):
                if hasattr(module, name):
                    patch.setattr(module, name, build)
        for run, flags in (("both", {}), ("query", {"adapt": "query"}), ("prompted", prompts)):
            assert main([str(a) for a in train_argv(data, root / run, cache, **flags)]) == 0
    for seed, run in enumerate(("both", "query", "prompted"), start=1):
        move_head_off_identity(root / run, seed=seed)
    return {"both": root / "both", "query": root / "query", "prompted": root / "prompted", "cache": cache}


def reference(run_dir: Path, texts: list[str], side: str) -> np.ndarray:  # (n, width)
    """What `Adapter.encode_query` / `encode_document` give for the texts (the fake, with the run's prompts,
    as the base)."""
    from isoadapt.api.adapter import Adapter

    adapter = Adapter.load(run_dir)
    adapter._base = adapter._model = fake_for(**adapter.run.prompts)  # the base the run was trained on
    return adapter.encode_query(texts) if side == "query" else adapter.encode_document(texts)


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@contextlib.contextmanager
def thread_server(run_dir: Path, **settings):
    """A real uvicorn server on a free loopback port, in a thread of this process, serving the run with the
    tokenizing fake as its base; yields (base url, the served model)."""
    import uvicorn

    import isoadapt.integrations.server.model as served
    from isoadapt.api.adapter import Adapter
    from isoadapt.integrations.server.app import bind, build_app
    from isoadapt.integrations.server.settings import ServeSettings

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(served, "open_encoder", lambda *args, **kwargs: fake_for(kind=TokenizingFake, **kwargs))
        model = served.open_served(Adapter.load(run_dir), Path("/nonexistent-cache"), None, None)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(build_app(model, ServeSettings(**settings)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_ready(url, lambda: thread.is_alive())
        yield url, model
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def wait_ready(url: str, alive, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "the server stopped before it was ready"
        with contextlib.suppress(OSError):
            if get(url + "/health")[0] == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def process_server(*argv: str, env: dict | None = None, fake: bool = True):
    """`isoadapt serve ... --port 0` in its own process (tests/fake_serve.py: the tokenizing fake as base);
    yields (base url, the Popen; `process.log()` reads its stderr so far). Stopped with SIGTERM at the end
    unless the test stopped it."""
    import tempfile

    program = [str(REPO / "tests" / "fake_serve.py")] if fake else ["-m", "isoadapt.cli"]  # fake: the real model
    command = [sys.executable, *program, "serve", *argv, "--port", "0"]
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=environment)
        process.log = lambda: (log.seek(0), log.read())[1]
        try:
            line = process.stdout.readline()
            assert line.startswith("serving "), line + process.log()[-3000:]
            url = line.split(" on ")[1].split()[0].removesuffix("/v1")
            wait_ready(url, lambda: process.poll() is None)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(60)
            process.stdout.close()


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    return request("GET", url, None, headers)


def post(url: str, body, headers: dict | None = None) -> tuple[int, dict, bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", url, data, {"Content-Type": "application/json", **(headers or {})})


def request(method: str, url: str, data: bytes | None, headers: dict | None) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one plain HTTP request (no client library between the test and the wire)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def open_fake_model(run_dir: Path):
    """In a Ray Serve replica: the served run with the tokenizing fake as its base (this module travels to
    the replica by value; see test_ray_serve)."""
    import isoadapt.integrations.server.model as served
    from isoadapt.api.adapter import Adapter

    served.open_encoder = lambda *args, **kwargs: fake_for(kind=TokenizingFake, **kwargs)
    return served.open_served(Adapter.load(run_dir), Path("/nonexistent-cache"), None, None)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
