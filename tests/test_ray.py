"""Ray: `isoadapt encode --engine ray` fills the same cache as a local encode, a killed actor does not
corrupt it, and `isoadapt experiment --engine ray` writes the same report table as a local run; once on
a Ray started in-process, once on a `ray start --head` cluster reached through --ray_address."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from isoadapt.cli import main  # noqa: E402
from isoadapt.encoding.cache import EmbeddingCache  # noqa: E402
from isoadapt.encoding.offline_models import MINILM  # noqa: E402

import conftest  # noqa: E402
from conftest import CHERCHE_ARCHIVE, FakeEncoder, write_json  # noqa: E402

pytestmark = pytest.mark.slow
PLAN = """
name = "tiny"
seeds = [0]
[defaults]
epochs = 2
batch_size = 8
train = "smoke"
[[configs]]
name = "baseline"
kind = "baseline"
label = "base"
[[configs]]
name = "whitening"
kind = "posthoc"
transform = "whitening"
label = "whitening"
[[configs]]
name = "exp1"
label = "exp1"
[[configs]]
name = "infonce"
label = "infonce"
contrastive_loss = "infonce"
lambda_isotropy = 0.1
"""


@pytest.fixture(scope="module")
def plan_data(tmp_path_factory):
    """A Semanlink slice as a processed dataset under a data root, a tiny plan, MiniLM's vectors cached once."""
    from isoadapt.data.semanlink import prepare_semanlink

    root = tmp_path_factory.mktemp("raydata")
    prepare_semanlink(CHERCHE_ARCHIVE, root / "full")
    full, tiny = root / "full" / "semanlink", root / "processed" / "tiny"
    tiny.mkdir(parents=True)
    write_json(tiny / "train.json", json.loads((full / "train.json").read_text())[:64])
    for name in ("dev", "test"):
        split = json.loads((full / f"{name}.json").read_text())
        qids = sorted(split["queries"])[:30]
        docs = sorted({d for q in qids for d in split["qrels"][q]} | set(sorted(split["corpus"])[:120]))
        write_json(
            tiny / f"{name}.json",
            {
                "queries": {q: split["queries"][q] for q in qids},
                "corpus": {d: split["corpus"][d] for d in docs},
                "qrels": {q: split["qrels"][q] for q in qids},
            },
        )
    (root / "plan.toml").write_text(PLAN)
    cache = root / "cache"
    assert main(["encode", "--data", str(tiny), "--base_model", MINILM, "--cache_dir", str(cache)]) == 0
    return root, cache


def cached(cache: Path, model=MINILM) -> dict[str, np.ndarray]:
    """Every (text hash -> vector) of a model's cache folder, read back through the cache itself."""
    from isoadapt.encoding.encoder import open_encoder

    encoder = open_encoder(model, cache, show_progress=False)
    store = EmbeddingCache(cache, encoder.fingerprint, encoder.identity)
    keys = list(store._rows)
    return dict(zip(keys, store.gather([store._rows[k] for k in keys])))


