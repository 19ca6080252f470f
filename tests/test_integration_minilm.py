"""End to end with the real MiniLM model on a small real Semanlink slice (slow: loads a model)."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from isoadapt.cli import main
from isoadapt.data.semanlink import prepare_semanlink

from conftest import CHERCHE_ARCHIVE, REPO, RUN_FOLDER_FILES, completed_status

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHERCHE_ARCHIVE.is_file(), reason="run `make setup` first")]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory):
    """48 training pairs; 40 dev/test queries against their tags plus 300 other tags."""
    root = tmp_path_factory.mktemp("semanlink")
    prepare_semanlink(CHERCHE_ARCHIVE, root / "full")
    train = json.loads((root / "full" / "semanlink" / "train.json").read_text())[:48]
    paths = {"train": root / "train.json"}
    paths["train"].write_text(json.dumps(train))
    for name in ("dev", "test"):
        split = json.loads((root / "full" / "semanlink" / f"{name}.json").read_text())
        qids = sorted(split["queries"])[:40]
        judged = {d for q in qids for d in split["qrels"][q]}
        docs = sorted(judged | set(sorted(split["corpus"])[:300]))
        sliced = {
            "queries": {q: split["queries"][q] for q in qids},
            "corpus": {d: split["corpus"][d] for d in docs},
            "qrels": {q: split["qrels"][q] for q in qids},
        }
        paths[name] = root / f"{name}.json"
        paths[name].write_text(json.dumps(sliced))
    return paths


def research_command(real_slice, out, cache, *extra, freeze=("--freeze_base",), epochs="2"):
    return [
        sys.executable,
        str(REPO / "scripts" / "train.py"),
        "--train_data",
        str(real_slice["train"]),
        "--val_data",
        str(real_slice["dev"]),
        "--base_model",
        MINILM,
        *freeze,
        "--lambda_contrastive",
        "0.1",
        "--lambda_isotropy",
        "1.0",
        "--lambda_reg",
        "0.0",
        "--margin",
        "0.1",
        "--projection_learning_rate",
        "5e-4",
        "--epochs",
        epochs,
        "--batch_size",
        "16",
        "--output_dir",
        str(out),
        "--cache_dir",
        str(cache),
        *extra,
    ]


@pytest.fixture(scope="module")
def trained_run(real_slice, tmp_path_factory):
    """The research's Exp 1 command on the real slice, run once for the tests below."""
    root = tmp_path_factory.mktemp("run")
    out, cache = root / "checkpoints" / "isotropy_contrastive_01", root / "cache"
    done = subprocess.run(
        research_command(real_slice, out, cache, "--test_data", str(real_slice["test"])),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, cache, done.stdout


def test_research_command_line_runs_and_writes_the_run_folder(real_slice, trained_run, tmp_path):
    out, cache, stdout = trained_run
    assert "ndcg@10" in stdout and "baseline" in stdout
    assert sorted(p.name for p in out.iterdir()) == RUN_FOLDER_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("val", "test"):
        for side in ("baseline", "trained"):
            assert set(metrics[split][side]) >= {"ndcg@10", "mrr@10", "recall@100", "embedding_std_mean"}
        assert set(metrics[split]["change_pct"]) == {"ndcg@10", "mrr@10", "recall@100"}
    assert set(metrics["loss_final"]) == {"total", "contrastive", "isotropy", "variance"}
    assert len(metrics["embedding_std"]["trained"]["per_dim"]) == 384
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["lambda_contrastive"] == 0.1 and config["versions"]["torch"].startswith("2.13.0")
    assert "commit" in config["git"]
    steps = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(steps) == metrics["train"]["steps"] == 2 * (48 // 16)
    assert all({"contrastive", "isotropy", "variance", "total"} <= set(s) for s in steps)


def test_second_configuration_encodes_nothing_and_evaluate_matches(real_slice, trained_run, tmp_path):
    out, cache, _ = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    # A second configuration on the same data encodes nothing new.
    again = subprocess.run(
        research_command(real_slice, tmp_path / "second", cache, "--lambda_contrastive", "0.5"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Encoding" not in again.stderr

    # evaluate scores the head on a split it never trained on, next to the baseline.
    assert (
        main(
            [
                "evaluate",
                "--run_dir",
                str(out),
                "--data",
                str(real_slice["test"]),
                "--cache_dir",
                str(cache),
                "--output",
                str(tmp_path / "eval.json"),
            ]
        )
        == 0
    )
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["trained"]["ndcg@10"] == pytest.approx(metrics["test"]["trained"]["ndcg@10"], abs=1e-6)
    assert evaluated["baseline"]["ndcg@10"] == pytest.approx(metrics["test"]["baseline"]["ndcg@10"], abs=1e-6)


def test_full_fine_tuning_trains_the_encoder(real_slice, tmp_path):
    """One real full fine-tuning run (the `--freeze_base false` spelling is checked in test_freeze_base_spellings)."""
    out = tmp_path / "full"
    cmd = research_command(real_slice, out, tmp_path / "cache", freeze=["--no-freeze_base"], epochs="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["freeze_base"] is False
    assert (out / "encoder" / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val"]["trained"]["ndcg@10"] != metrics["val"]["baseline"]["ndcg@10"]


def test_evaluate_on_a_beir_folder_the_head_never_saw_with_sts(trained_run, tmp_path, capsys):
    """A BEIR folder built from STS-B test pairs (sentence1 -> sentence2), plus STS Spearman."""
    from isoadapt.data.stsb import default_raw_dir, read_pairs

    out, cache, _ = trained_run
    pairs = [p for p in read_pairs(default_raw_dir() / "sts-test.csv") if p.score >= 4][:60]
    beir = tmp_path / "sts-beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"d{i}", "title": "", "text": p.sentence2}) for i, p in enumerate(pairs))
    )
    (beir / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{i}", "text": p.sentence1}) for i, p in enumerate(pairs))
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(pairs)))
    )
    assert (
        main(
            ["prepare", "beir", "--raw_dir", str(beir), "--name", "sts-beir", "--out_root", str(tmp_path / "processed")]
        )
        == 0
    )
    assert main(["prepare", "stsb", "--out_root", str(tmp_path / "processed")]) == 0
    sts_subset = tmp_path / "sts_dev_200.json"
    sts_subset.write_text(json.dumps(json.loads((tmp_path / "processed" / "stsb" / "sts_dev.json").read_text())[:200]))
    capsys.readouterr()
    code = main(
        [
            "evaluate",
            "--run_dir",
            str(out),
            "--data",
            str(tmp_path / "processed" / "sts-beir" / "test.json"),
            "--cache_dir",
            str(cache),
            "--sts_data",
            str(sts_subset),
            "--output",
            str(tmp_path / "eval.json"),
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["baseline"]["queries"] == 60 and result["baseline"]["ndcg@10"] > 0.5  # MiniLM pairs paraphrases well
    assert 0.5 < result["sts_spearman"]["baseline"] < 1 and 0.3 < result["sts_spearman"]["trained"] < 1
    assert "STS Spearman" in capsys.readouterr().out


def check_model_card(card_file, run_dir, exported) -> None:
    """The card names the base model and head, and carries the run's own figures and commands."""
    card = card_file.read_text(encoding="utf-8")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert f"# isoadapt adapter over {MINILM}" in card
    assert "| head | linear, init identity |" in card and "| width | 384 -> 384 |" in card
    for split in ("val", "test"):
        if split in metrics:
            base, trained = metrics[split]["baseline"]["ndcg@10"], metrics[split]["trained"]["ndcg@10"]
            assert f"| ndcg@10 | {base:.4f} | {trained:.4f} |" in card
    test = metrics["test"]
    assert f"| isoscore | {test['baseline']['isoscore']:.4f} | {test['trained']['isoscore']:.4f} |" in card
    assert f"{metrics['train']['examples']} (query, positive) pairs" in card
    shown = {
        k: str(Path(*Path(v).parts[-2:]))
        for k, v in (("train", config["train_data"]), ("run", run_dir), ("out", exported))
    }
    assert f"isoadapt train --train_data {shown['train']}" in card  # no local path: the last two parts
    assert f"isoadapt export --run_dir {shown['run']} --out {shown['out']}" in card
    assert str(run_dir.parent) not in card and "model.encode_query(" in card and "model.encode_document(" in card
    assert card.startswith("---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\n")
    assert f"    - type: ndcg_at_10\n      value: {metrics['test']['trained']['ndcg@10']:.4f}\n---" in card
    assert all(oct(p.stat().st_mode & 0o777) in ("0o644", "0o755") for p in exported.rglob("*"))


def test_export_loads_in_plain_sentence_transformers_and_matches(trained_run, real_slice, tmp_path):
    """A fresh Python process importing only sentence-transformers reproduces the run's embeddings."""
    import numpy as np

    from isoadapt.encoding.encoder import Encoder
    from isoadapt.head import apply_head, load_head

    out, cache, _ = trained_run
    exported = tmp_path / "exported"
    assert main(["export", "--run_dir", str(out), "--out", str(exported), "--cache_dir", str(cache)]) == 0
    check_model_card(exported / "README.md", out, exported)
    # The export carries the picture its card shows, and nothing else of the run folder.
    assert (exported / "validation.png").read_bytes() == (out / "validation.png").read_bytes()
    assert "](validation.png)" in (exported / "README.md").read_text()
    assert not {"head", "metrics.json", "train_log.jsonl", "status.json", "tensorboard"} & {
        p.name for p in exported.iterdir()
    }
    split = json.loads(real_slice["test"].read_text())
    texts = list(split["queries"].values())[:20] + list(split["corpus"].values())[:20]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = (
        "import json, sys, numpy as np\n"
        "from sentence_transformers import SentenceTransformer\n"
        "assert not any(m.startswith('isoadapt') for m in sys.modules)\n"
        f"m = SentenceTransformer({str(exported)!r}, device='cpu', local_files_only=True)\n"
        f"np.save({str(tmp_path / 'exported.npy')!r}, m.encode(json.load(open({str(tmp_path / 'texts.json')!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = np.load(tmp_path / "exported.npy")
    encoder = Encoder(MINILM, cache)
    ours = apply_head(load_head(out / "head"), encoder.encode(texts))
    cosine = (theirs * ours).sum(axis=1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
    assert cosine.min() >= 0.9999
    assert np.allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)  # the final Normalize


def test_an_export_loads_as_the_adapter_of_its_run(trained_run, real_slice, tmp_path):
    """isoadapt.Adapter.load on an export gives the run's head, settings and card: transform is equal, encode
    (through the exported SentenceTransformer) matches the run's at cosine >= 0.9999, evaluate gives the same
    numbers, and a saved copy of the export loads the same."""
    import numpy as np

    import isoadapt

    out, cache, _ = trained_run
    exported = tmp_path / "exported"
    assert main(["export", "--run_dir", str(out), "--out", str(exported), "--cache_dir", str(cache)]) == 0
    run, export = isoadapt.Adapter.load(out, cache_dir=cache), isoadapt.Adapter.load(exported, cache_dir=cache)
    assert export.metrics == run.metrics and export.config == run.config and export.export_folder == exported
    split = json.loads(real_slice["test"].read_text())
    texts = list(split["queries"].values())[:10] + list(split["corpus"].values())[:10]
    base = run.base_encoder().encode(texts)
    copy = isoadapt.Adapter.load(export.save(tmp_path / "copy"), cache_dir=cache)
    for side in ("query", "document"):
        np.testing.assert_array_equal(export.transform(base, side), run.transform(base, side))
        np.testing.assert_array_equal(copy.transform(base, side), run.transform(base, side))
    for ours, theirs in (
        (run.encode_query(texts), export.encode_query(texts)),
        (run.encode_document(texts), export.encode_document(texts)),
    ):
        assert (ours * theirs).sum(axis=1).min() >= 0.9999  # both unit vectors
    scores = {
        name: isoadapt.evaluate(adapter, real_slice["test"]) for name, adapter in (("run", run), ("export", export))
    }
    assert scores["export"].pop("run_dir") == str(exported) and scores["run"].pop("run_dir") == str(out)
    assert scores["export"] == scores["run"]


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(real_slice, trained_run, tmp_path):
    """Kill a real training process with SIGKILL between checkpoints, resume it, compare the result."""
    import signal
    import time

    _, cache, _ = trained_run  # texts already cached: the runs below only train and evaluate
    long_run = ("--epochs", "40", "--batch_size", "4", "--save_steps", "7", "--tracker", "none")

    def command(out, *extra):
        cmd = research_command(real_slice, out, cache, *long_run, *extra)
        for flag in ("--epochs", "--batch_size"):  # drop the research command's own values; long_run's stand
            i = cmd.index(flag)
            del cmd[i : i + 2]
        return cmd

    reference = subprocess.run(command(tmp_path / "reference"), capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]

    out = tmp_path / "killed"
    checkpoint = tmp_path / ".killed.partial" / "checkpoint" / "checkpoint.json"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.is_file() and json.loads(checkpoint.read_text())["step"] >= 100:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert not out.exists()
    killed_at = json.loads(checkpoint.read_text())["step"]
    assert 100 <= killed_at < 40 * 12

    resumed = subprocess.run(command(out, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from step {killed_at}" in resumed.stderr
    ours, theirs = (json.loads((p / "metrics.json").read_text()) for p in (out, tmp_path / "reference"))
    assert ours["loss_final"] == theirs["loss_final"]
    assert ours["val"]["trained"] == theirs["val"]["trained"]
    assert json.loads((out / "status.json").read_text()) == completed_status(out)


def test_token_budget_batches_give_sentence_transformers_vectors_in_order(real_slice, tmp_path):
    """isoadapt batches texts by token length (less padding); each vector must still be the one plain
    sentence-transformers gives for that text, in the caller's order."""
    import numpy as np

    from isoadapt.encoding.encoder import Encoder

    split = json.loads(real_slice["test"].read_text())
    texts = list(split["queries"].values())[:60] + list(split["corpus"].values())[:60]
    encoder = Encoder(MINILM, tmp_path, show_progress=False)
    reference = encoder.model.encode(texts, batch_size=32, convert_to_numpy=True)
    assert np.abs(encoder.encode(texts) - reference).max() < 1e-5


@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.999), ("onnx-int8", 0.95), ("openvino", 0.999)])
def test_onnx_backends_match_torch(real_slice, tmp_path, backend, floor):
    """ONNX fp32 reproduces the torch vectors (cosine >= 0.999); int8 stays close; each is cached apart."""
    import numpy as np

    from isoadapt.encoding.encoder import Encoder

    split = json.loads(real_slice["test"].read_text())
    texts = list(split["queries"].values()) + list(split["corpus"].values())[:100]
    torch_vectors = Encoder(MINILM, tmp_path, show_progress=False).encode(texts)
    onnx_encoder = Encoder(MINILM, tmp_path, show_progress=False, backend=backend)
    onnx_vectors = onnx_encoder.encode(texts)
    cosine = (torch_vectors * onnx_vectors).sum(axis=1) / np.linalg.norm(onnx_vectors, axis=1)
    assert cosine.min() >= floor
    assert onnx_encoder.fingerprint != Encoder(MINILM, tmp_path, show_progress=False).fingerprint
    assert (tmp_path / "onnx").is_dir() and list((tmp_path / "onnx").glob("*/model*.onnx"))
    # The server's encode workers call one encoder from several threads: each gets its own texts' vectors.
    halves, got = [texts[0::2] * 3, texts[1::2][:20] * 3], {}
    threads = [
        threading.Thread(target=lambda i: got.update({i: onnx_encoder.encode(halves[i])}), args=(i,)) for i in (0, 1)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in (0, 1):
        assert np.allclose(got[i], onnx_encoder.encode(halves[i]), atol=1e-5)


def test_posthoc_transform_exports_like_a_head(real_slice, tmp_path):
    """A plan's post-hoc folder (config.json + head/) exports to a SentenceTransformer that reproduces it."""
    import numpy as np

    from isoadapt.encoding.encoder import Encoder
    from isoadapt.head import apply_head
    from isoadapt.posthoc import fit_posthoc
    from isoadapt.training.run_folder import write_run

    encoder = Encoder(MINILM, tmp_path / "cache", show_progress=False)
    split = json.loads(real_slice["test"].read_text())
    texts = list(split["corpus"].values())[:300]
    base = encoder.encode(texts)
    folder = tmp_path / "runs" / "whitening"
    head = fit_posthoc("whitening", base, keep=64)
    folder.mkdir(parents=True)
    config = {"config": {"base_model": MINILM, "kind": "posthoc", "transform": "whitening"}}
    write_run(folder, config, head)  # as the plan runner writes it
    assert (
        main(
            [
                "export",
                "--run_dir",
                str(folder),
                "--out",
                str(tmp_path / "exported"),
                "--cache_dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    from sentence_transformers import SentenceTransformer

    theirs = SentenceTransformer(str(tmp_path / "exported"), device="cpu", local_files_only=True).encode(texts[:50])
    ours = apply_head(head, base[:50])
    cosine = (theirs * ours).sum(axis=1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
    assert theirs.shape == (50, 64) and cosine.min() >= 0.9999


@pytest.mark.slow
def test_query_only_export_routes_queries_through_the_head_in_plain_sentence_transformers(
    real_slice, trained_run, tmp_path
):
    """A query-only head exports as a Router: in a fresh process that imports only sentence-transformers,
    encode_query reproduces head(base) and encode_document the base vectors, both at cosine >= 0.9999."""
    import numpy as np

    from isoadapt.encoding.encoder import Encoder
    from isoadapt.head import apply_head, load_head

    _, cache, _ = trained_run
    run = tmp_path / "query-only"
    argv = research_command(
        real_slice,
        run,
        cache,
        "--adapt",
        "query",
        "--contrastive_loss",
        "infonce",
        "--lambda_isotropy",
        "0",
        "--lambda_contrastive",
        "1",
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    exported = tmp_path / "exported"
    assert main(["export", "--run_dir", str(run), "--out", str(exported), "--cache_dir", str(cache)]) == 0
    texts = list(json.loads(real_slice["test"].read_text())["queries"].values())[:20]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = (
        "import json, sys, numpy as np\n"
        "from sentence_transformers import SentenceTransformer\n"
        "assert not any(m.startswith('isoadapt') for m in sys.modules)\n"
        f"m = SentenceTransformer({str(exported)!r}, device='cpu', local_files_only=True)\n"
        f"texts = json.load(open({str(tmp_path / 'texts.json')!r}))\n"
        f"np.save({str(tmp_path / 'q.npy')!r}, m.encode_query(texts))\n"
        f"np.save({str(tmp_path / 'd.npy')!r}, m.encode_document(texts))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    base = Encoder(MINILM, cache).encode(texts)
    head = load_head(run / "head")
    assert head.adapt == "query"
    assert "Router" in (exported / "modules.json").read_text()
    for saved, ours in (("q.npy", apply_head(head, base)), ("d.npy", base)):
        theirs = np.load(tmp_path / saved)
        cosine = (theirs * ours).sum(axis=1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
        assert cosine.min() >= 0.9999, saved


def test_mlflow_run_holds_the_runs_files_and_its_export_loads_with_the_flavour(
    real_slice, trained_run, tmp_path, monkeypatch, capsys
):
    """`--tracker mlflow` on a local SQLite store under tmp_path: the MLflow run holds the head, config.json,
    metrics.json, validation.png and the model card byte for byte, and `mlflow.sentence_transformers.load_model`
    gives back a SentenceTransformer that reproduces the run's embeddings; nothing lands in the working folder."""
    pytest.importorskip("mlflow")
    import mlflow.sentence_transformers
    import numpy as np

    from isoadapt.encoding.encoder import Encoder
    from isoadapt.head import apply_head, load_head

    _, cache, _ = trained_run
    elsewhere, store, run = tmp_path / "cwd", tmp_path / "store", tmp_path / "run"
    elsewhere.mkdir()
    store.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    argv = ["train", "--train_data", real_slice["train"], "--val_data", real_slice["dev"], "--base_model", MINILM]
    argv += ["--epochs", "1", "--batch_size", "16", "--output_dir", run, "--cache_dir", cache]
    other = f"sqlite:///{store / 'the-users-own.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)  # a caller's own MLflow set-up, left as it was
    assert main([str(a) for a in [*argv, "--tracker", "mlflow", "--tracking_uri", uri]]) == 0
    assert os.environ["MLFLOW_TRACKING_URI"] == other and mlflow.get_tracking_uri() == other
    run_id = json.loads((run / "config.json").read_text())["mlflow"]["run_id"]
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mlflow:")]
    model_uri = printed[0].split("the model ")[1].split()[0]

    client = mlflow.MlflowClient(tracking_uri=uri)
    downloaded = Path(client.download_artifacts(run_id, "run", str(tmp_path / "downloaded")))
    for name in ("head/head.safetensors", "head/head_config.json", "config.json", "metrics.json", "validation.png"):
        assert (downloaded / name).read_bytes() == (run / name).read_bytes(), name
    card = (downloaded / "README.md").read_text()
    assert f"# isoadapt adapter over {MINILM}" in card and "](validation.png)" in card

    texts = list(json.loads(real_slice["test"].read_text())["queries"].values())[:20]
    ours = apply_head(load_head(run / "head"), Encoder(MINILM, cache).encode(texts))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where load_model looks the URIs up, as a user would set it
    for uri_form in (model_uri, f"runs:/{run_id}/model"):
        theirs = mlflow.sentence_transformers.load_model(uri_form).encode(texts)
        cosine = (theirs * ours).sum(axis=1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
        assert cosine.min() >= 0.9999, uri_form
    assert client.get_run(run_id).info.status == "FINISHED"
    assert list(elsewhere.iterdir()) == []  # artifacts beside the store (store/mlruns), not in the working folder
    assert (store / "mlruns").is_dir()
