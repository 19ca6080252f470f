"""Typed settings for a training run: the single source of defaults, validated once, saved as JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from isoadapt.encoder import BACKENDS
from isoadapt.errors import InputError
from isoadapt.head import ADAPT_SIDES, TRAINABLE_HEADS
from isoadapt.losses.objective import IsotropyObjective
from isoadapt.offline_models import MPNET
from isoadapt.owned_folders import check_folder_path
from isoadapt.precomputed import is_precomputed
from isoadapt.tracking import TRACKERS

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "isoadapt"
MAX_SEED = 2**32 - 1  # numpy.random.seed accepts 0 .. 2**32 - 1
HEAD_INITS = ("identity", "whitening", "abtt")  # where a linear head starts: the identity or a fitted transform
MAX_EPOCHS = 10_000  # far beyond any useful run over cached vectors; 10**12 would only look like a hang


def _at_least(name: str, value: int, low: int, high: int | None = None, why: str = "") -> None:
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise InputError(f"--{name} {value}: must be {bound}" + (f" ({why})" if why else ""))


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed {seed}: must be an integer between 0 and {MAX_SEED} (NumPy's seed range)")


def check_device(device: str) -> None:
    """A torch device that exists on this machine, refused before any work (not in the middle of a run)."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise InputError(f"--device {device}: not a torch device (expected cpu, cuda, cuda:N or mps)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if (
        kind == "cuda"
        and torch.device(device).index is not None
        and torch.device(device).index >= torch.cuda.device_count()
    ):
        raise InputError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available on this machine; use --device cpu")
    if kind not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {device}: isoadapt runs on cpu, cuda or mps")


_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool}


def check_types(cfg) -> None:
    """Every field holds a value of its declared type (a plan's `epochs = 1.5` or `freeze_base = "no"`
    must not slip through). bool is refused where a number is expected; finiteness and ranges are
    checked by validate(), with the flag's name."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        allowed = [t.strip() for t in str(f.type).split("|")]
        if value is None and "None" in allowed:
            continue
        ok = any(
            t in _TYPES and isinstance(value, _TYPES[t]) and (t == "bool" or not isinstance(value, bool))
            for t in allowed
        )
        if not ok:
            expected = " or ".join(t if t != "None" else "absent" for t in allowed)
            raise InputError(f"{f.name} = {value!r}: expected {expected}, got {type(value).__name__}")


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
    contrastive_loss: str = "margin"
    temperature: float = 0.05
    head_init: str = "identity"
    out_dim: int | None = None
    adapt: str = "both"
    eval_steps: int | None = None
    early_stopping_patience: int | None = None

    def validate(self) -> IsotropyObjective:
        """Check every setting before any file is read or written; return the objective they define."""
        check_types(self)
        _at_least("epochs", self.epochs, 1, MAX_EPOCHS)
        _at_least("batch_size", self.batch_size, 2, None, "in-batch candidates need company")
        check_seed(self.seed)
        for name in ("projection_learning_rate", "base_learning_rate"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise InputError(f"--{name} {value}: must be a finite number > 0")
        if not math.isfinite(self.variance_target) or self.variance_target < 0:
            raise InputError(f"--variance_target {self.variance_target}: must be a finite number >= 0")
        if self.head not in TRAINABLE_HEADS:
            raise InputError(f"--head {self.head}: expected one of {list(TRAINABLE_HEADS)}")
        if self.max_train_examples is not None:
            _at_least("max_train_examples", self.max_train_examples, 2)
        if self.save_steps is not None:
            _at_least("save_steps", self.save_steps, 1)
        if self.tracker not in TRACKERS:
            raise InputError(f"--tracker {self.tracker}: expected one of {list(TRACKERS)}")
        if self.encode_backend not in BACKENDS:
            raise InputError(f"--encode_backend {self.encode_backend}: expected one of {list(BACKENDS)}")
        if self.encode_backend != "torch" and not self.freeze_base:
            raise InputError(f"--encode_backend {self.encode_backend}: full fine-tuning needs the torch backend")
        if is_precomputed(self.base_model) and not self.freeze_base:
            raise InputError(
                f"--freeze_base false: {self.base_model} is precomputed vectors; there is no encoder to tune"
            )
        _at_least("encode_batch_size", self.encode_batch_size, 1, 1 << 16)
        self._validate_head_settings()
        for name in ("eval_steps", "early_stopping_patience", "out_dim"):
            if getattr(self, name) is not None:
                _at_least(name, getattr(self, name), 1)
        check_folder_path(Path(self.cache_dir), "--cache_dir")
        check_device(self.device)
        return self.objective()

    def _validate_head_settings(self) -> None:
        """Which head, started where, on which side: combinations that cannot work are refused up front."""
        if self.head_init not in HEAD_INITS:
            raise InputError(f"--head_init {self.head_init}: expected one of {list(HEAD_INITS)}")
        if self.adapt not in ADAPT_SIDES:
            raise InputError(f"--adapt {self.adapt}: expected one of {list(ADAPT_SIDES)}")
        if self.head != "linear" and (self.head_init != "identity" or self.out_dim or self.adapt != "both"):
            raise InputError(f"--head {self.head}: --head_init, --out_dim and --adapt query need the linear head")
        if self.head_init != "whitening" and self.out_dim is not None:
            raise InputError(
                f"--out_dim {self.out_dim}: only a whitening-initialised head changes the width (--head_init whitening)"
            )
        if self.adapt == "query" and (self.head_init != "identity" or not self.freeze_base):
            raise InputError(
                "--adapt query: documents keep their base vectors, so the head starts at the identity "
                "over a frozen encoder (--head_init identity, --freeze_base)"
            )

    def objective(self) -> IsotropyObjective:
        return IsotropyObjective(
            self.lambda_contrastive,
            self.lambda_isotropy,
            self.lambda_reg,
            self.margin,
            self.variance_target,
            self.isotropy_loss,
            self.contrastive_loss,
            self.temperature,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