def assert_same_vectors(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    keys = sorted(a)
    x, y = np.stack([a[k] for k in keys]), np.stack([b[k] for k in keys])
    cosine = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert cosine.min() >= 0.9999


def table(report: Path) -> list[str]:
    return [line for line in report.read_text(encoding="utf-8").splitlines() if line.startswith("|")]


def run_plan(root: Path, cache: Path, runs: str, *extra) -> Path:
    argv = ["experiment", "--plan", root / "plan.toml", "--data", "tiny", "--data_root", root / "processed"]
    argv += ["--runs_root", root / runs, "--base_model", MINILM, "--cache_dir", cache, *extra]
    assert main([str(a) for a in argv]) == 0
    (folder,) = (root / runs).iterdir()
    return folder


@pytest.fixture(scope="module")
def local_report(plan_data):
    """The plan run locally, once: what both Ray runs must reproduce."""
    root, cache = plan_data
    return table(run_plan(root, cache, "runs-local") / "report.md")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_encode_and_plan_on_a_local_ray_match_local(plan_data, local_report, tmp_path, local_ray):
    root, cache = plan_data
    data = str(root / "processed" / "tiny")
    argv = ["encode", "--data", data, "--base_model", MINILM, "--cache_dir", str(tmp_path / "c"), "--engine", "ray"]
    assert main([*argv, "--workers", "2"]) == 0
    assert_same_vectors(cached(cache), cached(tmp_path / "c"))
    on_ray = run_plan(root, cache, "runs-ray", "--engine", "ray")
    assert table(on_ray / "report.md") == local_report
    assert (on_ray / "tune" / "trials").is_dir()  # Tune's storage lives under the report folder


@dataclass
class KilledOnce:
    """A fake encoder spec whose process dies (SIGKILL) the first time it encodes: a killed Ray worker. Like
    the real spec, a dataclass with the backend it builds, called with the probe `auto` would measure on."""

    marker: str
    backend: str = "torch"

    def __call__(self, probe=None):
        return _Killer(self.marker)


class _Killer(FakeEncoder):
    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def encode(self, texts):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().encode(texts)


def test_a_killed_actor_is_retried_and_the_cache_stays_consistent(tmp_path, local_ray):
    from isoadapt.encoding.encode_command import encode_into_cache

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(conftest)
    texts = [f"topic{i % 7} text {i}" for i in range(1500)]
    summary = encode_into_cache(texts, KilledOnce(str(tmp_path / "killed")), tmp_path / "cache", "ray", 2)
    assert (tmp_path / "killed").is_file() and summary["encoded"] == 1500
    fake = FakeEncoder()
    store = EmbeddingCache(tmp_path / "cache", fake.fingerprint, fake.identity)  # reopened: every shard re-checked
    assert len(store) == 1500 and not store.missing(texts)
    np.testing.assert_array_equal(store.get(texts, fake.encode), fake.encode(texts))
    assert len(list(store.folder.glob("*.npy"))) == len(list(store.folder.glob("*.keys.json")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ray_start_cluster_through_ray_address(plan_data, local_report, tmp_path):
    """As a user would: `ray start --head`, then the isoadapt commands in their own processes."""
    root, cache = plan_data
    ray_bin = Path(sys.executable).parent / "ray"
    port = _free_port()
    # Ray 2.60 clusters authenticate by token: the cluster and the clients share one (never the user's own)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(32).hex()}
    started = subprocess.run(
        [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    isoadapt = [sys.executable, "-m", "isoadapt.cli"]
    try:
        address = f"127.0.0.1:{port}"
        data = str(root / "processed" / "tiny")
        argv = ["encode", "--data", data, "--base_model", MINILM, "--cache_dir", str(tmp_path / "c")]
        argv += ["--engine", "ray", "--ray_address", address, "--workers", "1"]
        done = subprocess.run(isoadapt + argv, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_same_vectors(cached(cache), cached(tmp_path / "c"))
        argv = ["experiment", "--plan", root / "plan.toml", "--data", "tiny", "--data_root", root / "processed"]
        argv += ["--runs_root", tmp_path / "runs", "--base_model", MINILM, "--cache_dir", cache]
        argv += ["--engine", "ray", "--ray_address", address]
        done = subprocess.run(isoadapt + [str(a) for a in argv], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        (on_cluster,) = (tmp_path / "runs").iterdir()
        assert table(on_cluster / "report.md") == local_report
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_a_trial_on_a_cached_plan_never_loads_the_model(plan_data, monkeypatch, tmp_path):
    """What a Ray trial runs (`trial_runner` and every job of the plan) constructs no SentenceTransformer
    when the driver has cached every text; a text that is missing loads it, once."""
    from sentence_transformers import SentenceTransformer

    from isoadapt.encoding.encoder import describe_encoder, open_encoder
    from isoadapt.experiment.plan import load_plan
    from isoadapt.experiment.plan_data import ExperimentData, PlanRecipe
    from isoadapt.experiment.ray_trials import trial_runner

    root, cache = plan_data
    driver = open_encoder(MINILM, cache, show_progress=False)
    data = ExperimentData.locate(root / "processed", "tiny", None)
    recipe = PlanRecipe(
        load_plan(root / "plan.toml"), data, cache, tmp_path / "staging", "cpu", describe_encoder(driver)
    )
    loads = []
    original = SentenceTransformer.__init__

    def counted(self, *args, **kwargs):
        loads.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "__init__", counted)
    runner = trial_runner(recipe)
    results = [runner.run_job(entry, seed) for entry, seed in runner.jobs(None)]
    assert len(results) == 4 and all(r.test["ndcg@10"] > 0 for r in results)
    assert loads == []
    runner.encoder.encode(["a text that no split of the plan holds"])
    runner.encoder.encode(["another one"])
    assert len(loads) == 1


def test_a_failing_trial_is_one_line_without_tunes_traceback(plan_data, tmp_path, capfd, caplog):
    """A trial that fails (here NUDGE, which needs dev and test to share one corpus) fails the plan with
    our one line; Ray Tune's own traceback and trial table are not printed."""
    root, cache = plan_data
    plan = tmp_path / "nudge.toml"
    plan.write_text(
        'name = "tiny"\nseeds = [0]\n[[configs]]\nname = "baseline"\nkind = "baseline"\n'
        '[[configs]]\nname = "nudge"\nkind = "nudge"\ntransform = "nudge-m"\ntrain = "full"\n'
    )
    argv = ["experiment", "--plan", plan, "--data", "tiny", "--data_root", root / "processed", "--engine", "ray"]
    argv += ["--runs_root", tmp_path / "runs", "--base_model", MINILM, "--cache_dir", cache]
    capfd.readouterr()
    assert main([str(a) for a in argv]) == 2
    out, err = capfd.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("isoadapt:")]
    assert errors == [
        f"isoadapt: error: plan tiny: trial nudge seed None failed: {plan}: config 'nudge': NUDGE needs dev and "
        "test to share one corpus"
    ], err[-3000:]
    assert "Traceback" not in out + err and "Trial status" not in out + err and "ERROR" not in err, (out + err)[-3000:]
    tune_records = [r for r in caplog.records if r.name.startswith(("ray.tune", "ray.train", "ray.air"))]
    assert [r.getMessage()[:200] for r in tune_records if r.levelno >= logging.WARNING] == []  # the CLI prints these


def test_starting_ray_keeps_our_sigterm_handling():
    """ray.init installs sys.exit for SIGTERM; start_ray puts the command's handler (Ctrl-C's clean-up)
    back, so a stopped Ray plan still removes or reports its staging folder."""
    import signal

    from isoadapt.encoding.ray_encode import start_ray

    def ours(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        assert start_ray(None, 1)
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, previous)
