"""The projection head: identity at initialisation, saved as config JSON + safetensors (never pickle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from isoadapt.errors import InputError, describe
from isoadapt.fileio import atomic_write_json, read_json
from isoadapt.head_options import ADAPT_SIDES, SIDES
from isoadapt.metrics.normalize import l2_normalize

CONFIG_FILE = "head_config.json"
WEIGHTS_FILE = "head.safetensors"


class LinearHead(nn.Module):
    """A d -> out_dim linear map. It starts at the identity (out_dim = d), so an untrained head reproduces
    the base scores exactly, or at a fitted post-hoc transform (`init_from`), so training starts from what
    already works; with out_dim < d it also reduces the dimension. A query-only head (adapt="query") must
    give the documents' width: `dim` in a same-model run, the base (index) model's width in a cross-model
    run, where the query model is another, perhaps wider or narrower, model. The head cannot see the
    documents, so that width is checked where the run is opened (OpenedRun.check_width) and trained."""

    def __init__(self, dim: int, out_dim: int | None = None, adapt: str = "both"):
        super().__init__()
        self.dim, self.out_dim, self.adapt = dim, out_dim or dim, adapt
        if adapt not in ADAPT_SIDES:
            raise InputError(f"head adapt {adapt!r}: expected one of {list(ADAPT_SIDES)}")
        self.linear = nn.Linear(dim, self.out_dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(self.out_dim, dim))
            self.linear.bias.zero_()

    def init_from(self, fitted: AffineHead) -> LinearHead:
        """Start from a fitted transform's weights (same shapes): whitening, all-but-the-top."""
        with torch.no_grad():
            self.linear.weight.copy_(fitted.linear.weight)
            self.linear.bias.copy_(fitted.linear.bias)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, dim) -> (n, out_dim)
        return self.linear(x)

    def config(self) -> dict:
        return {"type": "linear", "dim": self.dim, "out_dim": self.out_dim, "adapt": self.adapt}


class MLPHead(nn.Module):
    """x + W2 GELU(W1 x); W2 starts at zero, so this head also starts as the identity."""

    adapt = "both"

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        self.dim, self.hidden = dim, hidden or dim
        self.up = nn.Linear(dim, self.hidden)
        self.down = nn.Linear(self.hidden, dim)
        with torch.no_grad():
            self.down.weight.zero_()
            self.down.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, dim) -> (n, dim)
        return x + self.down(nn.functional.gelu(self.up(x)))

    def config(self) -> dict:
        return {"type": "mlp", "dim": self.dim, "hidden": self.hidden}


class AffineHead(nn.Module):
    """y = W x + b with a fixed, fitted W (out_dim x dim): the form every post-hoc transform takes."""

    adapt = "both"

    def __init__(self, dim: int, out_dim: int | None = None, method: str = "affine"):
        super().__init__()
        self.dim, self.out_dim, self.method = dim, out_dim or dim, method
        self.linear = nn.Linear(dim, self.out_dim)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, dim) -> (n, out_dim)
        return self.linear(x)

    def config(self) -> dict:
        return {"type": "affine", "dim": self.dim, "out_dim": self.out_dim, "method": self.method}


HEAD_TYPES = {"linear": LinearHead, "mlp": MLPHead, "affine": AffineHead}


# What each head's config may hold besides "type", and which of it is required: a config can set only these.
HEAD_FIELDS = {
    "linear": ({"dim"}, {"out_dim", "adapt"}),
    "mlp": ({"dim"}, {"hidden"}),
    "affine": ({"dim"}, {"out_dim", "method"}),
}
MAX_DIM = 1 << 16


