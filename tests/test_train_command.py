"""A whole training run on the fake encoder: the run folder, reproducibility, and no half-written output."""

import json

import pytest

from isoadapt.errors import Failed, InputError, Interrupted
from isoadapt.training.config import TrainConfig
from isoadapt.training.train_command import run_training

from conftest import RUN_FOLDER_FILES, completed_status, train_config


def config(tiny_data, tmp_path, **overrides) -> TrainConfig:
    return train_config(tiny_data, tmp_path, **{"lambda_isotropy": 0.1, **overrides})


def test_run_folder_contents(tiny_data, tmp_path, fake_encoder):
    metrics = run_training(config(tiny_data, tmp_path), encoder=fake_encoder).metrics
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == RUN_FOLDER_FILES
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert json.loads((run / "status.json").read_text()) == completed_status(run)
    assert metrics["train"]["steps"] == 3 * (48 // 8)
    assert not list(tmp_path.glob(".run.partial"))


def test_same_seed_same_result_and_other_seed_differs(tiny_data, tmp_path, fake_encoder):
    first = run_training(config(tiny_data, tmp_path, output_dir=str(tmp_path / "a")), encoder=fake_encoder).metrics
    second = run_training(config(tiny_data, tmp_path, output_dir=str(tmp_path / "b")), encoder=fake_encoder).metrics
    other = run_training(
        config(tiny_data, tmp_path, output_dir=str(tmp_path / "c"), seed=1), encoder=fake_encoder
    ).metrics
    assert first["loss_final"] == second["loss_final"] and first["test"] == second["test"]
    assert other["loss_final"] != first["loss_final"]


def test_contrastive_training_lowers_its_loss(tiny_data, tmp_path, fake_encoder):
    run_training(config(tiny_data, tmp_path, lambda_isotropy=0.0, epochs=10), encoder=fake_encoder)
    steps = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    first_epoch = [s["contrastive"] for s in steps if s["epoch"] == 0]
    last_epoch = [s["contrastive"] for s in steps if s["epoch"] == 9]
    assert sum(last_epoch) / len(last_epoch) < 0.5 * sum(first_epoch) / len(first_epoch)


def test_failure_mid_run_leaves_no_output(tiny_data, tmp_path, fake_encoder, monkeypatch):
    import isoadapt.training.train_and_score as training_run

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training_run, "save_head", explode)
    staging = tmp_path / ".run.partial"
    with pytest.raises(Failed) as err:
        run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    assert (
        str(err.value)
        == f"RuntimeError: disk full; its checkpoint is kept in {staging}; rerun the same command with --resume to continue"
    )
    assert not (tmp_path / "run").exists()
    assert json.loads((staging / "status.json").read_text()) == {"completed": False}


def test_overwrite_replaces_a_run(tiny_data, tmp_path, fake_encoder):
    run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    with pytest.raises(InputError, match="already holds a run of isoadapt.s; pass --overwrite"):
        run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    run_training(config(tiny_data, tmp_path, overwrite=True, seed=3), encoder=fake_encoder)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["seed"] == 3


def test_batch_larger_than_the_data_is_refused(tiny_data, tmp_path, fake_encoder):
    with pytest.raises(InputError, match=r"--batch_size 1000000000: larger than the 48 training examples"):
        run_training(config(tiny_data, tmp_path, batch_size=10**9), encoder=fake_encoder)
    assert not (tmp_path / "run").exists()


