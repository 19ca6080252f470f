"""The projection head: identity at initialisation, saved as config JSON + safetensors (never pickle)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from isoadapt.errors import InputError
from isoadapt.fileio import atomic_write_json, read_json

CONFIG_FILE = "head_config.json"
WEIGHTS_FILE = "head.safetensors"


class LinearHead(nn.Module):
    """A d -> d linear map starting at the identity, so an untrained head reproduces the base scores exactly."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.linear = nn.Linear(dim, dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, dim) -> (n, dim)
        return self.linear(x)

    def config(self) -> dict:
        return {"type": "linear", "dim": self.dim}


class MLPHead(nn.Module):
    """x + W2 GELU(W1 x); W2 starts at zero, so this head also starts as the identity."""

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
TRAINABLE_HEADS = ("linear", "mlp")


def build_head(config: dict) -> nn.Module:
    kind = config.get("type")
    if kind not in HEAD_TYPES:
        raise InputError(f"head config: unknown type {kind!r}; expected one of {sorted(HEAD_TYPES)}")
    return HEAD_TYPES[kind](**{k: v for k, v in config.items() if k != "type"})


def save_head(head: nn.Module, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / CONFIG_FILE, head.config())
    save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}, str(folder / WEIGHTS_FILE))


def load_head(folder: Path, expected_dim: int | None = None) -> nn.Module:
    """Build from the saved config, then load the weights; refuse a head made for another encoder width."""
    config = read_json(folder / CONFIG_FILE)
    if expected_dim is not None and config.get("dim") != expected_dim:
        raise InputError(f"{folder / CONFIG_FILE}: head expects {config.get('dim')}-dim inputs but the encoder gives {expected_dim}")
    head = build_head(config)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise InputError(f"{weights}: file not found")
    head.load_state_dict(load_file(str(weights)))
    return head.eval()