def build_head(config: dict, where: str = "head config") -> nn.Module:
    if not isinstance(config, dict):
        raise InputError(f"{where}: expected an object, got {type(config).__name__}")
    kind = config.get("type")
    if kind not in HEAD_TYPES:
        raise InputError(f"{where}: unknown type {kind!r}; expected one of {sorted(HEAD_TYPES)}")
    required, optional = HEAD_FIELDS[kind]
    options = {k: v for k, v in config.items() if k != "type"}
    unknown, missing = set(options) - required - optional, required - set(options)
    if unknown or missing:
        raise InputError(
            f"{where}: a {kind} head takes {sorted(required | optional)}; "
            + (f"unknown {sorted(unknown)}" if unknown else f"missing {sorted(missing)}")
        )
    for key in ("dim", "hidden", "out_dim"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM):
            raise InputError(f"{where}: '{key}' must be an integer from 1 to {MAX_DIM}, got {value!r}")
    for key in ("method", "adapt"):
        if not isinstance(options.get(key, ""), str):
            raise InputError(f"{where}: '{key}' must be a string")
    return HEAD_TYPES[kind](**options)


def save_head(head: nn.Module, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / CONFIG_FILE, head.config())
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(folder / WEIGHTS_FILE))


def load_head(folder: Path, expected_dim: int | None = None) -> nn.Module:
    """Build from the saved config, then load the weights; refuse a head made for another encoder width."""
    config_file = folder / CONFIG_FILE
    head = build_head(read_json(config_file), str(config_file))
    if expected_dim is not None and head.dim != expected_dim:
        raise InputError(f"{config_file}: head expects {head.dim}-dim inputs but the encoder gives {expected_dim}")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{weights}: file not found")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(f"{weights}: not a readable safetensors file ({describe(err)})") from None
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        raise InputError(f"{weights}: holds tensors {found}, but {config_file} describes {expected}")
    if not all(torch.isfinite(v).all() for v in state.values()):
        raise InputError(f"{weights}: holds NaN or infinite weights")
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head.eval()


@torch.no_grad()
def apply_head(head: torch.nn.Module | None, vectors: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Project base vectors through the head in chunks; None means the untouched base space."""
    if head is None:
        return vectors
    head.eval()
    out = [head(torch.as_tensor(vectors[i : i + chunk])).numpy() for i in range(0, len(vectors), chunk)]
    return np.concatenate(out).astype(np.float32, copy=False)


def side_head(head: torch.nn.Module | None, side: str | None, what: str = "side") -> torch.nn.Module | None:
    """Which module a vector on `side` passes through: the one side-routing rule, called by the API
    (Adapter.transform / encode_*), `isoadapt apply`, index, search, LanceDB's function, evaluation and the
    server. Returns the head, or None for "the base vectors" (a query-only head's documents).

    `side` is one of SIDES ("query", "document"). There is no default side where the answer depends on
    it: a query-only head (adapt="query") needs the side named, and `side=None` is refused, as the
    export's Router (no default route) refuses `encode` without a task. Either default would be wrong in
    silence for half the callers: "query" turns documents into query vectors, "document" gives queries the
    base vectors and loses the whole gain. A both-sides head maps both sides alike, so there `None` is
    accepted and means either. `what` names the argument in the error ("side", "--side", "task")."""
    if side is not None and side not in SIDES:
        raise InputError(f"{what} {side!r}: expected one of {list(SIDES)}")
    if head is None or getattr(head, "adapt", "both") == "both":
        return head
    if side is None:
        raise InputError(
            f"{what}: this adapter's head is query-only (queries pass through it, documents keep the base "
            f"vectors), so the side must be named: one of {list(SIDES)}"
        )
    return head if side == "query" else None


def to_side(head: torch.nn.Module | None, vectors: np.ndarray, side: str | None, what: str = "side") -> np.ndarray:
    """Base vectors (n, dim) on `side` of the head's space, L2-normalised: (n, out_dim), or the base width
    for a query-only head's documents. Every caller that hands out adapted vectors goes through here."""
    return l2_normalize(apply_head(side_head(head, side, what), np.asarray(vectors, dtype=np.float32)))