def test_resume_reaches_the_same_result_as_an_uninterrupted_run(tiny_data, tmp_path, fake_encoder, monkeypatch):
    import isoadapt.training.loop as train_module

    reference = run_training(
        config(tiny_data, tmp_path, output_dir=str(tmp_path / "ref"), epochs=4, save_steps=4), encoder=fake_encoder
    ).metrics

    real_step = train_module.torch.optim.AdamW.step
    calls = {"n": 0}

    def crash_at_step_15(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 15:
            raise KeyboardInterrupt("simulated crash")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(train_module.torch.optim.AdamW, "step", crash_at_step_15)
    with pytest.raises(
        Interrupted,
        match="interrupted: its checkpoint is kept in .*\\.run\\.partial; rerun the same command with --resume",
    ):
        run_training(
            config(tiny_data, tmp_path, output_dir=str(tmp_path / "run"), epochs=4, save_steps=4), encoder=fake_encoder
        )
    monkeypatch.setattr(train_module.torch.optim.AdamW, "step", real_step)
    assert not (tmp_path / "run").exists()
    checkpoint = json.loads((tmp_path / ".run.partial" / "checkpoint" / "checkpoint.json").read_text())
    assert checkpoint["step"] == 12  # the last save before the crash (every 4 steps; 6 steps per epoch)
    resumed = run_training(
        config(tiny_data, tmp_path, output_dir=str(tmp_path / "run"), epochs=4, save_steps=4, resume=True),
        encoder=fake_encoder,
    ).metrics
    assert resumed["test"]["trained"] == reference["test"]["trained"]
    assert resumed["loss_final"] == reference["loss_final"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(24))
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_resume_of_a_completed_run_is_refused(tiny_data, tmp_path, fake_encoder):
    run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    with pytest.raises(InputError, match="the run already completed; nothing to resume"):
        run_training(config(tiny_data, tmp_path, resume=True), encoder=fake_encoder)


def test_tensorboard_events_by_default(tiny_data, tmp_path, fake_encoder):
    run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))


def test_tensorboard_validation_series_is_the_curve_step_for_step(tiny_data, tmp_path, fake_encoder):
    """val/ndcg@10 in TensorBoard is metrics.json's validation curve at its real steps, and the selected
    point is marked at its own step (not the last one)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = run_training(config(tiny_data, tmp_path, epochs=3, eval_steps=5), encoder=fake_encoder, quiet=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    series = [(e.step, e.value) for e in events.Scalars("val/ndcg@10")]
    curve = run.metrics["validation"]["curve"]
    assert [step for step, _ in series] == [p["step"] for p in curve] and len(curve) > 3
    assert [value for _, value in series] == pytest.approx([p["ndcg@10"] for p in curve], abs=1e-6)
    selected = run.metrics["validation"]["selected"]
    assert [(e.step, pytest.approx(e.value, abs=1e-6)) for e in events.Scalars("val/selected_ndcg@10")] == [
        (selected["step"], selected["ndcg@10"])
    ]


def mlflow_run(tmp_path):
    """The MLflow client of the run's store and the run config.json names."""
    from mlflow import MlflowClient

    where = json.loads((tmp_path / "run" / "config.json").read_text())["mlflow"]
    return MlflowClient(tracking_uri=where["tracking_uri"]), where["run_id"]


def test_mlflow_logs_to_a_local_sqlite_store(tiny_data, tmp_path, fake_encoder):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_training(config(tiny_data, tmp_path, tracker="mlflow", tracking_uri=uri), encoder=fake_encoder)
    client, run_id = mlflow_run(tmp_path)
    runs = client.search_runs([client.get_experiment_by_name("isoadapt").experiment_id])
    assert [r.info.run_id for r in runs] == [run_id] and runs[0].data.params["lambda_contrastive"] == "1.0"
    assert runs[0].info.status == "FINISHED" and "test/trained/ndcg_at_10" in runs[0].data.metrics
    experiment = client.get_experiment_by_name("isoadapt")
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()  # beside the store, not in the cwd


