"""encoding/backend_choice.py: `--encode_backend auto`. Each backend is a fake whose speed is seconds per
text on a fake clock (the clock the measurement reads) and whose vectors are the seeded fake encoder's,
exactly or with noise: the fastest backend within tolerance wins, one outside it is refused, the choice is
cached per CPU and reused, and a run, a plan's report and the cache carry the resolved backend, never `auto`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import isoadapt.encoding.backend_choice as choice
import isoadapt.encoding.encoder
from isoadapt.data.formats import load_eval
from isoadapt.encoding.backend_choice import (
    MIN_COSINE,
    MIN_SPEEDUP,
    choose_encoder,
    probe_from_split,
    probe_from_texts,
)
from isoadapt.encoding.encode_command import EncoderSpec, encode_into_cache
from isoadapt.encoding.encoder import open_encoder
from isoadapt.errors import InputError
from isoadapt.experiment.runner import run_experiment
from isoadapt.training.train_command import run_training

from conftest import FakeEncoder, tiny_dataset, train_config

CPU = {"model": "Fake CPU 9000", "flags": "avx2 fma sse4_2", "cpus": 2, "torch_threads": 2}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeBackend:
    """The fake encoder's vectors as one backend gives them: `cost` seconds per text on the fake clock,
    `noise` the std of Gaussian noise added to each (seeded by the text), 0 for PyTorch's vectors exactly.
    Its identity names its backend, as a real encoder's does, so its vectors have their own fingerprint."""

    def __init__(self, backend: str, clock: FakeClock, cost: float, noise: float = 0.0):
        self.base = FakeEncoder()
        self.name, self.folder, self.dim = self.base.name, self.base.folder, self.base.dim
        self.prompts = self.base.prompts  # a model with no prompts
        self.backend, self.clock, self.cost, self.noise = backend, clock, cost, noise
        self.identity = {**self.base.identity, "backend": backend}
        self.fingerprint = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()
        self.backend_choice = None
        self.texts_encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:  # (len(texts), dim)
        self.clock.now += self.cost * len(texts)
        self.texts_encoded += len(texts)
        vectors = self.base.encode(texts)
        if self.noise:
            for row, text in enumerate(texts):
                seed = int.from_bytes(hashlib.sha256(f"{self.backend}|{text}".encode()).digest()[:8], "little")
                vectors[row] += self.noise * np.random.default_rng(seed).normal(size=self.dim).astype(np.float32)
        return vectors


class Machine:
    """Installed fake backends (name -> (seconds per text, noise)) and every build that was asked for."""

    def __init__(self, monkeypatch, backends: dict[str, tuple[float, float]], cpu: dict = CPU):
        self.clock, self.backends, self.built = FakeClock(), backends, []
        monkeypatch.setattr(choice, "clock", self.clock)
        monkeypatch.setattr(choice, "installed_backends", lambda: list(backends))
        monkeypatch.setattr(choice, "cpu_signature", lambda: dict(cpu))

    def build(self, backend: str) -> FakeBackend:
        self.built.append(backend)
        cost, noise = self.backends[backend]
        return FakeBackend(backend, self.clock, cost, noise)

    def as_encoder_class(self, monkeypatch) -> None:
        """`open_encoder` builds these fakes wherever it would load a SentenceTransformer."""
        monkeypatch.setattr(
            isoadapt.encoding.encoder, "Encoder", lambda base_model, cache_dir, *args, **prompts: self.build(args[-1])
        )


@pytest.fixture
def probe(tiny_data):
    return probe_from_split(load_eval(tiny_data["dev"]), "tiny dev.json")


def rows_by_name(encoder) -> dict[str, dict]:
    return {row["backend"]: row for row in encoder.backend_choice["backends"]}


def test_the_fastest_backend_within_tolerance_wins(monkeypatch, tmp_path, probe):
    machine = Machine(
        monkeypatch,
        {"torch": (1.0, 0.0), "onnx": (0.8, 0.0), "onnx-int8": (0.5, 0.01), "openvino": (0.25, 1.0)},
    )
    encoder = choose_encoder(machine.build, tmp_path, "cpu", probe)
    rows = rows_by_name(encoder)
    assert encoder.backend == "onnx-int8" and encoder.backend_choice["backend"] == "onnx-int8"
    assert rows["onnx-int8"]["speedup"] == pytest.approx(2.0) and rows["onnx"]["speedup"] == pytest.approx(1.25)
    assert rows["onnx-int8"]["min_cosine"] >= MIN_COSINE and rows["onnx-int8"]["verdict"] == "chosen"
    assert rows["onnx"]["verdict"] == "within tolerance"
    assert rows["openvino"]["speedup"] == pytest.approx(4.0), "the fastest of all is the one refused"
    assert rows["openvino"]["min_cosine"] < MIN_COSINE
    assert rows["openvino"]["verdict"] == f"refused: min cosine {rows['openvino']['min_cosine']:.4f} < {MIN_COSINE}"
    assert encoder.backend_choice["why"].startswith("2.00x PyTorch's speed, min cosine")
    assert "openvino 4.00x: refused: min cosine" in encoder.backend_choice["why"]


