"""Experiment tracking: TensorBoard event files in the run folder (default) or MLflow (local SQLite store
by default). Both libraries are optional extras; the core runs without them."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from isoadapt.errors import InputError, describe
from isoadapt.losses import LOGGED_TERMS
from isoadapt.owned_folders import check_output_file

log = logging.getLogger(__name__)
TRACKERS = ("tensorboard", "mlflow", "none")
EXPERIMENT = "isoadapt"  # the MLflow experiment every run goes to
FLUSH_SECONDS = 15.0  # the longest a step's losses wait before MLflow shows them


class NullTracker:
    """The tracker interface, doing nothing; a context manager that closes the tracker on the way out."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def log_params(self, params: dict) -> None:
        pass

    def log_step(self, record: dict) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int) -> None:
        pass

    def reference(self) -> dict:
        """What config.json records of where the tracker put the run: {} when nowhere to look it up again."""
        return {}

    def close(self) -> None:
        pass


class TensorBoardTracker(NullTracker):
    def __init__(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder))

    def log_params(self, params: dict) -> None:
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def log_step(self, record: dict) -> None:
        for term in LOGGED_TERMS:
            self.writer.add_scalar(f"loss/{term}", record[term], record["step"])

    def log_metrics(self, metrics: dict, step: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class MLflowTracker(NullTracker):
    """MLflow through its client: no process-wide tracking URI and no global active run, so a caller's own
    MLflow state is left alone. Each step's losses wait in a buffer and go in one `log_batch` call per
    MLflow's largest batch (1000 metrics) or FLUSH_SECONDS: one call per step cost about 34 ms on a SQLite
    store, most of MLflow's overhead on a run of a few hundred steps (bench/mlflow_overhead.py)."""

    def __init__(self, uri: str, run_name: str):
        from mlflow import MlflowClient
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        self.uri, self.batch = uri, MAX_METRICS_PER_BATCH
        self.client = MlflowClient(tracking_uri=uri)
        experiment = experiment_id(self.client, uri)
        self.run_id = self.client.create_run(experiment, run_name=run_name).info.run_id
        self.pending: list = []
        self.flushed = time.monotonic()

    def log_params(self, params: dict) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)[:500]) for k, v in params.items()])

    def log_step(self, record: dict) -> None:
        self.pending += self._metrics({f"loss_{t}": record[t] for t in LOGGED_TERMS}, record["step"])
        if len(self.pending) >= self.batch or time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self.flush()

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.pending += self._metrics(metrics, step)
        self.flush()

    def flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
        self.pending, self.flushed = [], time.monotonic()

    def reference(self) -> dict:
        return {"mlflow": {"tracking_uri": self.uri, "run_id": self.run_id}}

    def __exit__(self, kind, *exc) -> None:
        """The MLflow run ends FINISHED, or KILLED after Ctrl-C, or FAILED after an error."""
        self.close("FINISHED" if kind is None else "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED")

    def close(self, status: str = "FINISHED") -> None:
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id, status)

    @staticmethod
    def _metrics(metrics: dict, step: int) -> list:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        return [Metric(name.replace("@", "_at_"), float(value), now, step) for name, value in metrics.items()]


def experiment_id(client, uri: str, name: str = EXPERIMENT) -> str:
    """The experiment's id, created on first use. A SQLite store keeps its artifacts in `mlruns/` beside
    its file (MLflow's own default is ./mlruns in whatever folder the command ran from)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another process created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def open_tracker(kind: str, run_folder: Path, output_dir: Path, tracking_uri: str | None) -> NullTracker:
    """TensorBoard writes into the run folder; MLflow defaults to sqlite:///<output_dir's parent>/mlflow.db."""
    if kind not in TRACKERS:
        raise InputError(f"--tracker {kind}: expected one of {list(TRACKERS)}")
    try:
        if kind == "tensorboard":
            return TensorBoardTracker(run_folder / "tensorboard")
        if kind == "mlflow":
            uri = tracking_uri or f"sqlite:///{(output_dir.parent / 'mlflow.db').resolve()}"
            if uri.startswith("sqlite:///"):
                check_output_file(Path(uri.removeprefix("sqlite:///")), "--tracking_uri")
            try:
                return MLflowTracker(uri, output_dir.name)
            except ImportError:
                raise
            except Exception as err:  # MLflow raises its own types for a bad store; the user needs one line
                raise InputError(f"--tracking_uri {uri}: MLflow cannot use this store ({describe(err)})") from None
    except ImportError as err:
        extra = "tracking" if kind == "tensorboard" else "mlflow"
        if kind == "mlflow":
            raise InputError(
                f"--tracker mlflow: {err.name} is not installed; pip install 'isoadapt[{extra}]'"
            ) from None
        log.warning("TensorBoard logging is off: %s is not installed (pip install 'isoadapt[%s]')", err.name, extra)
    return NullTracker()