@pytest.mark.parametrize("flush_seconds", [0.0, 15.0])
def test_mlflow_validation_series_is_the_curve_step_for_step(
    tiny_data, tmp_path, fake_encoder, monkeypatch, flush_seconds
):
    """val/ndcg_at_10 in MLflow is metrics.json's validation curve at its real steps, the selected point is
    marked at its own step, and every step's losses arrive, whether flushed every step or batched."""
    pytest.importorskip("mlflow")
    import isoadapt.training.tracking as tracking

    monkeypatch.setattr(tracking, "FLUSH_SECONDS", flush_seconds)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = config(tiny_data, tmp_path, epochs=3, eval_steps=5, tracker="mlflow", tracking_uri=uri)
    run = run_training(cfg, encoder=fake_encoder, quiet=True)
    client, run_id = mlflow_run(tmp_path)
    series = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val/ndcg_at_10"))
    curve = run.metrics["validation"]["curve"]
    assert [step for step, _ in series] == [p["step"] for p in curve] and len(curve) > 3
    assert [value for _, value in series] == pytest.approx([p["ndcg@10"] for p in curve], abs=1e-6)
    selected = run.metrics["validation"]["selected"]
    assert [
        (m.step, pytest.approx(m.value, abs=1e-6)) for m in client.get_metric_history(run_id, "val/selected_ndcg_at_10")
    ] == [(selected["step"], selected["ndcg@10"])]
    losses = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss_total"))
    assert losses == [(h["step"], pytest.approx(h["total"], rel=1e-6)) for h in run.history]


@pytest.mark.parametrize(
    "stop, raised, status",
    [(RuntimeError("disk full"), Failed, "FAILED"), (KeyboardInterrupt(), Interrupted, "KILLED")],
)
def test_a_stopped_run_ends_its_mlflow_run_failed_or_killed(
    tiny_data, tmp_path, fake_encoder, monkeypatch, stop, raised, status
):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    import isoadapt.training.train_and_score as training_run

    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(training_run, "save_head", stopped)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(raised):
        run_training(config(tiny_data, tmp_path, tracker="mlflow", tracking_uri=uri), encoder=fake_encoder)
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("isoadapt").experiment_id])
    assert [r.info.status for r in runs] == [status]


def test_train_prints_the_step_metrics_json_selected_and_writes_validation_png(tiny_data, tmp_path, capsys, fake_model):
    from PIL import Image

    from isoadapt.cli import main

    from hostile import train_argv

    assert (
        main([str(a) for a in train_argv(tiny_data, tmp_path / "run", tmp_path / "cache", epochs=3, eval_steps=5)]) == 0
    )
    validation = json.loads((tmp_path / "run" / "metrics.json").read_text())["validation"]
    selected, start = validation["selected"], validation["start"]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("selected on validation")]
    assert lines == [
        f"selected on validation: step {selected['step']} (epoch {selected['epoch']}), NDCG@10 {selected['ndcg@10']:.4f}, "
        + (
            "the start: no later state scored higher"
            if selected["step"] == 0
            else f"{start:.4f} at the start ({100 * (selected['ndcg@10'] - start) / start:+.2f}%)"
        )
    ]
    with Image.open(tmp_path / "run" / "validation.png") as image:
        image.verify()  # a whole, readable PNG
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200


def test_memory_mapped_training_path_gives_the_same_head(tiny_data, tmp_path, fake_encoder, monkeypatch):
    import isoadapt.encoding.cache as cache

    in_memory = run_training(config(tiny_data, tmp_path, output_dir=str(tmp_path / "a")), encoder=fake_encoder).metrics
    monkeypatch.setattr(cache, "IN_MEMORY_BYTES", 0)  # force batch-by-batch reads from the shards
    mapped = run_training(config(tiny_data, tmp_path, output_dir=str(tmp_path / "b")), encoder=fake_encoder).metrics
    assert mapped["loss_final"] == in_memory["loss_final"] and mapped["test"]["trained"] == in_memory["test"]["trained"]


def test_relevance_lookup_matches_isin():
    import torch

    from isoadapt.data.formats import TrainExample
    from isoadapt.training.loop import TrainTable

    examples = [TrainExample(f"q{i % 7}", f"p{(i * 3) % 11}", f"n{i}") for i in range(40)]
    table = TrainTable.from_examples(examples)
    keys = torch.arange(len(table.texts) ** 2).reshape(len(table.texts), -1)
    assert torch.equal(table.is_relevant(keys), torch.isin(keys, table.relevant_keys))


