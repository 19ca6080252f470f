"""A finished run into its MLflow run (store/mlflow_export.py), on the fake encoder: the run's files arrive
byte for byte with the model card, an MLP head logs no model and says so, a run MLflow never tracked is
refused. The export as an MLflow model needs a real base model: tests/test_integration_minilm.py."""

from __future__ import annotations

import json
import logging

import pytest

from isoadapt.errors import InputError
from isoadapt.training.train_command import run_training

from conftest import train_config

pytest.importorskip("mlflow")


def test_an_mlp_head_logs_the_runs_files_and_no_model(tiny_data, tmp_path, fake_encoder, caplog):
    from mlflow import MlflowClient

    from isoadapt.store.mlflow_export import log_run_to_mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = train_config(tiny_data, tmp_path, head="mlp", tracker="mlflow", tracking_uri=uri)
    run = run_training(cfg, encoder=fake_encoder, quiet=True).folder
    with caplog.at_level(logging.WARNING):
        assert log_run_to_mlflow(run, tmp_path / "cache") is None
    run_id = json.loads((run / "config.json").read_text())["mlflow"]["run_id"]
    assert f"MLflow run {run_id} holds the run's files but no model: export: a mlp head" in caplog.text
    client = MlflowClient(tracking_uri=uri)
    downloaded = client.download_artifacts(run_id, "run", str(tmp_path / "downloaded"))
    for name in ("head/head.safetensors", "head/head_config.json", "config.json", "metrics.json", "validation.png"):
        assert (tmp_path / "downloaded" / "run" / name).read_bytes() == (run / name).read_bytes(), name
    assert "## Results against the base model" in (tmp_path / "downloaded" / "run" / "README.md").read_text()
    assert downloaded.endswith("run") and not client.search_logged_models([client.get_run(run_id).info.experiment_id])


def test_a_run_that_mlflow_never_tracked_is_refused(tiny_data, tmp_path, fake_encoder):
    from isoadapt.store.mlflow_export import log_run_to_mlflow

    run = run_training(train_config(tiny_data, tmp_path, tracker="none"), encoder=fake_encoder, quiet=True).folder
    with pytest.raises(InputError, match=r"config.json names no MLflow run \(trained without --tracker mlflow\)"):
        log_run_to_mlflow(run, tmp_path / "cache")


@pytest.mark.slow
@pytest.mark.parametrize("run", ["both", "query"])
def test_the_mlflow_pyfunc_embeds_the_side_its_task_names(minilm, tmp_path, run):
    """`mlflow.pyfunc.load_model(uri).predict(texts, params={"task": ...})`, the path `mlflow models serve` takes,
    gives each side as plain sentence-transformers does on the export; without a task a query-only model
    refuses (no default side) and a both-sides one gives its only vectors. Before, MLflow dropped `params`
    (no params schema): a query-only model could not embed at all."""
    import mlflow.pyfunc
    import numpy as np
    from mlflow import MlflowClient
    from sentence_transformers import SentenceTransformer

    from isoadapt.store.mlflow_export import log_model, tracking_uri
    from isoadapt.training.run_folder import open_run

    from conftest import MINILM_TEXTS as TEXTS

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("isoadapt", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    model_uri = log_model(open_run(minilm["root"] / run), run_id, uri, minilm["cache"])
    with tracking_uri(uri):
        model = mlflow.pyfunc.load_model(model_uri)
    export = SentenceTransformer(str(minilm["root"] / f"{run}-export"), device="cpu", local_files_only=True)
    queries, documents = (model.predict(TEXTS, params={"task": side}) for side in ("query", "document"))
    np.testing.assert_allclose(queries, export.encode_query(TEXTS), atol=1e-6)
    np.testing.assert_allclose(documents, export.encode_document(TEXTS), atol=1e-6)
    assert not np.allclose(queries, minilm["base"] / np.linalg.norm(minilm["base"], axis=1, keepdims=True), atol=1e-3)
    if run == "query":
        with pytest.raises(ValueError, match="Could not determine route for task=None"):
            model.predict(TEXTS)
    else:
        np.testing.assert_allclose(model.predict(TEXTS), queries, atol=1e-6)


def test_a_prompted_run_logs_its_files_and_no_model(tiny_data, tmp_path, caplog):
    """MLflow's sentence_transformers predict calls encode(texts, task=...), which adds no prompt: a model
    of a prompted run would embed both sides unprompted, in silence. Its files are logged, no model."""
    from isoadapt.encoding.prompts import Prompts
    from isoadapt.store.mlflow_export import log_run_to_mlflow

    from conftest import FakeEncoder

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = train_config(tiny_data, tmp_path, tracker="mlflow", tracking_uri=uri)
    encoder = FakeEncoder(prompts=Prompts("query: ", "passage: "))
    run = run_training(cfg, encoder=encoder, quiet=True).folder
    with caplog.at_level(logging.WARNING):
        assert log_run_to_mlflow(run, tmp_path / "cache") is None
    assert "holds the run's files but no model: the run was trained with query/document prompts" in caplog.text


def test_a_cross_model_run_whose_query_model_prompts_logs_its_files_and_no_model(tmp_path, caplog, fake_model):
    """The query model's prompt counts too: MLflow's predict would embed queries unprompted, in silence."""
    from mlflow import MlflowClient

    from isoadapt.store.mlflow_export import log_run_to_mlflow

    from cross_model import fake_cross_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("cross", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    where = {"tracking_uri": uri, "run_id": run_id}
    run = fake_cross_run(tmp_path / "cross", query_prompt="query: ", mlflow=where)
    with caplog.at_level(logging.WARNING):
        assert log_run_to_mlflow(run, tmp_path / "cache") is None
    assert "holds the run's files but no model: the run was trained with query/document prompts" in caplog.text