def test_a_backend_that_loses_ndcg_is_refused_even_with_close_vectors(monkeypatch, tmp_path, probe):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx-int8": (0.5, 0.06)})
    rows = rows_by_name(choose_encoder(machine.build, tmp_path, "cpu", probe))
    int8 = rows["onnx-int8"]
    assert int8["min_cosine"] >= MIN_COSINE, "the case needs vectors the cosine rule alone would accept"
    assert int8["ndcg_change_pct"] < -1.0
    assert int8["verdict"] == f"refused: NDCG@10 {int8['ndcg_change_pct']:+.2f}% < -1%"
    assert rows["torch"]["verdict"] == "reference"


def test_a_gain_within_timing_noise_keeps_torch(monkeypatch, tmp_path, probe):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (1.0 / 1.05, 0.0)})
    encoder = choose_encoder(machine.build, tmp_path, "cpu", probe)
    assert encoder.backend == "torch"
    assert rows_by_name(encoder)["onnx"]["verdict"] == f"not chosen: 1.05x PyTorch < {MIN_SPEEDUP:.2f}x"


def test_the_choice_is_cached_per_cpu_and_reused(monkeypatch, tmp_path, probe):
    backends = {"torch": (1.0, 0.0), "onnx-int8": (0.5, 0.01)}
    machine = Machine(monkeypatch, backends)
    first = choose_encoder(machine.build, tmp_path, "cpu", probe)
    files = list(tmp_path.glob("backend-choice-*.json"))
    assert first.backend == "onnx-int8" and [Path(first.backend_choice["file"])] == files
    assert json.loads(files[0].read_text())["key"]["cpu"] == CPU

    again = Machine(monkeypatch, backends)  # same CPU: nothing is timed, torch is built for its identity only
    second = choose_encoder(again.build, tmp_path, "cpu", None)
    assert again.clock.now == 0.0 and again.built == ["torch", "onnx-int8"]
    assert second.backend == "onnx-int8"
    assert second.backend_choice["measured_utc"] == first.backend_choice["measured_utc"]

    other = Machine(monkeypatch, backends, {**CPU, "flags": "avx2 avx512f fma"})  # another CPU: measured again
    choose_encoder(other.build, tmp_path, "cpu", probe)
    assert other.clock.now > 0 and len(list(tmp_path.glob("backend-choice-*.json"))) == 2


def test_a_damaged_choice_file_is_measured_again(monkeypatch, tmp_path, probe):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    path = Path(choose_encoder(machine.build, tmp_path, "cpu", probe).backend_choice["file"])
    path.write_text('{"backend": "auto"', encoding="utf-8")
    again = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    assert choose_encoder(again.build, tmp_path, "cpu", probe).backend == "onnx" and again.clock.now > 0
    assert json.loads(path.read_text())["backend"] == "onnx"


def test_without_a_cached_choice_or_texts_auto_asks_for_a_backend(monkeypatch, tmp_path):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    with pytest.raises(InputError, match="--encode_backend auto: no texts to measure the backends on"):
        choose_encoder(machine.build, tmp_path, "cpu", None)
    assert not list(tmp_path.glob("backend-choice-*.json"))


def test_off_the_cpu_auto_is_torch_without_measuring(monkeypatch, tmp_path, probe):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.1, 0.0)})
    encoder = choose_encoder(machine.build, tmp_path, "cuda", probe)
    assert encoder.backend == "torch" and machine.built == ["torch"] and machine.clock.now == 0.0
    assert not list(tmp_path.glob("backend-choice-*.json"))


def test_texts_without_a_split_are_judged_by_cosine_alone(monkeypatch, tmp_path):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    texts = [f"topic{i % 7} text {i}" for i in range(1000)]
    probe = probe_from_texts(texts + texts, "texts.jsonl")
    assert len(probe.texts) == choice.PROBE_QUERIES + choice.PROBE_DOCUMENTS and probe.split is None
    encoder = choose_encoder(machine.build, tmp_path, "cpu", probe)
    assert encoder.backend == "onnx" and rows_by_name(encoder)["onnx"]["ndcg@10"] is None
    assert "cosine only" in encoder.backend_choice["probe"]["source"]