def test_nan_loss_stops_with_the_step_and_the_term(tiny_data, tmp_path, fake_encoder, monkeypatch):
    import isoadapt.losses.objective as objective_module

    real = objective_module.ISOTROPY_LOSSES["covariance"]
    calls = {"n": 0}

    def poisoned(embeddings):
        calls["n"] += 1
        return real(embeddings) * (float("nan") if calls["n"] == 4 else 1.0)

    monkeypatch.setitem(objective_module.ISOTROPY_LOSSES, "covariance", poisoned)
    with pytest.raises(InputError, match=r"training diverged at step 3 \(epoch 0\): loss term 'isotropy' is nan"):
        run_training(config(tiny_data, tmp_path), encoder=fake_encoder)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flags, expected",
    [([], True), (["--freeze_base"], True), (["--no-freeze_base"], False), (["--freeze_base", "false"], False)],
)
def test_freeze_base_spellings(flags, expected):
    """Every spelling of the research's flag reaches the config (one real full fine-tuning run is in the
    MiniLM integration tests)."""
    from isoadapt.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--train_data", "t", "--val_data", "v", "--output_dir", "o", *flags])
    assert config_from_args(args).freeze_base is expected


def test_editing_the_loss_code_changes_what_plans_key_results_by(tmp_path, monkeypatch):
    """Plans reuse a stored result only for the same source: an edit to the loss code is a new key."""
    import shutil

    import isoadapt.experiment.trained_rows as trained_rows
    from isoadapt.training.run_folder import PACKAGE, source_digest

    copy = tmp_path / "isoadapt"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_digest(copy)
    assert before == source_digest(PACKAGE)
    loss = copy / "losses" / "contrastive.py"
    loss.write_text(loss.read_text().replace("temperature", "temperature ", 1))
    assert source_digest(copy) != before

    cfg = TrainConfig.settings_only()

    class Described:
        fingerprint = "f" * 64

    keys = set()
    for digest in (before, source_digest(copy)):
        monkeypatch.setattr(trained_rows, "source_digest", lambda digest=digest: digest)
        keys.add(trained_rows._result_key(cfg, Described()))
    assert len(keys) == 2


def head_all(tiny_data, tmp_path):
    from isoadapt.training.train_inputs import load_inputs

    return load_inputs(config(tiny_data, tmp_path), ("val",)).examples


