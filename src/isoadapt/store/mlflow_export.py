"""A finished run into the MLflow run that tracked it (`--tracker mlflow`): the run's own files (head
weights and config, config.json, metrics.json, validation.png) and its model card under `run/`, and its
export as an MLflow model of the `sentence_transformers` flavour, so that
`mlflow.sentence_transformers.load_model(uri)` gives the SentenceTransformer that `isoadapt export` writes.

Its signature declares a `task` parameter ("query" or "document"), so the pyfunc (and `mlflow models serve`)
embeds either side: `mlflow.pyfunc.load_model(uri).predict(texts, params={"task": "query"})`; the flavour
passes it to `encode(texts, task=...)`. The side rule is isoadapt's (head.side_head): `task` has no default;
a query-only head's predict without one raises (its Router has no default route: "Could not determine route
for task=None"), a both-sides head gives the same vectors with or without it. Without a params schema MLflow
drops `params` with a warning, and a query-only model could not be served at all.

It runs once the run folder is complete (the card and the export read it), so it lives here, above
training, and the train command calls it after training; config.json names the MLflow run."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from isoadapt.errors import Failed, InputError, describe
from isoadapt.store.export import head_as_affine, sentence_transformer
from isoadapt.store.model_card import model_card
from isoadapt.training.run_folder import open_run, read_run_document
from isoadapt.training.validation_plot import VALIDATION_PLOT

log = logging.getLogger(__name__)
RUN_FILES = ("head", "config.json", "metrics.json", VALIDATION_PLOT)  # what MLflow gets of the run folder
MODEL_NAME = "model"
TRACKING_VARIABLE = "MLFLOW_TRACKING_URI"
TASK = "task"  # the pyfunc's parameter: sentence-transformers' `encode(texts, task=...)`, one of head_options.SIDES


@contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's model logging reads the process-wide tracking URI. MLflow's own helper sets it for the call
    and puts its global back as it was (unset stays unset), but not the MLFLOW_TRACKING_URI variable that
    setting it rewrites: that is put back here, so a caller's MLflow set-up is the same afterwards."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved = os.environ.get(TRACKING_VARIABLE)
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if saved is None:
            os.environ.pop(TRACKING_VARIABLE, None)
        else:
            os.environ[TRACKING_VARIABLE] = saved


def log_run_files(client, run_id: str, run_dir: Path, card: str) -> None:
    for name in RUN_FILES:
        path = run_dir / name
        if path.is_dir():
            client.log_artifacts(run_id, str(path), f"run/{name}")
        elif path.is_file():
            client.log_artifact(run_id, str(path), "run")
    client.log_text(run_id, card, "run/README.md")


def log_model(run, run_id: str, uri: str, cache_dir: Path) -> str:
    """The export as an MLflow model of the run (resumed, so that the model joins the run's experiment and
    its artifact folder); returns the model's URI. The pip requirements are the flavour's own defaults,
    given, not inferred: inference reloads the model in a subprocess to watch its imports (seconds)."""
    import mlflow.sentence_transformers

    model = sentence_transformer(run, cache_dir)
    with tracking_uri(uri), mlflow.start_run(run_id=run_id):
        info = mlflow.sentence_transformers.log_model(
            model,
            name=MODEL_NAME,
            signature=task_signature(model.get_embedding_dimension()),
            pip_requirements=mlflow.sentence_transformers.get_default_pip_requirements(),
            create_model_card=False,  # sentence-transformers' generic card; isoadapt's is run/README.md
        )
    return info.model_uri


def task_signature(width: int):
    """Texts in, (n, width) float32 vectors out, and the `task` parameter (no default: see the module)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string)]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, width))]),
        params=ParamSchema([ParamSpec(TASK, DataType.string, None)]),
    )


def applies_prompts(run) -> bool:
    """Whether the run prompts any text: the base model's recorded prompts, or a cross-model run's query
    model's (recorded with it, `query_encoder`)."""
    query = (run.document.get("query_encoder") or {}).get("prompts")
    return any(run.prompts.values()) or (isinstance(query, dict) and any(query.values()))


def log_run_to_mlflow(run_dir: Path, cache_dir: Path) -> str | None:
    """Log a completed run into its MLflow run (named in config.json); returns the model's URI, or None for
        a head with no SentenceTransformer export (an MLP head) or a prompted run (MLflow's predict applies no
    prompt): its files are logged, and a warning says so."""
    from mlflow import MlflowClient

    run = open_run(run_dir)
    where = read_run_document(run_dir).get("mlflow")
    if not isinstance(where, dict):
        raise InputError(f"--run_dir {run_dir}: config.json names no MLflow run (trained without --tracker mlflow)")
    uri, run_id = where["tracking_uri"], where["run_id"]
    card = model_card(run_dir, Path(MODEL_NAME), run.head.config())
    try:
        log_run_files(MlflowClient(tracking_uri=uri), run_id, run_dir, card)
        try:
            head_as_affine(run.head)
        except InputError as err:
            log.warning("MLflow run %s holds the run's files but no model: %s", run_id, err)
            return None
        if applies_prompts(run):  # the flavour's predict calls encode(task=...), which adds no prompt
            log.warning(
                "MLflow run %s holds the run's files but no model: the run was trained with query/document "
                "prompts, which MLflow's predict would not apply; serve `isoadapt export`'s folder instead",
                run_id,
            )
            return None
        return log_model(run, run_id, uri, cache_dir)
    except InputError:
        raise
    except Exception as err:  # MLflow's own errors; the run folder itself is complete
        raise Failed(f"MLflow run {run_id} ({uri}): {describe(err)}; the run folder {run_dir} is complete") from err
