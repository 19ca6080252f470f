"""Experiment tracking: TensorBoard event files in the run folder (default) or MLflow (local SQLite store
by default). Both libraries are optional extras; the core runs without them."""

from __future__ import annotations

import logging
from pathlib import Path

from isoadapt.errors import InputError, describe
from isoadapt.losses import LOGGED_TERMS
from isoadapt.owned_folders import check_output_file

log = logging.getLogger(__name__)
TRACKERS = ("tensorboard", "mlflow", "none")


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
    def __init__(self, uri: str, run_name: str):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("isoadapt")
        self.run = mlflow.start_run(run_name=run_name)

    def log_params(self, params: dict) -> None:
        self.mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_step(self, record: dict) -> None:
        self.mlflow.log_metrics({f"loss_{t}": record[t] for t in LOGGED_TERMS}, step=record["step"])

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


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