def test_train_pairs_draws_its_own_sample_per_seed(tiny_data, tmp_path, fake_encoder):
    """--train_pairs N: N pairs, drawn with --seed (other seeds, other pairs); --max_train_examples N: the first N."""
    from isoadapt.training.train_inputs import load_inputs

    first = load_inputs(config(tiny_data, tmp_path, train_pairs=10, batch_size=4), ("val",)).examples
    again = load_inputs(config(tiny_data, tmp_path, train_pairs=10, batch_size=4), ("val",)).examples
    other = load_inputs(config(tiny_data, tmp_path, train_pairs=10, batch_size=4, seed=1), ("val",)).examples
    head = load_inputs(config(tiny_data, tmp_path, max_train_examples=10, batch_size=4), ("val",)).examples
    assert len(first) == 10 and first == again and first != other
    assert first != head and head == load_inputs(config(tiny_data, tmp_path), ("val",)).examples[:10]
    everything = load_inputs(config(tiny_data, tmp_path, train_pairs=48), ("val",)).examples
    assert len(everything) == 48 and sorted(map(str, everything)) == sorted(map(str, head_all(tiny_data, tmp_path)))
    metrics = run_training(config(tiny_data, tmp_path, train_pairs=10, batch_size=4), encoder=fake_encoder).metrics
    assert metrics["train"]["steps"] == 3 * (10 // 4)


def test_init_texts_all_fits_the_start_on_every_text_of_the_file(tiny_data, tmp_path, fake_encoder, monkeypatch):
    """With 6 pairs, a whitening start sees their texts only; with --init_texts all, every text of the file
    (as the post-hoc whitening row does), so the start equals that row's transform."""
    import numpy as np

    import isoadapt.training.trainable as trainable
    from isoadapt.posthoc import fit_posthoc

    seen = []
    real = trainable.initial_head
    monkeypatch.setattr(
        trainable, "initial_head", lambda kind, dim, fit_on, *a: seen.append(fit_on) or real(kind, dim, fit_on, *a)
    )
    common = {"head_init": "whitening", "train_pairs": 6, "batch_size": 2, "epochs": 1}
    run_training(config(tiny_data, tmp_path, output_dir=str(tmp_path / "pairs"), **common), encoder=fake_encoder)
    run = run_training(
        config(tiny_data, tmp_path, output_dir=str(tmp_path / "all"), init_texts="all", **common), encoder=fake_encoder
    )
    pairs_texts, all_texts = seen
    examples = json.loads(open(tiny_data["train"]).read())
    every_text = {t for e in examples for t in (e["query"], e["positive"], e.get("negative")) if t}
    assert len(all_texts) == len(every_text) and len(pairs_texts) <= 18
    whitening = fit_posthoc("whitening", fake_encoder.encode(sorted(every_text)))
    probe = fake_encoder.encode(["any text"])
    start = real("whitening", fake_encoder.dim, all_texts, None, "both")
    assert np.allclose(
        start(torch_tensor(probe)).detach().numpy(), whitening(torch_tensor(probe)).detach().numpy(), atol=1e-4
    )
    assert run.metrics["validation"]["curve"][0]["step"] == 0


def torch_tensor(array):
    import torch

    return torch.as_tensor(array, dtype=torch.float32)


def test_hard_negatives_replace_the_files_negatives_before_training(tiny_data, tmp_path, fake_encoder, monkeypatch):
    import isoadapt.training.train_command as train_command

    tables = []
    real = train_command.TrainTable.from_examples
    monkeypatch.setattr(
        train_command.TrainTable, "from_examples", lambda examples: tables.append(examples) or real(examples)
    )
    run_training(config(tiny_data, tmp_path, negatives="hard", epochs=1), encoder=fake_encoder)
    examples = json.loads(open(tiny_data["train"]).read())
    relevant = {}
    for e in examples:
        relevant.setdefault(e["query"], set()).add(e["positive"])
    mined = tables[0]
    assert [(e.query, e.positive) for e in mined] == [(e["query"], e["positive"]) for e in examples]
    assert all(e.negative not in relevant[e.query] for e in mined)
    assert sum(e.negative != x.get("negative") for e, x in zip(mined, examples)) > len(examples) // 2


def test_the_hard_negative_margin_and_the_files_judgments_reach_the_miner(
    tiny_data, tmp_path, fake_encoder, monkeypatch
):
    import isoadapt.training.train_command as train_command

    seen = {}
    real = train_command.mine_hard_negatives

    def spy(examples, vectors, margin, judged=None):
        seen.update(margin=margin, sampled=len(examples), judged=len(judged))
        return real(examples, vectors, margin, judged=judged)

    monkeypatch.setattr(train_command, "mine_hard_negatives", spy)
    settings = {"negatives": "hard", "hard_negative_margin": 0.2, "train_pairs": 16, "batch_size": 4, "epochs": 1}
    metrics = run_training(config(tiny_data, tmp_path, **settings), encoder=fake_encoder).metrics
    assert seen == {"margin": 0.2, "sampled": 16, "judged": 48}
    assert metrics["hard_negatives"]["pairs"] == 16
    assert metrics["hard_negatives"]["mined"] + metrics["hard_negatives"]["kept"] == 16