def test_a_run_records_the_backend_auto_resolved_to(monkeypatch, tmp_data_run):
    cfg, machine = tmp_data_run
    result = run_training(cfg, quiet=True)
    document = json.loads((result.folder / "config.json").read_text())
    assert document["config"]["encode_backend"] == "onnx-int8"
    assert document["encoder"]["backend"] == "onnx-int8"
    assert document["encode_backend_choice"]["requested"] == "auto"
    assert document["encode_backend_choice"]["backend"] == "onnx-int8"
    assert "dev.json" in document["encode_backend_choice"]["probe"]["source"]
    int8 = machine.build("onnx-int8").fingerprint
    identities = [json.loads(p.read_text()) for p in Path(cfg.cache_dir).glob("embeddings/*/identity.json")]
    assert [i["fingerprint"] for i in identities] == [int8], "the vectors are cached under the resolved backend"
    assert all(i["identity"]["backend"] == "onnx-int8" for i in identities)


@pytest.fixture
def tmp_data_run(monkeypatch, tmp_path, tiny_data):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.8, 0.0), "onnx-int8": (0.5, 0.01)})
    machine.as_encoder_class(monkeypatch)
    return train_config(tiny_data, tmp_path, encode_backend="auto", tracker="none"), machine


def test_encode_fills_the_cache_under_the_resolved_backend(monkeypatch, tmp_path):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "openvino": (0.5, 0.0)})
    machine.as_encoder_class(monkeypatch)
    texts = [f"topic{i % 5} text {i}" for i in range(50)]
    spec = EncoderSpec("fake", str(tmp_path), backend="auto")
    summary = encode_into_cache(texts, spec, tmp_path, probe=probe_from_texts(texts, "texts"))
    openvino = machine.build("openvino")
    assert summary["encoded"] == 50 and Path(summary["cache"]).name == openvino.fingerprint[:24]
    reopened = open_encoder("fake", tmp_path, backend="auto")  # the cached choice: no probe needed
    assert reopened.backend == "openvino" and reopened.fingerprint == openvino.fingerprint


def test_a_plan_records_the_backend_auto_resolved_to(monkeypatch, tmp_path):
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    machine.as_encoder_class(monkeypatch)
    tiny_dataset(tmp_path / "processed" / "tiny")
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'name = "mini"\nseeds = [0]\n[defaults]\nepochs = 1\nbatch_size = 8\n'
        '[[configs]]\nname = "baseline"\nkind = "baseline"\n[[configs]]\nname = "trained"\n',
        encoding="utf-8",
    )
    folder = run_experiment(
        plan, "tiny", None, "fake", tmp_path / "cache", tmp_path / "processed", tmp_path / "runs", encode_backend="auto"
    )
    meta = json.loads((folder / "report.json").read_text())["meta"]
    assert meta["encode_backend"] == "onnx" and meta["encode_backend_choice"]["requested"] == "auto"
    assert "tiny/dev.json" in meta["encode_backend_choice"]["probe"]["source"]
    run = json.loads((folder / "runs" / "trained" / "seed0" / "config.json").read_text())
    assert run["config"]["encode_backend"] == "onnx" and run["encode_backend_choice"]["backend"] == "onnx"


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"backend": "torch"}, "it names torch, but its own measurements choose onnx"),
        ({"backend": "openvino"}, "it names openvino, which is not installed"),
        ({"backends": "fast"}, "its measurements are malformed"),
    ],
)
def test_a_hand_edited_choice_file_is_measured_again(monkeypatch, tmp_path, probe, caplog, edit, why):
    """A choice that does not follow from its own measurements is not trusted: it would encode with one
    backend and record another's speed and quality (or fail to load a backend that is not installed)."""
    machine = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    path = Path(choose_encoder(machine.build, tmp_path, "cpu", probe).backend_choice["file"])
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}), encoding="utf-8")
    again = Machine(monkeypatch, {"torch": (1.0, 0.0), "onnx": (0.5, 0.0)})
    with caplog.at_level("WARNING"):
        encoder = choose_encoder(again.build, tmp_path, "cpu", probe)
    assert encoder.backend == "onnx" and again.clock.now > 0  # measured again, and the measurement decides
    assert f"{path}: {why} (edited by hand?): the backends are measured again" in caplog.text
    assert json.loads(path.read_text())["backend"] == "onnx"
