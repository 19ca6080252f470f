"""Typed settings for a training run: the single source of defaults, validated once, saved as JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from isoadapt.errors import InputError
from isoadapt.head import TRAINABLE_HEADS
from isoadapt.losses.objective import IsotropyObjective
from isoadapt.models import MPNET

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "isoadapt"


@dataclass
class TrainConfig:
    train_data: str
    val_data: str
    output_dir: str
    test_data: str | None = None
    sts_data: str | None = None
    base_model: str = MPNET
    freeze_base: bool = True
    lambda_contrastive: float = 0.1
    lambda_isotropy: float = 1.0
    lambda_reg: float = 0.0
    margin: float = 0.1
    projection_learning_rate: float = 5e-4
    base_learning_rate: float = 2e-5
    epochs: int = 2
    batch_size: int = 16
    seed: int = 0
    head: str = "linear"
    isotropy_loss: str = "covariance"
    variance_target: float = 1.0
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    device: str = "cpu"
    encode_batch_size: int = 32
    encode_backend: str = "torch"
    overwrite: bool = False
    max_train_examples: int | None = None
    save_steps: int | None = None
    resume: bool = False
    tracker: str = "tensorboard"
    tracking_uri: str | None = None

    def validate(self) -> IsotropyObjective:
        """Check every setting before any file is read or written; return the objective they define."""
        if self.epochs < 1:
            raise InputError(f"--epochs {self.epochs}: must be at least 1")
        if self.batch_size < 2:
            raise InputError(f"--batch_size {self.batch_size}: must be at least 2 (in-batch candidates need company)")
        for name in ("projection_learning_rate", "base_learning_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"--{name} {value}: must be a finite number > 0")
        if self.head not in TRAINABLE_HEADS:
            raise InputError(f"--head {self.head}: expected one of {list(TRAINABLE_HEADS)}")
        if self.max_train_examples is not None and self.max_train_examples < 2:
            raise InputError(f"--max_train_examples {self.max_train_examples}: must be at least 2")
        if self.save_steps is not None and self.save_steps < 1:
            raise InputError(f"--save_steps {self.save_steps}: must be at least 1")
        if self.tracker not in ("tensorboard", "mlflow", "none"):
            raise InputError(f"--tracker {self.tracker}: expected tensorboard, mlflow or none")
        if self.encode_backend not in ("torch", "onnx", "onnx-int8", "openvino"):
            raise InputError(f"--encode_backend {self.encode_backend}: expected torch, onnx, onnx-int8 or openvino")
        if self.encode_backend != "torch" and not self.freeze_base:
            raise InputError(f"--encode_backend {self.encode_backend}: full fine-tuning needs the torch backend")
        if self.encode_batch_size < 1:
            raise InputError(f"--encode_batch_size {self.encode_batch_size}: must be at least 1")
        return self.objective()

    def objective(self) -> IsotropyObjective:
        return IsotropyObjective(
            self.lambda_contrastive, self.lambda_isotropy, self.lambda_reg, self.margin, self.variance_target, self.isotropy_loss
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
